// RuntimeEvent → Hubble Flow (hubble-api.md §8) and LossNotice → LostEvent.
//
// Each event's Flow object is built once (cached per event) and is what the
// filters look at; each GetFlowsResponse encoding is made once per event and
// field mask and cached in `ev.wire`, so every stream writes the same bytes.
import { randomUUID } from 'node:crypto';
import * as protobuf from 'protobufjs';
import type { LossNotice, LossSource, ProcessInfo, RuntimeEvent, WallTime } from '../../model/event';
import { eventToTetragonJson } from '../tetragon/json';
import type { CompiledFieldMask } from './fieldmask';
import { protos, STRUCT_TYPE_URL } from './proto';
import type { AnyMessage, Endpoint, Flow, LostEvent, Timestamp } from './types';
import { FlowType, IPVersion, LostEventSource, RUNTIME_EVENT_TYPE, TetragonEventType, Verdict } from './types';

/** ev.wire key of the unmasked GetFlowsResponse; masked variants append `|<mask key>`. */
export const WIRE_KEY = 'hubble';

export function toTimestamp(t: WallTime): Timestamp {
  return { seconds: t.sec, nanos: t.nsec };
}

// ------------------------------------------------------------------ Struct

// google.protobuf.Struct is written straight from the JSON object with a
// protobufjs Writer: building the intermediate Struct/Value object tree and
// encoding it through reflection cost several times more per event.
//   Struct    { map<string, Value> fields = 1 }   entry { string key = 1; Value value = 2 }
//   Value     { null_value = 1 (varint), number_value = 2 (double), string_value = 3,
//               bool_value = 4, struct_value = 5, list_value = 6 }
//   ListValue { repeated Value values = 1 }
const TAG = {
  structField: (1 << 3) | 2,
  entryKey: (1 << 3) | 2,
  entryValue: (2 << 3) | 2,
  nullValue: (1 << 3) | 0,
  numberValue: (2 << 3) | 1,
  stringValue: (3 << 3) | 2,
  boolValue: (4 << 3) | 0,
  structValue: (5 << 3) | 2,
  listValue: (6 << 3) | 2,
  listItem: (1 << 3) | 2,
} as const;

/** Writes the Value's fields (without its own length prefix); false when the value is skipped. */
function writeValue(w: protobuf.Writer, v: unknown): boolean {
  switch (typeof v) {
    case 'string':
      w.uint32(TAG.stringValue).string(v);
      return true;
    case 'number':
      w.uint32(TAG.numberValue).double(v);
      return true;
    case 'boolean':
      w.uint32(TAG.boolValue).bool(v);
      return true;
    case 'bigint':
      // protojson prints 64-bit integers as strings; keep that shape.
      w.uint32(TAG.stringValue).string(v.toString());
      return true;
    case 'object':
      if (v === null) {
        w.uint32(TAG.nullValue).int32(0);
      } else if (Array.isArray(v)) {
        w.uint32(TAG.listValue).fork();
        for (const x of v) {
          w.uint32(TAG.listItem).fork();
          if (!writeValue(w, x)) w.uint32(TAG.nullValue).int32(0);
          w.ldelim();
        }
        w.ldelim();
      } else {
        w.uint32(TAG.structValue).fork();
        writeStructFields(w, v as Record<string, unknown>);
        w.ldelim();
      }
      return true;
    default:
      return false; // undefined and functions are left out, as JSON.stringify does
  }
}

function writeStructFields(w: protobuf.Writer, obj: Record<string, unknown>): void {
  for (const k in obj) {
    const v = obj[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    w.uint32(TAG.structField).fork();
    w.uint32(TAG.entryKey).string(k);
    w.uint32(TAG.entryValue).fork();
    writeValue(w, v);
    w.ldelim();
    w.ldelim();
  }
}

/** A JSON-like object encoded as a google.protobuf.Struct message. */
export function encodeStruct(obj: Record<string, unknown>): Uint8Array {
  const w = protobuf.Writer.create();
  writeStructFields(w, obj);
  return w.finish();
}

/** The Tetragon JSON of the event packed as Any(Struct), so `hubble observe -o json` can print it. */
export function tetragonExtensions(ev: RuntimeEvent): AnyMessage {
  return { type_url: STRUCT_TYPE_URL, value: encodeStruct(eventToTetragonJson(ev) as Record<string, unknown>) };
}

// -------------------------------------------------------------------- Flow

interface FlowEntry {
  flow: Flow;
  extensions?: AnyMessage;
}

const flows = new WeakMap<RuntimeEvent, FlowEntry>();

/** Namespaces an event belongs to (for GetNamespaces), with the cluster when known. */
export function eventNamespaces(ev: RuntimeEvent): { cluster: string; namespace: string }[] {
  const ns = ev.process.pod?.namespace || ev.process.endpoint?.namespace;
  return ns ? [{ cluster: '', namespace: ns }] : [];
}

/** Cilium-style identity labels from pod labels, plus the namespace label Cilium adds. */
function podLabels(p: ProcessInfo): string[] {
  const pod = p.pod;
  if (!pod) return [];
  const out: string[] = [];
  for (const k of Object.keys(pod.labels).sort()) out.push(`k8s:${k}=${pod.labels[k]}`);
  if (pod.namespace && !('io.kubernetes.pod.namespace' in pod.labels)) out.push(`k8s:io.kubernetes.pod.namespace=${pod.namespace}`);
  return out;
}

/** The process as a Hubble source endpoint; identity stays 0 unless Cilium data is known. */
export function processEndpoint(p: ProcessInfo): Endpoint {
  const ep: Endpoint = {};
  const cep = p.endpoint;
  const pod = p.pod;
  if (cep) {
    if (cep.id) ep.ID = cep.id;
    if (cep.identity) ep.identity = cep.identity;
  }
  const namespace = pod?.namespace || cep?.namespace;
  const podName = pod?.name || cep?.podName;
  if (namespace) ep.namespace = namespace;
  const labels = cep && cep.labels.length > 0 ? cep.labels : podLabels(p);
  if (labels.length > 0) ep.labels = labels;
  if (podName) ep.pod_name = podName;
  if (pod?.workload) ep.workloads = [{ name: pod.workload, kind: pod.workloadKind ?? '' }];
  return ep;
}

/** The SUMMARY column: `exec /usr/bin/curl -s …`, `exit /usr/bin/curl 0`, `exit /usr/bin/sleep SIGKILL`. */
export function eventSummary(ev: RuntimeEvent): string {
  const p = ev.process;
  switch (ev.kind) {
    case 'exec':
      return p.arguments ? `exec ${p.binary} ${p.arguments}` : `exec ${p.binary}`;
    case 'exit':
      return `exit ${p.binary} ${ev.signal || String(ev.status)}`;
    default:
      // Kinds added to the model before this adapter learns them still print something.
      return `${(ev as { kind: string }).kind} ${p.binary}`;
  }
}

function subType(ev: RuntimeEvent): number {
  switch (ev.kind) {
    case 'exec':
      return TetragonEventType.PROCESS_EXEC;
    case 'exit':
      return TetragonEventType.PROCESS_EXIT;
    default:
      return 0;
  }
}

function buildFlow(ev: RuntimeEvent, nodeName: string): Flow {
  return {
    time: toTimestamp(ev.time),
    uuid: randomUUID(),
    verdict: Verdict.FORWARDED,
    // Must be non-nil or the CLI prints no pod names (hubble-api.md §1 #10).
    IP: { source: '', ipVersion: IPVersion.IP_NOT_USED },
    source: processEndpoint(ev.process),
    Type: FlowType.UNKNOWN_TYPE,
    node_name: ev.nodeName || nodeName,
    event_type: { type: RUNTIME_EVENT_TYPE, sub_type: subType(ev) },
    Summary: eventSummary(ev),
  };
}

function entryOf(ev: RuntimeEvent, nodeName: string): FlowEntry {
  let e = flows.get(ev);
  if (!e) {
    e = { flow: buildFlow(ev, nodeName) };
    flows.set(ev, e);
  }
  return e;
}

/** The event's Flow without extensions, built once; this is what filters see. */
export function flowOf(ev: RuntimeEvent, nodeName = ''): Flow {
  return entryOf(ev, nodeName).flow;
}

/** The complete Flow including extensions (built on first need). */
export function fullFlowOf(ev: RuntimeEvent, nodeName = ''): Flow {
  const e = entryOf(ev, nodeName);
  if (!e.extensions) e.extensions = tetragonExtensions(ev);
  return { ...e.flow, extensions: e.extensions };
}

/** GetFlowsResponse{flow} bytes for this event, cached per field mask in ev.wire. */
export function flowResponseBytes(ev: RuntimeEvent, mask: CompiledFieldMask | undefined, nodeName = ''): Uint8Array {
  const key = mask ? `${WIRE_KEY}|${mask.key}` : WIRE_KEY;
  const cached = ev.wire.get(key);
  if (cached) return cached;
  let flow: Flow;
  if (!mask) flow = fullFlowOf(ev, nodeName);
  // Skip the Struct encoding when the mask strips extensions (1.19 default masks).
  else flow = mask.apply(mask.has('extensions') ? fullFlowOf(ev, nodeName) : flowOf(ev, nodeName));
  const base = flowOf(ev, nodeName);
  // An exact-size copy: protobufjs hands out slices of pooled buffers, and a cached
  // slice would keep its whole pool slab alive for as long as the event lives.
  const bytes = Uint8Array.prototype.slice.call(
    protos().GetFlowsResponse.encode({ flow, node_name: base.node_name, time: base.time }).finish(),
  );
  ev.wire.set(key, bytes);
  return bytes;
}

// --------------------------------------------------------------- lost events

const LOSS_SOURCE: Record<LossSource, number> = {
  kernel_ring: LostEventSource.PERF_EVENT_RING_BUFFER,
  subscriber_queue: LostEventSource.OBSERVER_EVENTS_QUEUE,
  history_ring: LostEventSource.HUBBLE_RING_BUFFER,
};

export interface LostEventInput {
  source: number;
  count: number;
  cpu?: number;
  first?: WallTime;
  last?: WallTime;
  time: WallTime;
  nodeName: string;
}

/** GetFlowsResponse{lost_events} bytes (not cached: each is specific to its reader or notice). */
export function lostResponseBytes(l: LostEventInput): Uint8Array {
  const lost: LostEvent = { source: l.source, num_events_lost: l.count };
  if (l.cpu !== undefined) lost.cpu = { value: l.cpu };
  if (l.first) lost.first = toTimestamp(l.first);
  if (l.last) lost.last = toTimestamp(l.last);
  return protos()
    .GetFlowsResponse.encode({ lost_events: lost, node_name: l.nodeName, time: toTimestamp(l.time) })
    .finish();
}

/** A bus LossNotice as GetFlowsResponse{lost_events}, cached in its wire map. */
export function lossNoticeBytes(n: LossNotice, nodeName = ''): Uint8Array {
  const cached = n.wire.get(WIRE_KEY);
  if (cached) return cached;
  const bytes = lostResponseBytes({
    source: LOSS_SOURCE[n.source] ?? LostEventSource.UNKNOWN_LOST_EVENT_SOURCE,
    count: n.count,
    cpu: n.cpu,
    first: n.first,
    last: n.last,
    time: n.time,
    nodeName: n.nodeName || nodeName,
  });
  n.wire.set(WIRE_KEY, bytes);
  return bytes;
}

export function wallNow(): WallTime {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}
