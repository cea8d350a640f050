// Which connect-type hooks the cgroup connect4/connect6 programs can evaluate,
// and their selectors compiled to the rule layout of
// bpf/include/th_policy_connect.h. Pure: no kernel, no I/O.
//
// A hook is claimed only when every part of every selector can be checked at
// a cgroup connect hook (which sees the process, the socket's netns, the
// destination address/port, family and protocol, but no source address yet
// and no other function arguments); otherwise compileConnectHook says why
// and the generic backend takes the hook.
import { isIP } from 'node:net';
import { expandSelector } from '../parse';
import { parseIdentityValue } from '../selectors';
import { ADDRESS_FAMILIES, IP_PROTOCOLS } from '../tables';
import type { ActionSelector, ArgOperator, ArgSelector, KProbeArg, KProbeSelector, LabelSelector, TracingPolicy } from '../types';
import type { HookRef } from '../engine/types';
import { IDENTITY_WORLD, IDENTITY_WORLD_IPV4, IDENTITY_WORLD_IPV6 } from '../../enrich/cilium/reserved';
import {
  TH_PC_ACT_NOPOST,
  TH_PC_ACT_OVERRIDE,
  TH_PC_ACT_POST,
  TH_PC_ACT_SIGKILL,
  TH_PC_FAM_INET,
  TH_PC_FAM_INET6,
  TH_PC_MAX_CHECKS,
  TH_PC_MAX_PORTS,
  TH_PC_MAX_RULES,
  TH_PC_PATH_MAX,
  TH_PC_PROTO_TCP,
  TH_PC_PROTO_UDP,
} from './layout.gen';

/** What a claimed call is, as far as the cgroup hook is concerned. */
interface CallInfo {
  /** Protocols the call sees (TH_PC_PROTO_*); 0 = any. */
  protocols: number;
  /** Families the call sees (TH_PC_FAM_*); 0 = any. */
  families: number;
  /** Arg index of the socket (sock/socket), -1 = none. */
  sockIndex: number;
  /** Arg index of the destination sockaddr. */
  addrIndex: number;
  hook: 'kprobe' | 'lsm';
  /** UDP sends: also evaluated at cgroup sendmsg4/6 (datagrams with a destination). */
  sendmsg?: boolean;
}

const SYSCALL: CallInfo = { protocols: 0, families: 0, sockIndex: -1, addrIndex: 1, hook: 'kprobe' };

/** Kernel functions (kprobes) whose selectors a cgroup connect hook can evaluate. */
export const CONNECT_CALLS: ReadonlyMap<string, CallInfo> = new Map([
  ['security_socket_connect', { protocols: 0, families: 0, sockIndex: 0, addrIndex: 1, hook: 'kprobe' }],
  ['tcp_connect', { protocols: TH_PC_PROTO_TCP, families: 0, sockIndex: 0, addrIndex: -1, hook: 'kprobe' }],
  ['tcp_v4_connect', { protocols: TH_PC_PROTO_TCP, families: TH_PC_FAM_INET, sockIndex: 0, addrIndex: 1, hook: 'kprobe' }],
  ['tcp_v6_connect', { protocols: TH_PC_PROTO_TCP, families: TH_PC_FAM_INET6, sockIndex: 0, addrIndex: 1, hook: 'kprobe' }],
  ['ip4_datagram_connect', { protocols: TH_PC_PROTO_UDP, families: TH_PC_FAM_INET, sockIndex: 0, addrIndex: 1, hook: 'kprobe' }],
  ['ip6_datagram_connect', { protocols: TH_PC_PROTO_UDP, families: TH_PC_FAM_INET6, sockIndex: 0, addrIndex: 1, hook: 'kprobe' }],
  ['udp_sendmsg', { protocols: TH_PC_PROTO_UDP, families: TH_PC_FAM_INET, sockIndex: 0, addrIndex: -1, hook: 'kprobe', sendmsg: true }],
  ['udpv6_sendmsg', { protocols: TH_PC_PROTO_UDP, families: TH_PC_FAM_INET6, sockIndex: 0, addrIndex: -1, hook: 'kprobe', sendmsg: true }],
] as [string, CallInfo][]);

const SYSCALL_NAMES = new Set(['sys_connect', '__x64_sys_connect', '__arm64_sys_connect', 'connect', '__sys_connect']);

/** The call of a hook as the policy wrote it, and what it is, or why it is not a connect hook. */
export function connectCall(policy: TracingPolicy, hook: HookRef): { call: string; info: CallInfo; args: KProbeArg[]; selectors: KProbeSelector[]; section: string } | undefined {
  const spec = policy.spec;
  if (hook.list === 'kprobes') {
    const k = spec.kprobes?.[hook.index];
    if (!k) return undefined;
    const info = k.syscall ? (SYSCALL_NAMES.has(k.call) ? SYSCALL : undefined) : CONNECT_CALLS.get(k.call) ?? (SYSCALL_NAMES.has(k.call) && k.call !== 'connect' ? SYSCALL : undefined);
    if (!info) return undefined;
    return { call: k.call, info, args: k.args ?? [], selectors: k.selectors ?? [], section: `kprobes[${hook.index}]` };
  }
  if (hook.list === 'lsmhooks') {
    const l = spec.lsmhooks?.[hook.index];
    if (!l || l.hook !== 'socket_connect') return undefined;
    return { call: l.hook, info: { ...CONNECT_CALLS.get('security_socket_connect')!, hook: 'lsm' }, args: l.args ?? [], selectors: l.selectors ?? [], section: `lsmhooks[${hook.index}]` };
  }
  return undefined;
}

export interface PortRange {
  lo: number;
  hi: number;
}

/** A set filter of a rule: addresses (CIDRs) or identities. */
export type SetCheck =
  | { kind: 'addr'; negate: boolean; set: number; cidrs: string[] }
  | { kind: 'ident'; negate: boolean; set: number; identities: number[] }
  | { kind: 'labels'; negate: boolean; set: number; selector: LabelSelector };

export interface CompiledRule {
  /** Selector position in the hook. */
  index: number;
  families: number;
  protocols: number;
  ports?: PortRange[];
  notPorts?: PortRange[];
  priv?: boolean;
  notPriv?: boolean;
  /** matchBinaries: bit in the process mask, and whether NotIn. */
  binaries?: { bit: number; not: boolean; paths: string[]; followChildren: boolean };
  checks: SetCheck[];
  actions: number;
  /** Override argError (negative errno); -1 (EPERM) by default. */
  err: number;
  /** Human-readable parts, for the plan. */
  describe: string[];
}

export interface CompiledHook {
  section: string;
  call: string;
  hook: 'kprobe' | 'lsm';
  args: KProbeArg[];
  rules: CompiledRule[];
  /** Binary set bit → paths (In/NotIn sets). */
  binarySets: { bit: number; paths: string[]; followChildren: boolean }[];
  /** spec.podSelector: only sockets in the netns of matching Cilium endpoints. */
  podSelector?: LabelSelector;
  /** Any rule needs labels resolved to identities. */
  usesLabels: boolean;
  /** Also at cgroup sendmsg4/6 (udp_sendmsg hooks). */
  sendmsg: boolean;
  usesIdentity: boolean;
}

export type CompileResult = { ok: true; hook: CompiledHook } | { ok: false; reason: string };

const SOCK_TYPES = new Set(['sock', 'socket']);

/** Operators evaluated on the destination, by the arg class they are written on. */
const DEST_OPS_SOCK: ReadonlySet<ArgOperator> = new Set(['DPort', 'NotDPort', 'DPortPriv', 'NotDPortPriv', 'DAddr', 'NotDAddr', 'Family', 'Protocol', 'DIdentity', 'NotDIdentity', 'DLabels']);
const DEST_OPS_SOCKADDR: ReadonlySet<ArgOperator> = new Set(['SPort', 'NotSPort', 'SPortPriv', 'NotSPortPriv', 'SAddr', 'NotSAddr', 'Family', 'SIdentity', 'NotSIdentity', 'SLabels']);

function parsePorts(values: string[]): PortRange[] | string {
  const out: PortRange[] = [];
  for (const v of values) {
    const m = /^(\d+)(?::(\d+))?$/.exec(v);
    if (!m) return `${JSON.stringify(v)} is not a port`;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    out.push(lo <= hi ? { lo, hi } : { lo: hi, hi: lo });
  }
  if (out.length > TH_PC_MAX_PORTS) return `${out.length} port values (the cgroup connect rules take at most ${TH_PC_MAX_PORTS} ports or ranges per filter)`;
  return out;
}

function namedOrNumber(v: string, table: ReadonlyMap<string, number>): number | undefined {
  if (table.has(v)) return table.get(v);
  return /^\d+$/.test(v) ? Number(v) : undefined;
}

function cidrOk(s: string): boolean {
  const [ip, len] = s.split('/');
  const fam = isIP(ip);
  if (!fam) return false;
  return len === undefined || (/^\d+$/.test(len) && Number(len) <= (fam === 4 ? 32 : 128));
}

/** Identities a DIdentity value stands for: world also covers world-ipv4/-ipv6 (dual-stack Cilium). */
export function identitiesOf(values: string[]): number[] | string {
  const out = new Set<number>();
  for (const v of values) {
    const id = parseIdentityValue(v);
    if (id === undefined) return `${JSON.stringify(v)} is not a Cilium identity`;
    out.add(id);
    if (id === IDENTITY_WORLD) {
      out.add(IDENTITY_WORLD_IPV4);
      out.add(IDENTITY_WORLD_IPV6);
    }
  }
  return [...out];
}

function actionsOf(list: ActionSelector[] | undefined): { actions: number; err: number; describe: string[] } | string {
  if (!list || list.length === 0) return { actions: TH_PC_ACT_POST, err: -1, describe: ['Post'] };
  let actions = 0;
  let err = -1;
  const describe: string[] = [];
  for (const a of list) {
    switch (a.action) {
      case 'Post':
        if (a.rateLimit !== undefined) return 'Post with rateLimit is not evaluated at the cgroup connect hook';
        if (a.kernelStackTrace || a.userStackTrace) return 'Post with stack traces needs a kprobe';
        actions |= TH_PC_ACT_POST;
        describe.push('Post');
        break;
      case 'NoPost':
        actions |= TH_PC_ACT_NOPOST;
        describe.push('NoPost');
        break;
      case 'Override':
        actions |= TH_PC_ACT_OVERRIDE;
        err = a.argError ?? -1;
        describe.push(`Override ${err}`);
        break;
      case 'Sigkill':
        actions |= TH_PC_ACT_SIGKILL;
        describe.push('Sigkill');
        break;
      default:
        return `action ${a.action} is not carried out at the cgroup connect hook`;
    }
  }
  // Post is implied unless NoPost (an enforcement is always reported).
  if (!(actions & TH_PC_ACT_NOPOST)) actions |= TH_PC_ACT_POST;
  return { actions, err, describe };
}

const ALLOWED_FIELDS = new Set(['label', 'matchArgs', 'matchBinaries', 'matchActions', 'macros']);

/** Compiles one hook, or says why the cgroup connect hooks cannot evaluate it. */
export function compileConnectHook(policy: TracingPolicy, ref: HookRef): CompileResult {
  const c = connectCall(policy, ref);
  if (!c) return { ok: false, reason: 'not a connect-type hook' };
  const spec = policy.spec;
  if (spec.containerSelector) return { ok: false, reason: 'containerSelector is not evaluated at the cgroup connect hook' };
  if (spec.hostSelector) return { ok: false, reason: 'hostSelector is not evaluated at the cgroup connect hook' };
  const kp = ref.list === 'kprobes' ? spec.kprobes?.[ref.index] : undefined;
  if (kp?.return) return { ok: false, reason: 'return probes need a kprobe' };
  if (kp?.data?.length) return { ok: false, reason: 'data args need a kprobe' };
  const selectors = c.selectors;
  if (selectors.length === 0) return { ok: false, reason: 'a hook without selectors reports every call; the cgroup hook only reports matches' };
  if (selectors.length > TH_PC_MAX_RULES) return { ok: false, reason: `${selectors.length} selectors (at most ${TH_PC_MAX_RULES} at the cgroup connect hook)` };

  const argByIndex = new Map<number, KProbeArg>();
  for (const a of c.args) argByIndex.set(a.index, a);
  const rules: CompiledRule[] = [];
  const binarySets: CompiledHook['binarySets'] = [];
  let nextSet = 1;
  let usesLabels = false;
  let usesIdentity = false;

  for (let si = 0; si < selectors.length; si++) {
    const sel = expandSelector(selectors[si], spec.selectorsMacros);
    const where = `selectors[${si}]`;
    for (const [k, v] of Object.entries(sel)) {
      if (v === undefined || ALLOWED_FIELDS.has(k)) continue;
      return { ok: false, reason: `${where}.${k} is not evaluated at the cgroup connect hook` };
    }
    const rule: CompiledRule = { index: si, families: c.info.families, protocols: c.info.protocols, checks: [], actions: 0, err: -1, describe: [] };
    for (const [mi, m] of (sel.matchArgs ?? []).entries()) {
      const r = compileArg(m, argByIndex, c.info, c.call, rule, () => nextSet++);
      if (typeof r === 'string') return { ok: false, reason: `${where}.matchArgs[${mi}]: ${r}` };
    }
    if (rule.checks.length > TH_PC_MAX_CHECKS) return { ok: false, reason: `${where}: ${rule.checks.length} address/identity filters (at most ${TH_PC_MAX_CHECKS})` };
    for (const ch of rule.checks) {
      if (ch.kind === 'labels') usesLabels = true;
      if (ch.kind !== 'addr') usesIdentity = true;
    }
    const bins = sel.matchBinaries ?? [];
    if (bins.length > 1) return { ok: false, reason: `${where}: one matchBinaries filter per selector` };
    if (bins.length === 1 && bins[0].values.length > 0) {
      const b = bins[0];
      if (b.operator !== 'In' && b.operator !== 'NotIn') return { ok: false, reason: `${where}.matchBinaries ${b.operator} is not evaluated at the cgroup connect hook (In and NotIn are)` };
      const long = b.values.find((p) => Buffer.byteLength(p) >= TH_PC_PATH_MAX);
      if (long) return { ok: false, reason: `${where}.matchBinaries path ${long} is longer than ${TH_PC_PATH_MAX - 1} bytes` };
      if (binarySets.length >= 64) return { ok: false, reason: 'more than 64 matchBinaries filters' };
      const bit = binarySets.length;
      binarySets.push({ bit, paths: [...b.values], followChildren: b.followChildren });
      rule.binaries = { bit, not: b.operator === 'NotIn', paths: [...b.values], followChildren: b.followChildren };
      rule.describe.push(`matchBinaries ${b.operator} (${b.values.length} path${b.values.length === 1 ? '' : 's'}${b.followChildren ? ', followChildren' : ''})`);
    }
    const acts = actionsOf(sel.matchActions);
    if (typeof acts === 'string') return { ok: false, reason: `${where}.matchActions: ${acts}` };
    rule.actions = acts.actions;
    rule.err = acts.err;
    rules.push(rule);
  }
  return {
    ok: true,
    hook: { section: c.section, call: c.call, hook: c.info.hook, args: c.args, rules, binarySets, podSelector: spec.podSelector, usesLabels, usesIdentity: usesIdentity || spec.podSelector !== undefined, sendmsg: c.info.sendmsg === true },
  };
}

function compileArg(m: ArgSelector, args: Map<number, KProbeArg>, info: CallInfo, call: string, rule: CompiledRule, newSet: () => number): string | undefined {
  if (m.args && m.args.length) return 'args positions are not evaluated at the cgroup connect hook';
  const arg = args.get(m.index);
  if (!arg) return `index ${m.index} is not a declared arg`;
  const isSock = SOCK_TYPES.has(arg.type) && m.index === info.sockIndex;
  const isAddr = arg.type === 'sockaddr' && m.index === info.addrIndex;
  if (!isSock && !isAddr) return `arg index ${m.index} of ${call} (type ${arg.type}) is not the socket or the destination sockaddr seen at the cgroup connect hook`;
  if (arg.resolve) return 'resolve paths are not evaluated at the cgroup connect hook';
  const ops = isSock ? DEST_OPS_SOCK : DEST_OPS_SOCKADDR;
  if (!ops.has(m.operator)) {
    return isSock
      ? `${m.operator} on a socket is not known at connect time (the cgroup hook sees the destination, family and protocol)`
      : `${m.operator} on the destination sockaddr is not evaluated at the cgroup connect hook`;
  }
  const v = m.values;
  switch (m.operator) {
    case 'DPort':
    case 'SPort':
    case 'NotDPort':
    case 'NotSPort': {
      const p = parsePorts(v);
      if (typeof p === 'string') return p;
      const not = m.operator.startsWith('Not');
      if (not ? rule.notPorts : rule.ports) return `a second ${m.operator} filter in one selector`;
      if (not) rule.notPorts = p;
      else rule.ports = p;
      rule.describe.push(`${m.operator} (${v.join(', ')})`);
      return undefined;
    }
    case 'DPortPriv':
    case 'SPortPriv':
      rule.priv = true;
      rule.describe.push(m.operator);
      return undefined;
    case 'NotDPortPriv':
    case 'NotSPortPriv':
      rule.notPriv = true;
      rule.describe.push(m.operator);
      return undefined;
    case 'Family': {
      let fams = 0;
      for (const x of v) {
        const n = namedOrNumber(x, ADDRESS_FAMILIES);
        if (n === 2) fams |= TH_PC_FAM_INET;
        else if (n === 10) fams |= TH_PC_FAM_INET6;
        else if (n === undefined) return `${JSON.stringify(x)} is not an address family`;
      }
      // Families that can never reach connect4/6 just never match.
      rule.families = rule.families ? rule.families & fams : fams;
      if (rule.families === 0) rule.families = 0x80; // matches nothing
      rule.describe.push(`Family (${v.join(', ')})`);
      return undefined;
    }
    case 'Protocol': {
      let prots = 0;
      for (const x of v) {
        const n = namedOrNumber(x, IP_PROTOCOLS);
        if (n === 6) prots |= TH_PC_PROTO_TCP;
        else if (n === 17) prots |= TH_PC_PROTO_UDP;
        else if (n === undefined) return `${JSON.stringify(x)} is not a protocol`;
      }
      rule.protocols = rule.protocols ? rule.protocols & prots : prots;
      if (rule.protocols === 0) rule.protocols = 0x80;
      rule.describe.push(`Protocol (${v.join(', ')})`);
      return undefined;
    }
    case 'DAddr':
    case 'SAddr':
    case 'NotDAddr':
    case 'NotSAddr': {
      const bad = v.find((x) => !cidrOk(x));
      if (bad) return `${JSON.stringify(bad)} is not an address or CIDR`;
      rule.checks.push({ kind: 'addr', negate: m.operator.startsWith('Not'), set: newSet(), cidrs: [...v] });
      rule.describe.push(`${m.operator} (${v.length} CIDR${v.length === 1 ? '' : 's'}, LPM)`);
      return undefined;
    }
    case 'DIdentity':
    case 'SIdentity':
    case 'NotDIdentity':
    case 'NotSIdentity': {
      const ids = identitiesOf(v);
      if (typeof ids === 'string') return ids;
      rule.checks.push({ kind: 'ident', negate: m.operator.startsWith('Not'), set: newSet(), identities: ids });
      rule.describe.push(`${m.operator} (${v.join(', ')}) by ipcache longest-prefix match`);
      return undefined;
    }
    case 'DLabels':
    case 'SLabels':
      if (!m.labelSelector) return `${m.operator} needs a labelSelector`;
      rule.checks.push({ kind: 'labels', negate: false, set: newSet(), selector: m.labelSelector });
      rule.describe.push(`${m.operator} → identity set kept current from the Cilium API, ipcache longest-prefix match`);
      return undefined;
    default:
      return `${m.operator} is not evaluated at the cgroup connect hook`;
  }
}
