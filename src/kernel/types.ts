// The contract of the N-API addon in native/ (built to native/build/Release/tetrahub_native.node).
// The addon is a thin layer over libbpf; everything policy-like lives in TypeScript.

export interface BpfProgramInfo {
  name: string;
  /** ELF section, e.g. "raw_tp/sched_process_exec", "tracepoint/syscalls/sys_enter_openat". */
  section: string;
  /** libbpf program type name, e.g. "raw_tracepoint", "tracepoint", "cgroup_sock_addr". */
  type: string;
}

export interface BpfMapInfo {
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

export interface OpenObjectOptions {
  /** Directory where maps declared with LIBBPF_PIN_BY_NAME are pinned (libbpf pin_root_path). */
  pinRoot?: string;
  /** Reuse already pinned maps: map name → pinned path (bpf_map__reuse_fd before load). */
  reuseMaps?: Record<string, string>;
  /** Programs not to load (autoload off), by program name. */
  skipPrograms?: string[];
  /** max_entries overrides, by map name. */
  mapSizes?: Record<string, number>;
  /** Values for `const volatile` globals in .rodata, by variable name (integers only). */
  rodata?: Record<string, number | bigint>;
}

export interface BpfLink {
  /** Detaches the program. Idempotent. */
  destroy(): void;
}

export interface BpfMap extends BpfMapInfo {
  readonly fd: number;
  /** Returns a copy of the value, or null when the key is absent. Per-CPU maps: values of all possible CPUs, concatenated (8-byte aligned each). */
  lookup(key: Uint8Array): Buffer | null;
  /** flags: 0 BPF_ANY, 1 BPF_NOEXIST, 2 BPF_EXIST. Throws BpfError on failure. */
  update(key: Uint8Array, value: Uint8Array, flags?: number): void;
  /** Returns false when the key was absent. */
  delete(key: Uint8Array): boolean;
  /** All keys (snapshot via get_next_key). */
  keys(): Buffer[];
  pin(path: string): void;
  close(): void;
}

export interface BpfObject {
  readonly path: string;
  programs(): BpfProgramInfo[];
  maps(): BpfMapInfo[];
  /** Loads every program not skipped. Throws BpfError (errno + verifier log) on failure. */
  load(): void;
  /**
   * Attaches a program by its section kind (tracepoint, raw_tp, tp_btf, kprobe, fentry, lsm, cgroup/*).
   * cgroup programs need opts.cgroupPath.
   * Target overrides attach a generic program elsewhere than its section names:
   * `tracepoint: "syscalls/sys_enter_execve"` (tracepoint programs), `kprobe: "__x64_sys_execve"`
   * with `retprobe: true` for a kretprobe (kprobe programs).
   */
  attach(program: string, opts?: { cgroupPath?: string; tracepoint?: string; kprobe?: string; retprobe?: boolean }): BpfLink;
  map(name: string): BpfMap;
  close(): void;
}

/** Error thrown by the addon. */
export interface BpfError extends Error {
  errno: number;
  /** errno name, e.g. "EACCES". */
  code?: string;
  /** Everything libbpf logged during the failed call. */
  libbpfLog?: string;
  /** Verifier log of the failed program load, when there is one. */
  verifierLog?: string;
  program?: string;
}

export interface RingConsumerOptions {
  /** Size of each batch buffer handed to JS (the consumer double-buffers). Default 1 MiB. */
  batchBytes?: number;
  /** Longest a partial batch waits before it is handed over, in ms. Default 20. */
  flushMs?: number;
  /**
   * The rings are drained at least this often, in ms (default 10): producers
   * submit without a wake-up until enough data waits (see bpf/include/th_ring.h).
   */
  pollMs?: number;
  /**
   * Called on the JS thread with one batch: records back to back, each as
   * [u32 length][u32 ring index][length bytes of the record][pad to 8].
   * The buffer is only valid during the call (it is reused): copy what you keep.
   */
  onBatch: (batch: Buffer, records: number) => void;
}

export interface RingConsumerStats {
  records: number;
  batches: number;
  bytes: number;
  /** Records larger than a whole batch, and batches lost at shutdown. */
  dropped: number;
}

export interface RingConsumer {
  /** Starts the native thread (epoll on every ring). */
  start(): void;
  /** Stops and joins the native thread; pending records are flushed first. */
  stop(): void;
  stats(): RingConsumerStats;
}

export interface FeatureProbe {
  btf: boolean;
  ringbuf: boolean;
  /** Program types by libbpf name → loadable here (kprobe, tracepoint, raw_tracepoint, tracing, lsm, cgroup_sock_addr, sched_cls, ...). */
  progTypes: Record<string, boolean>;
  /** Attach kinds actually usable here, probed by loading and attaching a tiny program. */
  attach: {
    kprobe: boolean;
    fentry: boolean;
    tpBtf: boolean;
    rawTp: boolean;
    tracepoint: boolean;
    lsm: boolean;
    cgroupSockAddr: boolean;
  };
  /** "bpf" is in /sys/kernel/security/lsm. */
  lsmActive: boolean;
  /** Helper availability for the program types we use, by helper name (bpf_ktime_get_boot_ns, bpf_send_signal, bpf_override_return, ...). */
  helpers: Record<string, boolean>;
  /** Human-readable reasons for each false above, keyed like "attach.kprobe". */
  reasons: Record<string, string>;
}

export interface NativeBinding {
  openObject(path: string, opts?: OpenObjectOptions): BpfObject;
  openPinnedMap(path: string): BpfMap;
  createRingConsumer(rings: BpfMap[], opts: RingConsumerOptions): RingConsumer;
  probeFeatures(): FeatureProbe;
  /** clock_gettime of CLOCK_BOOTTIME and CLOCK_REALTIME read back to back, in ns. */
  clocks(): { boottime: bigint; realtime: bigint };
  /** libbpf version string. */
  libbpfVersion(): string;
}
