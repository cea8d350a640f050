// The one internal event model. Sensors produce these (through the decoder and
// the process cache); every API and exporter converts from them at the edge.

/** Wall-clock time split in two numbers: ns since the epoch do not fit a double. */
export interface WallTime {
  sec: number;
  nsec: number;
}

export interface Credentials {
  uid: number;
  gid: number;
  euid: number;
  egid: number;
}

/** Kubernetes pod metadata, filled by enrichment when known. */
export interface PodInfo {
  namespace: string;
  name: string;
  uid?: string;
  labels: Record<string, string>;
  workload?: string;
  workloadKind?: string;
  container?: {
    id: string;
    name: string;
    imageId?: string;
    imageName?: string;
    startTime?: WallTime;
    pid?: number;
  };
}

/** Cilium endpoint / identity context, filled by enrichment when known. */
export interface EndpointInfo {
  id: number;
  identity: number;
  namespace: string;
  podName: string;
  labels: string[];
}

/** One process image (one exec), as the process cache knows it. Immutable once published. */
export interface ProcessInfo {
  /** base64("node:ktime:pid"), exactly as Tetragon builds it. */
  execId: string;
  parentExecId: string;
  pid: number;
  tid: number;
  /** ns since boot at exec (or at fork for clone-only images, /proc starttime for procFS). */
  ktime: bigint;
  creds: Credentials;
  /** loginuid; 4294967295 = unset. */
  auid: number;
  cwd: string;
  binary: string;
  /**
   * Raw argv after argv[0], where a producer has it at hand; the process
   * cache does not keep it (`arguments` carries the same text, and the
   * cache holds tens of thousands of images).
   */
  args?: string[];
  /** Tetragon's one-string rendering: space-joined, args with spaces double-quoted. */
  arguments: string;
  /** Tetragon flag names, space separated, in Tetragon's print order. */
  flags: string;
  startTime: WallTime;
  cgroupId: bigint;
  /** Container id from the cgroup path (≤31 chars), "" on the host. */
  docker: string;
  pod?: PodInfo;
  endpoint?: EndpointInfo;
  /** Process-cache reference count (debug). */
  refcnt: number;
}

export type EventKind = 'exec' | 'exit' | 'file' | 'net' | 'dns' | 'syscall' | 'policy';

interface EventBase {
  kind: EventKind;
  /** Monotonic sequence number assigned by the bus; unique per agent run. */
  seq: number;
  time: WallTime;
  nodeName: string;
  process: ProcessInfo;
  parent?: ProcessInfo;
  /**
   * Per-format encodings, filled lazily by the adapters so that each event is
   * encoded once per wire format (and field mask) and the bytes are shared.
   */
  wire: Map<string, Uint8Array>;
}

export interface ExecEvent extends EventBase {
  kind: 'exec';
}

export interface ExitEvent extends EventBase {
  kind: 'exit';
  /** Exit status (0-255), 0 when killed by a signal. */
  status: number;
  /** Signal name such as "SIGKILL", "" when the process exited normally. */
  signal: string;
}

/** File access and changes, paths absolute and resolved. */
export type FileOp =
  | 'open' | 'close' | 'unlink' | 'rename' | 'chmod' | 'chown' | 'truncate' | 'mkdir' | 'rmdir'
  | 'symlink' | 'link' | 'mount' | 'umount';

export interface FileEvent extends EventBase {
  kind: 'file';
  op: FileOp;
  /** The syscall behind it, e.g. "openat", "renameat2". */
  syscall: string;
  /** Absolute path (for open: the file actually opened). */
  path: string;
  /** Second path: rename/link/symlink target, mount target. */
  path2?: string;
  /** Path was cut at the bound or could not be fully resolved. */
  truncated: boolean;
  /** open flags (O_*), mount flags; 0 when not applicable. */
  flags: number;
  /** Mode for open/creat/chmod/mkdir, uid/gid for chown in uid/gid. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Syscall return value (fd or -errno). */
  ret: number;
  /** For close / periodic reports: bytes moved through this open file. */
  bytesRead?: number;
  bytesWritten?: number;
}

export type NetOp = 'connect' | 'accept' | 'listen' | 'close' | 'send' | 'receive';

export interface NetEvent extends EventBase {
  kind: 'net';
  op: NetOp;
  protocol: 'tcp' | 'udp';
  family: 4 | 6;
  /** Local and remote ends as the process sees them. */
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  /** Network namespace inode. */
  netns: number;
  socketCookie: bigint;
  /** egress: this process initiated (connect/send); ingress: it accepted/received. */
  direction: 'egress' | 'ingress';
  /** Syscall result for connect/accept (0 or -errno); 0 otherwise. */
  ret: number;
  bytesSent?: number;
  bytesReceived?: number;
  /** UDP periodic reports: datagrams in this report. */
  packets?: number;
  /** TCP state name at the event, e.g. "TCP_ESTABLISHED". */
  state?: string;
  /** DNS names known for daddr (from the DNS cache). */
  destinationNames?: string[];
  /** Cilium identities and endpoints, when known (issue: identities). */
  source?: EndpointInfo;
  destination?: EndpointInfo;
}

export interface DnsAnswer {
  name: string;
  type: string;
  ttl: number;
  /** Address for A/AAAA, target for CNAME. */
  data: string;
}

export interface DnsEvent extends EventBase {
  kind: 'dns';
  protocol: 'udp' | 'tcp';
  isResponse: boolean;
  id: number;
  query: string;
  qtypes: string[];
  rcode: number;
  answers: DnsAnswer[];
  clientAddr: string;
  clientPort: number;
  serverAddr: string;
  serverPort: number;
  /** Response only: ns since the matching query. */
  latencyNs?: number;
  /** Parsing stopped early (truncated, malformed, compression loop). */
  malformed?: string;
  /** Cilium identities and endpoints, when known: source = the client's end (the querying process), destination = the DNS server's. */
  source?: EndpointInfo;
  destination?: EndpointInfo;
}

export interface SyscallEvent extends EventBase {
  kind: 'syscall';
  id: number;
  name: string;
  args: bigint[];
  ret?: number;
  /** For count reports: calls since the last report. */
  count?: number;
}

/** A socket as policy events and Tetragon's sock_arg describe it. */
export interface PolicySock {
  family: string; // "AF_INET" | "AF_INET6"
  type: string; // "SOCK_STREAM" | "SOCK_DGRAM" | ""
  protocol: string; // "IPPROTO_TCP" | "IPPROTO_UDP" | ""
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  cookie?: bigint;
  state?: string;
}

/** One typed argument of a policy hook (Tetragon's KprobeArgument before encoding; 64-bit values as bigint). */
export type PolicyArg = { label?: string } & (
  | { t: 'int'; v: number }
  | { t: 'uint'; v: number }
  | { t: 'size'; v: bigint }
  | { t: 'long'; v: bigint }
  | { t: 'string'; v: string }
  | { t: 'bytes'; v: Uint8Array; truncated?: boolean }
  | { t: 'file' | 'path'; path: string; truncated?: boolean; permission?: string; flags?: string }
  | { t: 'sock'; sock: PolicySock }
  | { t: 'sockaddr'; family: string; addr: string; port: number }
  | { t: 'cred'; uid: number; gid: number; euid: number; egid: number }
  | { t: 'capability'; value: number; name: string }
  | { t: 'linux_binprm'; path: string }
);

/** What a policy's action did (or, in monitor mode, would have done). */
export type PolicyAction = 'post' | 'nopost' | 'sigkill' | 'signal' | 'override' | 'notify_enforcer';

/** An event produced by a TracingPolicy hook: process_kprobe / process_tracepoint / process_lsm on the Tetragon API. */
export interface PolicyEvent extends EventBase {
  kind: 'policy';
  hook: 'kprobe' | 'tracepoint' | 'lsm' | 'uprobe';
  /** kprobe/lsm: the call as written in the policy (e.g. "sys_execve", "security_file_open"). */
  functionName: string;
  /** tracepoint hooks only. */
  subsys?: string;
  event?: string;
  args: PolicyArg[];
  ret?: PolicyArg;
  policyName: string;
  policyNamespace?: string;
  /** Strongest action the matching selector took: sigkill/override/... over post. */
  action: PolicyAction;
  /** Return-side action (matchReturnActions), when there was one. */
  returnAction?: PolicyAction;
  /** Enforcement done in the kernel (or, with monitor=true, only audited). */
  enforcement?: { kind: 'killed' | 'signaled' | 'denied'; monitor: boolean; signal?: number; errno?: number };
  message?: string;
  tags?: string[];
  /** Connect-type hooks: the peer, so Hubble renders an L3/L4 flow (DROPPED when denied, AUDIT in monitor mode). */
  net?: {
    protocol: 'tcp' | 'udp';
    family: 4 | 6;
    saddr: string;
    sport: number;
    daddr: string;
    dport: number;
    source?: EndpointInfo;
    destination?: EndpointInfo;
  };
}

/** Events shaped as process_kprobe / process_tracepoint: the file/network/DNS/syscall sensors and policy hooks. */
export type SensorEvent = FileEvent | NetEvent | DnsEvent | SyscallEvent | PolicyEvent;
export type RuntimeEvent = ExecEvent | ExitEvent | FileEvent | NetEvent | DnsEvent | SyscallEvent | PolicyEvent;

/** Loss notices travel the bus beside events so that every API can report them. */
export type LossSource = 'kernel_ring' | 'subscriber_queue' | 'history_ring';

export interface LossNotice {
  kind: 'lost';
  seq: number;
  time: WallTime;
  nodeName: string;
  source: LossSource;
  count: number;
  cpu?: number;
  first?: WallTime;
  last?: WallTime;
  wire: Map<string, Uint8Array>;
}

export type BusItem = RuntimeEvent | LossNotice;
