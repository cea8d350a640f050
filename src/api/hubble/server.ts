// The Hubble API of one node: observer.Observer, grpc.health.v1.Health and
// peer.Peer on one gRPC server (hubble-api.md §1–§3, §5, §10, §12).
//
// GetFlows reads the history ring, then (follow) a bounded per-stream bus
// subscription created in the same tick, so no item is missed or doubled.
// Responses are pre-encoded bytes shared by all streams (see encode.ts); each
// stream frames what it has queued into one HTTP/2 write per round, straight
// to the call's HTTP/2 stream (../grpc-direct.ts), falling back to grpc-js
// writes (the service definitions pass Buffers through untouched).
import * as grpc from '@grpc/grpc-js';
import * as os from 'node:os';
import type { StatusProvider } from '../../agent/status';
import type { EventBus } from '../../bus/bus';
import type { RuntimeEvent, WallTime } from '../../model/event';
import { DEFAULT_MAX_WRITE_BYTES, GrpcStreamWriter, MessageTooLargeError, type GrpcStreamWriterOptions } from '../grpc-direct';
import { bindAll, SERVER_OPTIONS, unixPath } from '../listen';
import { flowOf, flowResponseBytes, lossNoticeBytes, lostResponseBytes, toTimestamp, wallNow } from './encode';
import { compileFieldMask, FieldMaskError, type CompiledFieldMask } from './fieldmask';
import { compileFilterLists, compileRuntimeFilter, FilterError, type FlowPredicate, type RuntimePredicate } from './filter';
import { DEFAULT_HISTORY_SIZE, FlowHistory } from './history';
import { DECODE_OPTIONS, protos, RUNTIME_FILTER_TYPE_URL, serverDefinition } from './proto';
import type { GetEventsRequest, GetFlowsRequest, RuntimeFilter, Timestamp } from './types';
import { AgentEventType, ChangeNotificationType, LostEventSource, NodeState, ServingStatus } from './types';
import type { HubbleItem, ItemSource, ItemSubscription } from './upstream/types';

/** Health service names answered SERVING (the CLI checks the second one). */
export const HEALTH_SERVICES = new Set(['', 'hubble.server.Observer']);
export const DEFAULT_QUEUE_LIMIT = 4096;
const AGENT_EVENT_LOG_SIZE = 256;
/** Items taken from a follow subscription per pump round (held outside the queue bound while written). */
const TAKE_BATCH = 512;

type WriterOptions = Pick<GrpcStreamWriterOptions, 'direct' | 'maxWriteBytes' | 'maxMessageBytes'>;

export interface HubbleServerOptions {
  addresses: string[];
  bus: EventBus;
  status: StatusProvider;
  version: string;
  nodeName: string;
  historySize?: number;
  /** Per-stream queue bound for follow streams; overflow becomes lost_events. */
  queueLimit?: number;
  /** Address announced by peer.Peer/Notify and GetNodes; default: the first TCP address, wildcard hosts replaced by a node IP. */
  advertiseAddress?: string;
  /**
   * Write response frames straight to the HTTP/2 stream (default true; see
   * ../grpc-direct.ts). false forces grpc-js's per-message write path.
   */
  directWrites?: boolean;
  /** Bytes coalesced into one stream write per round (default 256 KiB). */
  maxWriteBytes?: number;
  /**
   * Cilium's Hubble merged into this stream (upstream/, CiliumHubble): the
   * history ring and GetFlows streams read its feed instead of the bus, and
   * GetNodes lists the Cilium node beside ours.
   */
  upstream?: { feed: ItemSource; node?(): { name: string; version: string; address: string; state: number } | undefined };
}

export interface HubbleStreamStats {
  /** gRPC method, e.g. "GetFlows". */
  method: string;
  /** Frames go straight to the HTTP/2 stream (fast path) rather than through grpc-js writes. */
  direct: boolean;
  /** Messages written. */
  messages: number;
  /** Transport writes (one per round on the direct path, one per message otherwise). */
  writes: number;
  /** Framed bytes written. */
  bytes: number;
  /** Bytes written but not yet taken by the peer (HTTP/2 stream or grpc-js buffer). */
  buffered: number;
  /** Follow streams: items waiting in the stream's queue, and drops since the start. */
  queued?: number;
  dropped?: number;
}

export interface HubbleServer {
  /** Addresses actually bound (TCP ports resolved). */
  addresses: string[];
  close(): Promise<void>;
  history: FlowHistory;
  /** Open streaming calls (GetFlows, GetAgentEvents, GetDebugEvents, Notify, Watch). */
  streams(): number;
  /** Per open streaming call: write path and counters. */
  streamStats(): HubbleStreamStats[];
  /** Appends an agent event (GetAgentEvents); `agent_start` is added at start. */
  agentEvents: EventLog;
}

// ---------------------------------------------------------------- errors

class RequestError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

function toServiceError(e: unknown): Partial<grpc.ServiceError> {
  if (e instanceof RequestError) return { code: e.code, details: e.message };
  if (e instanceof FilterError || e instanceof FieldMaskError) return { code: grpc.status.INVALID_ARGUMENT, details: e.message };
  if (e instanceof MessageTooLargeError) return { code: grpc.status.RESOURCE_EXHAUSTED, details: e.message };
  return { code: grpc.status.INTERNAL, details: e instanceof Error ? e.message : String(e) };
}

// ------------------------------------------------------------------ time

function toWall(ts: Timestamp | undefined): WallTime | undefined {
  if (!ts) return undefined;
  return { sec: Number(ts.seconds ?? 0), nsec: ts.nanos ?? 0 };
}

function before(a: WallTime, b: WallTime): boolean {
  return a.sec < b.sec || (a.sec === b.sec && a.nsec < b.nsec);
}

// ---------------------------------------------------------- stream pump

/**
 * One server stream: queues pre-encoded messages into a GrpcStreamWriter
 * (one HTTP/2 write per round on the direct path, see ../grpc-direct.ts),
 * waits for 'drain' when the transport holds enough, and stops (running
 * cleanups at once) on cancel or close.
 */
class StreamPump {
  stopped = false;
  readonly out: GrpcStreamWriter;
  /** The follow subscription, if any (stats). */
  sub?: ItemSubscription;
  private wakeup?: () => void;
  private pending = false;
  private readonly cleanups: (() => void)[] = [];

  constructor(
    readonly method: string,
    readonly call: grpc.ServerWritableStream<unknown, Uint8Array>,
    writer: WriterOptions,
  ) {
    const stop = () => this.stop();
    call.on('cancelled', stop);
    call.on('close', stop);
    call.on('error', stop);
    // Decided per call: the response headers are already sent (withHeader).
    this.out = new GrpcStreamWriter(call, { ...writer, onDrain: () => this.wake(), onClose: stop });
    if (call.cancelled) this.stop();
  }

  onStop(fn: () => void): void {
    if (this.stopped) fn();
    else this.cleanups.push(fn);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.out.detach();
    for (const fn of this.cleanups.splice(0)) {
      try {
        fn();
      } catch {
        /* cleanup must not throw into grpc-js */
      }
    }
    this.wake();
  }

  wake(): void {
    const w = this.wakeup;
    if (w) {
      this.wakeup = undefined;
      w();
    } else this.pending = true;
  }

  /** Resolves on the next wake (new data, drain, stop). */
  wait(): Promise<void> {
    if (this.pending || this.stopped) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => (this.wakeup = resolve));
  }

  /** Queues one message for the current round (written by flush()). */
  add(bytes: Uint8Array): void {
    if (!this.stopped) this.out.add(bytes);
  }

  /** The current round reached its byte budget. */
  get full(): boolean {
    return this.out.full;
  }

  /**
   * Writes the current round; resolves once the transport can take more
   * (backpressure), and never within the same event-loop turn: a round is
   * ~100+ encodings, and the socket (WINDOW_UPDATEs, other streams' drains)
   * and the publisher must get a turn in between, or a busy server starves
   * every stream's HTTP/2 window.
   */
  async flush(): Promise<void> {
    if (this.stopped || this.out.pendingMessages === 0) return;
    if (!this.out.flush()) return this.stop();
    if (this.out.blocked) {
      while (this.out.blocked && !this.stopped) await this.wait();
    } else {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Writes one message on its own (low-rate streams). */
  async send(bytes: Uint8Array): Promise<void> {
    this.add(bytes);
    await this.flush();
  }

  /** Writes what is queued, then ends the call with status OK (trailers after the data). */
  end(): void {
    if (this.stopped) return;
    this.out.end();
    this.stop();
  }

  fail(e: unknown): void {
    if (this.stopped) return;
    this.out.detach();
    this.call.emit('error', toServiceError(e));
    this.stop();
  }
}

// ------------------------------------------------------------ agent events

interface LoggedEvent {
  time: WallTime;
  bytes: Uint8Array;
}

/** A small bounded log for agent/debug events (few, cheap, encoded on append). */
export class EventLog {
  private items: LoggedEvent[] = [];
  private readonly listeners = new Set<(e: LoggedEvent) => void>();

  constructor(private readonly limit: number) {}

  append(time: WallTime, bytes: Uint8Array): void {
    const e = { time, bytes };
    this.items.push(e);
    if (this.items.length > this.limit) this.items.splice(0, this.items.length - this.limit);
    for (const l of this.listeners) l(e);
  }

  snapshot(): LoggedEvent[] {
    return this.items.slice();
  }

  listen(fn: (e: LoggedEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

async function serveEventLog(pump: StreamPump, req: GetEventsRequest, log: EventLog): Promise<void> {
  if (req.first && req.follow) throw new RequestError(grpc.status.INVALID_ARGUMENT, 'first cannot be specified with follow');
  const number = Number(req.number ?? 0);
  const since = toWall(req.since);
  const until = toWall(req.until);
  const live: LoggedEvent[] = [];
  if (req.follow) {
    pump.onStop(
      log.listen((e) => {
        live.push(e);
        pump.wake();
      }),
    );
  }
  const items = log.snapshot();
  let start: number;
  if (req.first) start = 0;
  else if (req.follow && number === 0 && !since) start = items.length;
  else {
    start = items.length;
    let count = 0;
    while (start > 0 && !(since && before(items[start - 1].time, since))) {
      start--;
      if (number > 0 && ++count >= number) break;
    }
  }
  let sent = 0;
  for (let i = start; i < items.length && !pump.stopped; i++) {
    const e = items[i];
    if (since && before(e.time, since)) continue;
    if (until && before(until, e.time)) return pump.end();
    await pump.send(e.bytes);
    if (!req.follow && number > 0 && ++sent >= number) break;
  }
  if (!req.follow) return pump.end();
  while (!pump.stopped) {
    const e = live.shift();
    if (!e) {
      await pump.wait();
      continue;
    }
    if (until && before(until, e.time)) return pump.end();
    await pump.send(e.bytes);
  }
}

// ------------------------------------------------------------- GetFlows

interface FlowQuery {
  number: number;
  follow: boolean;
  first: boolean;
  since?: WallTime;
  until?: WallTime;
  /** whitelist/blacklist; undefined when both are empty (every flow matches). */
  flowFilter?: FlowPredicate;
  runtime?: RuntimePredicate;
  mask?: CompiledFieldMask;
}

function decodeRuntimeFilter(ext: GetFlowsRequest['extensions']): RuntimePredicate | undefined {
  if (!ext || (!ext.type_url && !ext.value?.length)) return undefined;
  const url = ext.type_url ?? '';
  // Any type URLs may use another host prefix; the part after the last '/' names the type.
  if (url !== RUNTIME_FILTER_TYPE_URL && url.slice(url.lastIndexOf('/') + 1) !== 'tetrahub.v1.RuntimeFilter') {
    throw new RequestError(grpc.status.INVALID_ARGUMENT, `extensions: unsupported type ${JSON.stringify(url)} (want ${RUNTIME_FILTER_TYPE_URL})`);
  }
  const T = protos().RuntimeFilter;
  let rf: RuntimeFilter;
  try {
    rf = T.toObject(T.decode(ext.value ?? new Uint8Array()), DECODE_OPTIONS) as RuntimeFilter;
  } catch (e) {
    throw new RequestError(grpc.status.INVALID_ARGUMENT, `extensions: cannot decode tetrahub.v1.RuntimeFilter: ${(e as Error).message}`);
  }
  return compileRuntimeFilter(rf, 'extensions');
}

/** Validates and compiles a GetFlowsRequest; throws RequestError/FilterError/FieldMaskError. */
export function compileFlowQuery(req: GetFlowsRequest): FlowQuery {
  if (req.first && req.follow) throw new RequestError(grpc.status.INVALID_ARGUMENT, 'first cannot be specified with follow');
  const filter = compileFilterLists(req.whitelist, req.blacklist);
  const anyFlowFilter = (req.whitelist?.length ?? 0) > 0 || (req.blacklist?.length ?? 0) > 0;
  const runtime = decodeRuntimeFilter(req.extensions);
  const Flow = protos().Flow;
  // Field 10 wins; CLIs up to 1.18 only send experimental.field_mask (999.1).
  const mask = req.field_mask?.paths?.length
    ? compileFieldMask(Flow, req.field_mask.paths, 'field_mask')
    : compileFieldMask(Flow, req.experimental?.field_mask?.paths, 'experimental.field_mask');
  return {
    number: Number(req.number ?? 0),
    follow: !!req.follow,
    first: !!req.first,
    since: toWall(req.since),
    until: toWall(req.until),
    flowFilter: anyFlowFilter ? filter : undefined,
    runtime,
    mask,
  };
}

interface ServerContext {
  bus: EventBus;
  /** Where items come from: the bus, or the merged feed (upstream). */
  source: ItemSource;
  history: FlowHistory;
  nodeName: string;
  queueLimit: number;
}

async function serveFlows(pump: StreamPump, q: FlowQuery, ctx: ServerContext): Promise<void> {
  const { history, nodeName } = ctx;
  // The Flow object (built once per event, shared) is only needed when a flow
  // filter is set; the cheaper runtime filter runs first.
  const flowFilter = q.flowFilter;
  const runtime = q.runtime;
  const matches = (ev: RuntimeEvent): boolean => (!runtime || runtime(ev)) && (!flowFilter || flowFilter(flowOf(ev, nodeName)));
  const filtered = !!flowFilter || !!runtime;
  // Cilium's flows: the runtime filter looks at the process of the local socket, when one matched.
  const matchesItem = (it: HubbleItem): boolean => {
    if (it.kind === 'cilium') return (!runtime || (it.socket !== undefined && runtime(it.socket))) && (!flowFilter || flowFilter(it.flow()));
    return matches(it as RuntimeEvent);
  };

  // Subscribe before reading the ring, in the same tick: the subscription gets
  // exactly the items published after the ring's current head. Filters run
  // here, inside publish, so a stream's queue only holds (and its bound only
  // counts) what it will send; queued flows are not filtered again.
  let sub: ItemSubscription | undefined;
  if (q.follow) {
    sub = ctx.source.subscribe({
      name: 'hubble-getflows',
      limit: ctx.queueLimit,
      onReady: () => pump.wake(),
      accept: filtered
        ? (it) => {
            if (it.kind === 'lost' || it.kind === 'upstream_notice') return true;
            try {
              return matchesItem(it);
            } catch {
              return false; // never throw into publish
            }
          }
        : undefined,
    });
    const s = sub;
    pump.sub = s;
    pump.onStop(() => s.close());
  }

  const head = history.head;
  let start: number;
  if (q.first) start = history.oldest;
  else if (q.follow && q.number === 0 && !q.since) start = head;
  else {
    // Rewind from the newest entry, counting only matching flows.
    start = head;
    let count = 0;
    while (start > history.oldest) {
      const it = history.entry(start - 1);
      if (!it || (q.since && before(it.time, q.since))) break;
      start--;
      if (q.number > 0 && it.kind !== 'lost' && it.kind !== 'upstream_notice' && matchesItem(it) && ++count >= q.number) break;
    }
  }

  let sent = 0;
  const limitReached = () => !q.follow && q.number > 0 && sent >= q.number;
  /**
   * Queues one item for the current round; false when the stream must end
   * (past `until`). `accepted`: the subscription's filter already passed it.
   */
  const emit = (it: HubbleItem, accepted: boolean): boolean => {
    if (q.since && before(it.time, q.since)) return true;
    if (q.until && before(q.until, it.time)) return false;
    if (it.kind === 'lost') {
      // Loss bypasses filters and does not count towards `number`.
      pump.add(lossNoticeBytes(it, nodeName));
      return true;
    }
    if (it.kind === 'upstream_notice') {
      // Node status (Cilium's connection) bypasses filters like loss, not counted towards `number`.
      pump.add(it.bytes);
      return true;
    }
    if (it.kind === 'cilium') {
      if (!accepted && !matchesItem(it)) return true;
      pump.add(q.mask ? it.masked(q.mask) : it.bytes);
      sent++;
      return true;
    }
    if (!accepted && !matches(it)) return true;
    pump.add(flowResponseBytes(it, q.mask, nodeName));
    sent++;
    return true;
  };

  for (let pos = start; pos < head && !pump.stopped && !limitReached(); pos++) {
    let it = history.entry(pos);
    if (!it) {
      // Overwritten while this reader waited on a slow client.
      const oldest = history.oldest;
      if (oldest <= pos) break;
      const lost = Math.min(oldest, head) - pos;
      pump.add(lostResponseBytes({ source: LostEventSource.HUBBLE_RING_BUFFER, count: lost, time: wallNow(), nodeName }));
      pos = oldest;
      if (pos >= head) break;
      it = history.entry(pos);
      if (!it) break;
    }
    if (!emit(it, false)) return pump.end();
    if (pump.full) await pump.flush();
  }
  if (!sub) return pump.end();
  await pump.flush();

  while (!pump.stopped) {
    const batch = sub.take(TAKE_BATCH);
    for (const it of batch) {
      if (pump.stopped) return; // cancelled: encode nothing more
      if (!emit(it, true)) return pump.end();
      if (pump.full) {
        await pump.flush();
        if (pump.stopped) return;
      }
    }
    const drop = sub.takeDropped();
    if (drop.count > 0) {
      pump.add(
        lostResponseBytes({ source: LostEventSource.OBSERVER_EVENTS_QUEUE, count: drop.count, first: drop.first, last: drop.last, time: drop.last ?? wallNow(), nodeName }),
      );
    }
    // One write for everything this round queued.
    await pump.flush();
    if (batch.length === 0 && sub.size === 0) await pump.wait();
  }
}

// ---------------------------------------------------------------- server

function isWildcardHost(h: string): boolean {
  return h === '0.0.0.0' || h === '::' || h === '[::]' || h === '';
}

function nodeIP(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  }
  return undefined;
}

/** The address peers should dial: the first TCP address, wildcard hosts replaced by a node IP. */
export function advertisedAddress(bound: string[]): string {
  const tcp = bound.find((a) => !unixPath(a));
  if (!tcp) return bound[0] ?? '';
  const i = tcp.lastIndexOf(':');
  const host = tcp.slice(0, i);
  const port = tcp.slice(i + 1);
  if (!isWildcardHost(host)) return tcp;
  return `${nodeIP() ?? '127.0.0.1'}:${port}`;
}

const SEMVER = /^v?\d+\.\d+\.\d+/;

export async function startHubbleServer(opts: HubbleServerOptions): Promise<HubbleServer> {
  const P = protos();
  const source: ItemSource = opts.upstream?.feed ?? opts.bus;
  const history = new FlowHistory(source, { capacity: opts.historySize ?? DEFAULT_HISTORY_SIZE });
  const ctx: ServerContext = { bus: opts.bus, source, history, nodeName: opts.nodeName, queueLimit: opts.queueLimit ?? DEFAULT_QUEUE_LIMIT };
  const pumps = new Set<StreamPump>();
  const writer: WriterOptions = {
    direct: opts.directWrites ?? true,
    maxWriteBytes: opts.maxWriteBytes ?? DEFAULT_MAX_WRITE_BYTES,
    maxMessageBytes: SERVER_OPTIONS['grpc.max_send_message_length'],
  };
  const agentEvents = new EventLog(AGENT_EVENT_LOG_SIZE);
  const debugEvents = new EventLog(1);
  let advertise = opts.advertiseAddress ?? '';

  const startTime = wallNow();
  agentEvents.append(
    startTime,
    P.GetAgentEventsResponse.encode({
      agent_event: { type: AgentEventType.AGENT_STARTED, agent_start: { time: toTimestamp(startTime) } },
      node_name: opts.nodeName,
      time: toTimestamp(startTime),
    }).finish(),
  );

  const header = new grpc.Metadata();
  if (SEMVER.test(opts.version)) header.set('hubble-server-version', opts.version.replace(/^v/, ''));
  const withHeader = (call: { sendMetadata(md: grpc.Metadata): void }) => {
    try {
      call.sendMetadata(header);
    } catch {
      /* already sent or call gone */
    }
  };

  /** Runs a streaming handler with a pump, mapping thrown errors to gRPC statuses. */
  const stream =
    <Req>(method: string, body: (pump: StreamPump, req: Req) => Promise<void> | void) =>
    (call: grpc.ServerWritableStream<Req, Uint8Array>): void => {
      // Headers first: the direct write path needs them sent.
      withHeader(call);
      const pump = new StreamPump(method, call as grpc.ServerWritableStream<unknown, Uint8Array>, writer);
      if (pump.stopped) return;
      pumps.add(pump);
      pump.onStop(() => pumps.delete(pump));
      Promise.resolve()
        .then(() => body(pump, call.request))
        .catch((e: unknown) => pump.fail(e));
    };

  const unary =
    <Req>(body: (req: Req) => Uint8Array) =>
    (call: grpc.ServerUnaryCall<Req, Uint8Array>, cb: grpc.sendUnaryData<Uint8Array>): void => {
      withHeader(call);
      try {
        cb(null, body(call.request));
      } catch (e) {
        cb(toServiceError(e));
      }
    };

  const statusCounts = () => ({
    num_flows: history.size,
    max_flows: history.capacity,
    seen_flows: history.seenFlows,
    uptime_ns: Math.max(0, Math.round(opts.status.snapshot().uptimeNs)),
  });

  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(serverDefinition(P.Observer), {
    GetFlows: stream<GetFlowsRequest>('GetFlows', (pump, req) => serveFlows(pump, compileFlowQuery(req), ctx)),
    GetAgentEvents: stream<GetEventsRequest>('GetAgentEvents', (pump, req) => serveEventLog(pump, req, agentEvents)),
    GetDebugEvents: stream<GetEventsRequest>('GetDebugEvents', (pump, req) => serveEventLog(pump, req, debugEvents)),
    ServerStatus: unary<object>(() =>
      P.ServerStatusResponse.encode({
        ...statusCounts(),
        // num_connected_nodes / num_unavailable_nodes stay unset: a single node, not an aggregator.
        version: opts.version,
        flows_rate: history.flowsRate(),
      }).finish(),
    ),
    GetNodes: unary<object>(() =>
      P.GetNodesResponse.encode({
        nodes: [
          { name: opts.nodeName, version: opts.version, address: advertise, state: NodeState.NODE_CONNECTED, tls: { enabled: false }, ...statusCounts() },
          // The followed Cilium node (its flows are counted in ours).
          ...[opts.upstream?.node?.()].filter((n) => n !== undefined).map((n) => ({ ...n, tls: { enabled: false } })),
        ],
      }).finish(),
    ),
    GetNamespaces: unary<object>(() => P.GetNamespacesResponse.encode({ namespaces: history.namespaces() }).finish()),
  });

  server.addService(serverDefinition(P.Health), {
    Check: unary<{ service?: string }>((req) => {
      const svc = req.service ?? '';
      if (!HEALTH_SERVICES.has(svc)) throw new RequestError(grpc.status.NOT_FOUND, `unknown service ${JSON.stringify(svc)}`);
      return P.HealthCheckResponse.encode({ status: ServingStatus.SERVING }).finish();
    }),
    Watch: stream<{ service?: string }>('Watch', async (pump, req) => {
      const status = HEALTH_SERVICES.has(req.service ?? '') ? ServingStatus.SERVING : ServingStatus.SERVICE_UNKNOWN;
      await pump.send(P.HealthCheckResponse.encode({ status }).finish());
      // Status never changes while serving; hold the stream until the client leaves.
    }),
  });

  server.addService(serverDefinition(P.Peer), {
    Notify: stream<object>('Notify', async (pump) => {
      // One node: announce ourselves, then keep the stream open (Relay re-lists on close).
      await pump.send(P.ChangeNotification.encode({ name: opts.nodeName, address: advertise, type: ChangeNotificationType.PEER_ADDED }).finish());
    }),
  });

  let bound;
  try {
    bound = await bindAll(server, opts.addresses);
  } catch (e) {
    history.close();
    server.forceShutdown();
    throw e;
  }
  if (!advertise) advertise = advertisedAddress(bound.addresses);

  return {
    addresses: bound.addresses,
    history,
    agentEvents,
    streams: () => pumps.size,
    streamStats: () =>
      [...pumps].map((p) => ({
        method: p.method,
        direct: p.out.direct,
        messages: p.out.messages,
        writes: p.out.writes,
        bytes: p.out.bytes,
        buffered: p.out.transportBuffered,
        ...(p.sub ? { queued: p.sub.size, dropped: p.sub.dropped } : {}),
      })),
    close: async () => {
      // End open follow streams first so a graceful shutdown does not wait on them.
      for (const p of [...pumps]) p.end();
      history.close();
      await bound.close();
    },
  };
}
