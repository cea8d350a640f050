// Tetragon's JSON event shape: what `tetra getevents -o json` and the JSON
// exporter print (Go protojson with proto field names). Built straight from
// the internal model rather than through protobuf reflection: this runs per
// event for the Hubble adapter's `extensions` and for `-o json`.
//
// protojson rules reproduced here: unpopulated scalars/strings/lists/maps are
// omitted, wrapper types (pid, uid, auid, tid, container pid, in_init_tree)
// print whenever set even when 0/false, 64-bit integers are strings, enums are
// names, timestamps are RFC 3339 UTC with 0/3/6/9 fraction digits.
import type { PodInfo, ProcessInfo, RuntimeEvent, WallTime } from '../../model/event';

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject;
export type JsonObject = { [key: string]: JsonValue | undefined };

export type TetragonJsonImage = { id?: string; name?: string };

export type TetragonJsonContainer = {
  id?: string;
  name?: string;
  image?: TetragonJsonImage;
  start_time?: string;
  pid?: number;
  maybe_exec_probe?: boolean;
  security_context?: { privileged?: boolean };
};

export type TetragonJsonPod = {
  namespace?: string;
  name?: string;
  uid?: string;
  container?: TetragonJsonContainer;
  pod_labels?: Record<string, string>;
  workload?: string;
  workload_kind?: string;
  pod_annotations?: Record<string, string>;
};

export type TetragonJsonCapabilities = { permitted?: string[]; effective?: string[]; inheritable?: string[] };

export type TetragonJsonProcess = {
  exec_id?: string;
  pid?: number;
  uid?: number;
  cwd?: string;
  binary?: string;
  arguments?: string;
  flags?: string;
  start_time?: string;
  auid?: number;
  pod?: TetragonJsonPod;
  docker?: string;
  parent_exec_id?: string;
  refcnt?: number;
  cap?: TetragonJsonCapabilities;
  ns?: JsonObject;
  tid?: number;
  process_credentials?: JsonObject;
  binary_properties?: JsonObject;
  user?: { name?: string };
  in_init_tree?: boolean;
  environment_variables?: { Key?: string; Value?: string }[];
};

export type TetragonJsonFileArg = { mount?: string; path?: string; flags?: string; permission?: string };
export type TetragonJsonSockArg = {
  family?: string;
  type?: string;
  protocol?: string;
  mark?: number;
  priority?: number;
  saddr?: string;
  daddr?: string;
  sport?: number;
  dport?: number;
  cookie?: string;
  state?: string;
};

/** One KprobeArgument: exactly one `*_arg` member plus an optional label. */
export type TetragonJsonKprobeArgument = {
  string_arg?: string;
  int_arg?: number;
  size_arg?: string;
  long_arg?: string;
  uint_arg?: number;
  bytes_arg?: string;
  path_arg?: TetragonJsonFileArg;
  file_arg?: TetragonJsonFileArg;
  sock_arg?: TetragonJsonSockArg;
  bpf_attr_arg?: { ProgType?: string; InsnCnt?: number; ProgName?: string };
  bpf_prog_arg?: { ProgType?: string; InsnCnt?: number; ProgName?: string };
  perf_event_arg?: { KprobeFunc?: string; Type?: string; Config?: string; ProbeOffset?: string };
  bpf_map_arg?: { MapType?: string; KeySize?: number; ValueSize?: number; MaxEntries?: number; MapName?: string };
  linux_binprm_arg?: { path?: string; flags?: string; permission?: string };
  label?: string;
  [other: string]: JsonValue | undefined;
};

export type TetragonJsonStackTraceEntry = { address?: string; offset?: string; symbol?: string; module?: string };

export type TetragonJsonProcessExec = {
  process?: TetragonJsonProcess;
  parent?: TetragonJsonProcess;
  ancestors?: TetragonJsonProcess[];
};

export type TetragonJsonProcessExit = {
  process?: TetragonJsonProcess;
  parent?: TetragonJsonProcess;
  signal?: string;
  status?: number;
  time?: string;
  ancestors?: TetragonJsonProcess[];
};

export type TetragonJsonProcessKprobe = {
  process?: TetragonJsonProcess;
  parent?: TetragonJsonProcess;
  function_name?: string;
  args?: TetragonJsonKprobeArgument[];
  return?: TetragonJsonKprobeArgument;
  action?: string;
  kernel_stack_trace?: TetragonJsonStackTraceEntry[];
  policy_name?: string;
  return_action?: string;
  message?: string;
  tags?: string[];
  user_stack_trace?: TetragonJsonStackTraceEntry[];
  ancestors?: TetragonJsonProcess[];
  data?: TetragonJsonKprobeArgument[];
};

export type TetragonJsonProcessTracepoint = {
  process?: TetragonJsonProcess;
  parent?: TetragonJsonProcess;
  subsys?: string;
  event?: string;
  args?: TetragonJsonKprobeArgument[];
  policy_name?: string;
  action?: string;
  message?: string;
  tags?: string[];
  ancestors?: TetragonJsonProcess[];
};

export type TetragonJsonProcessUprobe = {
  process?: TetragonJsonProcess;
  parent?: TetragonJsonProcess;
  path?: string;
  symbol?: string;
  policy_name?: string;
  message?: string;
  args?: TetragonJsonKprobeArgument[];
  tags?: string[];
  ancestors?: TetragonJsonProcess[];
  offset?: string;
  ref_ctr_offset?: string;
  action?: string;
  data?: TetragonJsonKprobeArgument[];
};

export type TetragonJsonProcessUsdt = {
  process?: TetragonJsonProcess;
  parent?: TetragonJsonProcess;
  path?: string;
  provider?: string;
  name?: string;
  policy_name?: string;
  message?: string;
  args?: TetragonJsonKprobeArgument[];
  tags?: string[];
  ancestors?: TetragonJsonProcess[];
  action?: string;
  flags?: string;
};

export type TetragonJsonProcessLsm = {
  process?: TetragonJsonProcess;
  parent?: TetragonJsonProcess;
  function_name?: string;
  policy_name?: string;
  message?: string;
  args?: TetragonJsonKprobeArgument[];
  action?: string;
  tags?: string[];
  ancestors?: TetragonJsonProcess[];
  ima_hash?: string;
};

export type TetragonJsonProcessLoader = {
  process?: TetragonJsonProcess;
  path?: string;
  /** base64 */
  buildid?: string;
  parent?: TetragonJsonProcess;
  ancestors?: TetragonJsonProcess[];
};

export type TetragonJsonProcessThrottle = { type?: string; cgroup?: string };

/** One GetEventsResponse in protojson form (oneof member + envelope). */
export type TetragonJsonEvent = {
  process_exec?: TetragonJsonProcessExec;
  process_exit?: TetragonJsonProcessExit;
  process_kprobe?: TetragonJsonProcessKprobe;
  process_tracepoint?: TetragonJsonProcessTracepoint;
  process_loader?: TetragonJsonProcessLoader;
  process_uprobe?: TetragonJsonProcessUprobe;
  process_throttle?: TetragonJsonProcessThrottle;
  process_lsm?: TetragonJsonProcessLsm;
  process_usdt?: TetragonJsonProcessUsdt;
  test?: { arg0?: string; arg1?: string; arg2?: string; arg3?: string };
  rate_limit_info?: { number_of_dropped_process_events?: string };
  node_name?: string;
  time?: string;
  aggregation_info?: { count?: string };
  cluster_name?: string;
  node_labels?: Record<string, string>;
};

// The date part changes once a second; events arrive in bursts within the
// same second, so remembering the last one saves most Date work.
let lastSec = NaN;
let lastPrefix = '';

function secondsPrefix(sec: number): string {
  if (sec !== lastSec) {
    // toISOString gives "YYYY-MM-DDTHH:MM:SS.mmmZ"; keep the seconds part.
    lastPrefix = new Date(sec * 1000).toISOString().slice(0, 19);
    lastSec = sec;
  }
  return lastPrefix;
}

/** RFC 3339 UTC as Go protojson prints a Timestamp: fraction trimmed to 0, 3, 6 or 9 digits. */
export function formatTimestamp(t: WallTime): string {
  const prefix = secondsPrefix(t.sec);
  const ns = t.nsec;
  if (ns === 0) return prefix + 'Z';
  if (ns % 1_000_000 === 0) return prefix + '.' + String(ns / 1_000_000).padStart(3, '0') + 'Z';
  if (ns % 1_000 === 0) return prefix + '.' + String(ns / 1_000).padStart(6, '0') + 'Z';
  return prefix + '.' + String(ns).padStart(9, '0') + 'Z';
}

const IN_INIT_TREE = /(?:^| )inInitTree(?: |$)/;

/** Process.in_init_tree is only set when the flag is present (an unset BoolValue prints nothing). */
export function inInitTree(p: ProcessInfo): boolean {
  return IN_INIT_TREE.test(p.flags);
}

function hasKeys(o: Record<string, string>): boolean {
  for (const _ in o) return true;
  return false;
}

export function podToJson(pod: PodInfo): TetragonJsonPod {
  const out: TetragonJsonPod = {};
  if (pod.namespace) out.namespace = pod.namespace;
  if (pod.name) out.name = pod.name;
  if (pod.uid) out.uid = pod.uid;
  const c = pod.container;
  if (c) {
    const jc: TetragonJsonContainer = {};
    if (c.id) jc.id = c.id;
    if (c.name) jc.name = c.name;
    if (c.imageId || c.imageName) {
      const img: TetragonJsonImage = {};
      if (c.imageId) img.id = c.imageId;
      if (c.imageName) img.name = c.imageName;
      jc.image = img;
    }
    if (c.startTime) jc.start_time = formatTimestamp(c.startTime);
    if (c.pid !== undefined) jc.pid = c.pid;
    out.container = jc;
  }
  if (hasKeys(pod.labels)) out.pod_labels = { ...pod.labels };
  if (pod.workload) out.workload = pod.workload;
  if (pod.workloadKind) out.workload_kind = pod.workloadKind;
  return out;
}

export function processToJson(p: ProcessInfo): TetragonJsonProcess {
  // Field-number order, as protojson prints them.
  const out: TetragonJsonProcess = {};
  if (p.execId) out.exec_id = p.execId;
  out.pid = p.pid;
  out.uid = p.creds.euid;
  if (p.cwd) out.cwd = p.cwd;
  if (p.binary) out.binary = p.binary;
  if (p.arguments) out.arguments = p.arguments;
  if (p.flags) out.flags = p.flags;
  out.start_time = formatTimestamp(p.startTime);
  out.auid = p.auid;
  if (p.pod) out.pod = podToJson(p.pod);
  if (p.docker) out.docker = p.docker;
  if (p.parentExecId) out.parent_exec_id = p.parentExecId;
  if (p.refcnt) out.refcnt = p.refcnt;
  out.tid = p.tid;
  if (inInitTree(p)) out.in_init_tree = true;
  return out;
}

/** The protojson object `tetra getevents -o json` would print for this event. */
export function eventToTetragonJson(ev: RuntimeEvent): TetragonJsonEvent {
  const process = processToJson(ev.process);
  const parent = ev.parent ? processToJson(ev.parent) : undefined;
  const time = formatTimestamp(ev.time);
  if (ev.kind === 'exec') {
    const body: TetragonJsonProcessExec = { process };
    if (parent) body.parent = parent;
    return { process_exec: body, node_name: ev.nodeName, time };
  }
  const body: TetragonJsonProcessExit = { process };
  if (parent) body.parent = parent;
  if (ev.signal) body.signal = ev.signal;
  if (ev.status) body.status = ev.status;
  body.time = time;
  return { process_exit: body, node_name: ev.nodeName, time };
}

/** The oneof member names, in GetEventsResponse order, for code that walks an event generically. */
export const TETRAGON_EVENT_KEYS = [
  'process_exec',
  'process_exit',
  'process_kprobe',
  'process_tracepoint',
  'process_loader',
  'process_uprobe',
  'process_throttle',
  'process_lsm',
  'process_usdt',
  'test',
  'rate_limit_info',
] as const;

export type TetragonEventKey = (typeof TETRAGON_EVENT_KEYS)[number];

/** Which oneof member an event carries, or undefined. */
export function tetragonEventKey(ev: TetragonJsonEvent): TetragonEventKey | undefined {
  for (const k of TETRAGON_EVENT_KEYS) if (ev[k] !== undefined) return k;
  return undefined;
}
