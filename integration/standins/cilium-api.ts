// STAND-IN for the Cilium agent REST API (test fixture, not Cilium).
//
// Serves, on a unix socket, the JSON shapes of the real agent's
// GET /v1/identity, GET /v1/identity/{id} and GET /v1/endpoint[/{id}] (shared/reference/
// cilium-maps.md §7.3) from a small in-memory model, and can misbehave on
// demand: garbage JSON, hang, close mid-response, HTTP 500, oversized or
// slow answers — to test that a client pays a counted error, not a stall.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { Socket } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export interface StandinEndpoint {
  id: number;
  identity: number;
  /** Defaults to the identity's labels in the model. */
  labels?: string[];
  ipv4?: string;
  ipv6?: string;
  namespace?: string;
  podName?: string;
  containerId?: string;
  interfaceName?: string;
  interfaceIndex?: number;
  mac?: string;
  hostMac?: string;
  /** regenerating / restoring / ready / disconnecting / disconnected / invalid. Default ready. */
  state?: string;
}

export type Misbehaviour =
  | { mode: 'garbage' }
  | { mode: 'hang' }
  | { mode: 'close-mid-response' }
  | { mode: 'status'; status: number }
  | { mode: 'oversize'; bytes: number }
  | { mode: 'slow'; delayMs: number };

export interface MisbehaveOptions {
  /** Only for the next N matching requests; default: until behave(). */
  times?: number;
  /** Only requests whose path matches. Default: all. */
  path?: RegExp;
}

export interface StandinRequest {
  method: string;
  path: string;
}

/** Label string set → the agent's labelsSHA256 field (stand-in: sha256 of the sorted labels). */
function labelsSha(labels: readonly string[]): string {
  return createHash('sha256').update([...labels].sort().join(';')).digest('hex');
}

/** STAND-IN Cilium agent API on a unix socket. */
export class CiliumApiStandin {
  readonly socketPath: string;
  /** Every request received, in order. */
  readonly requests: StandinRequest[] = [];
  private server?: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly identities = new Map<number, string[]>();
  private readonly eps = new Map<number, StandinEndpoint>();
  private bad?: { how: Misbehaviour; left: number; path?: RegExp };
  private ownDir?: string;

  private constructor(socketPath: string, ownDir?: string) {
    this.socketPath = socketPath;
    this.ownDir = ownDir;
  }

  /** Starts on `socketPath`, or on a fresh socket in a private tmp dir. */
  static async start(socketPath?: string): Promise<CiliumApiStandin> {
    let own: string | undefined;
    if (!socketPath) {
      own = fs.mkdtempSync(path.join(os.tmpdir(), 'tetrahub-cilium-api-'));
      socketPath = path.join(own, 'cilium.sock');
    }
    const s = new CiliumApiStandin(socketPath, own);
    await s.listen();
    return s;
  }

  /** `unix://` address of the socket. */
  get address(): string {
    return `unix://${this.socketPath}`;
  }

  setIdentity(id: number, labels: string[]): void {
    this.identities.set(id, [...labels]);
  }

  removeIdentity(id: number): void {
    this.identities.delete(id);
  }

  addEndpoint(ep: StandinEndpoint): void {
    this.eps.set(ep.id, { ...ep });
  }

  removeEndpoint(id: number): void {
    this.eps.delete(id);
  }

  misbehave(how: Misbehaviour, opts: MisbehaveOptions = {}): void {
    this.bad = { how, left: opts.times ?? Infinity, path: opts.path };
  }

  behave(): void {
    this.bad = undefined;
  }

  /** Requests whose path starts with prefix. */
  count(prefix = '/'): number {
    return this.requests.filter((r) => r.path.startsWith(prefix)).length;
  }

  /** Stops listening and cuts every open connection (hung ones included). */
  async close(): Promise<void> {
    const srv = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
    fs.rmSync(this.socketPath, { force: true });
  }

  /** close() then listen again on the same path (agent restart). */
  async restart(): Promise<void> {
    await this.close();
    await this.listen();
  }

  /** close() and remove the private tmp dir, if this stand-in made one. */
  async dispose(): Promise<void> {
    await this.close();
    if (this.ownDir) fs.rmSync(this.ownDir, { recursive: true, force: true });
  }

  // --- Cilium's JSON (models.Identity, models.Endpoint) ----------------------

  identityJson(id: number): { id: number; labels: string[]; labelsSHA256: string } | undefined {
    const labels = this.identities.get(id);
    return labels ? { id, labels, labelsSHA256: labelsSha(labels) } : undefined;
  }

  endpointJson(ep: StandinEndpoint): Record<string, unknown> {
    const labels = ep.labels ?? this.identities.get(ep.identity) ?? [];
    const ns = ep.namespace ?? '';
    const pod = ep.podName ?? '';
    return {
      id: ep.id,
      spec: { 'label-configuration': { user: [] }, options: {} },
      status: {
        identity: { id: ep.identity, labels, labelsSHA256: labelsSha(labels) },
        networking: {
          addressing: [{ ...(ep.ipv4 ? { ipv4: ep.ipv4 } : {}), ...(ep.ipv6 ? { ipv6: ep.ipv6 } : {}) }],
          'interface-name': ep.interfaceName ?? `lxc${ep.id}`,
          'interface-index': ep.interfaceIndex ?? 0,
          mac: ep.mac ?? '',
          'host-mac': ep.hostMac ?? '',
        },
        'external-identifiers': {
          'container-id': ep.containerId ?? '',
          'k8s-namespace': ns,
          'k8s-pod-name': pod,
          'pod-name': ns && pod ? `${ns}/${pod}` : pod,
        },
        labels: { 'security-relevant': labels, derived: [], disabled: [], realized: { user: [] } },
        state: ep.state ?? 'ready',
        policy: { realized: { 'policy-enabled': 'none', 'policy-revision': 1 } },
        'named-ports': [],
      },
    };
  }

  // --- serving ---------------------------------------------------------------

  private listen(): Promise<void> {
    fs.rmSync(this.socketPath, { force: true });
    const srv = http.createServer((req, res) => this.handle(req, res));
    srv.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server = srv;
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.socketPath, () => {
        srv.off('error', reject);
        resolve();
      });
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    this.requests.push({ method: req.method ?? '', path: url.pathname + url.search });
    const route = this.route(req.method ?? '', url.pathname);
    res.on('error', () => undefined); // clients that hang up are part of the test
    const bad = this.bad;
    if (bad && (!bad.path || bad.path.test(url.pathname)) && bad.left > 0) {
      if (--bad.left <= 0) this.bad = undefined;
      return this.misbehaveOn(bad.how, route, res);
    }
    this.send(res, route.status, route.body);
  }

  private route(method: string, pathname: string): { status: number; body: unknown } {
    if (method !== 'GET') return { status: 405, body: 'method not allowed' };
    // GET /v1/identity: every identity the agent knows ([]models.Identity).
    if (pathname === '/v1/identity') return { status: 200, body: [...this.identities.keys()].sort((a, b) => a - b).map((id) => this.identityJson(id)) };
    let m = /^\/v1\/identity\/([^/]+)$/.exec(pathname);
    if (m) {
      if (!/^\d+$/.test(m[1])) return { status: 400, body: 'invalid identity id' };
      const j = this.identityJson(Number(m[1]));
      return j ? { status: 200, body: j } : { status: 404, body: undefined };
    }
    if (pathname === '/v1/endpoint') return { status: 200, body: [...this.eps.values()].map((ep) => this.endpointJson(ep)) };
    m = /^\/v1\/endpoint\/(\d+)$/.exec(pathname);
    if (m) {
      const ep = this.eps.get(Number(m[1]));
      return ep ? { status: 200, body: this.endpointJson(ep) } : { status: 404, body: undefined };
    }
    return { status: 404, body: undefined };
  }

  private send(res: http.ServerResponse, status: number, body: unknown, delayMs = 0): void {
    const text = body === undefined ? '' : JSON.stringify(body);
    const write = (): void => {
      if (res.destroyed) return;
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (delayMs > 0) setTimeout(write, delayMs);
    else write();
  }

  private misbehaveOn(how: Misbehaviour, route: { status: number; body: unknown }, res: http.ServerResponse): void {
    switch (how.mode) {
      case 'garbage': {
        const text = '{"id": 12, "labels": ["k8s:app=' + '\u0000\u00ff}]{' + '<html>oops</html>';
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      case 'hang':
        return; // accept, read the request, never answer
      case 'close-mid-response': {
        const text = JSON.stringify(route.body ?? { id: 0, labels: ['k8s:app=padding-padding-padding'] });
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
        res.write(text.slice(0, Math.max(1, text.length >> 1)));
        // Let the half reach the client, then drop the connection.
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      case 'status':
        return this.send(res, how.status, { code: how.status, message: 'stand-in failure' });
      case 'oversize': {
        // Chunked, no Content-Length: the client must count bytes itself.
        res.writeHead(200, { 'Content-Type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let left = how.bytes;
        const pump = (): void => {
          while (left > 0 && !res.destroyed) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!res.write(chunk.subarray(0, n))) return void res.once('drain', pump);
          }
          if (!res.destroyed) res.end();
        };
        pump();
        return;
      }
      case 'slow':
        return this.send(res, route.status, route.body, how.delayMs);
    }
  }
}
