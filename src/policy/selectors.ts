// Selector validation: match* filters, arg operators against arg types, value
// syntax, actions and their parameters (tetragon-api.md §10.5–§10.8).
import { isIP } from 'node:net';
import type {
  ActionName, ActionSelector, ArgOperator, ArgSelector, BinaryOperator, BinarySelector, CapabilitiesSelector, CapabilityType,
  HookKind, KProbeArg, KProbeSelector, LabelSelector, ListSpec, NamespaceChangesSelector, NamespaceSelector, NamespaceType,
  PidSelector, PolicyKind, RateLimitScope, WorkloadSelector,
} from './types';
import { ARG_OPERATORS } from './types';
import {
  ACTION_BY_LOWER, ACTION_FIELDS, ACTION_PARAMS, ADDRESS_FAMILIES, ARG_TYPE_INFO, BINARY_OPERATORS, BINARY_OPERATOR_ALIASES,
  CAPABILITIES, CAPABILITY_TYPES, DEPRECATED_ACTIONS, FAMILY_CLASSES, FILETYPE_ARG_TYPES, FILE_TYPES, IP_PROTOCOLS, LIMITS,
  NAMESPACE_BY_LOWER, NAMESPACE_TYPES, OPERATOR_ALIASES, OPERATOR_INFO, TCP_STATES, operatorsForClass,
} from './tables';
import type { ArgClass, OperatorFamily } from './tables';
import {
  Diag, Rec, asRec, at, byteLength, checkFields, didYouMean, has, idx, intValue, oneOf, readBool, readInt,
  readList, readString, readStringList, show,
} from './reader';
import { readLabelSelector } from './labels';
import { reservedIdentity } from '../enrich/cilium/reserved';

/** Policy-wide state the selectors consult and feed. */
export interface PolicyCtx {
  d: Diag;
  kind: PolicyKind;
  lists: ReadonlyMap<string, ListSpec>;
  /** Lists whose declaration was invalid: references to them stay quiet. */
  brokenLists: ReadonlySet<string>;
  usedLists: Set<string>;
  /** Raw macro bodies by name (validated per using hook). */
  macros: ReadonlyMap<string, { raw: unknown; path: string }>;
  usedMacros: Set<string>;
  hasEnforcer: boolean;
  /** Paths of NotifyEnforcer actions, checked against spec.enforcers at the end. */
  notifyEnforcerPaths: string[];
  followChildren: number;
  followChildrenPaths: string[];
}

/** What a selector can refer to in the hook that owns it. */
export interface HookCtx {
  kind: HookKind;
  path: string;
  /** Declared args by position (undefined where the declaration was broken). */
  args: ReadonlyArray<KProbeArg | undefined>;
  /** Indexes of arg declarations that were themselves invalid (undefined = index unreadable): filters on them stay quiet. */
  brokenArgs: ReadonlySet<number | undefined>;
  data: ReadonlyArray<KProbeArg | undefined>;
  returnArg?: KProbeArg;
  /** `return: true` on a hook that supports it. */
  hasReturn: boolean;
}

export const SELECTOR_FIELDS = [
  'label', 'matchPIDs', 'matchArgs', 'matchData', 'matchReturnArgs', 'matchBinaries', 'matchParentBinaries', 'matchNamespaces',
  'matchCapabilities', 'matchNamespaceChanges', 'matchCapabilityChanges', 'matchWorkloads', 'matchActions', 'matchReturnActions', 'macros',
] as const;
type SelectorField = Exclude<(typeof SELECTOR_FIELDS)[number], 'macros'>;

// ---------------------------------------------------------------------------
// selector

/**
 * Validates one selector. With `hook` undefined (a macro checked on its own) the
 * checks that need the hook's args are skipped.
 */
export function readSelector(p: PolicyCtx, v: unknown, path: string, hook: HookCtx | undefined, inMacro = false): KProbeSelector | undefined {
  const d = p.d;
  if (!d.step()) return undefined;
  if (v === null || v === undefined) {
    d.error(path, 'empty selector', 'remove it, or write {} to match every call');
    return undefined;
  }
  const r = asRec(d, v, path, 'a selector');
  if (!r) return undefined;
  checkFields(d, r, path, SELECTOR_FIELDS, 'a selector');
  const before = d.errors.length;
  const out: KProbeSelector = {};

  const label = readString(d, r, 'label', path);
  if (label !== undefined) out.label = label;

  const pids = readList(d, r, 'matchPIDs', path);
  if (pids) out.matchPIDs = collect(d, pids, at(path, 'matchPIDs'), (e, ep) => readPid(d, e, ep));

  const bins = readList(d, r, 'matchBinaries', path);
  if (bins) out.matchBinaries = readBinaries(p, bins, at(path, 'matchBinaries'), 'matchBinaries', hook !== undefined);
  const pbins = readList(d, r, 'matchParentBinaries', path);
  if (pbins) out.matchParentBinaries = readBinaries(p, pbins, at(path, 'matchParentBinaries'), 'matchParentBinaries', hook !== undefined);

  const ns = readList(d, r, 'matchNamespaces', path);
  if (ns) {
    if (ns.length > LIMITS.namespaceFilters) d.error(idx(at(path, 'matchNamespaces'), LIMITS.namespaceFilters), `too many matchNamespaces filters (${ns.length}; at most ${LIMITS.namespaceFilters})`);
    out.matchNamespaces = collect(d, ns, at(path, 'matchNamespaces'), (e, ep) => readNamespace(d, e, ep));
  }
  const nsc = readList(d, r, 'matchNamespaceChanges', path);
  if (nsc) {
    if (nsc.length > LIMITS.namespaceChangeFilters) d.error(idx(at(path, 'matchNamespaceChanges'), 1), `only one matchNamespaceChanges filter is supported (got ${nsc.length})`, 'put all namespace types in one filter\'s values');
    out.matchNamespaceChanges = collect(d, nsc, at(path, 'matchNamespaceChanges'), (e, ep) => readNamespaceChange(d, e, ep));
  }
  const caps = readList(d, r, 'matchCapabilities', path);
  if (caps) out.matchCapabilities = collect(d, caps, at(path, 'matchCapabilities'), (e, ep) => readCapabilities(d, e, ep));
  const capc = readList(d, r, 'matchCapabilityChanges', path);
  if (capc) out.matchCapabilityChanges = collect(d, capc, at(path, 'matchCapabilityChanges'), (e, ep) => readCapabilities(d, e, ep));

  if (has(r, 'matchWorkloads')) {
    const w = r.matchWorkloads;
    const list = Array.isArray(w) ? w : [w];
    const wp = at(path, 'matchWorkloads');
    out.matchWorkloads = collect(d, list, wp, (e, ep) => readWorkload(p, e, Array.isArray(w) ? ep : wp));
  }

  const margs = readList(d, r, 'matchArgs', path);
  if (margs) out.matchArgs = collect(d, margs, at(path, 'matchArgs'), (e, ep) => readArgSelector(p, e, ep, hook ? argsResolver(hook) : undefined));
  const mdata = readList(d, r, 'matchData', path);
  if (mdata) out.matchData = collect(d, mdata, at(path, 'matchData'), (e, ep) => readArgSelector(p, e, ep, hook ? dataResolver(hook) : undefined));
  const mret = readList(d, r, 'matchReturnArgs', path);
  if (mret) {
    if (hook && !hook.hasReturn) {
      d.error(at(path, 'matchReturnArgs'), 'matchReturnArgs needs a return probe with a returnArg', hookSupportsReturn(hook.kind) ? 'set return: true and returnArg: {index: 0, type: int} on the hook' : `${hook.kind} hooks have no return value`);
    } else {
      out.matchReturnArgs = collect(d, mret, at(path, 'matchReturnArgs'), (e, ep) => readArgSelector(p, e, ep, hook ? returnResolver(hook) : undefined));
    }
  }

  const acts = readList(d, r, 'matchActions', path);
  if (acts) out.matchActions = readActions(p, acts, at(path, 'matchActions'), hook, false);
  const racts = readList(d, r, 'matchReturnActions', path);
  if (racts) {
    if (hook && !hook.hasReturn) d.error(at(path, 'matchReturnActions'), 'matchReturnActions run at function return, but this hook has no return probe', hookSupportsReturn(hook.kind) ? 'set return: true and a returnArg on the hook' : `${hook.kind} hooks have no return probe`);
    else out.matchReturnActions = readActions(p, racts, at(path, 'matchReturnActions'), hook, true);
  }

  const macros = readStringList(d, r, 'macros', path);
  if (macros) {
    if (inMacro) d.error(at(path, 'macros'), 'a macro cannot use other macros');
    else out.macros = macros;
  }

  if (!inMacro && macros && hook) expandMacros(p, out, path, hook);
  else checkSelectorLimits(d, out, path);
  return d.errors.length === before ? out : undefined;
}

function hookSupportsReturn(kind: HookKind): boolean {
  return kind === 'kprobe' || kind === 'fentry' || kind === 'uprobe';
}

/** Merges macro bodies into a (copy of a) selector for limit checks; reports missing macros and field clashes. */
function expandMacros(p: PolicyCtx, sel: KProbeSelector, path: string, hook: HookCtx): void {
  const owner = new Map<SelectorField, string>();
  for (const f of SELECTOR_FIELDS) if (f !== 'macros' && sel[f] !== undefined) owner.set(f, 'this selector');
  const merged: KProbeSelector = { ...sel };
  // A part over the limit on its own is reported at that part; only the sum is checked here.
  let partOver = argFilterCount(sel) > LIMITS.argFiltersPerSelector;
  checkSelectorLimits(p.d, sel, path);
  (sel.macros ?? []).forEach((name, i) => {
    const mp = idx(at(path, 'macros'), i);
    const m = p.macros.get(name);
    if (!m) {
      p.d.error(mp, `unknown macro ${show(name)}`, didYouMean(name, p.macros.keys()) ?? (p.macros.size ? `defined macros: ${[...p.macros.keys()].join(', ')}` : 'define it under spec.selectorsMacros'));
      return;
    }
    p.usedMacros.add(name);
    const body = readSelector(p, m.raw, m.path, hook, true);
    if (!body) return;
    if (argFilterCount(body) > LIMITS.argFiltersPerSelector) partOver = true;
    for (const f of SELECTOR_FIELDS) {
      if (f === 'macros' || body[f] === undefined) continue;
      const prev = owner.get(f);
      if (prev) {
        p.d.error(mp, `macro ${show(name)} sets ${f}, which ${prev} also sets`, 'a field may come from the selector or from one macro, not both');
        continue;
      }
      owner.set(f, `macro ${show(name)}`);
      (merged as Record<string, unknown>)[f] = body[f];
    }
  });
  if (!partOver) checkSelectorLimits(p.d, merged, path, true);
}

function argFilterCount(s: KProbeSelector): number {
  return (s.matchArgs?.length ?? 0) + (s.matchData?.length ?? 0);
}

function checkSelectorLimits(d: Diag, s: KProbeSelector, path: string, merged = false): void {
  const filters = argFilterCount(s);
  if (filters > LIMITS.argFiltersPerSelector) {
    d.error(merged ? at(path, 'macros') : at(path, 'matchArgs'), `too many argument filters: matchArgs + matchData = ${filters} (at most ${LIMITS.argFiltersPerSelector} per selector)`, 'split the filters across selectors, or use InMap for many values');
  }
}

function collect<T>(d: Diag, list: unknown[], path: string, read: (v: unknown, p: string) => T | undefined): T[] {
  const out: T[] = [];
  for (let i = 0; i < list.length; i++) {
    if (!d.step()) break;
    const r = read(list[i], idx(path, i));
    if (r !== undefined) out.push(r);
  }
  return out;
}

// ---------------------------------------------------------------------------
// matchPIDs / matchBinaries / namespaces / capabilities / workloads

function readInOut(d: Diag, r: Rec, path: string, what: string): 'In' | 'NotIn' | undefined {
  const op = readString(d, r, 'operator', path, { required: true });
  if (op === undefined) return undefined;
  if (op === 'In' || op === 'NotIn') return op;
  d.error(at(path, 'operator'), `${show(op)} is not a ${what} operator`, didYouMean(op, ['In', 'NotIn']) ?? 'use In or NotIn');
  return undefined;
}

function readPid(d: Diag, v: unknown, path: string): PidSelector | undefined {
  const r = asRec(d, v, path, 'a matchPIDs filter');
  if (!r) return undefined;
  checkFields(d, r, path, ['operator', 'values', 'isNamespacePID', 'followForks'], 'a matchPIDs filter');
  const operator = readInOut(d, r, path, 'matchPIDs');
  const list = readList(d, r, 'values', path, { required: true, what: 'process IDs' });
  const values: number[] = [];
  if (list) {
    const vp = at(path, 'values');
    if (list.length === 0) d.error(vp, 'values must list at least one PID');
    if (list.length > LIMITS.pidValues) d.error(idx(vp, LIMITS.pidValues), `too many PIDs (${list.length}; at most ${LIMITS.pidValues} per filter)`, 'add another matchPIDs filter or selector');
    list.forEach((x, i) => {
      const n = intValue(d, x, idx(vp, i), { min: 0, max: 4294967295 });
      if (n !== undefined) values.push(n);
    });
  }
  const isNamespacePID = readBool(d, r, 'isNamespacePID', path) ?? false;
  const followForks = readBool(d, r, 'followForks', path) ?? false;
  if (!operator || !list) return undefined;
  return { operator, values, isNamespacePID, followForks };
}

function readBinaries(p: PolicyCtx, list: unknown[], path: string, field: string, countFollow: boolean): BinarySelector[] {
  const d = p.d;
  if (list.length > LIMITS.binariesSelectorsPerSelector) {
    d.error(idx(path, 1), `only one ${field} filter is allowed per selector (got ${list.length})`, `merge the values into one filter, or use another selector`);
  }
  return collect(d, list, path, (v, ep) => readBinary(p, v, ep, field, countFollow));
}

function readBinary(p: PolicyCtx, v: unknown, path: string, field: string, countFollow: boolean): BinarySelector | undefined {
  const d = p.d;
  const r = asRec(d, v, path, `a ${field} filter`);
  if (!r) return undefined;
  checkFields(d, r, path, ['operator', 'values', 'followChildren'], `a ${field} filter`);
  const raw = readString(d, r, 'operator', path, { required: true });
  let operator: BinaryOperator | undefined;
  if (raw !== undefined) {
    operator = (BINARY_OPERATORS as readonly string[]).includes(raw) ? (raw as BinaryOperator) : BINARY_OPERATOR_ALIASES.get(raw);
    if (!operator) {
      const hint = ['Equal', 'eq'].includes(raw) ? 'binaries use In (exact path), not Equal' : didYouMean(raw, BINARY_OPERATORS) ?? `use ${BINARY_OPERATORS.join(', ')}`;
      d.error(at(path, 'operator'), `${show(raw)} is not a ${field} operator`, hint);
    } else if (operator !== raw) {
      d.warn(at(path, 'operator'), `${show(raw)} is accepted by Tetragon's parser but not by the CRD schema`, `write "${operator}"`);
    }
  }
  const values = readStringList(d, r, 'values', path) ?? [];
  const vp = at(path, 'values');
  const followChildren = readBool(d, r, 'followChildren', path) ?? false;
  if (!has(r, 'values')) d.error(vp, '"values" is required (binary paths)');
  else if (Array.isArray(r.values) && r.values.length === 0) d.warn(vp, `an empty ${field} filter is ignored`, 'add binary paths or remove the filter');
  if (operator) {
    values.forEach((b, i) => {
      const n = byteLength(b);
      const ip = idx(vp, i);
      if (operator === 'In' || operator === 'NotIn') {
        if (n > LIMITS.binaryPathBytes) d.error(ip, `binary path is ${n} bytes; at most ${LIMITS.binaryPathBytes}`);
        else if (!b.startsWith('/')) d.warn(ip, `${show(b)} is not an absolute path; In/NotIn compare the full executable path`, 'write the full path, e.g. /usr/bin/curl, or use Postfix');
      } else if (operator === 'Prefix' || operator === 'NotPrefix') {
        if (n > LIMITS.prefixBytes) d.error(ip, `prefix is ${n} bytes; at most ${LIMITS.prefixBytes}`);
      } else if (n > LIMITS.postfixBytes) {
        d.error(ip, `postfix is ${n} bytes; at most ${LIMITS.postfixBytes}`);
      }
      if (b === '') d.error(ip, 'empty binary path');
    });
    if (followChildren && operator !== 'In' && operator !== 'NotIn') {
      d.error(at(path, 'followChildren'), `followChildren works only with In and NotIn, not ${operator}`);
    } else if (followChildren && countFollow) {
      p.followChildren++;
      p.followChildrenPaths.push(at(path, 'followChildren'));
    }
  }
  if (!operator) return undefined;
  return { operator, values, followChildren };
}

function readNamespaceName(d: Diag, raw: string, path: string): NamespaceType | undefined {
  const ns = NAMESPACE_BY_LOWER.get(raw.toLowerCase());
  if (!ns) {
    d.error(path, `${show(raw)} is not a namespace type`, didYouMean(raw, NAMESPACE_TYPES) ?? `use ${NAMESPACE_TYPES.join(', ')}`);
    return undefined;
  }
  if (ns !== raw) d.warn(path, `namespace types are spelled ${show(ns)} in the CRD schema`, `write "${ns}"`);
  return ns;
}

function readNamespace(d: Diag, v: unknown, path: string): NamespaceSelector | undefined {
  const r = asRec(d, v, path, 'a matchNamespaces filter');
  if (!r) return undefined;
  checkFields(d, r, path, ['namespace', 'operator', 'values'], 'a matchNamespaces filter');
  const raw = readString(d, r, 'namespace', path, { required: true });
  const namespace = raw === undefined ? undefined : readNamespaceName(d, raw, at(path, 'namespace'));
  const operator = readInOut(d, r, path, 'matchNamespaces');
  const values = readStringList(d, r, 'values', path, { required: true, nonEmpty: true, what: 'namespace inode numbers or host_ns' });
  if (values) {
    const vp = at(path, 'values');
    if (values.length > LIMITS.namespaceValues) d.error(idx(vp, LIMITS.namespaceValues), `too many values (${values.length}; at most ${LIMITS.namespaceValues} per matchNamespaces filter)`);
    values.forEach((x, i) => {
      if (x === 'host_ns') return;
      if (!/^\d+$/.test(x) || Number(x) > 4294967295) d.error(idx(vp, i), `${show(x)} is not a namespace inode number or "host_ns"`, /host/i.test(x) ? 'write "host_ns"' : undefined);
    });
  }
  if (!namespace || !operator || !values) return undefined;
  return { namespace, operator, values };
}

function readNamespaceChange(d: Diag, v: unknown, path: string): NamespaceChangesSelector | undefined {
  const r = asRec(d, v, path, 'a matchNamespaceChanges filter');
  if (!r) return undefined;
  checkFields(d, r, path, ['operator', 'values'], 'a matchNamespaceChanges filter');
  const operator = readInOut(d, r, path, 'matchNamespaceChanges');
  const raw = readStringList(d, r, 'values', path, { required: true, nonEmpty: true, what: 'namespace types' });
  const values: NamespaceType[] = [];
  let ok = raw !== undefined;
  raw?.forEach((x, i) => {
    const ns = readNamespaceName(d, x, idx(at(path, 'values'), i));
    if (ns) values.push(ns);
    else ok = false;
  });
  if (!operator || !ok) return undefined;
  return { operator, values };
}

/** Capability name → canonical kernel name (accepts `dac_override`, `CAP_dac_override`, the proto's `DAC_OVERRIDE`). */
export function canonicalCapability(raw: string): string | undefined {
  const up = raw.trim().toUpperCase();
  if (CAPABILITIES.has(up)) return up;
  if (CAPABILITIES.has(`CAP_${up}`)) return `CAP_${up}`;
  return undefined;
}

function readCapabilityName(d: Diag, raw: string, path: string): string | undefined {
  const cap = canonicalCapability(raw);
  if (!cap) {
    d.error(path, `${show(raw)} is not a Linux capability`, didYouMean(raw.toUpperCase().startsWith('CAP_') ? raw.toUpperCase() : `CAP_${raw.toUpperCase()}`, CAPABILITIES.keys()) ?? 'use CAP_* names such as CAP_SYS_ADMIN');
    return undefined;
  }
  // Tetragon looks names up in its proto enum, which spells #1 without the prefix.
  if (cap === 'CAP_DAC_OVERRIDE' && raw.trim().toUpperCase() === 'CAP_DAC_OVERRIDE') {
    d.warn(path, 'Tetragon spells this capability "DAC_OVERRIDE" (no CAP_ prefix) and refuses "CAP_DAC_OVERRIDE"', 'write "DAC_OVERRIDE" if the policy must also load on Tetragon');
  }
  return cap;
}

function readCapabilities(d: Diag, v: unknown, path: string): CapabilitiesSelector | undefined {
  const r = asRec(d, v, path, 'a capabilities filter');
  if (!r) return undefined;
  checkFields(d, r, path, ['type', 'operator', 'isNamespaceCapability', 'values'], 'a capabilities filter');
  let type: CapabilityType = 'Effective';
  const rawType = readString(d, r, 'type', path);
  let ok = true;
  if (rawType !== undefined) {
    const t = CAPABILITY_TYPES.find((c) => c.toLowerCase() === rawType.toLowerCase());
    if (!t) {
      d.error(at(path, 'type'), `${show(rawType)} is not a capability set`, didYouMean(rawType, CAPABILITY_TYPES) ?? 'use Effective, Inheritable or Permitted');
      ok = false;
    } else {
      if (t !== rawType) d.warn(at(path, 'type'), `capability sets are spelled ${show(t)} in the CRD schema`, `write "${t}"`);
      type = t;
    }
  }
  const operator = readInOut(d, r, path, 'capabilities');
  const isNamespaceCapability = readBool(d, r, 'isNamespaceCapability', path) ?? false;
  const raw = readStringList(d, r, 'values', path, { required: true, nonEmpty: true, what: 'capability names' });
  const values: string[] = [];
  raw?.forEach((x, i) => {
    const c = readCapabilityName(d, x, idx(at(path, 'values'), i));
    if (c) values.push(c);
    else ok = false;
  });
  if (!operator || !raw || !ok) return undefined;
  return { type, operator, isNamespaceCapability, values };
}

function readWorkload(p: PolicyCtx, v: unknown, path: string): WorkloadSelector | undefined {
  const d = p.d;
  const r = asRec(d, v, path, 'a matchWorkloads entry');
  if (!r) return undefined;
  checkFields(d, r, path, ['podSelector', 'containerSelector', 'hostSelector'], 'a matchWorkloads entry');
  const out: WorkloadSelector = {};
  const before = d.errors.length;
  const pod = readLabelSelector(d, r.podSelector, at(path, 'podSelector'), { what: 'podSelector', ciliumSources: true });
  if (pod) out.podSelector = pod;
  const ctr = readLabelSelector(d, r.containerSelector, at(path, 'containerSelector'), { what: 'containerSelector' });
  if (ctr) out.containerSelector = ctr;
  const host = readLabelSelector(d, r.hostSelector, at(path, 'hostSelector'), { what: 'hostSelector' });
  if (host) {
    if (p.kind === 'TracingPolicyNamespaced') d.error(at(path, 'hostSelector'), 'a TracingPolicyNamespaced cannot select host processes');
    else if (Object.keys(host.matchLabels ?? {}).length || (host.matchExpressions ?? []).length) d.error(at(path, 'hostSelector'), 'hostSelector must be null or {} (all host processes)');
    out.hostSelector = host;
  }
  return d.errors.length === before ? out : undefined;
}

// ---------------------------------------------------------------------------
// argument filters

interface ArgRef {
  arg?: KProbeArg;
  /** Why the reference failed. */
  problem?: string;
  hint?: string;
}
type Resolver = { byIndex(index: number): ArgRef; byPosition(pos: number): ArgRef; what: string };

function declaredList(list: ReadonlyArray<KProbeArg | undefined>): string {
  const idxs = list.filter((a): a is KProbeArg => a !== undefined).map((a) => String(a.index));
  return idxs.length ? `declared arg indexes: ${idxs.join(', ')}` : 'the hook declares no args';
}

function argsResolver(h: HookCtx): Resolver {
  return {
    what: 'args',
    byIndex(index) {
      const found = h.args.find((a) => a !== undefined && a.index === index);
      if (found) return { arg: found };
      if (h.brokenArgs.has(index) || h.brokenArgs.has(undefined)) return {}; // the declaration's own error was reported
      return { problem: `index ${index} does not refer to a declared arg (${declaredList(h.args)})`, hint: `add {index: ${index}, type: …} to the hook's args` };
    },
    byPosition(pos) {
      if (pos < h.args.length) return h.args[pos] ? { arg: h.args[pos] } : {};
      return { problem: `args position ${pos} is beyond the ${h.args.length} declared args`, hint: 'args[] in a filter counts positions in the hook\'s args list, from 0' };
    },
  };
}

function dataResolver(h: HookCtx): Resolver {
  const byPosition = (pos: number): ArgRef => {
    if (pos < h.data.length) return h.data[pos] ? { arg: h.data[pos] } : {};
    return { problem: `matchData index ${pos} is beyond the ${h.data.length} declared data entries`, hint: 'matchData indexes count positions in the hook\'s data list, from 0' };
  };
  return { what: 'data', byIndex: byPosition, byPosition };
}

function returnResolver(h: HookCtx): Resolver {
  const ret = h.returnArg;
  return {
    what: 'returnArg',
    byIndex(index) {
      if (ret && ret.index === index) return { arg: ret };
      return { problem: `matchReturnArgs index ${index} does not match returnArg (index ${ret?.index ?? '?'})`, hint: `use index: ${ret?.index ?? 0}` };
    },
    byPosition(pos) {
      return pos === 0 && ret ? { arg: ret } : { problem: 'matchReturnArgs can only refer to the returnArg (position 0)' };
    },
  };
}

/** Operator spelling → canonical, with an optional non-CRD-spelling warning. */
function resolveOperator(d: Diag, raw: string, path: string): ArgOperator | undefined {
  if ((ARG_OPERATORS as readonly string[]).includes(raw)) return raw as ArgOperator;
  const alias = OPERATOR_ALIASES.get(raw);
  if (alias) {
    if (!alias.crd) d.warn(path, `${show(raw)} is accepted by Tetragon's parser but not by the CRD schema (kubectl apply would refuse it)`, `write "${alias.op}"`);
    return alias.op;
  }
  if (raw === 'In' || raw === 'NotIn') {
    d.error(path, `${raw} is a matchBinaries/matchPIDs operator, not an argument operator`, `use ${raw === 'In' ? 'Equal' : 'NotEqual'}`);
    return undefined;
  }
  d.error(path, `unknown operator ${show(raw)}`, didYouMean(raw, [...ARG_OPERATORS, ...OPERATOR_ALIASES.keys()]) ?? `use ${oneOf([...ARG_OPERATORS])}`);
  return undefined;
}

function readArgSelector(p: PolicyCtx, v: unknown, path: string, res: Resolver | undefined): ArgSelector | undefined {
  const d = p.d;
  const r = asRec(d, v, path, 'an argument filter');
  if (!r) return undefined;
  checkFields(d, r, path, ['index', 'args', 'operator', 'values', 'labelSelector'], 'an argument filter');
  const before = d.errors.length;

  // v1.5 `args` (positions) overrides `index`, which is then optional.
  let positions: number[] | undefined;
  const argsList = readList(d, r, 'args', path);
  if (argsList) {
    positions = [];
    argsList.forEach((x, i) => {
      const n = intValue(d, x, idx(at(path, 'args'), i), { min: 0, max: 2147483647 });
      if (n !== undefined) positions?.push(n);
    });
  }
  const index = readInt(d, r, 'index', path, { required: !positions || positions.length === 0, min: 0, max: 2147483647, what: 'which declared arg to filter' });

  const rawOp = readString(d, r, 'operator', path, { required: true });
  const operator = rawOp === undefined ? undefined : resolveOperator(d, rawOp, at(path, 'operator'));
  const info = operator ? OPERATOR_INFO[operator] : undefined;

  // The arg the filter looks at.
  let arg: KProbeArg | undefined;
  let argPath = at(path, 'index');
  if (res) {
    let ref: ArgRef | undefined;
    if (positions && positions.length > 0) {
      argPath = idx(at(path, 'args'), 0);
      ref = res.byPosition(positions[0]);
    } else if (index !== undefined) {
      ref = res.byIndex(index);
    }
    if (ref?.problem) d.error(argPath, ref.problem, ref.hint);
    arg = ref?.arg;
  }

  if (operator === 'CapabilitiesGained') {
    if (!positions || positions.length !== 2) {
      d.error(at(path, 'args'), 'CapabilitiesGained compares two args: write args: [<new>, <old>] (positions in the hook\'s args)');
    } else if (res) {
      const second = res.byPosition(positions[1]);
      if (second.problem) d.error(idx(at(path, 'args'), 1), second.problem, second.hint);
      else if (second.arg) checkApplies(d, 'CapabilitiesGained', second.arg, at(path, 'operator'));
    }
  }

  const opPath = at(path, 'operator');
  if (operator && arg) checkApplies(d, operator, arg, opPath);

  // labelSelector belongs to DLabels/SLabels only.
  let labelSelector: LabelSelector | undefined;
  const lsPath = at(path, 'labelSelector');
  if (info?.family === 'labels') {
    if (!has(r, 'labelSelector')) d.error(lsPath, `${operator} needs a labelSelector`, 'write labelSelector: {matchLabels: {app: db}}');
    else labelSelector = readLabelSelector(d, r.labelSelector, lsPath, { what: 'an endpoint labelSelector', ciliumSources: true });
    if (labelSelector && Object.keys(labelSelector.matchLabels ?? {}).length === 0 && (labelSelector.matchExpressions ?? []).length === 0) {
      d.warn(lsPath, 'an empty labelSelector matches every endpoint (including world)', 'add matchLabels or matchExpressions');
    }
  } else if (has(r, 'labelSelector') && operator) {
    d.error(lsPath, `labelSelector is only used with DLabels/SLabels, not ${operator}`, 'remove it or use DLabels');
  }

  // values
  let values: string[] = [];
  const vp = at(path, 'values');
  const raw = readStringList(d, r, 'values', path);
  if (raw) values = raw;
  if (operator && info && (raw !== undefined || !has(r, 'values'))) {
    checkValues(p, operator, info.family, values, has(r, 'values'), arg, vp);
  }

  if (d.errors.length !== before || !operator) return undefined;
  const out: ArgSelector = { index: index ?? 0, operator, values };
  if (positions && positions.length) out.args = positions;
  if (labelSelector) out.labelSelector = labelSelector;
  return out;
}

function classOf(arg: KProbeArg): ArgClass {
  return ARG_TYPE_INFO[arg.type].cls;
}

/** Reports an operator that cannot apply to the arg's type. */
function checkApplies(d: Diag, op: ArgOperator, arg: KProbeArg, opPath: string): void {
  const info = OPERATOR_INFO[op];
  const cls = classOf(arg);
  if (cls === 'auto') return; // resolved from BTF later
  const suggestion = (): string => {
    const ops = operatorsForClass(cls);
    return ops.length ? `for ${arg.type} args use ${oneOf(ops)}` : `${arg.type} args cannot be filtered`;
  };
  if (cls === 'nop') {
    d.error(opPath, `arg index ${arg.index} has type nop (skipped), so it cannot be filtered`, `declare it with a real type`);
    return;
  }
  if (!FAMILY_CLASSES[info.family].includes(cls)) {
    d.error(opPath, `operator ${op} does not apply to arg index ${arg.index} of type ${arg.type}`, suggestion());
    return;
  }
  if (cls === 'sockaddr' && info.side === 'D') {
    const s = op.replace('D', 'S');
    d.error(opPath, `operator ${op} does not apply to a sockaddr arg: a sockaddr holds one address, which Tetragon treats as the S side`, `use ${s}`);
    return;
  }
  if (info.family === 'filetype' && !FILETYPE_ARG_TYPES.has(arg.type)) {
    d.error(opPath, `operator ${op} applies to file and path args, not ${arg.type}`);
  }
}

// ---------------------------------------------------------------------------
// values

const INT_LITERAL = /^[+-]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/;
const DEC_LITERAL = /^[+-]?[0-9]+$/;

/** Parses a Go base-0 integer literal (decimal, 0x, 0o/0, 0b). */
export function parseIntLiteral(s: string, decimalOnly = false): bigint | undefined {
  const t = s.trim();
  if (!(decimalOnly ? DEC_LITERAL : INT_LITERAL).test(t)) return undefined;
  const neg = t.startsWith('-');
  let body = t.replace(/^[+-]/, '');
  if (!decimalOnly && /^0[0-7]+$/.test(body)) body = `0o${body.slice(1)}`;
  try {
    const n = BigInt(body);
    return neg ? -n : n;
  } catch {
    return undefined;
  }
}

function intRange(arg: KProbeArg | undefined): { min: bigint; max: bigint; label: string } {
  const info = arg ? ARG_TYPE_INFO[arg.type] : undefined;
  if (!info || info.bits === undefined) return { min: -(2n ** 63n), max: 2n ** 64n - 1n, label: '64-bit' };
  const bits = BigInt(info.bits);
  return info.signed
    ? { min: -(2n ** (bits - 1n)), max: 2n ** (bits - 1n) - 1n, label: `${arg?.type}` }
    : { min: 0n, max: 2n ** bits - 1n, label: `${arg?.type}` };
}

function checkInt(d: Diag, s: string, path: string, arg: KProbeArg | undefined, decimalOnly = false): bigint | undefined {
  const n = parseIntLiteral(s, decimalOnly);
  if (n === undefined) {
    d.error(path, `${show(s)} is not an integer`, decimalOnly ? 'InMap values are decimal integers, min:max ranges or list:NAME' : 'write a decimal, 0x hex or 0o octal integer');
    return undefined;
  }
  const r = intRange(arg);
  if (n < r.min || n > r.max) {
    d.error(path, `${s} does not fit in ${r.label} (${r.min}..${r.max})`);
    return undefined;
  }
  return n;
}

function countLimit(d: Diag, values: string[], max: number, path: string, what: string, hint?: string): void {
  if (values.length > max) d.error(idx(path, max), `too many values for ${what} (${values.length}; at most ${max})`, hint);
}

function isCidrOrIp(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return isIP(s) !== 0;
  const ip = s.slice(0, slash);
  const len = s.slice(slash + 1);
  const fam = isIP(ip);
  if (fam === 0 || !/^\d{1,3}$/.test(len)) return false;
  return Number(len) <= (fam === 4 ? 32 : 128);
}

function checkNamedOrNumber(d: Diag, s: string, path: string, table: ReadonlyMap<string, number>, what: string, max: number): void {
  if (table.has(s)) return;
  const range = /^(\d+)(?::(\d+))?$/.exec(s);
  if (range) {
    if (Number(range[1]) > max || (range[2] !== undefined && Number(range[2]) > max)) d.error(path, `${s} is out of range for a ${what} (0..${max})`);
    return;
  }
  const up = s.toUpperCase();
  const hint = table.has(up) ? `write "${up}"` : didYouMean(s, table.keys()) ?? `use a number or a name such as ${[...table.keys()].slice(0, 3).join(', ')}`;
  d.error(path, `${show(s)} is not a ${what}`, hint);
}

/** Parses a DIdentity-family value: a numeric identity or a reserved name. */
export function parseIdentityValue(s: string): number | undefined {
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    return n >= 1 && n <= 4294967295 ? n : undefined;
  }
  const name = s.startsWith('reserved:') ? s.slice('reserved:'.length) : s;
  if (name === 'unknown') return undefined;
  return reservedIdentity(name);
}

const RESERVED_NAMES_FOR_HINT = ['host', 'world', 'world-ipv4', 'world-ipv6', 'remote-node', 'kube-apiserver', 'health', 'init', 'ingress', 'unmanaged'];

function checkValues(p: PolicyCtx, op: ArgOperator, family: OperatorFamily, values: string[], given: boolean, arg: KProbeArg | undefined, vp: string): void {
  const d = p.d;
  const cls: ArgClass | undefined = arg ? classOf(arg) : undefined;
  const needsValues = family !== 'portpriv' && family !== 'capgained' && family !== 'labels';
  if (needsValues && values.length === 0) {
    d.error(vp, given ? `${op} needs at least one value` : `"values" is required for ${op}`);
    return;
  }
  if (!needsValues && values.length > 0 && family !== 'capgained') {
    if (family === 'labels') d.error(vp, `${op} takes a labelSelector, not values`, 'move the selection into labelSelector: {matchLabels: {…}}');
    else d.warn(vp, `${op} takes no values; they are ignored`);
    return;
  }
  const each = (fn: (s: string, ip: string) => void): void => {
    for (let i = 0; i < values.length; i++) {
      if (!d.step()) return;
      fn(values[i], idx(vp, i));
    }
  };
  switch (family) {
    case 'eq':
      if (cls === 'int') {
        countLimit(d, values, LIMITS.valuesPerValueOperator, vp, op, 'use InMap for more values');
        each((s, ip) => void checkInt(d, s, ip, arg));
      } else if (cls === 'capmask') {
        countLimit(d, values, LIMITS.valuesPerValueOperator, vp, op);
        each((s, ip) => checkCapMask(d, s, ip));
      } else if (cls === 'path') {
        countLimit(d, values, LIMITS.fileValuesPerOperator, vp, `${op} on ${arg?.type}`);
        each((s, ip) => checkStringLen(d, s, ip, LIMITS.stringValueBytes));
      } else {
        each((s, ip) => checkStringLen(d, s, ip, LIMITS.stringValueBytes));
      }
      break;
    case 'cmp':
    case 'mask':
      countLimit(d, values, LIMITS.valuesPerValueOperator, vp, op, 'use InMap or InRange for more values');
      if (cls === 'capmask') each((s, ip) => checkCapMask(d, s, ip));
      else each((s, ip) => void checkInt(d, s, ip, arg));
      break;
    case 'range':
      countLimit(d, values, LIMITS.valuesPerValueOperator, vp, op, 'use InMap with min:max ranges for more');
      each((s, ip) => {
        const parts = s.split(':');
        if (parts.length !== 2) {
          d.error(ip, `${show(s)} is not a range`, 'write min:max, e.g. "1000:1999"');
          return;
        }
        const lo = checkInt(d, parts[0], ip, arg);
        const hi = checkInt(d, parts[1], ip, arg);
        if (lo !== undefined && hi !== undefined && lo > hi) d.error(ip, `range ${s} is empty (min > max)`);
      });
      break;
    case 'map':
      each((s, ip) => {
        if (s.startsWith('list:')) {
          const name = s.slice(5);
          const list = p.lists.get(name);
          if (!list && p.brokenLists.has(name)) return;
          if (!list) {
            d.error(ip, `unknown list ${show(name)}`, didYouMean(name, p.lists.keys()) ?? 'declare it under spec.lists');
            return;
          }
          p.usedLists.add(name);
          if (list.type !== 'syscalls' && list.type !== 'generated_syscalls') d.error(ip, `list ${show(name)} is not a syscall list; InMap can only load syscall lists`, 'give the list type: syscalls');
          // Current Tetragon loads list values only for syscall64 args; older releases took any integer (upstream examples use uint64).
          else if (arg && arg.type !== 'syscall64' && arg.type !== 'auto') d.warn(ip, `list values are syscall numbers; current Tetragon requires the arg to be syscall64, not ${arg.type}`, `declare arg index ${arg.index} as type: syscall64`);
          return;
        }
        if (s.includes(':')) {
          const parts = s.split(':');
          if (parts.length !== 2) {
            d.error(ip, `${show(s)} is not a range`, 'write min:max');
            return;
          }
          const lo = checkInt(d, parts[0], ip, arg, true);
          const hi = checkInt(d, parts[1], ip, arg, true);
          if (lo !== undefined && hi !== undefined) {
            const span = (lo > hi ? lo - hi : hi - lo) + 1n;
            if (span > BigInt(LIMITS.inMapRangeEntries)) d.error(ip, `range ${s} expands to ${span} map entries (at most ${LIMITS.inMapRangeEntries})`, 'InMap ranges become one BPF map entry per value; use InRange or GT/LT for wide ranges');
          }
          return;
        }
        checkInt(d, s, ip, arg, true);
      });
      break;
    case 'prefix':
      if (cls === 'path') countLimit(d, values, LIMITS.fileValuesPerOperator, vp, `${op} on ${arg?.type}`);
      each((s, ip) => checkStringLen(d, s, ip, LIMITS.prefixBytes, 'prefix'));
      break;
    case 'postfix':
      if (cls === 'path') countLimit(d, values, LIMITS.fileValuesPerOperator, vp, `${op} on ${arg?.type}`);
      each((s, ip) => checkStringLen(d, s, ip, LIMITS.postfixBytes, 'postfix'));
      break;
    case 'substring':
      countLimit(d, values, LIMITS.substringEntries, vp, op);
      each((s, ip) => checkStringLen(d, s, ip, LIMITS.substringBytes, 'substring'));
      break;
    case 'cel':
      each((s, ip) => checkCel(d, s, ip));
      break;
    case 'filetype':
      each((s, ip) => {
        if (!FILE_TYPES.has(s)) d.error(ip, `${show(s)} is not a file type`, didYouMean(s, FILE_TYPES) ?? `use ${[...FILE_TYPES].join(', ')}`);
      });
      break;
    case 'port':
      each((s, ip) => {
        const m = /^(\d+)(?::(\d+))?$/.exec(s);
        if (!m) {
          d.error(ip, `${show(s)} is not a port or port range`, 'write a port ("443") or a range ("8000:8999")');
          return;
        }
        if (Number(m[1]) > 65535 || (m[2] !== undefined && Number(m[2]) > 65535)) d.error(ip, `port ${s} is out of range (0..65535)`);
      });
      break;
    case 'addr':
      each((s, ip) => {
        if (!isCidrOrIp(s)) d.error(ip, `${show(s)} is not an IP address or CIDR`, 'write e.g. "10.0.0.0/8", "192.168.1.10" or "fd00::/8"');
      });
      break;
    case 'protocol':
      each((s, ip) => checkNamedOrNumber(d, s, ip, IP_PROTOCOLS, 'protocol', 65535));
      break;
    case 'family':
      each((s, ip) => checkNamedOrNumber(d, s, ip, ADDRESS_FAMILIES, 'address family', 65535));
      break;
    case 'state':
      each((s, ip) => checkNamedOrNumber(d, s, ip, TCP_STATES, 'TCP state', 255));
      break;
    case 'identity':
      countLimit(d, values, LIMITS.identityValues, vp, op);
      each((s, ip) => {
        if (parseIdentityValue(s) !== undefined) return;
        const name = s.startsWith('reserved:') ? s.slice(9) : s;
        const hint = /^\d+$/.test(s) ? 'identities are 1..4294967295' : name === 'unknown' ? 'identity 0 (unknown) never matches a resolved peer' : didYouMean(name, RESERVED_NAMES_FOR_HINT) ?? `use a numeric Cilium identity or a reserved name (${RESERVED_NAMES_FOR_HINT.slice(0, 6).join(', ')}, …)`;
        d.error(ip, `${show(s)} is not a Cilium security identity`, hint);
      });
      break;
    case 'portpriv':
    case 'capgained':
    case 'labels':
      break;
  }
}

function checkStringLen(d: Diag, s: string, path: string, max: number, what = 'value'): void {
  const n = byteLength(s);
  if (n > max) d.error(path, `${what} is ${n} bytes; at most ${max}`);
  else if (s === '' && what !== 'value') d.error(path, `empty ${what}`);
}

function checkCapMask(d: Diag, s: string, path: string): void {
  if (parseIntLiteral(s) !== undefined) return;
  for (const part of s.split(',')) {
    if (!canonicalCapability(part)) {
      d.error(path, `${show(part.trim())} is not a capability (capability masks are integers or comma-separated CAP_* names)`, didYouMean(part.trim().toUpperCase(), CAPABILITIES.keys()));
      return;
    }
  }
}

const CEL_FUNCS = new Set(['int32', 'uint32', 'and', 'or', 'xor', 'not']);
const CEL_TOKEN = /\s*(?:(\d+|0[xX][0-9a-fA-F]+)|([A-Za-z_][A-Za-z0-9_]*)|(&&|\|\||==|!=|<=|>=|[-+<>!(),]))/y;

/** Light CelExpr check: known tokens, functions and argN variables (full compile happens at load). */
function checkCel(d: Diag, s: string, path: string): void {
  if (s.trim() === '') {
    d.error(path, 'empty CEL expression');
    return;
  }
  CEL_TOKEN.lastIndex = 0;
  let depth = 0;
  while (CEL_TOKEN.lastIndex < s.length) {
    const start = CEL_TOKEN.lastIndex;
    const m = CEL_TOKEN.exec(s);
    if (!m) {
      if (s.slice(start).trim() === '') break;
      d.error(path, `CEL expression has an unsupported token at ${show(s.slice(start, start + 10))}`, 'allowed: argN, integers, + - && || ! == != < <= > >=, int32() uint32() and() or() xor() not()');
      return;
    }
    const ident = m[2];
    if (ident !== undefined && !/^arg\d+$/.test(ident) && !CEL_FUNCS.has(ident) && ident !== 'true' && ident !== 'false') {
      d.error(path, `CEL expression uses unknown name ${show(ident)}`, 'variables are arg0, arg1, … (hook args by position)');
      return;
    }
    if (m[3] === '(') depth++;
    if (m[3] === ')' && --depth < 0) break;
  }
  if (depth !== 0) d.error(path, 'CEL expression has unbalanced parentheses');
}

// ---------------------------------------------------------------------------
// actions

function readActions(p: PolicyCtx, list: unknown[], path: string, hook: HookCtx | undefined, onReturn: boolean): ActionSelector[] {
  if (list.length > LIMITS.actionsPerSelector) {
    p.d.error(idx(path, LIMITS.actionsPerSelector), `too many actions (${list.length}; at most ${LIMITS.actionsPerSelector} per selector)`, 'move extra actions to another selector with the same filters');
  }
  return collect(p.d, list, path, (v, ap) => readAction(p, v, ap, hook, onReturn));
}

const RATE_LIMIT = /^(\d+)([smhSMH]?)$/;

/** `30s` / `1m` / `2h` / `5` → milliseconds (Tetragon caps at 2^32-1). */
export function parseRateLimit(s: string): number | undefined {
  const m = RATE_LIMIT.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]);
  if (!Number.isSafeInteger(n) || n > 4294967295) return undefined;
  const mult = { '': 1, s: 1, m: 60, h: 3600 }[m[2].toLowerCase() as '' | 's' | 'm' | 'h'];
  return Math.min(n * mult * 1000, 4294967295);
}

const HOSTNAME = /^(?=.{1,253}\.?$)([A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*\.?$/;

function readAction(p: PolicyCtx, v: unknown, path: string, hook: HookCtx | undefined, onReturn: boolean): ActionSelector | undefined {
  const d = p.d;
  const r = asRec(d, v, path, 'an action');
  if (!r) return undefined;
  checkFields(d, r, path, ACTION_FIELDS, 'an action');
  const before = d.errors.length;
  const raw = readString(d, r, 'action', path, { required: true });
  let action: ActionName | undefined;
  if (raw !== undefined) {
    action = ACTION_BY_LOWER.get(raw.toLowerCase());
    if (!action) d.error(at(path, 'action'), `unknown action ${show(raw)}`, didYouMean(raw, ACTION_BY_LOWER.values()) ?? `use ${oneOf([...ACTION_BY_LOWER.values()])}`);
    else if (action !== raw) d.warn(at(path, 'action'), `the CRD schema spells this action ${show(action)}`, `write "${action}"`);
    if (action && DEPRECATED_ACTIONS.has(action)) {
      d.warn(at(path, 'action'), `${action} was deprecated in Tetragon v1.4 and removed later; it does nothing here`, 'fd args resolve to paths on their own; remove the action');
    }
  }
  const out: Partial<ActionSelector> = {};
  const str = (k: 'argUrl' | 'argFqdn' | 'argNewSymbol' | 'rateLimit'): void => {
    const s = readString(d, r, k, path);
    if (s !== undefined) out[k] = s;
  };
  const scope = readString(d, r, 'rateLimitScope', path);
  const u32 = (k: 'argSig' | 'argSock' | 'argIndex' | 'argValue' | 'argFd' | 'argName'): void => {
    const n = readInt(d, r, k, path, { min: 0, max: 4294967295 });
    if (n !== undefined) out[k] = n;
  };
  const u64 = (k: 'argNewAddr' | 'argNewOffset'): void => {
    const n = readInt(d, r, k, path, { min: 0, max: Number.MAX_SAFE_INTEGER });
    if (n !== undefined) out[k] = n;
  };
  const bool = (k: 'kernelStackTrace' | 'userStackTrace' | 'imaHash'): void => {
    const b = readBool(d, r, k, path);
    if (b !== undefined) out[k] = b;
  };
  str('argUrl'); str('argFqdn'); str('argNewSymbol'); str('rateLimit');
  u32('argSig'); u32('argSock'); u32('argIndex'); u32('argValue'); u32('argFd'); u32('argName');
  u64('argNewAddr'); u64('argNewOffset');
  bool('kernelStackTrace'); bool('userStackTrace'); bool('imaHash');
  const argError = readInt(d, r, 'argError', path, { min: -2147483648, max: 2147483647 });
  if (argError !== undefined) out.argError = argError;
  const regs = readStringList(d, r, 'argRegs', path);
  if (regs) out.argRegs = regs;

  if (!action) return undefined;
  out.action = action;

  // Parameters this action does not read.
  const params = ACTION_PARAMS[action];
  for (const k of ACTION_FIELDS) {
    if (k === 'action' || params.includes(k) || !has(r, k)) continue;
    if (k === 'rateLimit') continue; // reported as an error below
    d.warn(at(path, k), `${k} is ignored by the ${action} action`, ownerOf(k) ? `remove it; it belongs to ${ownerOf(k)}` : 'remove it');
  }

  const kind = hook?.kind;
  switch (action) {
    case 'Signal':
      if (out.argSig === undefined) d.error(at(path, 'argSig'), 'the Signal action needs argSig (the signal number)', 'e.g. argSig: 9 for SIGKILL, 15 for SIGTERM');
      else if (out.argSig < 1 || out.argSig > 64) d.error(at(path, 'argSig'), `signal ${out.argSig} is out of range (1..64)`);
      break;
    case 'Override': {
      if (kind === 'tracepoint' || kind === 'usdt') d.error(at(path, 'action'), `Override is not supported on ${kind} hooks`, 'use Sigkill/Signal, or hook a kprobe/LSM hook instead');
      if (onReturn) d.error(at(path, 'action'), 'Override cannot run at function return', 'put it in matchActions');
      const news = (['argNewSymbol', 'argNewAddr', 'argNewOffset'] as const).filter((k) => out[k] !== undefined);
      if (news.length > 1) d.error(at(path, news[1]), `${news.join(', ')} are mutually exclusive`);
      out.argRegs?.forEach((x, i) => {
        if (!/^[a-z][a-z0-9]*=\S+$/.test(x)) d.error(idx(at(path, 'argRegs'), i), `${show(x)} is not a register assignment`, 'write reg=value, e.g. "rax=0" or "rip=8%rsp"');
      });
      const uprobeStyle = (out.argRegs?.length ?? 0) > 0 || news.length > 0;
      if (kind === 'uprobe' || kind === undefined) {
        // kind undefined: a macro checked on its own; the using hook decides the rest.
        if (out.argError === undefined && !uprobeStyle) d.error(at(path, 'argError'), 'the Override action needs argError (the value to return)', 'e.g. argError: -1 for -EPERM; uprobes may instead set argRegs or argNewSymbol/argNewAddr/argNewOffset');
      } else {
        if (out.argRegs !== undefined) d.error(at(path, 'argRegs'), 'argRegs is only for uprobe Override');
        for (const k of news) d.error(at(path, k), `${k} is only for uprobe Override`);
        if (out.argError === undefined) d.error(at(path, 'argError'), 'the Override action needs argError (the value to return)', 'e.g. argError: -1 for -EPERM, -13 for -EACCES');
        else if (out.argError > 0) d.warn(at(path, 'argError'), `argError ${out.argError} is positive; syscalls and LSM hooks report errors as negative errno`, `did you mean ${-out.argError}?`);
        else if (out.argError === 0) d.warn(at(path, 'argError'), 'argError 0 makes the call succeed without running it');
      }
      break;
    }
    case 'GetUrl':
      if (out.argUrl === undefined) d.error(at(path, 'argUrl'), 'the GetUrl action needs argUrl');
      else if (!/^https?:\/\/[^\s/]+/.test(out.argUrl)) d.error(at(path, 'argUrl'), `${show(out.argUrl)} is not an http(s) URL`);
      break;
    case 'DnsLookup':
      if (out.argFqdn === undefined) d.error(at(path, 'argFqdn'), 'the DnsLookup action needs argFqdn');
      else if (!HOSTNAME.test(out.argFqdn)) d.error(at(path, 'argFqdn'), `${show(out.argFqdn)} is not a domain name`);
      break;
    case 'TrackSock':
    case 'UntrackSock': {
      const n = out.argSock ?? 0;
      if (hook) {
        const a = hook.args.find((x) => x !== undefined && x.index === n);
        if (!a && !hook.brokenArgs.has(n) && !hook.brokenArgs.has(undefined)) d.error(at(path, 'argSock'), `argSock ${n} does not refer to a declared arg (${declaredList(hook.args)})`, 'argSock is the index of a sock arg');
        else if (a && a.type !== 'sock' && a.type !== 'socket' && a.type !== 'auto') d.error(at(path, 'argSock'), `argSock ${n} refers to an arg of type ${a.type}; ${action} needs a sock`);
      }
      break;
    }
    case 'NotifyEnforcer':
      if (out.argError === undefined && out.argSig === undefined) d.error(path, 'the NotifyEnforcer action needs argError and/or argSig', 'e.g. argError: -1 (fail the syscall with -EPERM) or argSig: 9');
      p.notifyEnforcerPaths.push(at(path, 'action'));
      break;
    case 'Set':
      if (kind !== undefined && kind !== 'usdt') d.error(at(path, 'action'), 'the Set action is only for usdts hooks');
      if (out.argIndex === undefined) d.error(at(path, 'argIndex'), 'the Set action needs argIndex');
      if (out.argValue === undefined) d.error(at(path, 'argValue'), 'the Set action needs argValue');
      break;
    case 'Post':
      if (out.rateLimit !== undefined) {
        const ms = parseRateLimit(out.rateLimit);
        if (ms === undefined) d.error(at(path, 'rateLimit'), `${show(out.rateLimit)} is not a rate limit`, 'write a number of seconds with an optional unit: "30s", "1m", "2h" or "5"');
        else if (ms === 0) d.warn(at(path, 'rateLimit'), 'rateLimit 0 does not limit anything');
        else out.rateLimitMs = ms;
      }
      if (scope !== undefined) {
        const scopes: RateLimitScope[] = ['thread', 'process', 'global'];
        const known = scopes.find((x) => x === scope);
        if (!known) d.error(at(path, 'rateLimitScope'), `${show(scope)} is not a rate limit scope`, didYouMean(scope, scopes) ?? 'use thread, process or global');
        else {
          out.rateLimitScope = known;
          if (out.rateLimit === undefined) d.warn(at(path, 'rateLimitScope'), 'rateLimitScope has no effect without rateLimit');
        }
      }
      if (out.imaHash && kind !== undefined && kind !== 'lsmhook') d.warn(at(path, 'imaHash'), 'imaHash is computed only on LSM hooks (sleepable BPF-LSM); it is ignored here');
      break;
    default:
      break;
  }
  if (action !== 'Post' && has(r, 'rateLimit')) d.error(at(path, 'rateLimit'), `rate limiting can only be applied to the Post action, not ${action}`);

  if (d.errors.length !== before) return undefined;
  return out as ActionSelector;
}

function ownerOf(field: string): string | undefined {
  const owners = (Object.keys(ACTION_PARAMS) as ActionName[]).filter((a) => ACTION_PARAMS[a].includes(field) && !DEPRECATED_ACTIONS.has(a));
  return owners.length ? owners.join('/') : undefined;
}

