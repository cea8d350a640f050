// STAND-IN for Cilium's Hubble server (test fixture, not Cilium).
//
// Serves observer.Observer/GetFlows on a unix socket (Cilium's is
// /var/run/cilium/hubble.sock) over the real gRPC protocol, built from our own
// protos (src/api/hubble/proto.ts), and streams flows shaped like the ones
// Cilium emits: L3/L4 traces, drops, policy verdicts and DNS L7 records
// (shared/reference/hubble-api.md §4–§5). Tests script it: emit(flow),
// close() to make the socket go away, restart() on the same path.
//
// GetFlows honours number / first / follow / since / until like Cilium's
// local observer; white/blacklist filters and field masks are not
// implemented (UNIMPLEMENTED for filters, masks ignored).
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { protos, serverDefinition } from '../../src/api/hubble/proto';

/** A flow.Flow as a plain object with proto field names (enums by name or number). */
export type FlowObject = { [field: string]: unknown };

export interface EndpointSpec {
  ip: string;
  /** Cilium endpoint ID; 0 for remote/world. */
  id?: number;
  identity: number;
  namespace?: string;
  podName?: string;
  labels?: string[];
  workloads?: { name: string; kind: string }[];
  clusterName?: string;
}

export type TcpFlag = 'FIN' | 'SYN' | 'RST' | 'PSH' | 'ACK' | 'URG' | 'ECE' | 'CWR' | 'NS';

export interface L4Spec {
  protocol: 'TCP' | 'UDP';
  sourcePort: number;
  destinationPort: number;
  flags?: TcpFlag[];
}

/** Cilium monitor observation points (event_type.sub_type numbering). */
export type ObsPoint =
  | 'to-endpoint'
  | 'to-proxy'
  | 'to-host'
  | 'to-stack'
  | 'to-overlay'
  | 'from-endpoint'
  | 'from-proxy'
  | 'from-host'
  | 'from-stack'
  | 'from-overlay'
  | 'from-network'
  | 'to-network';

// Monitor numbering (sub_type) vs the proto enum (trace_observation_point): only to-endpoint differs.
const OBS_POINTS: Record<ObsPoint, { sub: number; proto: string }> = {
  'to-endpoint': { sub: 0, proto: 'TO_ENDPOINT' },
  'to-proxy': { sub: 1, proto: 'TO_PROXY' },
  'to-host': { sub: 2, proto: 'TO_HOST' },
  'to-stack': { sub: 3, proto: 'TO_STACK' },
  'to-overlay': { sub: 4, proto: 'TO_OVERLAY' },
  'from-endpoint': { sub: 5, proto: 'FROM_ENDPOINT' },
  'from-proxy': { sub: 6, proto: 'FROM_PROXY' },
  'from-host': { sub: 7, proto: 'FROM_HOST' },
  'from-stack': { sub: 8, proto: 'FROM_STACK' },
  'from-overlay': { sub: 9, proto: 'FROM_OVERLAY' },
  'from-network': { sub: 10, proto: 'FROM_NETWORK' },
  'to-network': { sub: 11, proto: 'TO_NETWORK' },
};

/** Cilium monitor message types (CiliumEventType.type). */
export const MONITOR_DROP = 1;
export const MONITOR_TRACE = 4;
export const MONITOR_POLICY_VERDICT = 5;
export const MONITOR_L7 = 129;
export const DROP_POLICY_DENIED = 133;

interface CommonOptions {
  time?: Date;
  nodeName?: string;
  source: EndpointSpec;
  destination: EndpointSpec;
  direction?: 'INGRESS' | 'EGRESS';
  /** undefined leaves is_reply unset (the CLI prints `<>`). */
  isReply?: boolean;
  interface?: { index: number; name: string };
}

export interface TraceOptions extends CommonOptions {
  l4: L4Spec;
  obsPoint?: ObsPoint;
  reason?: 'NEW' | 'ESTABLISHED' | 'REPLY' | 'RELATED';
}

export interface DropOptions extends CommonOptions {
  l4: L4Spec;
  /** Datapath drop code; default 133 POLICY_DENIED. */
  dropReason?: number;
  /** DropReason enum name matching dropReason. Default POLICY_DENIED. */
  dropReasonDesc?: string;
}

export interface PolicyVerdictOptions extends CommonOptions {
  l4: L4Spec;
  allowed: boolean;
  /** 1 L3-Only, 2 L3-L4, 3 L4-Only, 4 all, 5 L3-Proto, 6 Proto-Only. Default 2. */
  matchType?: number;
}

export interface DnsOptions extends CommonOptions {
  query: string;
  qtypes?: string[];
  /** Set for responses. */
  ips?: string[];
  ttl?: number;
  rcode?: number;
  rrtypes?: string[];
  cnames?: string[];
  response?: boolean;
  latencyNs?: number;
  sourcePort?: number;
}

function timestamp(d: Date = new Date()): { seconds: number; nanos: number } {
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

function endpoint(e: EndpointSpec): FlowObject {
  return {
    ID: e.id ?? 0,
    identity: e.identity,
    namespace: e.namespace ?? '',
    labels: e.labels ?? [],
    pod_name: e.podName ?? '',
    workloads: e.workloads ?? [],
    ...(e.clusterName ? { cluster_name: e.clusterName } : {}),
  };
}

function ipVersion(ip: string): string {
  return ip.includes(':') ? 'IPv6' : 'IPv4';
}

function l4(spec: L4Spec): FlowObject {
  if (spec.protocol === 'UDP') return { UDP: { source_port: spec.sourcePort, destination_port: spec.destinationPort } };
  const flags = Object.fromEntries((spec.flags ?? []).map((f) => [f, true]));
  return { TCP: { source_port: spec.sourcePort, destination_port: spec.destinationPort, flags } };
}

function l4Summary(spec: L4Spec): string {
  return spec.protocol === 'UDP' ? 'UDP' : `TCP Flags: ${(spec.flags ?? []).join(', ')}`;
}

function base(o: CommonOptions): FlowObject {
  return {
    time: timestamp(o.time),
    uuid: randomUUID(),
    node_name: o.nodeName ?? 'kind-worker',
    IP: { source: o.source.ip, destination: o.destination.ip, ipVersion: ipVersion(o.source.ip) },
    source: endpoint(o.source),
    destination: endpoint(o.destination),
    ...(o.direction ? { traffic_direction: o.direction } : {}),
    ...(o.isReply !== undefined ? { is_reply: { value: o.isReply } } : {}),
    ...(o.interface ? { interface: o.interface } : {}),
  };
}

/** A datapath trace (event_type 4, sub_type = monitor obs point), FORWARDED. */
export function traceFlow(o: TraceOptions): FlowObject {
  const obs = OBS_POINTS[o.obsPoint ?? 'to-endpoint'];
  return {
    ...base(o),
    verdict: 'FORWARDED',
    ethernet: { source: 'f2:5c:3e:8a:11:01', destination: '0a:58:0a:00:01:05' },
    l4: l4(o.l4),
    Type: 'L3_L4',
    event_type: { type: MONITOR_TRACE, sub_type: obs.sub },
    trace_observation_point: obs.proto,
    trace_reason: o.reason ?? (o.isReply ? 'REPLY' : 'NEW'),
    Summary: l4Summary(o.l4),
  };
}

/** A datapath drop (event_type 1, sub_type = drop code), DROPPED. */
export function dropFlow(o: DropOptions): FlowObject {
  const code = o.dropReason ?? DROP_POLICY_DENIED;
  return {
    ...base(o),
    verdict: 'DROPPED',
    drop_reason: code,
    drop_reason_desc: o.dropReasonDesc ?? 'POLICY_DENIED',
    ethernet: { source: 'f2:5c:3e:8a:11:01', destination: '0a:58:0a:00:01:05' },
    l4: l4(o.l4),
    Type: 'L3_L4',
    event_type: { type: MONITOR_DROP, sub_type: code },
    Summary: l4Summary(o.l4),
  };
}

/** A policy verdict (event_type 5): FORWARDED when allowed, else DROPPED / POLICY_DENIED. */
export function policyVerdictFlow(o: PolicyVerdictOptions): FlowObject {
  return {
    ...base(o),
    verdict: o.allowed ? 'FORWARDED' : 'DROPPED',
    ...(o.allowed ? {} : { drop_reason: DROP_POLICY_DENIED, drop_reason_desc: 'POLICY_DENIED' }),
    l4: l4(o.l4),
    Type: 'L3_L4',
    event_type: { type: MONITOR_POLICY_VERDICT, sub_type: 0 },
    traffic_direction: o.direction ?? 'INGRESS',
    policy_match_type: o.matchType ?? 2,
    Summary: l4Summary(o.l4),
  };
}

/** A DNS record from the proxy (Type L7, event_type 129). Requests go client → DNS server; responses back. */
export function dnsFlow(o: DnsOptions): FlowObject {
  const response = o.response ?? o.ips !== undefined;
  const qtypes = o.qtypes ?? ['A'];
  const sport = o.sourcePort ?? 40000;
  const summary = response
    ? `DNS Answer ${o.ips && o.ips.length ? `"${o.ips.join(',')}" ` : ''}TTL: ${o.ttl ?? 0} (Proxy ${o.query} ${qtypes.join(',')})`
    : `DNS Query ${o.query} ${qtypes.join(',')}`;
  return {
    ...base({ ...o, isReply: o.isReply ?? response }),
    verdict: 'FORWARDED',
    l4: { UDP: response ? { source_port: 53, destination_port: sport } : { source_port: sport, destination_port: 53 } },
    Type: 'L7',
    event_type: { type: MONITOR_L7, sub_type: 0 },
    traffic_direction: o.direction ?? 'EGRESS',
    l7: {
      type: response ? 'RESPONSE' : 'REQUEST',
      latency_ns: o.latencyNs ?? (response ? 1_200_000 : 0),
      dns: {
        query: o.query,
        ips: o.ips ?? [],
        ttl: o.ttl ?? 0,
        cnames: o.cnames ?? [],
        observation_source: 'proxy',
        rcode: o.rcode ?? 0,
        qtypes,
        rrtypes: o.rrtypes ?? (response ? qtypes : []),
      },
    },
    Summary: summary,
  };
}

/** Throws on a field name the proto does not have (fromObject would drop it silently). */
function checkFields(type: protobuf.Type, value: FlowObject, where: string): void {
  for (const [k, v] of Object.entries(value)) {
    const f = type.fields[k];
    if (!f) throw new Error(`stand-in flow: ${where}${k} is not a field of ${type.fullName}`);
    f.resolve();
    const t = f.resolvedType;
    if (!(t instanceof protobuf.Type) || t.fullName.startsWith('.google.protobuf.')) continue;
    for (const item of Array.isArray(v) ? v : [v]) {
      if (item && typeof item === 'object') checkFields(t, item as FlowObject, `${where}${k}.`);
    }
  }
}

interface Entry {
  timeMs: number;
  bytes: Uint8Array;
}

type PlainRequest = { [field: string]: unknown };

export interface HubbleStandinOptions {
  /** Default: a fresh hubble.sock in a private tmp dir. */
  socketPath?: string;
  nodeName?: string;
  /** Ring capacity (Cilium's default 4095). */
  capacity?: number;
}

/** STAND-IN Cilium Hubble server. */
export class HubbleServerStandin {
  readonly socketPath: string;
  readonly nodeName: string;
  /** Decoded GetFlows requests, in order. */
  readonly requests: PlainRequest[] = [];
  private readonly capacity: number;
  private ring: Entry[] = [];
  private seen = 0;
  private server?: grpc.Server;
  private readonly followers = new Set<grpc.ServerWritableStream<PlainRequest, Uint8Array>>();
  private readonly started = Date.now();
  private readonly ownDir?: string;

  private constructor(opts: HubbleStandinOptions, ownDir?: string) {
    this.ownDir = ownDir;
    this.socketPath = opts.socketPath ?? path.join(ownDir ?? os.tmpdir(), 'hubble.sock');
    this.nodeName = opts.nodeName ?? 'kind-worker';
    this.capacity = opts.capacity ?? 4095;
  }

  static async start(opts: HubbleStandinOptions = {}): Promise<HubbleServerStandin> {
    const own = opts.socketPath ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'tetrahub-hubble-'));
    const s = new HubbleServerStandin(opts, own);
    await s.listen();
    return s;
  }

  /** gRPC target, e.g. unix:///tmp/…/hubble.sock */
  get address(): string {
    return `unix://${this.socketPath}`;
  }

  /** Open follow streams. */
  get streams(): number {
    return this.followers.size;
  }

  /**
   * Records a flow in the ring and sends it to every follow stream. The flow
   * gets this node's name unless it has one. Throws on unknown field names.
   * Returns the GetFlowsResponse bytes sent.
   */
  emit(flow: FlowObject): Uint8Array {
    const P = protos();
    checkFields(P.Flow, flow, '');
    const f = { node_name: this.nodeName, ...flow, time: flow.time ?? timestamp() };
    const t = f.time as { seconds: number; nanos: number };
    const bytes = P.GetFlowsResponse.encode(P.GetFlowsResponse.fromObject({ flow: f, node_name: f.node_name, time: t })).finish();
    const entry = { timeMs: t.seconds * 1000 + Math.floor(t.nanos / 1e6), bytes };
    this.ring.push(entry);
    if (this.ring.length > this.capacity) this.ring.shift();
    this.seen++;
    for (const call of this.followers) call.write(entry.bytes);
    return bytes;
  }

  /**
   * Garbage mode: sends these bytes as one gRPC message to every follow
   * stream (not recorded in the ring), e.g. bytes that are no
   * GetFlowsResponse. Returns the number of streams written to.
   */
  emitRaw(bytes: Uint8Array): number {
    for (const call of this.followers) call.write(Buffer.from(bytes));
    return this.followers.size;
  }

  /** Stops serving at once (streams cut, socket removed): "the Cilium socket went away". */
  async close(): Promise<void> {
    const srv = this.server;
    this.server = undefined;
    this.followers.clear();
    if (srv) srv.forceShutdown();
    fs.rmSync(this.socketPath, { force: true });
  }

  /** Serves again on the same path (Cilium restarted). Cilium's ring does not survive a restart. */
  async restart(opts: { keepHistory?: boolean } = {}): Promise<void> {
    await this.close();
    if (!opts.keepHistory) this.ring = [];
    await this.listen();
  }

  async dispose(): Promise<void> {
    await this.close();
    if (this.ownDir) fs.rmSync(this.ownDir, { recursive: true, force: true });
  }

  private async listen(): Promise<void> {
    const P = protos();
    fs.mkdirSync(path.dirname(this.socketPath), { recursive: true });
    fs.rmSync(this.socketPath, { force: true });
    const server = new grpc.Server();
    server.addService(serverDefinition(P.Observer), {
      GetFlows: (call: grpc.ServerWritableStream<PlainRequest, Uint8Array>) => this.getFlows(call),
      ServerStatus: (_call: grpc.ServerUnaryCall<PlainRequest, Uint8Array>, cb: grpc.sendUnaryData<Uint8Array>) =>
        cb(
          null,
          P.ServerStatusResponse.encode({
            num_flows: this.ring.length,
            max_flows: this.capacity,
            seen_flows: this.seen,
            uptime_ns: (Date.now() - this.started) * 1e6,
            version: '1.17.3-standin',
          }).finish(),
        ),
    });
    server.addService(serverDefinition(P.Health), {
      Check: (_call: grpc.ServerUnaryCall<PlainRequest, Uint8Array>, cb: grpc.sendUnaryData<Uint8Array>) =>
        cb(null, P.HealthCheckResponse.encode({ status: 1 /* SERVING */ }).finish()),
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${this.socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
    this.server = server;
  }

  private getFlows(call: grpc.ServerWritableStream<PlainRequest, Uint8Array>): void {
    const req = call.request;
    this.requests.push(req);
    const fail = (code: grpc.status, details: string): void => {
      call.emit('error', { code, details });
    };
    const follow = req.follow === true;
    const first = req.first === true;
    if (first && follow) return fail(grpc.status.INVALID_ARGUMENT, 'first cannot be specified with follow');
    const lists = ['whitelist', 'blacklist'].filter((k) => Array.isArray(req[k]) && (req[k] as unknown[]).length > 0);
    if (lists.length) return fail(grpc.status.UNIMPLEMENTED, `stand-in Hubble server: ${lists.join('/')} filters are not implemented`);
    // uint64 arrives as a decimal string; 2^64-1 (--all) is simply "everything".
    const number = Number(req.number ?? 0);
    const tsMs = (v: unknown): number | undefined => {
      const t = v as { seconds?: string | number; nanos?: number } | undefined;
      return t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : undefined;
    };
    const since = tsMs(req.since);
    const until = follow ? undefined : tsMs(req.until);
    let history = this.ring.filter((e) => (since === undefined || e.timeMs >= since) && (until === undefined || e.timeMs <= until));
    if (follow && number === 0 && since === undefined) history = [];
    else if (number > 0) history = first ? history.slice(0, number) : history.slice(-number);
    for (const e of history) call.write(e.bytes);
    if (!follow) {
      call.end();
      return;
    }
    this.followers.add(call);
    const drop = (): void => {
      this.followers.delete(call);
    };
    call.on('cancelled', drop);
    call.on('close', drop);
    call.on('error', drop);
  }
}
