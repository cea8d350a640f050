// Tetragon's JSON event shape: what `tetra getevents -o json` and the JSON
// exporter print (Go protojson with proto field names). Built straight from
// the internal model rather than through protobuf reflection: this runs per
// event for the Hubble adapter's `extensions` and for `-o json`.
//
// protojson rules reproduced here: unpopulated scalars/strings/lists/maps are
// omitted, wrapper types (pid, uid, auid, tid, container pid, in_init_tree)
// print whenever set even when 0/false, 64-bit integers are strings, enums are
// names, timestamps are RFC 3339 UTC with 0/3/6/9 fraction digits.
import { constants as osConstants } from 'node:os';
import type { DnsEvent, FileEvent, NetEvent, PodInfo, ProcessInfo, PolicyAction, PolicyArg, PolicyEvent, PolicySock, RuntimeEvent, SensorEvent, SyscallEvent, WallTime } from '../../model/event';

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
  switch (ev.kind) {
    case 'exec': {
      const body: TetragonJsonProcessExec = { process };
      if (parent) body.parent = parent;
      return { process_exec: body, node_name: ev.nodeName, time };
    }
    case 'exit': {
      const body: TetragonJsonProcessExit = { process };
      if (parent) body.parent = parent;
      if (ev.signal) body.signal = ev.signal;
      if (ev.status) body.status = ev.status;
      body.time = time;
      return { process_exit: body, node_name: ev.nodeName, time };
    }
    default:
      return sensorEventJson(ev, process, parent, time);
  }
}

// ---------------------------------------------------------------- sensor events
//
// Tetragon has no event of its own for what the file, network, DNS and
// syscall sensors see. Each is shaped as the process_kprobe / process_tracepoint
// a Tetragon policy hooking the same spot would produce, with
// policy_name "tetrahub-<sensor>" and action KPROBE_ACTION_POST, so that
// `tetra getevents -o compact` prints it with its usual prefix (§12.4) and
// tools reading Tetragon JSON find familiar fields. Function names are chosen
// for the compact line first: where tetra has a renderer (fd_install,
// sys_close, sys_write/read, sys_mount, tcp_connect, tcp_close,
// security_path_truncate, raw_syscalls) we use it; elsewhere the LSM hook or
// kernel function a Tetragon policy would name (tetra prints
// "❓ syscall <function_name>" for those). Labels name the args we add.
//
//  kind/op              event / function_name            args                                     compact (tetra)
//  file open            kprobe fd_install                int fd, file, string flags               📬 open    <path>
//                                                        [, uint mode]; return int = fd/-errno
//  file open, I/O       kprobe __x64_sys_write (wrote)   file, size bytes_read,                   📝 write   <path> <written> bytes
//   report (still open)  or __x64_sys_read (read only)    size bytes_written (swapped for read,    📚 read    <path> <read> bytes
//                                                        so args[2] is the count tetra prints)
//  file close           kprobe __x64_sys_close           file, size bytes_read, size bytes_written 📪 close   <path>
//  file unlink / rmdir  kprobe security_path_unlink/rmdir path                                    ❓ syscall security_path_unlink
//  file rename / link   kprobe security_path_rename/link path (old), path (new)                   ❓ syscall security_path_rename
//  file symlink         kprobe security_path_symlink     path (link), string target               ❓ syscall security_path_symlink
//  file mkdir / chmod   kprobe security_path_mkdir/chmod path, uint mode                          ❓ syscall security_path_chmod
//  file chown           kprobe security_path_chown       path, uint uid, uint gid                 ❓ syscall security_path_chown
//  file truncate        kprobe security_path_truncate    path                                     📝 truncate <path>
//  file mount           kprobe __x64_sys_mount           string source, string target, int flags  💾 mount   <source> <target>
//  file umount          kprobe security_sb_umount        path, int flags                          ❓ syscall security_sb_umount
//    (every file op: return int = syscall result, return_action POST;
//     file/path flags "unresolvedPathComponents" when the path was cut)
//  net tcp connect      kprobe tcp_connect               sock; return int = connect result        🔌 connect tcp <saddr>:<sport> -> <daddr>:<dport>
//  net udp connect      kprobe ip4/ip6_datagram_connect  sock; return                             ❓ syscall ip4_datagram_connect
//  net accept           kprobe inet_csk_accept           sock; return                             ❓ syscall inet_csk_accept
//  net listen           kprobe inet_csk_listen_start     sock                                     ❓ syscall inet_csk_listen_start
//  net tcp close        kprobe tcp_close                 sock, size bytes_sent, size bytes_received 🧹 close   tcp <saddr>:<sport> -> <daddr>:<dport>
//  net udp send/receive kprobe udp_sendmsg/udp_recvmsg   sock, size bytes [, uint packets]        ❓ syscall udp_sendmsg
//                        (udpv6_* for IPv6)
//  dns query/response   kprobe dns_query/dns_response    sock (client -> server), string query,   ❓ syscall dns_query
//                        (policy tetrahub-dns; message    string qtypes, int id; response adds
//                        = Cilium's DNS summary)         int rcode, string answer (one per record,
//                                                        zone-file style), size latency_ns
//  syscall              tracepoint raw_syscalls/sys_enter long id, size arg0..arg5                ☎  syscall <name>(<args>)
//                                                        [, long return]; count reports: long id,
//                                                        long count
//
// The sock arg is the socket's own view: saddr/sport local, daddr/dport
// remote, whichever side initiated.

/** Tetragon's syscall function prefix on x86_64 (the only ABI the sensors read). */
export const SYSCALL_PREFIX = '__x64_sys_';

export const SENSOR_POLICY: Record<Exclude<SensorEvent['kind'], 'policy'>, string> = {
  file: 'tetrahub-file',
  net: 'tetrahub-net',
  dns: 'tetrahub-dns',
  syscall: 'tetrahub-syscall',
};

/** A socket arg and one KprobeArgument before JSON or protobuf encoding: the model's own types. */
export type SockSpec = PolicySock;
export type ArgSpec = PolicyArg;

/**
 * KprobeAction (tetragon-api.md §2.2) by the model's action name: [number, protojson name].
 * Sensor events are always POST.
 */
export const KPROBE_ACTIONS: Readonly<Record<PolicyAction, readonly [number, string]>> = {
  post: [1, 'KPROBE_ACTION_POST'],
  sigkill: [3, 'KPROBE_ACTION_SIGKILL'],
  override: [5, 'KPROBE_ACTION_OVERRIDE'],
  nopost: [9, 'KPROBE_ACTION_NOPOST'],
  signal: [10, 'KPROBE_ACTION_SIGNAL'],
  notify_enforcer: [13, 'KPROBE_ACTION_NOTIFYENFORCER'],
};

interface ShapeBase {
  args: ArgSpec[];
  policyName: string;
  message?: string;
  /** Default post. */
  action?: PolicyAction;
  tags?: string[];
}

export interface KprobeShape extends ShapeBase {
  kind: 'kprobe';
  functionName: string;
  ret?: ArgSpec;
  /** Default post when there is a return value. */
  returnAction?: PolicyAction;
}

export interface TracepointShape extends ShapeBase {
  kind: 'tracepoint';
  subsys: string;
  event: string;
}

export interface LsmShape extends ShapeBase {
  kind: 'lsm';
  functionName: string;
}

export interface UprobeShape extends ShapeBase {
  kind: 'uprobe';
  path: string;
  symbol: string;
}

export type SensorShape = KprobeShape | TracepointShape | LsmShape | UprobeShape;

// ---- helpers shared with the Hubble encoder (summaries)

const ERRNO_NAMES: ReadonlyMap<number, string> = (() => {
  const m = new Map<number, string>();
  for (const [name, n] of Object.entries(osConstants.errno)) if (!m.has(n)) m.set(n, name);
  return m;
})();

/** "ENOENT" for 2, "errno 250" when the name is unknown. */
export function errnoName(n: number): string {
  return ERRNO_NAMES.get(Math.abs(n)) ?? `errno ${Math.abs(n)}`;
}

/** A syscall result as strace prints it: "= 3", "= -1 ENOENT". */
export function formatResult(ret: number): string {
  return ret < 0 && ret >= -4095 ? `= -1 ${errnoName(ret)}` : `= ${ret}`;
}

// open(2) flags, x86_64 values; combined ones (O_SYNC, O_TMPFILE) before their parts.
const OPEN_FLAGS: ReadonlyArray<readonly [number, string]> = [
  [0o4010000, 'O_SYNC'],
  [0o20200000, 'O_TMPFILE'],
  [0o100, 'O_CREAT'],
  [0o200, 'O_EXCL'],
  [0o400, 'O_NOCTTY'],
  [0o1000, 'O_TRUNC'],
  [0o2000, 'O_APPEND'],
  [0o4000, 'O_NONBLOCK'],
  [0o10000, 'O_DSYNC'],
  [0o20000, 'O_ASYNC'],
  [0o40000, 'O_DIRECT'],
  [0o100000, 'O_LARGEFILE'],
  [0o200000, 'O_DIRECTORY'],
  [0o400000, 'O_NOFOLLOW'],
  [0o1000000, 'O_NOATIME'],
  [0o2000000, 'O_CLOEXEC'],
  [0o10000000, 'O_PATH'],
];
const ACCESS_MODES = ['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_ACCMODE'];

/** "O_RDONLY|O_CLOEXEC" for open flags; unknown bits as hex. */
export function openFlagNames(flags: number): string {
  const out = [ACCESS_MODES[flags & 3]];
  let rest = flags & ~3;
  for (const [bits, name] of OPEN_FLAGS) {
    if ((rest & bits) === bits) {
      out.push(name);
      rest &= ~bits;
    }
  }
  if (rest) out.push('0x' + (rest >>> 0).toString(16));
  return out.join('|');
}

/** "0644" */
export function octalMode(mode: number): string {
  return '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}

/** "10.0.0.2:443", "[::1]:53". */
export function hostPort(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** A DNS name as Cilium prints it: with the trailing dot. */
export function fqdn(name: string): string {
  return name === '' || name.endsWith('.') ? name : name + '.';
}

// gopacket's DNSResponseCode names, which Cilium's DNS summaries print.
const RCODES: Record<number, string> = {
  0: 'No Error',
  1: 'Format Error',
  2: 'Server Failure',
  3: 'Non-Existent Domain',
  4: 'Not Implemented',
  5: 'Query Refused',
  6: 'Name Exists when it should not',
  7: 'RR Set Exists when it should not',
  8: 'RR Set that should exist does not',
  9: 'Server Not Authoritative for zone',
  10: 'Name not contained in zone',
  16: 'Bad OPT Version/TSIG Signature Failure',
  17: 'Key not recognized',
  18: 'Signature out of time window',
  19: 'Bad TKEY Mode',
  20: 'Duplicate key name',
  21: 'Algorithm not supported',
  22: 'Bad Truncation',
};

export function rcodeName(rcode: number): string {
  return RCODES[rcode] ?? `Unknown code ${rcode}`;
}

/** Addresses of the A/AAAA answers, in answer order. */
export function dnsIps(ev: DnsEvent): string[] {
  const out: string[] = [];
  for (const a of ev.answers) if ((a.type === 'A' || a.type === 'AAAA') && a.data) out.push(a.data);
  return out;
}

/** CNAME targets, with trailing dots. */
export function dnsCnames(ev: DnsEvent): string[] {
  const out: string[] = [];
  for (const a of ev.answers) if (a.type === 'CNAME' && a.data) out.push(fqdn(a.data));
  return out;
}

/** Lowest answer TTL (what a cache may keep the whole answer for), 0 without answers. */
export function dnsTtl(ev: DnsEvent): number {
  let ttl = -1;
  for (const a of ev.answers) if (ttl < 0 || a.ttl < ttl) ttl = a.ttl;
  return ttl < 0 ? 0 : ttl;
}

/** Cilium's DNS flow summary (pkg/hubble/parser/seven/dns.go), observation source not "proxy". */
export function dnsSummary(ev: DnsEvent): string {
  const q = fqdn(ev.query);
  const types = ev.qtypes.join(',');
  if (!ev.isResponse) return `DNS Query ${q} ${types}`;
  let answer: string;
  if (ev.rcode !== 0) {
    answer = `RCode: ${rcodeName(ev.rcode)}`;
  } else {
    const parts: string[] = [];
    const ips = dnsIps(ev);
    if (ips.length) parts.push(JSON.stringify(ips.join(',')));
    const cnames = dnsCnames(ev);
    if (cnames.length) parts.push(`CNAMEs: ${JSON.stringify(cnames.join(','))}`);
    answer = parts.join(' ');
  }
  return `DNS Answer ${answer} TTL: ${dnsTtl(ev)} (Query ${q} ${types})`;
}

// ---- the shapes

function ret(v: number): ArgSpec {
  return { t: 'int', v };
}

function fileShape(ev: FileEvent): KprobeShape {
  const file = (path: string): ArgSpec => ({ t: 'file', path, truncated: ev.truncated });
  const path = (p: string, label?: string): ArgSpec => ({ t: 'path', path: p, truncated: ev.truncated, ...(label ? { label } : {}) });
  const size = (v: number | undefined, label: string): ArgSpec => ({ t: 'size', v: BigInt(v ?? 0), label });
  const shape = (functionName: string, args: ArgSpec[]): KprobeShape => ({ kind: 'kprobe', functionName, args, ret: ret(ev.ret), policyName: SENSOR_POLICY.file });
  switch (ev.op) {
    case 'open': {
      if (ev.syscall === '') {
        // Periodic byte report of a file still open (no syscall behind it).
        const read = size(ev.bytesRead, 'bytes_read');
        const written = size(ev.bytesWritten, 'bytes_written');
        return (ev.bytesWritten ?? 0) > 0
          ? shape(SYSCALL_PREFIX + 'write', [file(ev.path), read, written])
          : shape(SYSCALL_PREFIX + 'read', [file(ev.path), written, read]);
      }
      const args: ArgSpec[] = [{ t: 'int', v: ev.ret, label: 'fd' }, file(ev.path), { t: 'string', v: openFlagNames(ev.flags), label: 'flags' }];
      if (ev.mode !== undefined) args.push({ t: 'uint', v: ev.mode, label: 'mode' });
      return shape('fd_install', args);
    }
    case 'close':
      return shape(SYSCALL_PREFIX + 'close', [file(ev.path), size(ev.bytesRead, 'bytes_read'), size(ev.bytesWritten, 'bytes_written')]);
    case 'unlink':
    case 'rmdir':
    case 'truncate':
      return shape(`security_path_${ev.op}`, [path(ev.path)]);
    case 'rename':
    case 'link':
      return shape(`security_path_${ev.op}`, [path(ev.path), path(ev.path2 ?? '')]);
    case 'symlink':
      // path is the link's target, path2 the link itself (FileEvent).
      return shape('security_path_symlink', [path(ev.path2 ?? ''), { t: 'string', v: ev.path, label: 'target' }]);
    case 'mkdir':
    case 'chmod': {
      const args = [path(ev.path)];
      if (ev.mode !== undefined) args.push({ t: 'uint', v: ev.mode, label: 'mode' });
      return shape(`security_path_${ev.op}`, args);
    }
    case 'chown':
      return shape('security_path_chown', [path(ev.path), { t: 'uint', v: ev.uid ?? 0xffffffff, label: 'uid' }, { t: 'uint', v: ev.gid ?? 0xffffffff, label: 'gid' }]);
    case 'mount':
      return shape(SYSCALL_PREFIX + 'mount', [{ t: 'string', v: ev.path, label: 'source' }, { t: 'string', v: ev.path2 ?? '', label: 'target' }, { t: 'int', v: ev.flags, label: 'flags' }]);
    case 'umount':
      return shape('security_sb_umount', [path(ev.path), { t: 'int', v: ev.flags, label: 'flags' }]);
  }
}

function netSock(ev: NetEvent): SockSpec {
  const s: SockSpec = {
    family: ev.family === 6 ? 'AF_INET6' : 'AF_INET',
    type: ev.protocol === 'tcp' ? 'SOCK_STREAM' : 'SOCK_DGRAM',
    protocol: ev.protocol === 'tcp' ? 'IPPROTO_TCP' : 'IPPROTO_UDP',
    saddr: ev.saddr,
    daddr: ev.daddr,
    sport: ev.sport,
    dport: ev.dport,
    cookie: ev.socketCookie,
  };
  if (ev.state) s.state = ev.state;
  return s;
}

function netShape(ev: NetEvent): KprobeShape {
  const sock: ArgSpec = { t: 'sock', sock: netSock(ev) };
  const base = { kind: 'kprobe' as const, policyName: SENSOR_POLICY.net };
  const v6 = ev.family === 6;
  const udp = ev.protocol === 'udp';
  switch (ev.op) {
    case 'connect':
      return { ...base, functionName: udp ? (v6 ? 'ip6_datagram_connect' : 'ip4_datagram_connect') : 'tcp_connect', args: [sock], ret: ret(ev.ret) };
    case 'accept':
      return { ...base, functionName: 'inet_csk_accept', args: [sock], ret: ret(ev.ret) };
    case 'listen':
      return { ...base, functionName: 'inet_csk_listen_start', args: [sock] };
    case 'close':
      return {
        ...base,
        functionName: udp ? 'udp_destroy_sock' : 'tcp_close',
        args: [sock, { t: 'size', v: BigInt(ev.bytesSent ?? 0), label: 'bytes_sent' }, { t: 'size', v: BigInt(ev.bytesReceived ?? 0), label: 'bytes_received' }],
      };
    case 'send':
    case 'receive': {
      const send = ev.op === 'send';
      const bytes = send ? ev.bytesSent : ev.bytesReceived;
      if (!udp) {
        // tetra prints "bytes <args[1].int_arg>" for tcp_sendmsg.
        return { ...base, functionName: send ? 'tcp_sendmsg' : 'tcp_recvmsg', args: [sock, { t: 'int', v: bytes ?? 0, label: 'bytes' }] };
      }
      const args: ArgSpec[] = [sock, { t: 'size', v: BigInt(bytes ?? 0), label: 'bytes' }];
      if (ev.packets) args.push({ t: 'uint', v: ev.packets, label: 'packets' });
      return { ...base, functionName: `${v6 ? 'udpv6' : 'udp'}_${send ? 'sendmsg' : 'recvmsg'}`, args };
    }
  }
}

/** Record types whose data is a domain name (printed with the trailing dot). */
const NAME_DATA = new Set(['CNAME', 'NS', 'PTR', 'DNAME']);

function dnsShape(ev: DnsEvent): KprobeShape {
  const v6 = ev.clientAddr.includes(':');
  const tcp = ev.protocol === 'tcp';
  const args: ArgSpec[] = [
    {
      t: 'sock',
      sock: {
        family: v6 ? 'AF_INET6' : 'AF_INET',
        type: tcp ? 'SOCK_STREAM' : 'SOCK_DGRAM',
        protocol: tcp ? 'IPPROTO_TCP' : 'IPPROTO_UDP',
        saddr: ev.clientAddr,
        daddr: ev.serverAddr,
        sport: ev.clientPort,
        dport: ev.serverPort,
      },
    },
    { t: 'string', v: fqdn(ev.query), label: 'query' },
    { t: 'string', v: ev.qtypes.join(','), label: 'qtypes' },
    { t: 'int', v: ev.id, label: 'id' },
  ];
  if (ev.isResponse) {
    args.push({ t: 'int', v: ev.rcode, label: 'rcode' });
    for (const a of ev.answers) args.push({ t: 'string', v: `${fqdn(a.name)} ${a.ttl} IN ${a.type} ${NAME_DATA.has(a.type) ? fqdn(a.data) : a.data}`, label: 'answer' });
    if (ev.latencyNs !== undefined) args.push({ t: 'size', v: BigInt(ev.latencyNs), label: 'latency_ns' });
  }
  let message = dnsSummary(ev);
  if (ev.malformed) message += ` (malformed: ${ev.malformed})`;
  return { kind: 'kprobe', functionName: ev.isResponse ? 'dns_response' : 'dns_query', args, policyName: SENSOR_POLICY.dns, message };
}

function syscallShape(ev: SyscallEvent): TracepointShape {
  const args: ArgSpec[] = [{ t: 'long', v: BigInt(ev.id) }];
  if (ev.count !== undefined) {
    args.push({ t: 'long', v: BigInt(ev.count), label: 'count' });
  } else {
    // tetra formats args[1..] (size_arg) against its syscall prototype table.
    for (const a of ev.args) args.push({ t: 'size', v: BigInt.asUintN(64, a) });
    if (ev.ret !== undefined) args.push({ t: 'long', v: BigInt(ev.ret), label: 'return' });
  }
  return { kind: 'tracepoint', subsys: 'raw_syscalls', event: 'sys_enter', args, policyName: SENSOR_POLICY.syscall };
}

/** How a sensor event is presented on the Tetragon API (table above). */
export function sensorShape(ev: SensorEvent): SensorShape {
  switch (ev.kind) {
    case 'file':
      return fileShape(ev);
    case 'net':
      return netShape(ev);
    case 'dns':
      return dnsShape(ev);
    case 'syscall':
      return syscallShape(ev);
    case 'policy':
      return policyShape(ev);
  }
}

/**
 * A policy hook's event as Tetragon shapes it: kprobe → process_kprobe,
 * tracepoint → process_tracepoint, lsm → process_lsm, uprobe → process_uprobe
 * (subsys carries the probed binary for uprobes). A kprobe on a syscall named
 * as written (`sys_execve`) is reported with the x86_64 symbol
 * (`__x64_sys_execve`), as Tetragon does.
 */
function policyShape(ev: PolicyEvent): SensorShape {
  const args = ev.args.map(policyArg);
  const base: ShapeBase = { args, policyName: ev.policyName, action: ev.action };
  if (ev.message) base.message = ev.message;
  if (ev.tags?.length) base.tags = ev.tags;
  switch (ev.hook) {
    case 'tracepoint':
      return { ...base, kind: 'tracepoint', subsys: ev.subsys ?? '', event: ev.event ?? '' };
    case 'lsm':
      return { ...base, kind: 'lsm', functionName: ev.functionName };
    case 'uprobe':
      return { ...base, kind: 'uprobe', path: ev.subsys ?? '', symbol: ev.functionName };
    case 'kprobe': {
      const fn = ev.functionName.startsWith('sys_') ? SYSCALL_PREFIX + ev.functionName.slice(4) : ev.functionName;
      const shape: KprobeShape = { ...base, kind: 'kprobe', functionName: fn };
      if (ev.ret) {
        shape.ret = policyArg(ev.ret);
        shape.returnAction = ev.returnAction ?? 'post';
      } else if (ev.returnAction) {
        shape.returnAction = ev.returnAction;
      }
      return shape;
    }
  }
}

/** PolicyArg and ArgSpec share their variants; only names differ where the model is richer. */
function policyArg(a: PolicyArg): ArgSpec {
  return a;
}

export const KPROBE_ACTION_POST = 'KPROBE_ACTION_POST';
export const PATH_FLAG_UNRESOLVED = 'unresolvedPathComponents';

/** KprobeFile/KprobePath flags: the model's flags, plus the unresolved-path marker when the path was cut. */
export function fileFlags(a: { truncated?: boolean; flags?: string }): string {
  if (!a.truncated) return a.flags ?? '';
  return a.flags ? `${a.flags} ${PATH_FLAG_UNRESOLVED}` : PATH_FLAG_UNRESOLVED;
}

function argToJson(a: ArgSpec): TetragonJsonKprobeArgument {
  const out: TetragonJsonKprobeArgument = {};
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
    case 'bytes': {
      const b64 = Buffer.from(a.v.buffer, a.v.byteOffset, a.v.byteLength).toString('base64');
      // A set oneof member prints even when empty; inside the message an empty bytes field does not.
      if (a.truncated) out.truncated_bytes_arg = b64 ? { bytes_arg: b64 } : {};
      else out.bytes_arg = b64;
      break;
    }
    case 'file':
    case 'path': {
      const f: TetragonJsonFileArg = {};
      if (a.path) f.path = a.path;
      const flags = fileFlags(a);
      if (flags) f.flags = flags;
      if (a.permission) f.permission = a.permission;
      if (a.t === 'file') out.file_arg = f;
      else out.path_arg = f;
      break;
    }
    case 'sockaddr': {
      const j: JsonObject = {};
      if (a.family) j.family = a.family;
      if (a.addr) j.addr = a.addr;
      if (a.port) j.port = a.port;
      out.sockaddr_arg = j;
      break;
    }
    case 'cred':
      // Wrapper types: printed even when 0.
      out.process_credentials_arg = { uid: a.uid, gid: a.gid, euid: a.euid, egid: a.egid };
      break;
    case 'capability':
      out.capability_arg = a.name ? { value: a.value, name: a.name } : { value: a.value };
      break;
    case 'linux_binprm':
      out.linux_binprm_arg = a.path ? { path: a.path } : {};
      break;
    case 'sock': {
      const s = a.sock;
      const j: TetragonJsonSockArg = {};
      // proto3 scalars: zero values are left out, as protojson does.
      if (s.family) j.family = s.family;
      if (s.type) j.type = s.type;
      if (s.protocol) j.protocol = s.protocol;
      if (s.saddr) j.saddr = s.saddr;
      if (s.daddr) j.daddr = s.daddr;
      if (s.sport) j.sport = s.sport;
      if (s.dport) j.dport = s.dport;
      if (s.cookie) j.cookie = s.cookie.toString();
      if (s.state) j.state = s.state;
      out.sock_arg = j;
      break;
    }
  }
  if (a.label) out.label = a.label;
  return out;
}

/** The protojson name of an action (POST when unset). */
export function actionName(a: PolicyAction | undefined): string {
  return KPROBE_ACTIONS[a ?? 'post'][1];
}

function sensorEventJson(ev: SensorEvent, process: TetragonJsonProcess, parent: TetragonJsonProcess | undefined, time: string): TetragonJsonEvent {
  const shape = sensorShape(ev);
  const node_name = ev.nodeName;
  // Keys in field-number order, as protojson prints them.
  switch (shape.kind) {
    case 'tracepoint': {
      const body: TetragonJsonProcessTracepoint = { process };
      if (parent) body.parent = parent;
      body.subsys = shape.subsys;
      body.event = shape.event;
      if (shape.args.length) body.args = shape.args.map(argToJson);
      body.policy_name = shape.policyName;
      body.action = actionName(shape.action);
      if (shape.message) body.message = shape.message;
      if (shape.tags?.length) body.tags = [...shape.tags];
      return { process_tracepoint: body, node_name, time };
    }
    case 'lsm': {
      const body: TetragonJsonProcessLsm = { process };
      if (parent) body.parent = parent;
      body.function_name = shape.functionName;
      body.policy_name = shape.policyName;
      if (shape.message) body.message = shape.message;
      if (shape.args.length) body.args = shape.args.map(argToJson);
      body.action = actionName(shape.action);
      if (shape.tags?.length) body.tags = [...shape.tags];
      return { process_lsm: body, node_name, time };
    }
    case 'uprobe': {
      const body: TetragonJsonProcessUprobe = { process };
      if (parent) body.parent = parent;
      if (shape.path) body.path = shape.path;
      if (shape.symbol) body.symbol = shape.symbol;
      body.policy_name = shape.policyName;
      if (shape.message) body.message = shape.message;
      if (shape.args.length) body.args = shape.args.map(argToJson);
      if (shape.tags?.length) body.tags = [...shape.tags];
      body.action = actionName(shape.action);
      return { process_uprobe: body, node_name, time };
    }
    case 'kprobe': {
      const body: TetragonJsonProcessKprobe = { process };
      if (parent) body.parent = parent;
      body.function_name = shape.functionName;
      if (shape.args.length) body.args = shape.args.map(argToJson);
      if (shape.ret) body.return = argToJson(shape.ret);
      body.action = actionName(shape.action);
      body.policy_name = shape.policyName;
      const ra = shape.returnAction ?? (shape.ret ? 'post' : undefined);
      if (ra) body.return_action = actionName(ra);
      if (shape.message) body.message = shape.message;
      if (shape.tags?.length) body.tags = [...shape.tags];
      return { process_kprobe: body, node_name, time };
    }
  }
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
