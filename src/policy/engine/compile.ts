// Compiles one hook of a TracingPolicy into the configuration of the generic
// BPF programs (bpf/policy.bpf.c, layouts in th_policy.h) for this kernel:
// where it attaches, the th_pol_cfg value, the string-set map entries, and
// the arg descriptors the decoder needs. Pure (reads tracefs formats only).
import type { FeatureProbe } from '../../kernel/types';
import type {
  ActionSelector, ArgSelector, ArgType, BinarySelector, KProbeArg, KProbeSelector, TracingPolicy,
} from '../types';
import { expandSelector } from '../parse';
import { checkSyscallSymbol } from '../syscalls';
import type { HookRef, HookStatusInfo, PolicyMapPlan } from './types';
import * as L from './layout.gen';
import { readFormat, type TraceField } from './tracefs';

/** How the decoder renders one arg (PolicyArg.t). */
export type ArgRender = 'int' | 'uint' | 'long' | 'size' | 'string' | 'bytes' | 'file' | 'path' | 'linux_binprm';

export interface ArgDesc {
  kind: number;
  render: ArgRender;
  label?: string;
}

export interface Attachment {
  program: string;
  opts?: { tracepoint?: string; kprobe?: string; retprobe?: boolean };
  what: string;
}

export interface StrEntry {
  map: 'th_pol_str_eq' | 'th_pol_str_pre' | 'th_pol_str_post';
  key: Buffer;
}

/** Process seeding data: matchBinaries per selector, evaluated in TS for processes running at load. */
export interface BinRule {
  sel: number;
  op: BinarySelector['operator'];
  values: string[];
}

export interface CompiledHook {
  ref: HookRef;
  status: HookStatusInfo;
  maps: PolicyMapPlan[];
  kernelMemoryBytes: number;
  /** Absent when the hook is not loadable here (status.state says why). */
  kernel?: {
    hookKind: 'kprobe' | 'tracepoint' | 'lsm';
    functionName: string;
    subsys?: string;
    event?: string;
    attach: Attachment[];
    programs: string[];
    /** th_pol_cfg without policy_id / flags ENABLED, MONITOR (set at load). */
    cfg: Buffer;
    strings: StrEntry[];
    args: ArgDesc[];
    ret?: ArgRender;
    binRules: BinRule[];
    binDefault: number;
    needsTasks: boolean;
    needsReturn: boolean;
    needsRate: boolean;
    message?: string;
    tags?: string[];
    mapSizes: Record<string, number>;
  };
}

export const ALL_PROGRAMS = [
  'pol_tp_enter', 'pol_tp_exit', 'pol_kp_sys_enter', 'pol_kp_enter', 'pol_kp_sys_enter_ovr', 'pol_kp_enter_ovr', 'pol_kp_exit',
  'pol_lsm_file_open', 'pol_lsm_bprm_check_security', 'pol_lsm_file_permission', 'pol_lsm_path_unlink',
  'pol_exec', 'pol_fork', 'pol_exit',
] as const;

/** LSM hooks with a program in policy.bpf.c. */
export const LSM_PROGRAMS: Readonly<Record<string, string>> = {
  file_open: 'pol_lsm_file_open',
  bprm_check_security: 'pol_lsm_bprm_check_security',
  file_permission: 'pol_lsm_file_permission',
  path_unlink: 'pol_lsm_path_unlink',
};

class Unsupported extends Error {}
/** A value or count the policy gets wrong: refuses the policy. */
class LimitError extends Error {}

interface TypeInfo {
  kind: number;
  render: ArgRender;
  size: number;
  signed: boolean;
  str: boolean;
}

const INT_TYPES: Partial<Record<ArgType, [ArgRender, number, boolean]>> = {
  int: ['int', 4, true], sint32: ['int', 4, true], int32: ['int', 4, true],
  sint16: ['int', 2, true], int16: ['int', 2, true], sint8: ['int', 1, true], int8: ['int', 1, true],
  uint32: ['uint', 4, false], uint16: ['uint', 2, false], uint8: ['uint', 1, false],
  long: ['long', 8, true], sint64: ['long', 8, true], int64: ['long', 8, true],
  ulong: ['size', 8, false], uint64: ['size', 8, false], size_t: ['size', 8, false],
};

function typeInfo(t: ArgType): TypeInfo {
  const i = INT_TYPES[t];
  if (i) return { kind: L.TH_PA_INT, render: i[0], size: i[1], signed: i[2], str: false };
  switch (t) {
    case 'string': return { kind: L.TH_PA_STR, render: 'string', size: 8, signed: false, str: true };
    case 'char_buf': return { kind: L.TH_PA_BUF, render: 'bytes', size: 8, signed: false, str: false };
    case 'fd': return { kind: L.TH_PA_FD, render: 'file', size: 4, signed: true, str: true };
    case 'file': return { kind: L.TH_PA_FILE, render: 'file', size: 8, signed: false, str: true };
    case 'path': return { kind: L.TH_PA_PATH, render: 'path', size: 8, signed: false, str: true };
    case 'linux_binprm': return { kind: L.TH_PA_BPRM, render: 'linux_binprm', size: 8, signed: false, str: true };
    default:
      throw new Unsupported(`arg type ${t} is not decoded by tetrahub's kernel programs (supported: ${[...Object.keys(INT_TYPES), 'string', 'char_buf', 'fd', 'file', 'path', 'linux_binprm'].join(', ')})`);
  }
}

/** Integer value as written (decimal, 0x / 0o / 0b, 0-prefixed octal, negative; as Go's ParseInt base 0), as u64 bits. */
export function parseIntValue(v: string): bigint {
  const s = v.trim();
  const neg = s.startsWith('-');
  const body = neg ? s.slice(1) : s;
  let n: bigint;
  if (/^0x[0-9a-f]+$/i.test(body) || /^0o[0-7]+$/i.test(body) || /^0b[01]+$/i.test(body)) n = BigInt(body.toLowerCase());
  else if (/^0[0-7]+$/.test(body)) n = BigInt('0o' + body.slice(1));
  else if (/^\d+$/.test(body)) n = BigInt(body);
  else throw new LimitError(`"${v}" is not an integer`);
  if (neg) n = -n;
  return BigInt.asUintN(64, n);
}

const STR_OPS: Partial<Record<ArgSelector['operator'], number>> = {
  Equal: L.TH_OP_STR_EQ, NotEqual: L.TH_OP_STR_NE, Prefix: L.TH_OP_PREFIX, NotPrefix: L.TH_OP_NOTPREFIX,
  Postfix: L.TH_OP_POSTFIX, NotPostfix: L.TH_OP_NOTPOSTFIX,
};
const INT_OPS: Partial<Record<ArgSelector['operator'], number>> = {
  Equal: L.TH_OP_EQ, NotEqual: L.TH_OP_NE, GT: L.TH_OP_GT, LT: L.TH_OP_LT, Mask: L.TH_OP_MASK,
};
const BIN_OPS: Record<BinarySelector['operator'], number> = {
  In: L.TH_BIN_IN, NotIn: L.TH_BIN_NOTIN, Prefix: L.TH_BIN_PREFIX, NotPrefix: L.TH_BIN_NOTPREFIX,
  Postfix: L.TH_BIN_POSTFIX, NotPostfix: L.TH_BIN_NOTPOSTFIX,
};

/** Key of th_pol_str_eq ({id, s}) or of an LPM trie ({prefixlen, id, s}). */
export function strKey(map: StrEntry['map'], id: number, value: string): Buffer {
  let bytes = Buffer.from(value, 'utf8');
  if (map === 'th_pol_str_post') bytes = Buffer.from(bytes).reverse();
  if (bytes.length >= L.TH_POL_STR_LEN) throw new LimitError(`string value ${JSON.stringify(value)} is longer than ${L.TH_POL_STR_LEN - 1} bytes (kernel match limit)`);
  if (map === 'th_pol_str_eq') {
    const k = Buffer.alloc(4 + L.TH_POL_STR_LEN);
    k.writeUInt32LE(id, 0);
    bytes.copy(k, 4);
    return k;
  }
  const k = Buffer.alloc(L.th_pol_strkey.SIZE);
  k.writeUInt32LE(32 + 8 * bytes.length, 0);
  k.writeUInt32LE(id, 4);
  bytes.copy(k, 8);
  return k;
}

/** matchBinaries semantics, for seeding processes already running at load. */
export function binaryMatches(op: BinarySelector['operator'], values: readonly string[], path: string): boolean {
  switch (op) {
    case 'In': return values.includes(path);
    case 'NotIn': return !values.includes(path);
    case 'Prefix': return values.some((v) => path.startsWith(v));
    case 'NotPrefix': return !values.some((v) => path.startsWith(v));
    case 'Postfix': return values.some((v) => path.endsWith(v));
    case 'NotPostfix': return !values.some((v) => path.endsWith(v));
  }
}

function hookOf(policy: TracingPolicy, ref: HookRef): { section: string; call: string; args: KProbeArg[]; selectors: KProbeSelector[]; message?: string; tags?: string[] } {
  const spec = policy.spec;
  const section = `${ref.list}[${ref.index}]`;
  const macros = spec.selectorsMacros;
  const sels = (h: { selectors?: KProbeSelector[] }): KProbeSelector[] => (h.selectors ?? []).map((s) => expandSelector(s, macros));
  switch (ref.list) {
    case 'kprobes': {
      const h = spec.kprobes![ref.index];
      return { section, call: h.call, args: h.args ?? [], selectors: sels(h), message: h.message, tags: h.tags };
    }
    case 'tracepoints': {
      const h = spec.tracepoints![ref.index];
      return { section, call: `${h.subsystem}/${h.event}`, args: h.args ?? [], selectors: sels(h), message: h.message, tags: h.tags };
    }
    case 'lsmhooks': {
      const h = spec.lsmhooks![ref.index];
      return { section, call: h.hook, args: h.args ?? [], selectors: sels(h), message: h.message, tags: h.tags };
    }
    case 'uprobes': {
      const h = spec.uprobes![ref.index];
      return { section, call: `${h.path}:${(h.symbols ?? []).join(',')}`, args: h.args ?? [], selectors: sels(h) };
    }
    case 'usdts': {
      const h = spec.usdts![ref.index];
      return { section, call: `${h.provider}:${h.name}`, args: h.args ?? [], selectors: sels(h) };
    }
  }
}

/** Every hook of a policy, in spec order. */
export function hookRefs(policy: TracingPolicy): HookRef[] {
  const out: HookRef[] = [];
  for (const list of ['kprobes', 'tracepoints', 'lsmhooks', 'uprobes', 'usdts'] as const) {
    const n = policy.spec[list]?.length ?? 0;
    for (let i = 0; i < n; i++) out.push({ list, index: i });
  }
  return out;
}

function reasonOf(features: FeatureProbe, key: string, dflt: string): string {
  return features.reasons[key] ?? dflt;
}

function kprobeReason(features: FeatureProbe): string {
  return reasonOf(features, 'attach.kprobe', 'kprobes are not built into this kernel');
}

function lsmUsable(features: FeatureProbe): { ok: boolean; reason: string } {
  if (!features.attach.lsm) return { ok: false, reason: `BPF-LSM programs cannot attach here: ${reasonOf(features, 'attach.lsm', 'refused by the kernel')}` };
  if (!features.lsmActive) return { ok: false, reason: 'BPF-LSM is not active ("bpf" is not in /sys/kernel/security/lsm; boot with lsm=...,bpf)' };
  return { ok: true, reason: '' };
}

function hasAction(sels: KProbeSelector[], a: ActionSelector['action']): boolean {
  return sels.some((s) => (s.matchActions ?? []).some((x) => x.action === a) || (s.matchReturnActions ?? []).some((x) => x.action === a));
}

const EST_CPUS = 2;

function memoryPlan(section: string, sizes: Record<string, number>, cpus: number): PolicyMapPlan[] {
  const m = (name: string, key: number, value: number, entries: number, over = 0): PolicyMapPlan => ({ name: `${section}:${name}`, bytes: Math.ceil((key + value + over) * entries) });
  return [
    { name: `${section}:th_pol_events`, bytes: sizes.th_pol_events },
    m('th_pol_cfg', 0, L.th_pol_cfg.SIZE, 1),
    m('th_pol_str_eq', 4 + L.TH_POL_STR_LEN, 8, sizes.th_pol_str_eq, 48),
    m('th_pol_str_pre', L.th_pol_strkey.SIZE, 8, sizes.th_pol_str_pre, 48),
    m('th_pol_str_post', L.th_pol_strkey.SIZE, 8, sizes.th_pol_str_post, 48),
    m('th_pol_tasks', 4, 8, sizes.th_pol_tasks, 48),
    m('th_pol_stash', 4, L.th_pol_event.SIZE, sizes.th_pol_stash, 48),
    m('th_pol_rate', 16, 8, sizes.th_pol_rate, 48),
    m('th_pol_counters', 0, L.th_pol_counters.SIZE * cpus, 1),
    m('th_pol_scratch', 0, 6720 * cpus, 1),
  ];
}

/**
 * Plans and compiles one hook for the generic programs. Never throws for
 * unsupported features: they come back as status.state 'unsupported' with the
 * reason; `errors` collects problems that must refuse the policy (over-limit
 * values, bad values).
 */
export function compileHook(policy: TracingPolicy, ref: HookRef, features: FeatureProbe, errors: string[], cpus = EST_CPUS): CompiledHook {
  const h = hookOf(policy, ref);
  const status: HookStatusInfo = { section: h.section, call: h.call, attachedAs: '', state: 'unsupported', inKernel: [], inUserSpace: [], actions: [] };
  const done = (reason: string): CompiledHook => ({ ref, status: { ...status, reason }, maps: [], kernelMemoryBytes: 0 });
  const path = `spec.${h.section}`;

  // --- where it attaches
  let hookKind: 'kprobe' | 'tracepoint' | 'lsm' = 'kprobe';
  let attach: Attachment[] = [];
  let exitAttach: Attachment | undefined;
  let userMem = false;
  let tpFields: TraceField[] | undefined;
  let canOverride = false;
  let overrideHow = '';
  let noOverrideWhy = '';
  let lsmName: string | undefined;
  const selsRaw = h.selectors;
  const wantsOverride = hasAction(selsRaw, 'Override');

  if (ref.list === 'kprobes') {
    const k = policy.spec.kprobes![ref.index];
    if (k.call.startsWith('list:')) return done(`list-based kprobes (${k.call}) are not expanded by tetrahub's kernel programs yet`);
    if (k.syscall) {
      const chk = checkSyscallSymbol(k.call);
      if (!chk.ok) {
        errors.push(`${path}.call: ${chk.reason}${chk.hint ? ` (${chk.hint})` : ''}`);
        return done(chk.reason);
      }
      const fn = k.call.replace(/^__x64_/, '').replace(/^sys_/, '');
      userMem = true;
      if (features.attach.kprobe) {
        canOverride = features.helpers.bpf_override_return === true;
        const prog = wantsOverride && canOverride ? 'pol_kp_sys_enter_ovr' : 'pol_kp_sys_enter';
        attach = [{ program: prog, opts: { kprobe: `__x64_sys_${fn}` }, what: `kprobe __x64_sys_${fn}` }];
        exitAttach = { program: 'pol_kp_exit', opts: { kprobe: `__x64_sys_${fn}`, retprobe: true }, what: `kretprobe __x64_sys_${fn}` };
        overrideHow = 'bpf_override_return on the syscall entry';
        noOverrideWhy = `bpf_override_return is not available (${features.reasons['helpers.bpf_override_return'] ?? 'kernel without CONFIG_BPF_KPROBE_OVERRIDE'})`;
      } else if (features.attach.tracepoint) {
        const fmt = readFormat('syscalls', `sys_enter_${fn}`);
        if ('reason' in fmt) return done(`kprobes are unavailable (${kprobeReason(features)}) and the fallback failed: ${fmt.reason}`);
        attach = [{ program: 'pol_tp_enter', opts: { tracepoint: `syscalls/sys_enter_${fn}` }, what: `tracepoint syscalls/sys_enter_${fn}` }];
        exitAttach = { program: 'pol_tp_exit', opts: { tracepoint: `syscalls/sys_exit_${fn}` }, what: `sys_exit_${fn}` };
        status.fallback = `kprobe __x64_sys_${fn} → syscall tracepoint (${kprobeReason(features)})`;
      } else {
        return done(`neither kprobes (${kprobeReason(features)}) nor tracepoints are usable here`);
      }
    } else {
      const lsmHook = k.call.startsWith('security_') ? k.call.slice('security_'.length) : undefined;
      const lsm = lsmUsable(features);
      const lsmProg = lsmHook ? LSM_PROGRAMS[lsmHook] : undefined;
      if (lsmProg && lsm.ok && (wantsOverride || !features.attach.kprobe)) {
        hookKind = 'kprobe';
        lsmName = lsmHook;
        attach = [{ program: lsmProg, what: `lsm ${lsmHook}` }];
        if (!features.attach.kprobe) status.fallback = `kprobe ${k.call} → BPF-LSM ${lsmHook} (${kprobeReason(features)})`;
        canOverride = true;
        overrideHow = 'BPF-LSM return value';
        if (k.return) return done(`return values of ${k.call} are not available through BPF-LSM (kretprobes: ${features.attach.kprobe ? 'use without Override' : kprobeReason(features)})`);
      } else if (features.attach.kprobe) {
        canOverride = features.helpers.bpf_override_return === true;
        const prog = wantsOverride && canOverride ? 'pol_kp_enter_ovr' : 'pol_kp_enter';
        attach = [{ program: prog, opts: { kprobe: k.call }, what: `kprobe ${k.call}` }];
        exitAttach = { program: 'pol_kp_exit', opts: { kprobe: k.call, retprobe: true }, what: `kretprobe ${k.call}` };
        overrideHow = 'bpf_override_return (the function must allow error injection)';
        noOverrideWhy = `bpf_override_return is not available (${features.reasons['helpers.bpf_override_return'] ?? 'kernel without CONFIG_BPF_KPROBE_OVERRIDE'})`;
      } else {
        const extra = lsmProg ? ` and BPF-LSM is not usable (${lsm.reason})` : lsmHook ? ` (no BPF-LSM program for ${lsmHook} in tetrahub: ${Object.keys(LSM_PROGRAMS).join(', ')})` : '';
        return done(`${kprobeReason(features)}${extra}`);
      }
    }
  } else if (ref.list === 'lsmhooks') {
    const name = policy.spec.lsmhooks![ref.index].hook;
    const prog = LSM_PROGRAMS[name];
    if (!prog) return done(`no BPF-LSM program for hook ${name} in tetrahub (supported: ${Object.keys(LSM_PROGRAMS).join(', ')})`);
    const lsm = lsmUsable(features);
    if (!lsm.ok) return done(lsm.reason);
    hookKind = 'lsm';
    lsmName = name;
    attach = [{ program: prog, what: `lsm ${name}` }];
    canOverride = true;
    overrideHow = 'BPF-LSM return value';
  } else if (ref.list === 'tracepoints') {
    const tp = policy.spec.tracepoints![ref.index];
    if (tp.raw) return done('raw tracepoints (raw: true) are not supported by tetrahub\'s policy programs');
    if (!features.attach.tracepoint) return done(`tracepoints cannot attach: ${reasonOf(features, 'attach.tracepoint', 'refused')}`);
    const fmt = readFormat(tp.subsystem, tp.event);
    if ('reason' in fmt) return done(fmt.reason);
    tpFields = fmt.fields;
    hookKind = 'tracepoint';
    userMem = tp.subsystem === 'syscalls';
    attach = [{ program: 'pol_tp_enter', opts: { tracepoint: `${tp.subsystem}/${tp.event}` }, what: `tracepoint ${tp.subsystem}/${tp.event}` }];
  } else {
    return done(`${ref.list} are not implemented by tetrahub's policy engine`);
  }

  try {
    // --- args
    const hookArgs = h.args;
    if (hookArgs.length > L.TH_POL_MAX_ARGS) throw new LimitError(`${path}.args: ${hookArgs.length} args; the limit is ${L.TH_POL_MAX_ARGS} per hook`);
    const cfg = Buffer.alloc(L.th_pol_cfg.SIZE);
    const args: ArgDesc[] = [];
    const typeOf: TypeInfo[] = [];
    let flags = 0;
    hookArgs.forEach((a, i) => {
      const base = L.th_pol_cfg.args + i * L.th_pol_arg.SIZE;
      let t: TypeInfo;
      if (tpFields) {
        const f = tpFields[a.index];
        if (!f) throw new LimitError(`${path}.args[${i}].index: ${a.index} is past the ${tpFields.length} fields of the tracepoint format`);
        if (a.type === 'auto') {
          if (f.dataLoc || (f.pointer && /char/.test(f.decl))) t = typeInfo('string');
          else if (f.pointer) t = { kind: L.TH_PA_INT, render: 'size', size: 8, signed: false, str: false };
          else if (f.array) throw new Unsupported(`tracepoint field ${f.name} is an array inside the record (${f.decl}); not decoded`);
          else t = { kind: L.TH_PA_INT, render: f.size === 8 ? (f.signed ? 'long' : 'size') : f.signed ? 'int' : 'uint', size: f.size, signed: f.signed, str: false };
        } else {
          t = typeInfo(a.type);
          if (t.kind === L.TH_PA_INT) t = { ...t, size: Math.min(t.size, f.size) || f.size };
        }
        if (t.kind === L.TH_PA_STR && f.dataLoc) t = { ...t, kind: L.TH_PA_DATALOC };
        else if (t.kind === L.TH_PA_STR && !f.pointer) throw new Unsupported(`tracepoint field ${f.name} (${f.decl}) is not a string pointer`);
        if (f.array) throw new Unsupported(`tracepoint field ${f.name} is an array inside the record (${f.decl}); not decoded`);
        cfg.writeUInt16LE(f.offset, base + L.th_pol_arg.off);
        cfg.writeUInt8(t.kind === L.TH_PA_DATALOC ? 4 : t.kind === L.TH_PA_INT ? t.size : 8, base + L.th_pol_arg.size);
      } else {
        t = typeInfo(a.type === 'auto' ? 'uint64' : a.type);
        if (a.index > 5) throw new LimitError(`${path}.args[${i}].index: ${a.index} is past the 6 function arguments`);
        cfg.writeUInt8(a.index, base + L.th_pol_arg.src);
        cfg.writeUInt8(t.size, base + L.th_pol_arg.size);
      }
      if (a.resolve) throw new Unsupported(`args[${i}].resolve (BTF paths) is not followed in the kernel by tetrahub`);
      if (a.returnCopy) throw new Unsupported(`args[${i}].returnCopy is not supported by tetrahub's kernel programs`);
      let af = 0;
      if (userMem && (t.kind === L.TH_PA_STR || t.kind === L.TH_PA_BUF)) af |= L.TH_AF_USER;
      if (t.signed) af |= L.TH_AF_SIGNED;
      cfg.writeUInt8(t.kind, base + L.th_pol_arg.kind);
      cfg.writeUInt8(af, base + L.th_pol_arg.flags);
      if (t.kind === L.TH_PA_BUF) {
        cfg.writeUInt32LE(L.TH_POL_BUF_MAX, base + L.th_pol_arg.max);
        if (a.sizeArgIndex) {
          if (a.sizeArgIndex > 6) throw new LimitError(`${path}.args[${i}].sizeArgIndex: ${a.sizeArgIndex} is past the 6 function arguments`);
          cfg.writeUInt8(a.sizeArgIndex, base + L.th_pol_arg.sizeidx);
        }
      }
      typeOf.push(t);
      args.push({ kind: t.kind, render: t.render, ...(a.label ? { label: a.label } : {}) });
    });
    const argPos = (s: ArgSelector, where: string): number => {
      if (s.args && s.args.length) {
        if (s.args.length !== 1) throw new Unsupported(`${where}.args with several positions (CapabilitiesGained-style) is not supported`);
        if (s.args[0] >= hookArgs.length) throw new LimitError(`${where}.args[0]: position ${s.args[0]} is past the ${hookArgs.length} args of the hook`);
        return s.args[0];
      }
      const p = hookArgs.findIndex((a) => a.index === s.index);
      if (p < 0) throw new LimitError(`${where}.index: no arg with index ${s.index} in the hook's args`);
      return p;
    };

    // --- return value
    let ret: ArgRender | undefined;
    let needsReturn = false;
    if (ref.list === 'kprobes') {
      const k = policy.spec.kprobes![ref.index];
      if (k.return) {
        needsReturn = true;
        ret = k.returnArg ? typeInfo(k.returnArg.type === 'auto' ? 'long' : k.returnArg.type).render : 'long';
        if (ret !== 'int' && ret !== 'uint' && ret !== 'long' && ret !== 'size') throw new Unsupported(`returnArg type ${k.returnArg?.type} is not decoded (integer return types only)`);
      }
    }

    // --- selectors
    let sels = selsRaw;
    if (sels.length > L.TH_POL_MAX_SEL) throw new LimitError(`${path}.selectors: ${sels.length} selectors; the limit is ${L.TH_POL_MAX_SEL} per hook`);
    if (sels.length === 0) sels = [{}];
    const strings: StrEntry[] = [];
    const binRules: BinRule[] = [];
    let binMask = 0;
    let followMask = 0;
    let binDefault = 0;
    let needsTasks = false;
    let needsRate = false;
    let overrideUnsupported = false;
    const inKernel = new Set<string>();
    const actionsOut = new Set<string>();
    sels.forEach((sel, si) => {
      const where = `${path}.selectors[${si}]`;
      const sb = L.th_pol_cfg.sel + si * L.th_pol_sel.SIZE;
      let sflags = 0;
      for (const k of ['matchNamespaces', 'matchCapabilities', 'matchNamespaceChanges', 'matchCapabilityChanges', 'matchParentBinaries', 'matchData', 'matchWorkloads'] as const) {
        const v = sel[k];
        if (v && v.length) throw new Unsupported(`${k} is not evaluated in the kernel by tetrahub yet (selectors[${si}])`);
      }
      // matchBinaries
      const mb = sel.matchBinaries ?? [];
      if (mb.length > 1) throw new LimitError(`${where}.matchBinaries: ${mb.length} entries; the limit is 1 per selector`);
      if (mb.length === 1) {
        const b = mb[0];
        const values = b.values.filter((v) => v !== '');
        sflags |= L.TH_SF_BIN;
        binMask |= 1 << si;
        needsTasks = true;
        cfg.writeUInt8(BIN_OPS[b.operator], sb + L.th_pol_sel.bin_op);
        if (b.followChildren) followMask |= 1 << si;
        if (b.operator.startsWith('Not')) binDefault |= 1 << si;
        const map: StrEntry['map'] = b.operator.endsWith('In') ? 'th_pol_str_eq' : b.operator.endsWith('Prefix') ? 'th_pol_str_pre' : 'th_pol_str_post';
        if (map === 'th_pol_str_post') flags |= L.TH_CF_BIN_REV;
        for (const v of values) strings.push({ map, key: strKey(map, L.TH_POL_BIN_ID + si, v) });
        binRules.push({ sel: si, op: b.operator, values });
        inKernel.add(`matchBinaries ${b.operator} (${values.length} path${values.length === 1 ? '' : 's'}${b.followChildren ? ', followChildren' : ''})`);
      }
      // matchPIDs
      const mp = sel.matchPIDs ?? [];
      if (mp.length > 1) throw new Unsupported(`several matchPIDs entries in one selector are not supported (selectors[${si}])`);
      if (mp.length === 1) {
        const p = mp[0];
        if (p.isNamespacePID) throw new Unsupported(`matchPIDs isNamespacePID is not evaluated in the kernel by tetrahub (selectors[${si}])`);
        if (p.values.length > L.TH_POL_MAX_PIDS) throw new LimitError(`${where}.matchPIDs[0].values: ${p.values.length} values; the limit is ${L.TH_POL_MAX_PIDS}`);
        sflags |= L.TH_SF_PIDS;
        if (p.operator === 'NotIn') sflags |= L.TH_SF_PID_NOTIN;
        if (p.followForks) {
          sflags |= L.TH_SF_PID_FOLLOW;
          needsTasks = true;
        }
        cfg.writeUInt8(p.values.length, sb + L.th_pol_sel.npids);
        p.values.forEach((v, i) => cfg.writeUInt32LE(v >>> 0, sb + L.th_pol_sel.pids + 4 * i));
        inKernel.add(`matchPIDs ${p.operator}${p.followForks ? ' followForks' : ''}`);
      }
      // matchArgs
      const ma = sel.matchArgs ?? [];
      if (ma.length > L.TH_POL_MAX_MATCH) throw new LimitError(`${where}.matchArgs: ${ma.length} filters; the limit is ${L.TH_POL_MAX_MATCH} per selector`);
      ma.forEach((m, mi) => {
        const mw = `${where}.matchArgs[${mi}]`;
        const pos = argPos(m, mw);
        const t = typeOf[pos];
        const mbase = sb + L.th_pol_sel.m + mi * L.th_pol_match.SIZE;
        const id = si * 8 + mi + 1;
        cfg.writeUInt8(pos, mbase + L.th_pol_match.arg);
        cfg.writeUInt32LE(id, mbase + L.th_pol_match.id);
        if (t.str) {
          const op = STR_OPS[m.operator];
          if (op === undefined) throw new Unsupported(`operator ${m.operator} on a ${hookArgs[pos].type} arg is not evaluated in the kernel by tetrahub (${mw})`);
          const map: StrEntry['map'] = op <= L.TH_OP_STR_NE ? 'th_pol_str_eq' : op <= L.TH_OP_NOTPREFIX ? 'th_pol_str_pre' : 'th_pol_str_post';
          if (map === 'th_pol_str_post') {
            const cur = cfg.readUInt8(L.th_pol_cfg.args + pos * L.th_pol_arg.SIZE + L.th_pol_arg.flags);
            cfg.writeUInt8(cur | L.TH_AF_REV, L.th_pol_cfg.args + pos * L.th_pol_arg.SIZE + L.th_pol_arg.flags);
            for (const v of m.values) if (Buffer.byteLength(v) > 127) throw new LimitError(`${mw}.values: Postfix value longer than 127 chars (the limit)`);
          }
          for (const v of m.values) strings.push({ map, key: strKey(map, id, v) });
          cfg.writeUInt8(op, mbase + L.th_pol_match.op);
        } else if (t.kind === L.TH_PA_INT) {
          const op = INT_OPS[m.operator];
          if (op === undefined) throw new Unsupported(`operator ${m.operator} on an integer arg is not evaluated in the kernel by tetrahub (${mw})`);
          if (m.values.length > L.TH_POL_MAX_VALS) throw new LimitError(`${mw}.values: ${m.values.length} values; the limit is ${L.TH_POL_MAX_VALS} (use InMap for more)`);
          cfg.writeUInt8(op, mbase + L.th_pol_match.op);
          cfg.writeUInt8(m.values.length, mbase + L.th_pol_match.nvals);
          m.values.forEach((v, i) => cfg.writeBigUInt64LE(parseIntValue(v), mbase + L.th_pol_match.vals + 8 * i));
        } else {
          throw new Unsupported(`matchArgs on a ${hookArgs[pos].type} arg is not evaluated in the kernel by tetrahub (${mw})`);
        }
        inKernel.add(`matchArgs[${pos}] ${m.operator}`);
      });
      cfg.writeUInt8(ma.length, sb + L.th_pol_sel.nmatch);
      // matchReturnArgs
      const mr = sel.matchReturnArgs ?? [];
      if (mr.length > L.TH_POL_MAX_RMATCH) throw new LimitError(`${where}.matchReturnArgs: ${mr.length} filters; the limit here is ${L.TH_POL_MAX_RMATCH}`);
      if (mr.length) {
        if (!exitAttach) throw new Unsupported(`matchReturnArgs needs the return of the call, which ${attach[0].what} does not give`);
        needsReturn = true;
        sflags |= L.TH_SF_RETURN;
      }
      mr.forEach((m, mi) => {
        const mw = `${where}.matchReturnArgs[${mi}]`;
        const op = INT_OPS[m.operator];
        if (op === undefined) throw new Unsupported(`matchReturnArgs operator ${m.operator} is not evaluated in the kernel by tetrahub (integers: Equal NotEqual GT LT Mask) (${mw})`);
        if (m.values.length > L.TH_POL_MAX_VALS) throw new LimitError(`${mw}.values: ${m.values.length} values; the limit is ${L.TH_POL_MAX_VALS}`);
        const mbase = sb + L.th_pol_sel.r + mi * L.th_pol_match.SIZE;
        cfg.writeUInt8(op, mbase + L.th_pol_match.op);
        cfg.writeUInt8(5, mbase + L.th_pol_match.arg);
        cfg.writeUInt8(m.values.length, mbase + L.th_pol_match.nvals);
        m.values.forEach((v, i) => cfg.writeBigUInt64LE(parseIntValue(v), mbase + L.th_pol_match.vals + 8 * i));
        inKernel.add(`matchReturnArgs ${m.operator}`);
      });
      cfg.writeUInt8(mr.length, sb + L.th_pol_sel.nret);
      // actions
      const acts = [...(sel.matchActions ?? []), ...(sel.matchReturnActions ?? [])];
      if ((sel.matchActions ?? []).length > 3) throw new LimitError(`${where}.matchActions: ${(sel.matchActions ?? []).length} actions; the limit is 3 per selector`);
      let abits = 0;
      for (const a of acts) {
        switch (a.action) {
          case 'Post':
            abits |= L.TH_ACT_POST;
            if (a.rateLimitMs) {
              needsRate = true;
              cfg.writeUInt32LE(Math.min(a.rateLimitMs, 0xffffffff), sb + L.th_pol_sel.rate_ms);
              cfg.writeUInt32LE(a.rateLimitScope === 'global' ? L.TH_RS_GLOBAL : a.rateLimitScope === 'process' ? L.TH_RS_PROCESS : L.TH_RS_THREAD, sb + L.th_pol_sel.rate_scope);
              actionsOut.add(`Post: ring buffer, rate limit ${a.rateLimit} per ${a.rateLimitScope ?? 'thread'} in the kernel`);
            } else {
              actionsOut.add('Post: ring buffer');
            }
            if (a.kernelStackTrace || a.userStackTrace || a.imaHash) throw new Unsupported(`Post kernelStackTrace/userStackTrace/imaHash are not supported by tetrahub (selectors[${si}])`);
            break;
          case 'NoPost':
            abits |= L.TH_ACT_NOPOST;
            actionsOut.add('NoPost: in the kernel');
            break;
          case 'Sigkill':
            abits |= L.TH_ACT_SIGKILL;
            actionsOut.add('Sigkill: bpf_send_signal(SIGKILL)');
            break;
          case 'Signal':
            abits |= L.TH_ACT_SIGNAL;
            cfg.writeUInt32LE(a.argSig ?? 0, sb + L.th_pol_sel.sig);
            actionsOut.add(`Signal ${a.argSig}: bpf_send_signal`);
            break;
          case 'Override':
            abits |= L.TH_ACT_OVERRIDE;
            cfg.writeInt32LE(Math.abs(a.argError ?? 1) | 0, sb + L.th_pol_sel.err);
            if (canOverride) {
              actionsOut.add(`Override ${a.argError}: ${overrideHow}`);
            } else {
              overrideUnsupported = true;
              const alt = acts.some((x) => x.action === 'Sigkill') ? '; Sigkill in the same selector still kills the caller' : '';
              const why = noOverrideWhy || `${attach[0].what} cannot change a return value${status.fallback ? ` (kprobes unavailable: ${kprobeReason(features)})` : ''}`;
              actionsOut.add(`Override ${a.argError}: NOT enforced — ${why}${alt}`);
            }
            break;
          default:
            throw new Unsupported(`action ${a.action} is not carried out by tetrahub's kernel programs (selectors[${si}])`);
        }
      }
      if (!acts.length) {
        abits |= L.TH_ACT_POST;
        actionsOut.add('Post: ring buffer');
      }
      cfg.writeUInt32LE(sflags, sb + L.th_pol_sel.flags);
      cfg.writeUInt32LE(abits, sb + L.th_pol_sel.actions);
    });
    if (needsReturn) flags |= L.TH_CF_RETURN;
    if (tpFields) flags |= L.TH_CF_TP_FIELDS;
    cfg.writeUInt32LE(flags, L.th_pol_cfg.flags);
    cfg.writeUInt8(hookArgs.length, L.th_pol_cfg.nargs);
    cfg.writeUInt8(sels.length, L.th_pol_cfg.nsel);
    cfg.writeUInt32LE(binMask, L.th_pol_cfg.bin_mask);
    cfg.writeUInt32LE(followMask, L.th_pol_cfg.follow_mask);
    cfg.writeUInt32LE(binDefault, L.th_pol_cfg.bin_default);

    const count = (m: StrEntry['map']): number => strings.filter((s) => s.map === m).length;
    if (strings.length > 4096) throw new LimitError(`${path}: ${strings.length} string values; the limit is 4096 per hook`);
    const mapSizes: Record<string, number> = {
      th_pol_events: L.TH_POL_EVENTS_DEFAULT_BYTES,
      th_pol_str_eq: Math.max(1, count('th_pol_str_eq')),
      th_pol_str_pre: Math.max(1, count('th_pol_str_pre')),
      th_pol_str_post: Math.max(1, count('th_pol_str_post')),
      th_pol_tasks: needsTasks ? L.TH_POL_TASK_ENTRIES : 1,
      th_pol_stash: needsReturn ? L.TH_POL_STASH_ENTRIES : 1,
      th_pol_rate: needsRate ? L.TH_POL_RATE_ENTRIES : 1,
    };
    const programs = attach.map((a) => a.program);
    if (needsReturn && exitAttach) {
      attach = [...attach, exitAttach];
      programs.push(exitAttach.program);
      if (exitAttach.what.startsWith('sys_exit_')) {
        attach[0] = { ...attach[0], what: `${attach[0].what} + ${exitAttach.what}` };
      }
    }
    if (needsTasks) programs.push('pol_exec', 'pol_fork', 'pol_exit');
    const maps = memoryPlan(h.section, mapSizes, cpus);
    const kernelMemoryBytes = maps.reduce((a, m) => a + m.bytes, 0);
    const attachedAs = attach.filter((a) => !a.what.startsWith('sys_exit_')).map((a) => a.what).join(' + ');
    const st: HookStatusInfo = {
      ...status,
      attachedAs,
      state: 'loaded',
      inKernel: [...inKernel],
      inUserSpace: [],
      actions: [...actionsOut],
      ...(overrideUnsupported ? { reason: 'Override cannot be enforced on this attachment (see actions)' } : {}),
    };
    const functionName = ref.list === 'lsmhooks' ? h.call : h.call;
    return {
      ref,
      status: st,
      maps,
      kernelMemoryBytes,
      kernel: {
        hookKind: ref.list === 'tracepoints' ? 'tracepoint' : ref.list === 'lsmhooks' ? 'lsm' : hookKind,
        functionName: lsmName && ref.list === 'lsmhooks' ? h.call : functionName,
        ...(ref.list === 'tracepoints' ? { subsys: policy.spec.tracepoints![ref.index].subsystem, event: policy.spec.tracepoints![ref.index].event } : {}),
        attach,
        programs,
        cfg,
        strings,
        args,
        ...(ret ? { ret } : {}),
        binRules,
        binDefault,
        needsTasks,
        needsReturn,
        needsRate,
        ...(h.message ? { message: h.message.slice(0, 256) } : {}),
        ...(h.tags ? { tags: h.tags } : {}),
        mapSizes,
      },
    };
  } catch (e) {
    if (e instanceof LimitError) {
      errors.push(e.message);
      return done(e.message);
    }
    if (e instanceof Unsupported) return done(e.message);
    throw e;
  }
}

/** Whether the hook's Override is not enforceable (strict mode refuses it). */
export function overrideNotEnforced(c: CompiledHook): boolean {
  return c.status.actions.some((a) => a.startsWith('Override') && a.includes('NOT enforced'));
}
