// RuntimeEvent → tetragon.GetEventsResponse bytes. The hot path: each event
// is encoded once and the bytes are kept in ev.wire so every GetEvents stream
// (and any other consumer of this format) writes the same buffer.
//
// Only populated fields are set on the plain object: protobufjs writes any
// present field, even an empty string, so leaving them out keeps the bytes
// identical to what a proto3 encoder emits.
import * as protobuf from 'protobufjs';
import type { PodInfo, ProcessInfo, RuntimeEvent, SensorEvent, WallTime } from '../../model/event';
import { fileFlags, inInitTree, KPROBE_ACTIONS, sensorShape, type ArgSpec, type SensorShape } from './json';
import type { PolicyAction } from '../../model/event';
import { tetragonTypes, type PGetEventsResponse, type PPod, type PProcess, type PTimestamp } from './protos';

/** Key of the shared unfiltered encoding in RuntimeEvent.wire. */
export const WIRE_KEY = 'tetragon';

function ts(t: WallTime): PTimestamp {
  return { seconds: t.sec, nanos: t.nsec };
}

function hasKeys(o: Record<string, string>): boolean {
  for (const _ in o) return true;
  return false;
}

export function podToProto(pod: PodInfo): PPod {
  const out: PPod = {};
  if (pod.namespace) out.namespace = pod.namespace;
  if (pod.name) out.name = pod.name;
  if (pod.uid) out.uid = pod.uid;
  const c = pod.container;
  if (c) {
    out.container = {};
    if (c.id) out.container.id = c.id;
    if (c.name) out.container.name = c.name;
    if (c.imageId || c.imageName) {
      out.container.image = {};
      if (c.imageId) out.container.image.id = c.imageId;
      if (c.imageName) out.container.image.name = c.imageName;
    }
    if (c.startTime) out.container.start_time = ts(c.startTime);
    if (c.pid !== undefined) out.container.pid = { value: c.pid };
  }
  if (hasKeys(pod.labels)) out.pod_labels = pod.labels;
  if (pod.workload) out.workload = pod.workload;
  if (pod.workloadKind) out.workload_kind = pod.workloadKind;
  return out;
}

/** Same field choices as processToJson in json.ts (wrappers always set, empties left out). */
export function processToProto(p: ProcessInfo): PProcess {
  const out: PProcess = {};
  if (p.execId) out.exec_id = p.execId;
  out.pid = { value: p.pid };
  out.uid = { value: p.creds.euid };
  if (p.cwd) out.cwd = p.cwd;
  if (p.binary) out.binary = p.binary;
  if (p.arguments) out.arguments = p.arguments;
  if (p.flags) out.flags = p.flags;
  out.start_time = ts(p.startTime);
  out.auid = { value: p.auid };
  if (p.pod) out.pod = podToProto(p.pod);
  if (p.docker) out.docker = p.docker;
  if (p.parentExecId) out.parent_exec_id = p.parentExecId;
  if (p.refcnt) out.refcnt = p.refcnt;
  out.tid = { value: p.tid };
  if (inInitTree(p)) out.in_init_tree = { value: true };
  return out;
}

// Plain shapes of the kprobe / tracepoint bodies (keepCase, 64-bit values as
// decimal strings, enums as numbers) for the sensor events.
export type PFileArg = { mount?: string; path?: string; flags?: string; permission?: string };
export type PSockArg = {
  family?: string;
  type?: string;
  protocol?: string;
  saddr?: string;
  daddr?: string;
  sport?: number;
  dport?: number;
  cookie?: string;
  state?: string;
};
export type PKprobeArgument = {
  string_arg?: string;
  int_arg?: number;
  size_arg?: string;
  bytes_arg?: Uint8Array;
  long_arg?: string;
  uint_arg?: number;
  path_arg?: PFileArg;
  file_arg?: PFileArg;
  truncated_bytes_arg?: { bytes_arg?: Uint8Array; orig_size?: string };
  sock_arg?: PSockArg;
  capability_arg?: { value?: { value: number }; name?: string };
  process_credentials_arg?: { uid?: { value: number }; gid?: { value: number }; euid?: { value: number }; egid?: { value: number } };
  linux_binprm_arg?: { path?: string; flags?: string; permission?: string };
  sockaddr_arg?: { family?: string; addr?: string; port?: number };
  label?: string;
};
export type PProcessKprobe = {
  process?: PProcess;
  parent?: PProcess;
  function_name?: string;
  args?: PKprobeArgument[];
  return?: PKprobeArgument;
  action?: number;
  policy_name?: string;
  return_action?: number;
  message?: string;
  tags?: string[];
};
export type PProcessTracepoint = {
  process?: PProcess;
  parent?: PProcess;
  subsys?: string;
  event?: string;
  args?: PKprobeArgument[];
  policy_name?: string;
  action?: number;
  message?: string;
  tags?: string[];
};
export type PProcessLsm = {
  process?: PProcess;
  parent?: PProcess;
  function_name?: string;
  policy_name?: string;
  message?: string;
  args?: PKprobeArgument[];
  action?: number;
  tags?: string[];
};
export type PProcessUprobe = {
  process?: PProcess;
  parent?: PProcess;
  path?: string;
  symbol?: string;
  policy_name?: string;
  message?: string;
  args?: PKprobeArgument[];
  tags?: string[];
  action?: number;
};
/** GetEventsResponse with every member this agent emits. */
export type PEventResponse = PGetEventsResponse & {
  process_kprobe?: PProcessKprobe;
  process_tracepoint?: PProcessTracepoint;
  process_lsm?: PProcessLsm;
  process_uprobe?: PProcessUprobe;
};

function actionNumber(a: PolicyAction | undefined): number {
  return KPROBE_ACTIONS[a ?? 'post'][0];
}

export function argToProto(a: ArgSpec): PKprobeArgument {
  const out: PKprobeArgument = {};
  switch (a.t) {
    case 'int':
      out.int_arg = a.v;
      break;
    case 'uint':
      out.uint_arg = a.v;
      break;
    case 'size':
      out.size_arg = a.v.toString();
      break;
    case 'long':
      out.long_arg = a.v.toString();
      break;
    case 'string':
      out.string_arg = a.v;
      break;
    case 'bytes':
      if (a.truncated) out.truncated_bytes_arg = a.v.byteLength ? { bytes_arg: a.v } : {};
      else out.bytes_arg = a.v;
      break;
    case 'file':
    case 'path': {
      const f: PFileArg = {};
      if (a.path) f.path = a.path;
      const flags = fileFlags(a);
      if (flags) f.flags = flags;
      if (a.permission) f.permission = a.permission;
      if (a.t === 'file') out.file_arg = f;
      else out.path_arg = f;
      break;
    }
    case 'sockaddr': {
      const sa: NonNullable<PKprobeArgument['sockaddr_arg']> = {};
      if (a.family) sa.family = a.family;
      if (a.addr) sa.addr = a.addr;
      if (a.port) sa.port = a.port;
      out.sockaddr_arg = sa;
      break;
    }
    case 'cred':
      out.process_credentials_arg = { uid: { value: a.uid }, gid: { value: a.gid }, euid: { value: a.euid }, egid: { value: a.egid } };
      break;
    case 'capability':
      out.capability_arg = a.name ? { value: { value: a.value }, name: a.name } : { value: { value: a.value } };
      break;
    case 'linux_binprm':
      out.linux_binprm_arg = a.path ? { path: a.path } : {};
      break;
    case 'sock': {
      const s = a.sock;
      const p: PSockArg = {};
      if (s.family) p.family = s.family;
      if (s.type) p.type = s.type;
      if (s.protocol) p.protocol = s.protocol;
      if (s.saddr) p.saddr = s.saddr;
      if (s.daddr) p.daddr = s.daddr;
      if (s.sport) p.sport = s.sport;
      if (s.dport) p.dport = s.dport;
      if (s.cookie) p.cookie = s.cookie.toString();
      if (s.state) p.state = s.state;
      out.sock_arg = p;
      break;
    }
  }
  if (a.label) out.label = a.label;
  return out;
}

type PBody = PProcessKprobe | PProcessTracepoint | PProcessLsm | PProcessUprobe;

/** The body fields after process/parent (field numbers >= 3), in a form Type.encode takes. */
function shapeBody(shape: SensorShape): PBody {
  switch (shape.kind) {
    case 'tracepoint': {
      const b: PProcessTracepoint = { subsys: shape.subsys, event: shape.event };
      if (shape.args.length) b.args = shape.args.map(argToProto);
      b.policy_name = shape.policyName;
      b.action = actionNumber(shape.action);
      if (shape.message) b.message = shape.message;
      if (shape.tags?.length) b.tags = shape.tags;
      return b;
    }
    case 'lsm': {
      const b: PProcessLsm = { function_name: shape.functionName, policy_name: shape.policyName };
      if (shape.message) b.message = shape.message;
      if (shape.args.length) b.args = shape.args.map(argToProto);
      b.action = actionNumber(shape.action);
      if (shape.tags?.length) b.tags = shape.tags;
      return b;
    }
    case 'uprobe': {
      const b: PProcessUprobe = {};
      if (shape.path) b.path = shape.path;
      if (shape.symbol) b.symbol = shape.symbol;
      b.policy_name = shape.policyName;
      if (shape.message) b.message = shape.message;
      if (shape.args.length) b.args = shape.args.map(argToProto);
      if (shape.tags?.length) b.tags = shape.tags;
      b.action = actionNumber(shape.action);
      return b;
    }
    case 'kprobe': {
      const b: PProcessKprobe = { function_name: shape.functionName };
      if (shape.args.length) b.args = shape.args.map(argToProto);
      if (shape.ret) b.return = argToProto(shape.ret);
      b.action = actionNumber(shape.action);
      b.policy_name = shape.policyName;
      const ra = shape.returnAction ?? (shape.ret ? 'post' : undefined);
      if (ra) b.return_action = actionNumber(ra);
      if (shape.message) b.message = shape.message;
      if (shape.tags?.length) b.tags = shape.tags;
      return b;
    }
  }
}

/** GetEventsResponse oneof member of each shape. */
const MEMBER = { kprobe: 'process_kprobe', tracepoint: 'process_tracepoint', lsm: 'process_lsm', uprobe: 'process_uprobe' } as const;

/** The GetEventsResponse plain object for an event (fresh each call; callers may mutate it). */
export function eventToProto(ev: RuntimeEvent): PEventResponse {
  const process = processToProto(ev.process);
  const parent = ev.parent ? processToProto(ev.parent) : undefined;
  const time = ts(ev.time);
  switch (ev.kind) {
    case 'exec':
      return { process_exec: parent ? { process, parent } : { process }, node_name: ev.nodeName, time };
    case 'exit': {
      const body: PGetEventsResponse['process_exit'] = parent ? { process, parent } : { process };
      if (ev.signal) body.signal = ev.signal;
      if (ev.status) body.status = ev.status;
      body.time = time;
      return { process_exit: body, node_name: ev.nodeName, time };
    }
    default: {
      const shape = sensorShape(ev);
      const body = { ...(parent ? { process, parent } : { process }), ...shapeBody(shape) };
      return { [MEMBER[shape.kind]]: body, node_name: ev.nodeName, time } as PEventResponse;
    }
  }
}

/** Encodes a GetEventsResponse plain object. */
export function encodeResponse(obj: PGetEventsResponse | object): Uint8Array {
  return tetragonTypes().GetEventsResponse.encode(obj).finish();
}

// ProcessInfo objects are immutable once published and shared: the parent of
// many execs, and the same process in its exec and its exit. The encodings of
// the most recently seen ones are kept (bounded, oldest forgotten first — a
// per-object cache for the whole process cache would double its memory) and
// the response is assembled around them.
export const PROCESS_ENCODING_CACHE = 8192;
const processBytes = new Map<ProcessInfo, Uint8Array>();

// Scratch writers reused across events: protobufjs grows a fresh writer from
// 128 bytes by doubling, which costs several allocations per event.
const procScratch = protobuf.Writer.create();
const eventScratch = protobuf.Writer.create();

function rewind(w: protobuf.Writer): protobuf.Writer {
  w.pos = 0;
  w.states = null;
  return w;
}

function encodedProcess(p: ProcessInfo): Uint8Array {
  let b = processBytes.get(p);
  if (!b) {
    b = tetragonTypes().Process.encode(processToProto(p), rewind(procScratch)).finish();
    if (processBytes.size >= PROCESS_ENCODING_CACHE) {
      const oldest = processBytes.keys().next().value;
      if (oldest !== undefined) processBytes.delete(oldest);
    }
    processBytes.set(p, b);
  }
  return b;
}

// Wire tags: (field << 3) | wire type (0 varint, 2 length-delimited).
const TAG_EXEC = (1 << 3) | 2;
const TAG_EXIT = (5 << 3) | 2;
const TAG_PROCESS = (1 << 3) | 2;
const TAG_PARENT = (2 << 3) | 2;
const TAG_SIGNAL = (3 << 3) | 2;
const TAG_STATUS = (4 << 3) | 0;
const TAG_EXIT_TIME = (5 << 3) | 2;
const TAG_NODE_NAME = (1000 << 3) | 2;
const TAG_TIME = (1001 << 3) | 2;
const TAG_SECONDS = (1 << 3) | 0;
const TAG_NANOS = (2 << 3) | 0;

function writeTimestamp(w: protobuf.Writer, tag: number, t: WallTime): void {
  w.uint32(tag).fork();
  if (t.sec) w.uint32(TAG_SECONDS).int64(t.sec);
  if (t.nsec) w.uint32(TAG_NANOS).int32(t.nsec);
  w.ldelim();
}

/** Oneof tags of the sensor/policy bodies: process_kprobe 9, process_tracepoint 10, process_uprobe 12, process_lsm 28. */
const BODY_TAG = { kprobe: (9 << 3) | 2, tracepoint: (10 << 3) | 2, uprobe: (12 << 3) | 2, lsm: (28 << 3) | 2 } as const;

/** Writes the GetEventsResponse of an event into w (from the cached Process encodings). */
function writeEvent(w: protobuf.Writer, ev: RuntimeEvent): void {
  if (ev.kind === 'exec' || ev.kind === 'exit') {
    w.uint32(ev.kind === 'exec' ? TAG_EXEC : TAG_EXIT).fork();
    w.uint32(TAG_PROCESS).bytes(encodedProcess(ev.process));
    if (ev.parent) w.uint32(TAG_PARENT).bytes(encodedProcess(ev.parent));
    if (ev.kind === 'exit') {
      if (ev.signal) w.uint32(TAG_SIGNAL).string(ev.signal);
      if (ev.status) w.uint32(TAG_STATUS).uint32(ev.status);
      writeTimestamp(w, TAG_EXIT_TIME, ev.time);
    }
    w.ldelim();
  } else {
    writeSensorBody(w, ev);
  }
  if (ev.nodeName) w.uint32(TAG_NODE_NAME).string(ev.nodeName);
  writeTimestamp(w, TAG_TIME, ev.time);
}

/**
 * process_kprobe / process_tracepoint: the cached process encodings (fields 1
 * and 2) then the rest through the message type, which writes fields in
 * number order — the same bytes as encoding the whole body object.
 */
function writeSensorBody(w: protobuf.Writer, ev: SensorEvent): void {
  const shape = sensorShape(ev);
  w.uint32(BODY_TAG[shape.kind]).fork();
  w.uint32(TAG_PROCESS).bytes(encodedProcess(ev.process));
  if (ev.parent) w.uint32(TAG_PARENT).bytes(encodedProcess(ev.parent));
  bodyType(shape.kind).encode(shapeBody(shape), w);
  w.ldelim();
}

const BODY_TYPE_NAME = { kprobe: 'ProcessKprobe', tracepoint: 'ProcessTracepoint', lsm: 'ProcessLsm', uprobe: 'ProcessUprobe' } as const;
const bodyTypes = new Map<SensorShape['kind'], protobuf.Type>();

function bodyType(kind: SensorShape['kind']): protobuf.Type {
  let t = bodyTypes.get(kind);
  if (!t) {
    t = tetragonTypes().type(BODY_TYPE_NAME[kind]);
    bodyTypes.set(kind, t);
  }
  return t;
}

/**
 * GetEventsResponse bytes for an event, identical to
 * encodeResponse(eventToProto(ev)) (a test holds them equal).
 */
export function encodeEventUncached(ev: RuntimeEvent): Uint8Array {
  const w = protobuf.Writer.create();
  writeEvent(w, ev);
  return w.finish();
}

/** Key of the gRPC-framed copy (5-byte message header + payload) in RuntimeEvent.wire. */
export const FRAMED_WIRE_KEY = 'tetragon:grpc';

/** Prefixes a message with gRPC's length header (uncompressed). */
export function grpcFrame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(payload.byteLength + 5);
  out[0] = 0;
  out.writeUInt32BE(payload.byteLength, 1);
  out.set(payload, 5);
  return out;
}

/**
 * The shared gRPC-framed encoding of an event; the unframed bytes are a view
 * of the same memory, kept under WIRE_KEY. One encode and one allocation per
 * event, whatever the number of streams.
 */
export function framedEvent(ev: RuntimeEvent): Buffer {
  const have = ev.wire.get(FRAMED_WIRE_KEY);
  if (have) return asBuffer(have);
  const plain = ev.wire.get(WIRE_KEY);
  let framed: Buffer;
  if (plain) {
    framed = grpcFrame(plain);
  } else {
    const w = rewind(eventScratch);
    try {
      writeEvent(w, ev);
    } catch (e) {
      rewind(w);
      throw e;
    }
    // Not from the shared pool: a cached encoding must not pin an 8 KiB pool slab.
    framed = Buffer.allocUnsafeSlow(w.pos + 5);
    framed[0] = 0;
    framed.writeUInt32BE(w.pos, 1);
    w.finishInto(framed, 5);
  }
  ev.wire.set(FRAMED_WIRE_KEY, framed);
  ev.wire.set(WIRE_KEY, framed.subarray(5));
  return framed;
}

/** The shared GetEventsResponse encoding of an event (computed once, kept in ev.wire). */
export function encodeEvent(ev: RuntimeEvent): Uint8Array {
  return ev.wire.get(WIRE_KEY) ?? framedEvent(ev).subarray(5);
}

/** grpc-js wants a Buffer; wrap without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
