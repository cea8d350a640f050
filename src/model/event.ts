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
  /** Raw argv after argv[0]. */
  args: string[];
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

export type EventKind = 'exec' | 'exit';

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

export type RuntimeEvent = ExecEvent | ExitEvent;

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
