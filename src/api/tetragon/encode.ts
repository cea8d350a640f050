// RuntimeEvent → tetragon.GetEventsResponse bytes. The hot path: each event
// is encoded once and the bytes are kept in ev.wire so every GetEvents stream
// (and any other consumer of this format) writes the same buffer.
//
// Only populated fields are set on the plain object: protobufjs writes any
// present field, even an empty string, so leaving them out keeps the bytes
// identical to what a proto3 encoder emits.
import type { PodInfo, ProcessInfo, RuntimeEvent, WallTime } from '../../model/event';
import { inInitTree } from './json';
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

/** The GetEventsResponse plain object for an event (fresh each call; callers may mutate it). */
export function eventToProto(ev: RuntimeEvent): PGetEventsResponse {
  const process = processToProto(ev.process);
  const parent = ev.parent ? processToProto(ev.parent) : undefined;
  const time = ts(ev.time);
  if (ev.kind === 'exec') {
    return { process_exec: parent ? { process, parent } : { process }, node_name: ev.nodeName, time };
  }
  const body: PGetEventsResponse['process_exit'] = parent ? { process, parent } : { process };
  if (ev.signal) body.signal = ev.signal;
  if (ev.status) body.status = ev.status;
  body.time = time;
  return { process_exit: body, node_name: ev.nodeName, time };
}

/** Encodes a GetEventsResponse plain object. */
export function encodeResponse(obj: PGetEventsResponse | object): Uint8Array {
  return tetragonTypes().GetEventsResponse.encode(obj).finish();
}

/** The shared encoding of an event, computed on first use and cached in ev.wire. */
export function encodeEvent(ev: RuntimeEvent): Uint8Array {
  let bytes = ev.wire.get(WIRE_KEY);
  if (!bytes) {
    bytes = encodeResponse(eventToProto(ev));
    ev.wire.set(WIRE_KEY, bytes);
  }
  return bytes;
}

/** grpc-js wants a Buffer; wrap without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
