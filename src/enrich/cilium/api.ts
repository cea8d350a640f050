// Client of the Cilium agent REST API (node-local, HTTP over a unix socket;
// shared/reference/cilium-maps.md §7.3) for what the maps cannot say:
// identity labels (GET /v1/identity/{id}) and local endpoints' pod names
// (GET /v1/endpoint).
//
// Built for the event path: the public lookups are synchronous and answer
// from a bounded cache; a miss starts a background fetch and returns
// undefined. Every failure (socket missing, slow, 5xx, garbage, connection
// cut mid-response, oversized body) is counted and backs the client off
// exponentially — it never blocks a caller and never throws into one.
import * as http from 'node:http';
import { parseIp, formatIp } from './layout';
import { isReservedIdentity, reservedLabels } from './reserved';

export const DEFAULT_CILIUM_SOCKET = '/var/run/cilium/cilium.sock';

/** The socket path from `unix:///path`, `unix:/path` or a plain path. */
export function socketPathOf(address: string): string {
  if (address.startsWith('unix://')) return address.slice('unix://'.length);
  if (address.startsWith('unix:')) return address.slice('unix:'.length);
  return address;
}

export interface CiliumIdentity {
  id: number;
  /** `source:key=value`, e.g. `k8s:app=web` — Hubble's Endpoint.labels format. */
  labels: string[];
  /** Value of k8s:io.kubernetes.pod.namespace, "" when none. */
  namespace: string;
}

export interface CiliumEndpoint {
  /** Cilium endpoint ID (= cilium_lxc lxc_id). */
  id: number;
  identity: number;
  labels: string[];
  ipv4: string[];
  ipv6: string[];
  namespace: string;
  podName: string;
  containerId: string;
  interfaceName: string;
  interfaceIndex: number;
  mac: string;
  state: string;
}

export interface CiliumApiOptions {
  /** `unix:///var/run/cilium/cilium.sock` or a path. Default $CILIUM_SOCK, else /var/run/cilium/cilium.sock. */
  socket?: string;
  /** How long fetched labels are fresh; stale ones are still returned while a refresh runs. Default 10 min. */
  ttlMs?: number;
  /** How long a 404 is remembered. Default 30 s. */
  negativeTtlMs?: number;
  /** How long the endpoint list is fresh. Default 30 s. */
  endpointsTtlMs?: number;
  /** Identity cache bound (LRU). Default 10000. */
  maxEntries?: number;
  /** Whole-request deadline. Default 2000 ms. */
  timeoutMs?: number;
  /** Largest response body accepted. Default 8 MiB. */
  maxResponseBytes?: number;
  /** First back-off after an error; doubles per consecutive error. Default 1000 ms. */
  backoffBaseMs?: number;
  /** Back-off ceiling. Default 60 s. */
  backoffMaxMs?: number;
  /** Concurrent background fetches. Default 4. */
  maxInflight?: number;
  /** Clock for cache expiry and back-off (tests). Default Date.now. */
  now?: () => number;
  log?: (msg: string) => void;
}

export type CiliumApiErrorKind = 'connect' | 'timeout' | 'http' | 'parse' | 'shape' | 'too-large' | 'closed';

export interface CiliumApiStats {
  requests: number;
  ok: number;
  notFound: number;
  errors: Record<CiliumApiErrorKind, number>;
  errorsTotal: number;
  cacheHits: number;
  /** Stale labels returned while a refresh ran. */
  staleHits: number;
  negativeHits: number;
  misses: number;
  evictions: number;
  /** Fetches not started because the client was backing off. */
  backoffSkips: number;
  /** Fetches not started because maxInflight were running. */
  inflightSkips: number;
  cacheSize: number;
  /** Current back-off in ms (0 when healthy). */
  backoffMs: number;
}

class ApiError extends Error {
  constructor(
    readonly kind: CiliumApiErrorKind,
    message: string,
  ) {
    super(message);
  }
}

interface CacheEntry {
  /** undefined: the agent said 404. */
  identity?: CiliumIdentity;
  expires: number;
}

interface HttpResult {
  status: number;
  body: Buffer;
}

const NAMESPACE_LABEL = 'k8s:io.kubernetes.pod.namespace=';

function namespaceOf(labels: readonly string[]): string {
  const l = labels.find((x) => x.startsWith(NAMESPACE_LABEL));
  return l ? l.slice(NAMESPACE_LABEL.length) : '';
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function obj(v: Json | undefined): { [k: string]: Json } | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : undefined;
}
function str(v: Json | undefined): string {
  return typeof v === 'string' ? v : '';
}
function num(v: Json | undefined): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}
function strings(v: Json | undefined): string[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
}

/** models.Identity → CiliumIdentity; undefined when the shape is wrong. */
export function parseIdentity(v: Json): CiliumIdentity | undefined {
  const o = obj(v);
  const labels = strings(o?.labels ?? []);
  if (!o || typeof o.id !== 'number' || !Number.isInteger(o.id) || o.id < 0 || !labels) return undefined;
  // Frozen: labelsOf hands out the cached array itself (no copy per event).
  return { id: o.id, labels: Object.freeze([...labels]) as string[], namespace: namespaceOf(labels) };
}

function canonicalIp(s: string): string | undefined {
  const a = parseIp(s);
  return a ? formatIp(a) : undefined;
}

/** models.Endpoint → CiliumEndpoint; undefined when it has no numeric id. */
export function parseEndpoint(v: Json): CiliumEndpoint | undefined {
  const o = obj(v);
  if (!o || typeof o.id !== 'number' || !Number.isInteger(o.id)) return undefined;
  const status = obj(o.status);
  const ident = obj(status?.identity);
  const net = obj(status?.networking);
  const ext = obj(status?.['external-identifiers']);
  const labels = strings(ident?.labels) ?? [];
  const ipv4: string[] = [];
  const ipv6: string[] = [];
  for (const a of Array.isArray(net?.addressing) ? net.addressing : []) {
    const ao = obj(a);
    const v4 = canonicalIp(str(ao?.ipv4));
    const v6 = canonicalIp(str(ao?.ipv6));
    if (v4) ipv4.push(v4);
    if (v6) ipv6.push(v6);
  }
  // pod-name is "namespace/name" in Cilium; k8s-pod-name is the bare name.
  const podRef = str(ext?.['pod-name']);
  const slash = podRef.indexOf('/');
  return {
    id: o.id,
    identity: num(ident?.id),
    labels,
    ipv4,
    ipv6,
    namespace: str(ext?.['k8s-namespace']) || (slash > 0 ? podRef.slice(0, slash) : '') || namespaceOf(labels),
    podName: str(ext?.['k8s-pod-name']) || (slash > 0 ? podRef.slice(slash + 1) : podRef),
    containerId: str(ext?.['container-id']),
    interfaceName: str(net?.['interface-name']),
    interfaceIndex: num(net?.['interface-index']),
    mac: str(net?.mac),
    state: str(status?.state),
  };
}

/**
 * Labels and endpoints from the Cilium agent, cached. Construct once;
 * `close()` aborts what is in flight.
 */
export class CiliumApiClient {
  readonly socketPath: string;
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly endpointsTtlMs: number;
  private readonly maxEntries: number;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly maxInflight: number;
  private readonly now: () => number;
  private readonly log: (msg: string) => void;

  /** Insertion order = recency (LRU). */
  private readonly cache = new Map<number, CacheEntry>();
  private readonly inflight = new Map<number, Promise<CiliumIdentity | undefined>>();
  private readonly requestsOpen = new Set<http.ClientRequest>();
  private endpointsList: CiliumEndpoint[] = [];
  private endpointsByIp = new Map<string, CiliumEndpoint>();
  private endpointsById = new Map<number, CiliumEndpoint>();
  private endpointsFetchedAt = -Infinity;
  private endpointsInflight?: Promise<boolean>;
  private failures = 0;
  private retryAt = 0;
  private closed = false;
  private readonly counters: Omit<CiliumApiStats, 'cacheSize' | 'backoffMs' | 'errors' | 'errorsTotal'> = {
    requests: 0,
    ok: 0,
    notFound: 0,
    cacheHits: 0,
    staleHits: 0,
    negativeHits: 0,
    misses: 0,
    evictions: 0,
    backoffSkips: 0,
    inflightSkips: 0,
  };
  private readonly errors: Record<CiliumApiErrorKind, number> = {
    connect: 0,
    timeout: 0,
    http: 0,
    parse: 0,
    shape: 0,
    'too-large': 0,
    closed: 0,
  };

  constructor(opts: CiliumApiOptions = {}) {
    this.socketPath = socketPathOf(opts.socket ?? process.env.CILIUM_SOCK ?? DEFAULT_CILIUM_SOCKET);
    this.ttlMs = opts.ttlMs ?? 10 * 60_000;
    this.negativeTtlMs = opts.negativeTtlMs ?? 30_000;
    this.endpointsTtlMs = opts.endpointsTtlMs ?? 30_000;
    this.maxEntries = Math.max(1, opts.maxEntries ?? 10_000);
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.maxBytes = opts.maxResponseBytes ?? 8 << 20;
    this.backoffBaseMs = opts.backoffBaseMs ?? 1000;
    this.backoffMaxMs = opts.backoffMaxMs ?? 60_000;
    this.maxInflight = Math.max(1, opts.maxInflight ?? 4);
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? (() => undefined);
  }

  // --- synchronous, cached -------------------------------------------------

  /**
   * Labels of an identity as known now. Reserved identities resolve locally
   * (`reserved:<name>`); others come from the cache, and a miss or an
   * expired entry starts a background fetch. undefined = not known (yet).
   * The array is shared with the cache and frozen: copy it to modify.
   */
  labelsOf(identity: number): string[] | undefined {
    return this.identityOf(identity)?.labels;
  }

  /** Like labelsOf, with the namespace label pulled out. */
  identityOf(identity: number): CiliumIdentity | undefined {
    if (!Number.isInteger(identity) || identity < 0 || identity > 0xffffffff) return undefined;
    if (isReservedIdentity(identity)) {
      const labels = reservedLabels(identity);
      return labels ? { id: identity, labels, namespace: '' } : undefined;
    }
    const e = this.cache.get(identity);
    const now = this.now();
    if (e) {
      this.cache.delete(identity); // re-insert: most recently used
      this.cache.set(identity, e);
      if (!e.identity) {
        if (now < e.expires) {
          this.counters.negativeHits++;
          return undefined;
        }
        this.counters.misses++;
        this.startFetch(identity);
        return undefined;
      }
      if (now < e.expires) this.counters.cacheHits++;
      else {
        this.counters.staleHits++;
        this.startFetch(identity);
      }
      return e.identity;
    }
    this.counters.misses++;
    this.startFetch(identity);
    return undefined;
  }

  /** The local endpoint with this IP, from the cached endpoint list (refreshed in the background). */
  endpointByIp(ip: string): CiliumEndpoint | undefined {
    this.maybeRefreshEndpoints();
    const c = canonicalIp(ip);
    return c ? this.endpointsByIp.get(c) : undefined;
  }

  endpointById(id: number): CiliumEndpoint | undefined {
    this.maybeRefreshEndpoints();
    return this.endpointsById.get(id);
  }

  /** The cached endpoint list (refreshed in the background when old). */
  endpoints(): readonly CiliumEndpoint[] {
    this.maybeRefreshEndpoints();
    return this.endpointsList;
  }

  stats(): CiliumApiStats {
    const errorsTotal = Object.values(this.errors).reduce((a, b) => a + b, 0);
    const backoffMs = Math.max(0, this.retryAt - this.now());
    return { ...this.counters, errors: { ...this.errors }, errorsTotal, cacheSize: this.cache.size, backoffMs };
  }

  // --- asynchronous (warm-up, tests); never reject -------------------------

  /**
   * Fetches one identity now (deduplicated with a running fetch). Resolves
   * undefined on 404, on error, and while backing off unless force is set.
   */
  fetchIdentity(identity: number, opts: { force?: boolean } = {}): Promise<CiliumIdentity | undefined> {
    if (isReservedIdentity(identity)) return Promise.resolve(this.identityOf(identity));
    const running = this.inflight.get(identity);
    if (running) return running;
    if (this.closed || (!opts.force && this.backingOff())) {
      if (!this.closed) this.counters.backoffSkips++;
      return Promise.resolve(this.cache.get(identity)?.identity);
    }
    const p = this.getIdentity(identity).finally(() => this.inflight.delete(identity));
    this.inflight.set(identity, p);
    return p;
  }

  /** Re-reads GET /v1/endpoint now; resolves false on error. */
  refreshEndpoints(opts: { force?: boolean } = {}): Promise<boolean> {
    if (this.endpointsInflight) return this.endpointsInflight;
    if (this.closed || (!opts.force && this.backingOff())) return Promise.resolve(false);
    this.endpointsInflight = this.getEndpoints().finally(() => (this.endpointsInflight = undefined));
    return this.endpointsInflight;
  }

  /** Resolves when no fetch is running (tests, orderly shutdown). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0 || this.endpointsInflight) {
      await Promise.all([...this.inflight.values(), this.endpointsInflight]);
    }
  }

  close(): void {
    this.closed = true;
    for (const r of this.requestsOpen) r.destroy(new ApiError('closed', 'client closed'));
    this.requestsOpen.clear();
  }

  // --- internals -----------------------------------------------------------

  private backingOff(): boolean {
    return this.failures > 0 && this.now() < this.retryAt;
  }

  private startFetch(identity: number): void {
    if (this.inflight.has(identity) || this.closed) return;
    if (this.backingOff()) {
      this.counters.backoffSkips++;
      return;
    }
    if (this.inflight.size >= this.maxInflight) {
      this.counters.inflightSkips++;
      return;
    }
    void this.fetchIdentity(identity);
  }

  private maybeRefreshEndpoints(): void {
    if (this.now() - this.endpointsFetchedAt < this.endpointsTtlMs || this.endpointsInflight || this.closed) return;
    if (this.backingOff()) {
      this.counters.backoffSkips++;
      return;
    }
    void this.refreshEndpoints();
  }

  private put(identity: number, entry: CacheEntry): void {
    this.cache.delete(identity);
    this.cache.set(identity, entry);
    while (this.cache.size > this.maxEntries) {
      const oldest = this.cache.keys().next().value as number;
      this.cache.delete(oldest);
      this.counters.evictions++;
    }
  }

  private succeeded(): void {
    this.failures = 0;
    this.retryAt = 0;
  }

  private failed(e: unknown, what: string): void {
    const kind: CiliumApiErrorKind = e instanceof ApiError ? e.kind : 'connect';
    this.errors[kind]++;
    // Requests that were already running when an earlier one failed do not
    // escalate the back-off again: one outage, one step.
    if (this.backingOff()) return;
    this.failures++;
    const delay = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** Math.min(this.failures - 1, 30));
    this.retryAt = this.now() + delay;
    this.log(`cilium api: ${what}: ${(e as Error).message} (${kind}); backing off ${delay} ms`);
  }

  private async getIdentity(identity: number): Promise<CiliumIdentity | undefined> {
    const what = `GET /v1/identity/${identity}`;
    try {
      const res = await this.get(`/v1/identity/${identity}`);
      if (res.status === 404) {
        this.counters.notFound++;
        this.succeeded();
        this.put(identity, { expires: this.now() + this.negativeTtlMs });
        return undefined;
      }
      if (res.status !== 200) throw new ApiError('http', `HTTP ${res.status}`);
      const parsed = parseIdentity(this.json(res.body));
      if (!parsed || parsed.id !== identity) throw new ApiError('shape', `not an Identity for ${identity}`);
      this.counters.ok++;
      this.succeeded();
      this.put(identity, { identity: parsed, expires: this.now() + this.ttlMs });
      return parsed;
    } catch (e) {
      this.failed(e, what);
      return this.cache.get(identity)?.identity;
    }
  }

  private async getEndpoints(): Promise<boolean> {
    try {
      const res = await this.get('/v1/endpoint');
      if (res.status !== 200) throw new ApiError('http', `HTTP ${res.status}`);
      const body = this.json(res.body);
      if (!Array.isArray(body)) throw new ApiError('shape', 'endpoint list is not an array');
      const list = body.map(parseEndpoint).filter((x): x is CiliumEndpoint => x !== undefined);
      this.counters.ok++;
      this.succeeded();
      this.endpointsList = list;
      this.endpointsById = new Map(list.map((ep) => [ep.id, ep]));
      this.endpointsByIp = new Map(list.flatMap((ep) => [...ep.ipv4, ...ep.ipv6].map((ip): [string, CiliumEndpoint] => [ip, ep])));
      this.endpointsFetchedAt = this.now();
      // Local endpoints carry their identity's labels: warm the cache with them.
      for (const ep of list) {
        if (ep.identity > 0 && !isReservedIdentity(ep.identity) && ep.labels.length > 0) {
          const labels = Object.freeze([...ep.labels]) as string[];
          this.put(ep.identity, { identity: { id: ep.identity, labels, namespace: namespaceOf(labels) }, expires: this.now() + this.ttlMs });
        }
      }
      return true;
    } catch (e) {
      this.failed(e, 'GET /v1/endpoint');
      // Do not retry on every lookup; the back-off gates the next attempt.
      this.endpointsFetchedAt = this.now() - this.endpointsTtlMs;
      return false;
    }
  }

  private json(body: Buffer): Json {
    try {
      return JSON.parse(body.toString('utf8')) as Json;
    } catch (e) {
      throw new ApiError('parse', `invalid JSON: ${(e as Error).message}`);
    }
  }

  /** One GET with a whole-request deadline and a body size bound. */
  private get(pathname: string): Promise<HttpResult> {
    this.counters.requests++;
    return new Promise<HttpResult>((resolve, reject) => {
      let settled = false;
      let responded = false;
      const done = (err: ApiError | undefined, res?: HttpResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.requestsOpen.delete(req);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(res as HttpResult);
      };
      const req = http.request({
        socketPath: this.socketPath,
        path: pathname,
        method: 'GET',
        headers: { Host: 'localhost', Accept: 'application/json' },
        agent: false,
      });
      this.requestsOpen.add(req);
      const timer = setTimeout(() => done(new ApiError('timeout', `no complete answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      timer.unref();
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e instanceof ApiError) return done(e);
        done(responded ? new ApiError('closed', `connection lost: ${e.message}`) : new ApiError('connect', `${this.socketPath}: ${e.code ?? e.message}`));
      });
      req.on('response', (res) => {
        responded = true;
        const declared = Number(res.headers['content-length'] ?? NaN);
        if (declared > this.maxBytes) return done(new ApiError('too-large', `response of ${declared} B exceeds ${this.maxBytes} B`));
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > this.maxBytes) return done(new ApiError('too-large', `response exceeds ${this.maxBytes} B`));
          chunks.push(c);
        });
        res.on('error', (e) => done(new ApiError('closed', `response cut: ${e.message}`)));
        res.on('aborted', () => done(new ApiError('closed', 'response cut (connection closed)')));
        res.on('end', () => {
          if (!res.complete) return done(new ApiError('closed', 'response cut (connection closed)'));
          done(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
        });
        res.on('close', () => done(new ApiError('closed', 'response cut (connection closed)')));
      });
      req.end();
    });
  }
}
