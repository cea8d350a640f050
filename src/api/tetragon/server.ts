// tetragon.FineGuidanceSensors over gRPC, so the stock `tetra` CLI works
// against tetrahub.
//
// GetEvents streams bus events: each stream owns a bounded Subscription (a
// full queue drops and counts — a client that stops reading costs at most the
// queue bound and never slows other streams). Events go out as bytes encoded
// once per event and shared by all streams (ev.wire); a stream writes while
// its transport accepts more and resumes on 'drain', so HTTP/2 flow control
// is the back-pressure signal.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import type { StatusProvider } from '../../agent/status';
import type { EventBus, Subscription } from '../../bus/bus';
import type { BusItem, ProcessInfo, RuntimeEvent } from '../../model/event';
import { bindAll, SERVER_OPTIONS } from '../listen';
import { asBuffer, encodeResponse, eventToProto, framedEvent, grpcFrame, processToProto } from './encode';
import { compileFieldFilters, type CompiledFieldFilters } from './fields';
import { compileEventFilter, FilterError, type CompiledEventFilter } from './filter';
import { JSON_DECODE_OPTIONS } from './protojson';
import { DECODE_OPTIONS, tetragonTypes, type PGetEventsRequest, type ProtoObject } from './protos';

// ---------------------------------------------------------------- public types

export type TracingPolicyStateName =
  | 'unknown'
  | 'enabled'
  | 'disabled'
  | 'load_error'
  | 'error'
  | 'loading'
  | 'unloading'
  | 'skipped'
  | 'partially_enabled';

export type TracingPolicyModeName = 'unknown' | 'enforce' | 'monitor' | 'monitor_only';

export type HookStateName = 'unspecified' | 'loaded' | 'digest_rejected' | 'call_not_found' | 'partial_call_not_found';

export interface TracingPolicyActionCounts {
  post?: number;
  signal?: number;
  monitorSignal?: number;
  override?: number;
  monitorOverride?: number;
  notifyEnforcer?: number;
  monitorNotifyEnforcer?: number;
  set?: number;
  monitorSet?: number;
  nopost?: number;
}

/** What the policy layer reports per policy; rendered into TracingPolicyStatus. */
export interface TracingPolicyInfo {
  id: number;
  name: string;
  namespace?: string;
  sensors?: string[];
  filterId?: number;
  error?: string;
  state: TracingPolicyStateName;
  kernelMemoryBytes?: number;
  mode?: TracingPolicyModeName;
  stats?: TracingPolicyActionCounts;
  domain?: string;
  hooks?: { section: string; state: HookStateName; description?: string; index?: number }[];
}

/**
 * The tracing-policy operations behind Add/Delete/List/Configure/Enable/
 * Disable. Throw ApiError to choose the gRPC code; any other error becomes
 * UNKNOWN with its message (what grpc-go does for plain errors, so `tetra`
 * prints the same thing it would for Tetragon).
 */
export interface PolicyApi {
  add(yaml: string, opts: { domain: string }): Promise<void> | void;
  delete(name: string, opts: { namespace: string; domain: string }): Promise<void> | void;
  list(opts: { domain: string }): Promise<TracingPolicyInfo[]> | TracingPolicyInfo[];
  configure(
    name: string,
    opts: { namespace: string; domain: string; enable?: boolean; mode?: 'enforce' | 'monitor' },
  ): Promise<void> | void;
  domains?(): Promise<string[]> | string[];
  /** Sensors the policies add to ListSensors (Tetragon names them generic_kprobe, generic_tracepoint, …). */
  sensors?(): { name: string; enabled: boolean; collection: string }[];
}

export type LogLevelName = 'panic' | 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export interface LogLevelControl {
  get(): LogLevelName;
  set(level: LogLevelName): void;
}

export class ApiError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface TetragonServerOptions {
  /** "unix:///path" and/or "host:port" (port 0 picks one). */
  addresses: string[];
  bus: EventBus;
  status: StatusProvider;
  version: string;
  /** Per-stream queue bound (default 10000, Tetragon's event-queue-size). */
  queueLimit?: number;
  policies?: PolicyApi;
  /** Backs GetDebug/SetDebug log level; an internal setting is kept when absent. */
  logLevel?: LogLevelControl;
  /** Backs `tetra debug dump processcache`; UNIMPLEMENTED when absent. */
  processCache?: () => ProcessInfo[];
  /**
   * Write GetEvents frames straight to the HTTP/2 stream (default true; see
   * rawHttp2Stream). false forces grpc-js's per-message write path.
   */
  directWrites?: boolean;
}

export interface StreamStats {
  name: string;
  peer: string;
  queued: number;
  delivered: number;
  dropped: number;
  /** Frames go straight to the HTTP/2 stream (fast path) rather than through grpc-js writes. */
  direct: boolean;
}

export interface TetragonServer {
  /** Bound addresses, TCP ports resolved. */
  addresses: string[];
  close(): Promise<void>;
  /** Open GetEvents streams. */
  streams(): number;
  streamStats(): StreamStats[];
}

// ---------------------------------------------------------------- service definition

const SERVICE = 'tetragon.FineGuidanceSensors';


type Side = 'server' | 'client';

/**
 * grpc-js definition of FineGuidanceSensors built from the protos. The server
 * side takes GetEvents responses as ready-made Buffers; the client side
 * (tests, our CLI) encodes requests from plain objects and decodes responses
 * with JSON_DECODE_OPTIONS (feed GetEvents responses to tetragonResponseToJson
 * for tetra's JSON).
 */
export function tetragonServiceDefinition(side: Side = 'client'): grpc.ServiceDefinition {
  const t = tetragonTypes();
  const def: Record<string, grpc.MethodDefinition<ProtoObject | Buffer, ProtoObject | Buffer>> = {};
  for (const [name, m] of Object.entries(t.service.methods)) {
    const req = t.root.lookupType(m.resolvedRequestType?.fullName ?? m.requestType);
    const res = t.root.lookupType(m.resolvedResponseType?.fullName ?? m.responseType);
    const passthrough = side === 'server' && name === 'GetEvents';
    def[name] = {
      path: `/${SERVICE}/${name}`,
      requestStream: m.requestStream === true,
      responseStream: m.responseStream === true,
      requestSerialize: (obj) => asBuffer(req.encode(obj as ProtoObject).finish()),
      requestDeserialize: (buf: Buffer) => req.toObject(req.decode(buf), DECODE_OPTIONS) as ProtoObject,
      responseSerialize: passthrough
        ? (buf) => buf as Buffer
        : (obj) => asBuffer(res.encode(obj as ProtoObject).finish()),
      responseDeserialize: (buf: Buffer) => res.toObject(res.decode(buf), JSON_DECODE_OPTIONS) as ProtoObject,
      originalName: name,
    };
  }
  return def;
}

// ---------------------------------------------------------------- enum mappings

const TP_STATE: Record<TracingPolicyStateName, number> = {
  unknown: 0,
  enabled: 1,
  disabled: 2,
  load_error: 3,
  error: 4,
  loading: 5,
  unloading: 6,
  skipped: 7,
  partially_enabled: 8,
};
const TP_MODE: Record<TracingPolicyModeName, number> = { unknown: 0, enforce: 1, monitor: 2, monitor_only: 3 };
const HOOK_STATE: Record<HookStateName, number> = {
  unspecified: 0,
  loaded: 1,
  digest_rejected: 2,
  call_not_found: 3,
  partial_call_not_found: 4,
};
const LOG_LEVELS: LogLevelName[] = ['panic', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'];
const CONFIG_FLAG_LOG_LEVEL = 0;
const CONFIG_FLAG_DUMP_PROCESS_CACHE = 1;

function policyToProto(p: TracingPolicyInfo): ProtoObject {
  const out: ProtoObject = { id: p.id, name: p.name, state: TP_STATE[p.state] ?? 0 };
  if (p.namespace) out.namespace = p.namespace;
  if (p.sensors?.length) out.sensors = p.sensors;
  out.enabled = p.state === 'enabled' || p.state === 'partially_enabled';
  if (p.filterId) out.filter_id = p.filterId;
  if (p.error) out.error = p.error;
  if (p.kernelMemoryBytes) out.kernel_memory_bytes = p.kernelMemoryBytes;
  if (p.mode) out.mode = TP_MODE[p.mode] ?? 0;
  if (p.stats) {
    const s = p.stats;
    out.stats = {
      action_counters: {
        post: s.post ?? 0,
        signal: s.signal ?? 0,
        monitor_signal: s.monitorSignal ?? 0,
        override: s.override ?? 0,
        monitor_override: s.monitorOverride ?? 0,
        notify_enforcer: s.notifyEnforcer ?? 0,
        monitor_notify_enforcer: s.monitorNotifyEnforcer ?? 0,
        set: s.set ?? 0,
        monitor_set: s.monitorSet ?? 0,
        nopost: s.nopost ?? 0,
      },
    };
  }
  if (p.domain) out.domain = p.domain;
  if (p.hooks?.length) {
    out.hook_statuses = p.hooks.map((h) => ({
      section: h.section,
      state: HOOK_STATE[h.state] ?? 0,
      hook_description: h.description ?? '',
      hook_idx: h.index ?? 0,
    }));
  }
  return out;
}

// ---------------------------------------------------------------- helpers

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function toServiceError(e: unknown): grpc.ServiceError {
  const code = e instanceof ApiError ? e.code : e instanceof FilterError ? grpc.status.INVALID_ARGUMENT : grpc.status.UNKNOWN;
  const message = e instanceof Error ? e.message : String(e);
  return Object.assign(new Error(message), { code, details: message, metadata: new grpc.Metadata() });
}

type Unary = (req: ProtoObject) => Promise<ProtoObject> | ProtoObject;

function unary(fn: Unary): grpc.handleUnaryCall<ProtoObject, ProtoObject> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then(
        (res) => callback(null, res),
        (e: unknown) => callback(toServiceError(e)),
      );
  };
}

function unimplemented(what: string): grpc.handleUnaryCall<ProtoObject, ProtoObject> {
  return unary(() => {
    throw new ApiError(grpc.status.UNIMPLEMENTED, what);
  });
}

// ---------------------------------------------------------------- GetEvents streams

/** The part of Node's Http2Stream the fast path uses. */
type RawStream = Duplex & { headersSent: boolean };

/**
 * Why reach past grpc-js here: its server writable handles one message per
 * socket-write completion (an objectMode Writable without writev, whose
 * callback waits for the HTTP/2 write), which caps a stream near 10k
 * messages/s and costs a syscall per event. Writing already-framed messages
 * (5-byte gRPC header + shared bytes) to the HTTP/2 stream lets Node batch
 * them and keeps HTTP/2 flow control as the back-pressure signal.
 *
 * It relies on grpc-js internals (ServerWritableStreamImpl.call.stream, the
 * response headers sent by sendMetadata), so it is feature-checked per call
 * and falls back to call.write(); a test asserts the fast path is taken with
 * the installed grpc-js so an upgrade that changes this fails loudly.
 */
function rawHttp2Stream(call: grpc.ServerWritableStream<ProtoObject, Buffer>): RawStream | undefined {
  const inner: unknown = (call as unknown as { call?: unknown }).call;
  if (typeof inner !== 'object' || inner === null) return undefined;
  const s: unknown = (inner as { stream?: unknown }).stream;
  if (!(s instanceof Duplex)) return undefined;
  const h = s as Duplex & { headersSent?: unknown; respond?: unknown };
  if (typeof h.respond !== 'function' || h.headersSent !== true) return undefined;
  return h as RawStream;
}

let streamIds = 0;

/** Items taken from the queue per refill; bounds what a stream holds outside its queue. */
const TAKE_BATCH = 256;
/** grpc-js path: messages handed over but not yet flushed before a stream waits for 'drain'. */
const MAX_UNFLUSHED = 256;
/** Writes per event-loop turn before yielding to other work. */
const WRITES_PER_TURN = 2048;

class EventStream {
  readonly sub: Subscription;
  readonly raw: RawStream | undefined;
  private pending: BusItem[] = [];
  private idx = 0;
  private scheduled = false;
  private waitingDrain = false;
  closed = false;

  constructor(
    private readonly call: grpc.ServerWritableStream<ProtoObject, Buffer>,
    bus: EventBus,
    filter: CompiledEventFilter,
    private readonly fields: CompiledFieldFilters | undefined,
    limit: number,
    direct: boolean,
    private readonly onClose: (s: EventStream) => void,
  ) {
    // Response headers go out at once: clients see the stream open before the
    // first event, and the fast path needs them sent before writing frames.
    call.sendMetadata(new grpc.Metadata());
    this.raw = direct ? rawHttp2Stream(call) : undefined;
    this.sub = bus.subscribe({
      name: `tetragon-grpc#${++streamIds}`,
      limit,
      onReady: () => this.schedule(),
      // Tetragon's protocol has no lost-event message: loss notices are not
      // queued (their counts reach clients through status and metrics).
      accept: (item) => {
        if (item.kind === 'lost') return false;
        try {
          return filter(item);
        } catch {
          return false;
        }
      },
    });
    const drained = (): void => {
      this.waitingDrain = false;
      this.pump();
    };
    if (this.raw) {
      this.raw.on('drain', drained);
      this.raw.on('error', () => this.close(false));
    } else {
      call.on('drain', drained);
    }
    const end = (): void => this.close(false);
    call.on('cancelled', end);
    call.on('close', end);
    call.on('finish', end);
    call.on('error', end);
    // A client that left before the handler ran gets no further events.
    if (call.cancelled) this.close(false);
  }

  get peer(): string {
    try {
      return this.call.getPeer();
    } catch {
      return '';
    }
  }

  private schedule(): void {
    if (this.scheduled || this.waitingDrain || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** The gRPC-framed response for this stream (shared bytes unless field filters apply). */
  private frameFor(ev: RuntimeEvent): Buffer {
    if (!this.fields) return framedEvent(ev);
    // Streams with the same field filters share one encoding per event too.
    const key = `tetragon:fields:${this.fields.key}`;
    let framed = ev.wire.get(key);
    if (!framed) {
      framed = grpcFrame(encodeResponse(this.fields.apply(eventToProto(ev))));
      ev.wire.set(key, framed);
    }
    return asBuffer(framed);
  }

  private write(ev: RuntimeEvent): boolean {
    const framed = this.frameFor(ev);
    if (this.raw) {
      if (this.raw.destroyed || !this.raw.writable) throw new Error('stream gone');
      return this.raw.write(framed);
    }
    // grpc-js adds the header itself; write() returning false only means its
    // 16-message buffer is full, so keep a larger (still bounded) allowance.
    return this.call.write(framed.subarray(5)) || this.call.writableLength < MAX_UNFLUSHED;
  }

  private pump(): void {
    let budget = WRITES_PER_TURN;
    while (!this.closed && !this.waitingDrain) {
      if (this.idx >= this.pending.length) {
        this.pending = this.sub.take(TAKE_BATCH);
        this.idx = 0;
        if (this.pending.length === 0) return;
      }
      const item = this.pending[this.idx++];
      if (item.kind === 'lost') continue;
      let ok: boolean;
      try {
        ok = this.write(item);
      } catch {
        this.close(false);
        return;
      }
      if (!ok) {
        this.waitingDrain = true;
        return;
      }
      if (--budget === 0) {
        this.schedule();
        return;
      }
    }
  }

  /** Unsubscribes at once; ends the call when the server is the one closing. */
  close(endCall: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    this.sub.close();
    this.onClose(this);
    if (endCall) {
      try {
        this.call.end();
      } catch {
        /* already gone */
      }
    }
  }
}

// ---------------------------------------------------------------- server

export async function startTetragonServer(opts: TetragonServerOptions): Promise<TetragonServer> {
  const t = tetragonTypes();
  const streams = new Set<EventStream>();
  const limit = opts.queueLimit ?? 10000;
  let localLevel: LogLevelName = 'info';
  const logLevel: LogLevelControl = opts.logLevel ?? {
    get: () => localLevel,
    set: (l) => {
      localLevel = l;
    },
  };
  const policies = opts.policies;
  const needPolicies = (): PolicyApi => {
    if (!policies) throw new ApiError(grpc.status.UNIMPLEMENTED, 'tracing policies are not available in this tetrahub agent');
    return policies;
  };
  const stringValue = t.root.lookupType('google.protobuf.StringValue');

  const getEvents: grpc.handleServerStreamingCall<ProtoObject, Buffer> = (call) => {
    let filter: CompiledEventFilter;
    let fields: CompiledFieldFilters | undefined;
    try {
      const req = call.request as PGetEventsRequest;
      filter = compileEventFilter(req);
      fields = compileFieldFilters(req.field_filters);
    } catch (e) {
      call.emit('error', toServiceError(e));
      return;
    }
    const s = new EventStream(call, opts.bus, filter, fields, limit, opts.directWrites ?? true, (x) => streams.delete(x));
    if (!s.closed) streams.add(s);
  };

  const impl: Record<string, grpc.UntypedHandleCall> = {
    GetEvents: getEvents,
    GetHealth: unary(() => ({
      health_status: [{ event: 1 /* HEALTH_STATUS_TYPE_STATUS */, status: 1 /* HEALTH_STATUS_RUNNING */, details: 'running' }],
    })),
    GetVersion: unary(() => ({ version: opts.version })),
    GetInfo: unary(() => {
      const snap = opts.status.snapshot();
      const conf = (key: string, value: string): ProtoObject => ({
        key,
        value: { type_url: 'type.googleapis.com/google.protobuf.StringValue', value: stringValue.encode({ value }).finish() },
      });
      return {
        version: opts.version,
        name: 'tetrahub',
        probes: Object.entries(snap.features)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([Name, on]) => ({ Name, Enabled: { value: on } })),
        conf: [
          conf('node-name', snap.nodeName),
          conf('sensors', snap.sensors.map((s) => `${s.name}:${s.state}`).join(',')),
          conf('server-address', (snap.listeners.tetragon ?? []).join(',')),
        ],
        build: { go_version: `node ${process.version}` },
      };
    }),
    ListSensors: unary(() => ({
      sensors: [
        ...opts.status.snapshot().sensors.map((s) => ({ name: s.name, enabled: s.state === 'running' || s.state === 'fallback', collection: s.name })),
        ...(policies?.sensors?.() ?? []),
      ],
    })),
    EnableSensor: unimplemented('sensors are managed by tetrahub; EnableSensor is deprecated upstream'),
    DisableSensor: unimplemented('sensors are managed by tetrahub; DisableSensor is deprecated upstream'),
    RemoveSensor: unimplemented('sensors are managed by tetrahub; RemoveSensor is deprecated upstream'),
    AddTracingPolicy: unary(async (req) => {
      await needPolicies().add(str(req.yaml), { domain: str(req.domain) });
      return {};
    }),
    DeleteTracingPolicy: unary(async (req) => {
      await needPolicies().delete(str(req.name), { namespace: str(req.namespace), domain: str(req.domain) });
      return {};
    }),
    ListTracingPolicies: unary(async (req) => {
      const list = await needPolicies().list({ domain: str(req.domain) });
      return { policies: list.map(policyToProto) };
    }),
    EnableTracingPolicy: unary(async (req) => {
      await needPolicies().configure(str(req.name), { namespace: str(req.namespace), domain: str(req.domain), enable: true });
      return {};
    }),
    DisableTracingPolicy: unary(async (req) => {
      await needPolicies().configure(str(req.name), { namespace: str(req.namespace), domain: str(req.domain), enable: false });
      return {};
    }),
    ConfigureTracingPolicy: unary(async (req) => {
      const p = needPolicies();
      let mode: 'enforce' | 'monitor' | undefined;
      if (req.mode !== undefined) {
        if (req.mode === 1) mode = 'enforce';
        else if (req.mode === 2) mode = 'monitor';
        else throw new ApiError(grpc.status.INVALID_ARGUMENT, `mode: unsupported tracing policy mode ${String(req.mode)}`);
      }
      const enable = typeof req.enable === 'boolean' ? req.enable : undefined;
      await p.configure(str(req.name), { namespace: str(req.namespace), domain: str(req.domain), enable, mode });
      return {};
    }),
    ListDomains: unary(async () => {
      const p = needPolicies();
      return { domains: p.domains ? await p.domains() : ['grpc'] };
    }),
    // Runtime hooks (OCI/NRI) tell Tetragon about containers before they start;
    // tetrahub learns containers from cgroups, so the request is accepted and
    // ignored rather than failing the container runtime.
    RuntimeHook: unary(() => ({})),
    GetDebug: unary((req) => {
      const flag = typeof req.flag === 'number' ? req.flag : CONFIG_FLAG_LOG_LEVEL;
      if (flag === CONFIG_FLAG_LOG_LEVEL) {
        return { flag, level: Math.max(0, LOG_LEVELS.indexOf(logLevel.get())) };
      }
      if (flag === CONFIG_FLAG_DUMP_PROCESS_CACHE) {
        if (!opts.processCache) throw new ApiError(grpc.status.UNIMPLEMENTED, 'process cache dump is not available');
        const dump = (req.dump ?? {}) as ProtoObject;
        const procs = opts.processCache().filter((p) => !(dump.skip_zero_refcnt === true && p.refcnt === 0));
        return {
          flag,
          processes: { processes: procs.map((p) => ({ process: processToProto(p), refcnt: { value: p.refcnt } })) },
        };
      }
      throw new ApiError(grpc.status.INVALID_ARGUMENT, `flag: unknown debug flag ${flag}`);
    }),
    SetDebug: unary((req) => {
      const flag = typeof req.flag === 'number' ? req.flag : CONFIG_FLAG_LOG_LEVEL;
      if (flag !== CONFIG_FLAG_LOG_LEVEL) throw new ApiError(grpc.status.INVALID_ARGUMENT, `flag: only the log level can be set`);
      const lvl = typeof req.level === 'number' ? LOG_LEVELS[req.level] : undefined;
      if (!lvl) throw new ApiError(grpc.status.INVALID_ARGUMENT, `level: unknown log level ${String(req.level)}`);
      logLevel.set(lvl);
      return { flag, level: LOG_LEVELS.indexOf(logLevel.get()) };
    }),
  };

  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(tetragonServiceDefinition('server'), impl);
  const bound = await bindAll(server, opts.addresses);

  return {
    addresses: bound.addresses,
    streams: () => streams.size,
    streamStats: () =>
      [...streams].map((s) => ({
        name: s.sub.name,
        peer: s.peer,
        queued: s.sub.size,
        delivered: s.sub.delivered,
        dropped: s.sub.dropped,
        direct: s.raw !== undefined,
      })),
    close: async () => {
      for (const s of [...streams]) s.close(true);
      await bound.close();
    },
  };
}

// ---------------------------------------------------------------- info file

/** Keys `tetra` and tooling read from tetragon-info.json; server_address is the one that matters. */
export interface TetragonInfoFile {
  server_address: string;
  export_fname?: string;
  lib_dir?: string;
  btf_fname?: string;
  metrics_address?: string;
  gops_address?: string;
  map_dir?: string;
  bpftool_path?: string;
  gops_path?: string;
  max_recv_size?: number;
  pid?: number;
}

/** Writes the info file atomically (temp file + rename) so readers never see half of it. */
export function writeInfoFile(file: string, info: TetragonInfoFile): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ ...info, pid: info.pid ?? process.pid }) + '\n', { mode: 0o644 });
  fs.renameSync(tmp, file);
}
