// Typed model of a Tetragon TracingPolicy (cilium.io/v1alpha1) after parsing.
//
// The model is *normalised*: operator/action/namespace/capability spellings are
// canonical (`gt` → `GT`, `sigkill` → `Sigkill`, `DAC_OVERRIDE` → `CAP_DAC_OVERRIDE`),
// arg type aliases are resolved (`unsigned long` → `ulong`) and CRD defaults are
// applied (`type: auto`, `syscall: true`, `return: false`, capability `type: Effective`),
// so later stages (kernel plan, loader) never re-interpret user spelling.
// Selector `macros` are kept as written; `expandSelector` (parse.ts) merges them.
//
// Field names are the YAML keys of shared/reference/tetragon-api.md §10.

export const API_VERSION = 'cilium.io/v1alpha1';

export type PolicyKind = 'TracingPolicy' | 'TracingPolicyNamespaced';

/** One problem found in a policy. `path` is a YAML path such as `spec.kprobes[0].selectors[1].matchArgs[0].operator`; `(root)` is the document itself. */
export interface PolicyIssue {
  path: string;
  /** What is wrong. */
  message: string;
  /** How to fix it, when we can tell. */
  hint?: string;
  /** 1-based position of the offending node (or its nearest positioned ancestor) in the source text. */
  line?: number;
  column?: number;
  /** File name given to the parser. */
  source?: string;
  /** 0-based document index in a multi-document file. */
  document?: number;
}
export type PolicyError = PolicyIssue;
export type PolicyWarning = PolicyIssue;

export interface ParseResult {
  /** Present only when `errors` is empty. */
  policy?: TracingPolicy;
  errors: PolicyError[];
  warnings: PolicyWarning[];
  /** 0-based index of the YAML document this result comes from. */
  document: number;
}

export interface TracingPolicy {
  apiVersion: typeof API_VERSION;
  kind: PolicyKind;
  metadata: PolicyMetadata;
  spec: TracingPolicySpec;
}

export interface PolicyMetadata {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

// ---------------------------------------------------------------------------
// Label selectors (Kubernetes LabelSelector; keys may carry a Cilium source prefix such as `k8s:`)

export type LabelSelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  key: string;
  operator: LabelSelectorOperator;
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

// ---------------------------------------------------------------------------
// spec

export interface TracingPolicySpec {
  kprobes?: KProbeSpec[];
  tracepoints?: TracepointSpec[];
  lsmhooks?: LsmHookSpec[];
  uprobes?: UProbeSpec[];
  usdts?: UsdtSpec[];
  /** fentry/fexit hooks; same shape as kprobes (v1.7). */
  fentries?: KProbeSpec[];
  lists?: ListSpec[];
  /** At most one entry. */
  enforcers?: EnforcerSpec[];
  options?: OptionSpec[];
  podSelector?: LabelSelector;
  containerSelector?: LabelSelector;
  /** Only `{}` (all host workloads) is meaningful; absent/null = none. */
  hostSelector?: LabelSelector;
  nodeSelector?: LabelSelector;
  selectorsMacros?: Record<string, KProbeSelector>;
  loader?: boolean;
}

export type ListType = 'syscalls' | 'generated_syscalls' | 'generated_ftrace';

export interface ListSpec {
  name: string;
  values: string[];
  /** Absent = untyped list. */
  type?: ListType;
  pattern?: string;
  validated?: boolean;
}

export interface EnforcerSpec {
  calls: string[];
}

export type OptionName = 'disable-kprobe-multi' | 'disable-uprobe-multi' | 'override-method' | 'policy-mode' | 'sleepable-preload-size';

export interface OptionSpec {
  name: OptionName;
  value: string;
}

// ---------------------------------------------------------------------------
// hooks

export interface HookCommon {
  message?: string;
  args?: KProbeArg[];
  selectors?: KProbeSelector[];
  tags?: string[];
}

export interface KProbeSpec extends HookCommon {
  /** Kernel symbol, `sys_<name>` / `__x64_sys_<name>` for syscalls, or `list:NAME`. */
  call: string;
  return: boolean;
  /** CRD default true (the upstream docs say false; the CRD wins). */
  syscall: boolean;
  data?: KProbeArg[];
  returnArg?: KProbeArg;
  returnArgAction?: 'TrackSock' | 'UntrackSock';
  ignore?: { callNotFound?: boolean };
}

export interface TracepointSpec extends HookCommon {
  subsystem: string;
  event: string;
  raw?: boolean;
}

export interface LsmHookSpec extends HookCommon {
  /** LSM hook name without the `security_` prefix, e.g. `file_open`. */
  hook: string;
}

export interface UProbeSpec extends HookCommon {
  path: string;
  btfPath?: string;
  /** Exactly one of symbols / offsets / addrs. */
  symbols?: string[];
  offsets?: number[];
  addrs?: number[];
  refCtrOffsets?: number[];
  data?: KProbeArg[];
  return?: boolean;
  returnArg?: KProbeArg;
  binaryDigests?: string[];
  ignore?: { digestVerificationFailure?: boolean };
  resolvePathInContainer?: boolean;
}

export interface UsdtSpec extends HookCommon {
  path: string;
  btfPath?: string;
  provider: string;
  name: string;
}

export type HookKind = 'kprobe' | 'fentry' | 'tracepoint' | 'lsmhook' | 'uprobe' | 'usdt';

// ---------------------------------------------------------------------------
// arguments

/** Canonical arg types (CRD enum on main). `unsigned long` is accepted as an alias of `ulong`. */
export const ARG_TYPES = [
  'auto', 'int', 'sint8', 'int8', 'uint8', 'sint16', 'int16', 'uint16', 'uint32', 'sint32', 'int32', 'ulong', 'uint64',
  'size_t', 'long', 'sint64', 'int64', 'char_buf', 'char_iovec', 'skb', 'sock', 'sockaddr', 'socket', 'sockaddr_un',
  'string', 'fd', 'file', 'filename', 'path', 'nop', 'bpf_attr', 'perf_event', 'bpf_map', 'user_namespace', 'capability',
  'kiocb', 'iov_iter', 'cred', 'const_buf', 'load_info', 'module', 'syscall64', 'kernel_cap_t', 'cap_inheritable',
  'cap_permitted', 'cap_effective', 'linux_binprm', 'data_loc', 'net_device', 'bpf_cmd', 'dentry', 'bpf_prog',
] as const;
export type ArgType = (typeof ARG_TYPES)[number];

export interface KProbeArg {
  index: number;
  type: ArgType;
  /** Dot path through BTF (max depth 10). */
  resolve?: string;
  /** 1-based position of the size argument (char_buf/char_iovec); 0/absent = none. */
  sizeArgIndex?: number;
  returnCopy?: boolean;
  maxData?: boolean;
  label?: string;
  /** data[] entries: where the value is read from. */
  source?: 'current_task' | 'pt_regs';
  btfType?: string;
  btfTypeModule?: string;
}

// ---------------------------------------------------------------------------
// selectors

/**
 * matchArgs / matchData / matchReturnArgs operators: Tetragon's CRD enum plus
 * tetrahub's Cilium-identity extensions (last line).
 */
export const ARG_OPERATORS = [
  'Equal', 'NotEqual', 'Prefix', 'NotPrefix', 'Postfix', 'NotPostfix', 'GT', 'LT', 'Mask',
  'SPort', 'NotSPort', 'SPortPriv', 'NotSPortPriv', 'DPort', 'NotDPort', 'DPortPriv', 'NotDPortPriv',
  'SAddr', 'NotSAddr', 'DAddr', 'NotDAddr', 'Protocol', 'Family', 'State', 'InMap', 'NotInMap',
  'CapabilitiesGained', 'InRange', 'NotInRange', 'SubString', 'SubStringIgnCase', 'CelExpr', 'FileType', 'NotFileType',
  'DIdentity', 'NotDIdentity', 'SIdentity', 'NotSIdentity', 'DLabels', 'SLabels',
] as const;
export type ArgOperator = (typeof ARG_OPERATORS)[number];

/**
 * One argument filter.
 *
 * tetrahub extensions on sock / socket / skb / sockaddr args (sockaddr carries a
 * single address, which Tetragon calls the "S" side — as for SAddr — so only the
 * S forms apply to it):
 *
 *   # destination (or source) Cilium security identity: numeric ids or reserved names
 *   - index: 0
 *     operator: DIdentity          # NotDIdentity | SIdentity | NotSIdentity
 *     values: ["world", "host", "reserved:kube-apiserver", "16777217", "48213"]
 *
 *   # destination (or source) endpoint chosen by labels, CiliumNetworkPolicy style
 *   - index: 0
 *     operator: DLabels            # SLabels
 *     labelSelector:
 *       matchLabels: {app: db, "k8s:io.kubernetes.pod.namespace": prod}
 *       matchExpressions:
 *       - {key: tier, operator: In, values: [backend]}      # In | NotIn | Exists | DoesNotExist
 *
 * `labelSelector` is required with DLabels/SLabels and not allowed with any other
 * operator; `values` must then be empty. Keys may carry a Cilium label source
 * (`k8s:`, `any:`, `reserved:`, …); an empty selector matches every endpoint.
 */
export interface ArgSelector {
  index: number;
  /** v1.5: positions in the hook's args list (overrides index); CapabilitiesGained needs [new, old]. */
  args?: number[];
  operator: ArgOperator;
  values: string[];
  labelSelector?: LabelSelector;
}

export type PidOperator = 'In' | 'NotIn';

export interface PidSelector {
  operator: PidOperator;
  values: number[];
  isNamespacePID: boolean;
  followForks: boolean;
}

export type BinaryOperator = 'In' | 'NotIn' | 'Prefix' | 'NotPrefix' | 'Postfix' | 'NotPostfix';

export interface BinarySelector {
  operator: BinaryOperator;
  values: string[];
  followChildren: boolean;
}

export const NAMESPACE_TYPES = ['Uts', 'Ipc', 'Mnt', 'Pid', 'PidForChildren', 'Net', 'Time', 'TimeForChildren', 'Cgroup', 'User'] as const;
export type NamespaceType = (typeof NAMESPACE_TYPES)[number];

export interface NamespaceSelector {
  namespace: NamespaceType;
  operator: 'In' | 'NotIn';
  /** Namespace inode numbers (decimal) or `host_ns`. */
  values: string[];
}

export interface NamespaceChangesSelector {
  operator: 'In' | 'NotIn';
  values: NamespaceType[];
}

export type CapabilityType = 'Effective' | 'Inheritable' | 'Permitted';

export interface CapabilitiesSelector {
  type: CapabilityType;
  operator: 'In' | 'NotIn';
  isNamespaceCapability: boolean;
  /** Kernel names, e.g. `CAP_SYS_ADMIN`. */
  values: string[];
}

export interface WorkloadSelector {
  podSelector?: LabelSelector;
  containerSelector?: LabelSelector;
  hostSelector?: LabelSelector;
}

export interface KProbeSelector {
  label?: string;
  matchPIDs?: PidSelector[];
  matchArgs?: ArgSelector[];
  matchData?: ArgSelector[];
  matchReturnArgs?: ArgSelector[];
  matchBinaries?: BinarySelector[];
  matchParentBinaries?: BinarySelector[];
  matchNamespaces?: NamespaceSelector[];
  matchCapabilities?: CapabilitiesSelector[];
  matchNamespaceChanges?: NamespaceChangesSelector[];
  matchCapabilityChanges?: CapabilitiesSelector[];
  matchWorkloads?: WorkloadSelector[];
  matchActions?: ActionSelector[];
  matchReturnActions?: ActionSelector[];
  /** Names of `spec.selectorsMacros` entries merged into this selector. */
  macros?: string[];
}

// ---------------------------------------------------------------------------
// actions

export const ACTIONS = [
  'Post', 'Sigkill', 'Override', 'GetUrl', 'DnsLookup', 'NoPost', 'Signal', 'TrackSock', 'UntrackSock',
  'NotifyEnforcer', 'CleanupEnforcerNotification', 'Set',
  // v1.3 only; deprecated v1.4, removed on main. Accepted with a warning.
  'FollowFD', 'UnfollowFD', 'CopyFD',
] as const;
export type ActionName = (typeof ACTIONS)[number];

export type RateLimitScope = 'thread' | 'process' | 'global';

export interface ActionSelector {
  action: ActionName;
  argUrl?: string;
  argFqdn?: string;
  argError?: number;
  argSig?: number;
  argSock?: number;
  argIndex?: number;
  argValue?: number;
  argRegs?: string[];
  argNewSymbol?: string;
  argNewAddr?: number;
  argNewOffset?: number;
  argFd?: number;
  argName?: number;
  /** As written (`30s`, `1m`, `2h`, `5`). */
  rateLimit?: string;
  /** rateLimit in milliseconds (Tetragon's stored unit, capped at 2^32-1). */
  rateLimitMs?: number;
  rateLimitScope?: RateLimitScope;
  kernelStackTrace?: boolean;
  userStackTrace?: boolean;
  imaHash?: boolean;
}
