// Enumerations and per-type rules of the TracingPolicy language
// (shared/reference/tetragon-api.md §10.4–§10.9, §2.4).
import type { ActionName, ArgOperator, ArgType, CapabilityType, NamespaceType, OptionName } from './types';
import { ACTIONS, ARG_OPERATORS, ARG_TYPES, NAMESPACE_TYPES } from './types';

// ---------------------------------------------------------------------------
// arg types

/**
 * How an arg type can be filtered. `auto` is resolved from BTF at load time, so
 * every operator is accepted for it here and the kernel plan re-checks.
 */
export type ArgClass =
  | 'int' // integer scalars
  | 'capmask' // kernel_cap_t and friends: u64 capability bitmasks
  | 'string' // NUL-terminated strings and byte buffers
  | 'path' // file-ish args resolved to a path (fd, file, path, dentry, …)
  | 'sock' // sock, socket, skb: both endpoints known
  | 'sockaddr' // one address, which Tetragon names the S side
  | 'sockaddr_un'
  | 'cred'
  | 'opaque' // printed, not filterable
  | 'nop'
  | 'auto';

export interface ArgTypeInfo {
  cls: ArgClass;
  /** Integer width and signedness, for value range checks. */
  bits?: 8 | 16 | 32 | 64;
  signed?: boolean;
  /** First Tetragon release knowing the type (absent = v1.3 or earlier). */
  since?: string;
}

const I = (bits: 8 | 16 | 32 | 64, signed: boolean, since?: string): ArgTypeInfo => ({ cls: 'int', bits, signed, since });

export const ARG_TYPE_INFO: Readonly<Record<ArgType, ArgTypeInfo>> = {
  auto: { cls: 'auto' },
  int: I(32, true), sint8: I(8, true, 'v1.4'), int8: I(8, true), uint8: I(8, false), sint16: I(16, true, 'v1.4'), int16: I(16, true),
  uint16: I(16, false), uint32: I(32, false), sint32: I(32, true, 'v1.4'), int32: I(32, true), ulong: I(64, false, 'v1.4'),
  uint64: I(64, false), size_t: I(64, false), long: I(64, true, 'v1.4'), sint64: I(64, true, 'v1.4'), int64: I(64, true),
  syscall64: I(64, true), bpf_cmd: I(32, false), capability: I(32, true),
  char_buf: { cls: 'string' }, char_iovec: { cls: 'string' }, string: { cls: 'string' }, filename: { cls: 'string' },
  data_loc: { cls: 'string' }, net_device: { cls: 'string' },
  fd: { cls: 'path' }, file: { cls: 'path' }, path: { cls: 'path' }, kiocb: { cls: 'path' }, linux_binprm: { cls: 'path' },
  dentry: { cls: 'path', since: 'v1.4' },
  sock: { cls: 'sock' }, skb: { cls: 'sock' }, socket: { cls: 'sock', since: 'v1.4' },
  sockaddr: { cls: 'sockaddr', since: 'v1.4' }, sockaddr_un: { cls: 'sockaddr_un', since: 'v1.4' },
  kernel_cap_t: { cls: 'capmask' }, cap_inheritable: { cls: 'capmask' }, cap_permitted: { cls: 'capmask' }, cap_effective: { cls: 'capmask' },
  cred: { cls: 'cred' },
  bpf_attr: { cls: 'opaque' }, perf_event: { cls: 'opaque' }, bpf_map: { cls: 'opaque' }, bpf_prog: { cls: 'opaque', since: 'v1.4' },
  user_namespace: { cls: 'opaque' }, iov_iter: { cls: 'opaque' }, const_buf: { cls: 'opaque', since: 'v1.4' },
  load_info: { cls: 'opaque' }, module: { cls: 'opaque' },
  nop: { cls: 'nop' },
};

/** Spellings accepted besides the canonical names (pkg/generictypes). */
export const ARG_TYPE_ALIASES: ReadonlyMap<string, ArgType> = new Map([['unsigned long', 'ulong']]);

export const ARG_TYPE_SET: ReadonlySet<string> = new Set<string>(ARG_TYPES);

// ---------------------------------------------------------------------------
// operators

export type OperatorFamily =
  | 'eq' | 'cmp' | 'mask' | 'range' | 'map' | 'prefix' | 'postfix' | 'substring' | 'cel' | 'filetype' | 'capgained'
  | 'port' | 'portpriv' | 'addr' | 'protocol' | 'family' | 'state' | 'identity' | 'labels';

export interface OperatorInfo {
  family: OperatorFamily;
  /** Which endpoint a socket operator looks at. */
  side?: 'S' | 'D';
  since?: string;
  /** tetrahub extension, not understood by Tetragon. */
  extension?: true;
}

export const OPERATOR_INFO: Readonly<Record<ArgOperator, OperatorInfo>> = {
  Equal: { family: 'eq' }, NotEqual: { family: 'eq' },
  Prefix: { family: 'prefix' }, NotPrefix: { family: 'prefix' }, Postfix: { family: 'postfix' }, NotPostfix: { family: 'postfix' },
  GT: { family: 'cmp' }, LT: { family: 'cmp' }, Mask: { family: 'mask' },
  SPort: { family: 'port', side: 'S' }, NotSPort: { family: 'port', side: 'S' },
  SPortPriv: { family: 'portpriv', side: 'S' }, NotSPortPriv: { family: 'portpriv', side: 'S' },
  DPort: { family: 'port', side: 'D' }, NotDPort: { family: 'port', side: 'D' },
  DPortPriv: { family: 'portpriv', side: 'D' }, NotDPortPriv: { family: 'portpriv', side: 'D' },
  SAddr: { family: 'addr', side: 'S' }, NotSAddr: { family: 'addr', side: 'S' },
  DAddr: { family: 'addr', side: 'D' }, NotDAddr: { family: 'addr', side: 'D' },
  Protocol: { family: 'protocol' }, Family: { family: 'family' }, State: { family: 'state' },
  InMap: { family: 'map' }, NotInMap: { family: 'map' },
  CapabilitiesGained: { family: 'capgained', since: 'v1.5' },
  InRange: { family: 'range', since: 'v1.6' }, NotInRange: { family: 'range', since: 'v1.6' },
  SubString: { family: 'substring', since: 'v1.7' }, SubStringIgnCase: { family: 'substring', since: 'v1.7' },
  CelExpr: { family: 'cel', since: 'v1.7' }, FileType: { family: 'filetype', since: 'v1.7' }, NotFileType: { family: 'filetype', since: 'v1.7' },
  DIdentity: { family: 'identity', side: 'D', extension: true }, NotDIdentity: { family: 'identity', side: 'D', extension: true },
  SIdentity: { family: 'identity', side: 'S', extension: true }, NotSIdentity: { family: 'identity', side: 'S', extension: true },
  DLabels: { family: 'labels', side: 'D', extension: true }, SLabels: { family: 'labels', side: 'S', extension: true },
};

export const ARG_OPERATOR_SET: ReadonlySet<string> = new Set<string>(ARG_OPERATORS);

/**
 * Extra spellings Tetragon's selector parser accepts (pkg/selectors SelectorOp).
 * `crd: false` ones are refused by the CRD schema, so `kubectl apply` would fail:
 * we accept them (a file-loaded policy works upstream) but warn.
 */
export const OPERATOR_ALIASES: ReadonlyMap<string, { op: ArgOperator; crd: boolean }> = new Map<string, { op: ArgOperator; crd: boolean }>([
  ['GreaterThan', { op: 'GT', crd: true }], ['gt', { op: 'GT', crd: false }],
  ['LessThan', { op: 'LT', crd: true }], ['lt', { op: 'LT', crd: false }],
  ['eq', { op: 'Equal', crd: false }], ['neq', { op: 'NotEqual', crd: false }],
  ['prefix', { op: 'Prefix', crd: false }], ['notprefix', { op: 'NotPrefix', crd: false }],
  ['postfix', { op: 'Postfix', crd: false }], ['notpostfix', { op: 'NotPostfix', crd: false }],
  ['mask', { op: 'Mask', crd: false }],
  ['saddr', { op: 'SAddr', crd: false }], ['Saddr', { op: 'SAddr', crd: false }],
  ['daddr', { op: 'DAddr', crd: false }], ['Daddr', { op: 'DAddr', crd: false }],
  ['notsaddr', { op: 'NotSAddr', crd: false }], ['NotSaddr', { op: 'NotSAddr', crd: false }],
  ['notdaddr', { op: 'NotDAddr', crd: false }], ['NotDaddr', { op: 'NotDAddr', crd: false }],
  ['sport', { op: 'SPort', crd: false }], ['Sport', { op: 'SPort', crd: false }],
  ['dport', { op: 'DPort', crd: false }], ['Dport', { op: 'DPort', crd: false }],
  ['notsport', { op: 'NotSPort', crd: false }], ['NotSport', { op: 'NotSPort', crd: false }],
  ['notdport', { op: 'NotDPort', crd: false }], ['NotDport', { op: 'NotDPort', crd: false }],
  ['sportpriv', { op: 'SPortPriv', crd: false }], ['SportPriv', { op: 'SPortPriv', crd: false }],
  ['dportpriv', { op: 'DPortPriv', crd: false }], ['DportPriv', { op: 'DPortPriv', crd: false }],
  // The CRD enum itself spells it NotSportPriv; docs write NotSPortPriv (our canonical form).
  ['NotSportPriv', { op: 'NotSPortPriv', crd: true }], ['notsportpriv', { op: 'NotSPortPriv', crd: false }],
  ['notdportpriv', { op: 'NotDPortPriv', crd: false }], ['NotDportPriv', { op: 'NotDPortPriv', crd: false }],
  ['protocol', { op: 'Protocol', crd: false }], ['family', { op: 'Family', crd: false }], ['state', { op: 'State', crd: false }],
  // Docs spelling; the CRD and parser use SubStringIgnCase.
  ['SubStringIgnoreCase', { op: 'SubStringIgnCase', crd: false }],
]);

/** Arg classes each operator family applies to (`auto` always passes). */
export const FAMILY_CLASSES: Readonly<Record<OperatorFamily, readonly ArgClass[]>> = {
  eq: ['int', 'capmask', 'string', 'path', 'sockaddr_un'],
  cmp: ['int'],
  mask: ['int', 'capmask'],
  range: ['int'],
  map: ['int'],
  prefix: ['string', 'path', 'sockaddr_un'],
  postfix: ['string', 'path'],
  substring: ['string', 'path'],
  cel: ['int'],
  filetype: ['path'],
  capgained: ['capmask', 'cred'],
  port: ['sock', 'sockaddr'],
  portpriv: ['sock', 'sockaddr'],
  addr: ['sock', 'sockaddr'],
  protocol: ['sock'],
  family: ['sock', 'sockaddr', 'sockaddr_un'],
  state: ['sock'],
  identity: ['sock', 'sockaddr'],
  labels: ['sock', 'sockaddr'],
};

/** Types FileType/NotFileType apply to (narrower than the `path` class). */
export const FILETYPE_ARG_TYPES: ReadonlySet<ArgType> = new Set<ArgType>(['file', 'path']);
export const FILE_TYPES: ReadonlySet<string> = new Set(['sock', 'socket', 'lnk', 'link', 'reg', 'regular', 'blk', 'block', 'dir', 'chr', 'char', 'fifo', 'pipe']);

/** Which operators suit a class, for "use one of …" hints. */
export function operatorsForClass(cls: ArgClass): ArgOperator[] {
  return ARG_OPERATORS.filter((op) => {
    const info = OPERATOR_INFO[op];
    if (!FAMILY_CLASSES[info.family].includes(cls)) return false;
    if (cls === 'sockaddr' && info.side === 'D') return false;
    return true;
  });
}

// ---------------------------------------------------------------------------
// selector value tables

export const BINARY_OPERATORS = ['In', 'NotIn', 'Prefix', 'NotPrefix', 'Postfix', 'NotPostfix'] as const;
/** matchBinaries spellings the parser also takes. */
export const BINARY_OPERATOR_ALIASES: ReadonlyMap<string, (typeof BINARY_OPERATORS)[number]> = new Map([
  ['prefix', 'Prefix'], ['notprefix', 'NotPrefix'], ['postfix', 'Postfix'], ['notpostfix', 'NotPostfix'],
] as const);

export const NAMESPACE_TYPE_SET: ReadonlySet<string> = new Set<string>(NAMESPACE_TYPES);
export const NAMESPACE_BY_LOWER: ReadonlyMap<string, NamespaceType> = new Map(NAMESPACE_TYPES.map((n) => [n.toLowerCase(), n]));

export const CAPABILITY_TYPES: readonly CapabilityType[] = ['Effective', 'Inheritable', 'Permitted'];

/** Kernel capability numbers (capabilities.proto; the proto spells #1 `DAC_OVERRIDE`). */
export const CAPABILITIES: ReadonlyMap<string, number> = new Map([
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW',
  'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD',
  'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
].map((n, i): [string, number] => [n, i]));

export const IP_PROTOCOLS: ReadonlyMap<string, number> = new Map([
  ['IPPROTO_IP', 0], ['IPPROTO_ICMP', 1], ['IPPROTO_IGMP', 2], ['IPPROTO_IPIP', 4], ['IPPROTO_TCP', 6], ['IPPROTO_EGP', 8],
  ['IPPROTO_PUP', 12], ['IPPROTO_UDP', 17], ['IPPROTO_IDP', 22], ['IPPROTO_TP', 29], ['IPPROTO_DCCP', 33], ['IPPROTO_IPV6', 41],
  ['IPPROTO_RSVP', 46], ['IPPROTO_GRE', 47], ['IPPROTO_ESP', 50], ['IPPROTO_AH', 51], ['IPPROTO_ICMPV6', 58], ['IPPROTO_MTP', 92],
  ['IPPROTO_BEETPH', 94], ['IPPROTO_ENCAP', 98], ['IPPROTO_PIM', 103], ['IPPROTO_COMP', 108], ['IPPROTO_L2TP', 115],
  ['IPPROTO_SCTP', 132], ['IPPROTO_UDPLITE', 136], ['IPPROTO_MPLS', 137], ['IPPROTO_ETHERNET', 143], ['IPPROTO_RAW', 255],
  ['IPPROTO_MPTCP', 262],
]);

export const ADDRESS_FAMILIES: ReadonlyMap<string, number> = new Map([
  ['AF_UNSPEC', 0], ['AF_UNIX', 1], ['AF_LOCAL', 1], ['AF_INET', 2], ['AF_AX25', 3], ['AF_IPX', 4], ['AF_APPLETALK', 5],
  ['AF_NETROM', 6], ['AF_BRIDGE', 7], ['AF_ATMPVC', 8], ['AF_X25', 9], ['AF_INET6', 10], ['AF_ROSE', 11], ['AF_DECNET', 12],
  ['AF_NETBEUI', 13], ['AF_SECURITY', 14], ['AF_KEY', 15], ['AF_NETLINK', 16], ['AF_ROUTE', 16], ['AF_PACKET', 17],
  ['AF_ASH', 18], ['AF_ECONET', 19], ['AF_ATMSVC', 20], ['AF_RDS', 21], ['AF_SNA', 22], ['AF_IRDA', 23], ['AF_PPPOX', 24],
  ['AF_WANPIPE', 25], ['AF_LLC', 26], ['AF_IB', 27], ['AF_MPLS', 28], ['AF_CAN', 29], ['AF_TIPC', 30], ['AF_BLUETOOTH', 31],
  ['AF_IUCV', 32], ['AF_RXRPC', 33], ['AF_ISDN', 34], ['AF_PHONET', 35], ['AF_IEEE802154', 36], ['AF_CAIF', 37], ['AF_ALG', 38],
  ['AF_NFC', 39], ['AF_VSOCK', 40], ['AF_KCM', 41], ['AF_QIPCRTR', 42], ['AF_SMC', 43], ['AF_XDP', 44], ['AF_MCTP', 45],
]);

export const TCP_STATES: ReadonlyMap<string, number> = new Map([
  ['TCP_ESTABLISHED', 1], ['TCP_SYN_SENT', 2], ['TCP_SYN_RECV', 3], ['TCP_FIN_WAIT1', 4], ['TCP_FIN_WAIT2', 5],
  ['TCP_TIME_WAIT', 6], ['TCP_CLOSE', 7], ['TCP_CLOSE_WAIT', 8], ['TCP_LAST_ACK', 9], ['TCP_LISTEN', 10],
  ['TCP_CLOSING', 11], ['TCP_NEW_SYN_RECV', 12], ['TCP_BOUND_INACTIVE', 13],
]);

// ---------------------------------------------------------------------------
// actions

export const ACTION_SET: ReadonlySet<string> = new Set<string>(ACTIONS);
/** Tetragon matches action names case-insensitively (strings.ToLower); the CRD enum does not. */
export const ACTION_BY_LOWER: ReadonlyMap<string, ActionName> = new Map(ACTIONS.map((a) => [a.toLowerCase(), a]));
export const DEPRECATED_ACTIONS: ReadonlySet<ActionName> = new Set<ActionName>(['FollowFD', 'UnfollowFD', 'CopyFD']);
/** Skipped (but counted) in monitor mode. */
export const ENFORCING_ACTIONS: ReadonlySet<ActionName> = new Set<ActionName>(['Sigkill', 'Signal', 'Override', 'NotifyEnforcer', 'Set']);

/** Parameters each action reads; anything else set on it is ignored upstream. */
export const ACTION_PARAMS: Readonly<Record<ActionName, readonly string[]>> = {
  Post: ['rateLimit', 'rateLimitScope', 'kernelStackTrace', 'userStackTrace', 'imaHash'],
  NoPost: [],
  Sigkill: [],
  Signal: ['argSig'],
  Override: ['argError', 'argRegs', 'argNewSymbol', 'argNewAddr', 'argNewOffset'],
  GetUrl: ['argUrl'],
  DnsLookup: ['argFqdn'],
  TrackSock: ['argSock'],
  UntrackSock: ['argSock'],
  NotifyEnforcer: ['argError', 'argSig'],
  CleanupEnforcerNotification: [],
  Set: ['argIndex', 'argValue'],
  FollowFD: ['argFd', 'argName'],
  UnfollowFD: ['argFd', 'argName'],
  CopyFD: ['argFd', 'argName'],
};

export const ACTION_FIELDS = [
  'action', 'argUrl', 'argFqdn', 'argError', 'argSig', 'argSock', 'argIndex', 'argValue', 'argRegs', 'argNewSymbol',
  'argNewAddr', 'argNewOffset', 'argFd', 'argName', 'rateLimit', 'rateLimitScope', 'kernelStackTrace', 'userStackTrace', 'imaHash',
] as const;

// ---------------------------------------------------------------------------
// options

export interface OptionInfo {
  kind: 'bool' | 'enum' | 'posint';
  values?: readonly string[];
  since?: string;
}

export const OPTIONS: Readonly<Record<OptionName, OptionInfo>> = {
  'disable-kprobe-multi': { kind: 'bool' },
  'disable-uprobe-multi': { kind: 'bool' },
  'override-method': { kind: 'enum', values: ['fmod-ret', 'override-return'] },
  'policy-mode': { kind: 'enum', values: ['enforce', 'monitor'], since: 'v1.4' },
  'sleepable-preload-size': { kind: 'posint', since: 'main' },
};

/** Go's strconv.ParseBool spellings (option values are strings). */
export const GO_BOOL: ReadonlyMap<string, boolean> = new Map([
  ['1', true], ['t', true], ['T', true], ['TRUE', true], ['true', true], ['True', true],
  ['0', false], ['f', false], ['F', false], ['FALSE', false], ['false', false], ['False', false],
]);

// ---------------------------------------------------------------------------
// limits (§10.8)

export const LIMITS = {
  selectorsPerHook: 5,
  argsPlusDataPerHook: 5,
  argFiltersPerSelector: 5,
  valuesPerValueOperator: 4,
  fileValuesPerOperator: 8,
  pidValues: 4,
  binariesSelectorsPerSelector: 1,
  followChildrenSections: 64,
  actionsPerSelector: 3,
  namespaceValues: 4,
  namespaceFilters: 10,
  namespaceChangeFilters: 1,
  prefixBytes: 256,
  postfixBytes: 127,
  binaryPathBytes: 255,
  substringEntries: 100,
  substringBytes: 99,
  stringValueBytes: 4096,
  messageChars: 256,
  tags: 16,
  tagChars: 128,
  resolveDepth: 10,
  /** Our own cap for InMap ranges: each value in a range becomes a BPF map entry. */
  inMapRangeEntries: 65536,
  /** Our own cap for DIdentity-family value lists (hash map entries). */
  identityValues: 1024,
} as const;

// ---------------------------------------------------------------------------
// where fields live, for "this field belongs in …" hints

export const FIELD_HOMES: ReadonlyMap<string, string> = new Map([
  ...['kprobes', 'tracepoints', 'lsmhooks', 'uprobes', 'usdts', 'fentries', 'lists', 'enforcers', 'options', 'podSelector',
    'containerSelector', 'hostSelector', 'nodeSelector', 'selectorsMacros', 'loader'].map((f): [string, string] => [f, 'spec']),
  ...['name', 'namespace', 'labels', 'annotations'].map((f): [string, string] => [f, 'metadata']),
  ...['matchPIDs', 'matchArgs', 'matchData', 'matchReturnArgs', 'matchBinaries', 'matchParentBinaries', 'matchNamespaces',
    'matchCapabilities', 'matchNamespaceChanges', 'matchCapabilityChanges', 'matchWorkloads', 'matchActions',
    'matchReturnActions', 'macros'].map((f): [string, string] => [f, 'a selector (selectors: [{…}])']),
  ...['operator', 'values'].map((f): [string, string] => [f, 'a selector filter such as selectors[].matchArgs[]']),
  ...ACTION_FIELDS.map((f): [string, string] => [f, 'an action (selectors[].matchActions[])']),
  ...['call', 'syscall', 'return', 'returnArg', 'returnArgAction', 'args', 'data', 'selectors', 'tags', 'message'].map(
    (f): [string, string] => [f, 'a hook (spec.kprobes[], spec.tracepoints[], …)'],
  ),
  ...['type', 'resolve', 'sizeArgIndex', 'returnCopy', 'maxData', 'label'].map((f): [string, string] => [f, 'an arg (args[])']),
  ...['matchLabels', 'matchExpressions'].map((f): [string, string] => [f, 'a label selector']),
]);

export { NAMESPACE_TYPES };
