// Document → TracingPolicy model: envelope, metadata, spec, hooks, args, lists,
// options and enforcers. Selector internals live in selectors.ts.
import type {
  ArgType, EnforcerSpec, HookKind, KProbeArg, KProbeSelector, KProbeSpec, LabelSelector, ListSpec, ListType, LsmHookSpec,
  OptionName, OptionSpec, PolicyKind, PolicyMetadata, TracepointSpec, TracingPolicy, TracingPolicySpec, UProbeSpec, UsdtSpec,
} from './types';
import { API_VERSION, ARG_TYPES } from './types';
import { ARG_TYPE_ALIASES, ARG_TYPE_SET, GO_BOOL, LIMITS, OPTIONS } from './tables';
import {
  Diag, ROOT, Rec, asRec, at, checkFields, didYouMean, has, idx, intValue, isRec, kindOf, readBool, readInt, readList,
  readString, readStringList, setOwn, show, stringish,
} from './reader';
import { isEmptySelector, labelKeyProblem, labelValueProblem, readLabelSelector } from './labels';
import { HookCtx, PolicyCtx, readSelector } from './selectors';
import { checkSyscallListValue, checkSyscallSymbol, lookupSyscall } from './syscalls';

const TOP_FIELDS = ['apiVersion', 'kind', 'metadata', 'spec'] as const;
const METADATA_FIELDS = ['name', 'namespace', 'labels', 'annotations'] as const;
/** Server-populated fields seen in `kubectl get -o yaml` output; accepted and dropped. */
const METADATA_SERVER_FIELDS = [
  'generateName', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds',
  'managedFields', 'finalizers', 'ownerReferences', 'selfLink',
] as const;
const SPEC_FIELDS = [
  'kprobes', 'tracepoints', 'lsmhooks', 'uprobes', 'usdts', 'fentries', 'lists', 'enforcers', 'options', 'podSelector',
  'containerSelector', 'hostSelector', 'nodeSelector', 'selectorsMacros', 'loader',
] as const;
const KPROBE_FIELDS = ['call', 'return', 'syscall', 'message', 'args', 'data', 'returnArg', 'returnArgAction', 'selectors', 'tags', 'ignore'] as const;
const TRACEPOINT_FIELDS = ['subsystem', 'event', 'raw', 'message', 'args', 'selectors', 'tags'] as const;
const LSM_FIELDS = ['hook', 'message', 'args', 'selectors', 'tags'] as const;
const UPROBE_FIELDS = [
  'path', 'btfPath', 'symbols', 'offsets', 'addrs', 'refCtrOffsets', 'message', 'selectors', 'args', 'data', 'tags', 'return',
  'returnArg', 'binaryDigests', 'ignore', 'resolvePathInContainer',
] as const;
const USDT_FIELDS = ['path', 'btfPath', 'provider', 'name', 'tags', 'message', 'args', 'selectors'] as const;
const ARG_FIELDS = ['index', 'type', 'resolve', 'sizeArgIndex', 'returnCopy', 'maxData', 'label', 'source', 'btfType', 'btfTypeModule'] as const;

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SYMBOL = /^[A-Za-z_][A-Za-z0-9_.$]*$/;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** C-ish spellings people try for arg types, for hints only. */
const TYPE_HINTS: ReadonlyMap<string, ArgType> = new Map<string, ArgType>([
  ['u8', 'uint8'], ['u16', 'uint16'], ['u32', 'uint32'], ['u64', 'uint64'], ['s8', 'int8'], ['s16', 'int16'], ['s32', 'int32'],
  ['s64', 'int64'], ['unsigned int', 'uint32'], ['uint', 'uint32'], ['char*', 'string'], ['char *', 'string'],
  ['const char *', 'string'], ['str', 'string'], ['pid_t', 'int'], ['uid_t', 'uint32'], ['gid_t', 'uint32'], ['umode_t', 'uint16'],
  ['loff_t', 'int64'], ['bool', 'int'], ['socket_t', 'socket'], ['struct sock', 'sock'], ['struct file', 'file'],
  ['struct path', 'path'], ['struct sk_buff', 'skb'], ['buffer', 'char_buf'], ['bytes', 'char_buf'],
]);

// ---------------------------------------------------------------------------
// document

/** Validates one document (already known to be a single policy). `base` prefixes paths for List items. */
export function validateDocument(d: Diag, doc: unknown, base = ''): TracingPolicy | undefined {
  const root = base || ROOT;
  if (doc === null || doc === undefined) {
    d.error(root, 'empty document', 'a policy needs apiVersion, kind, metadata and spec');
    return undefined;
  }
  if (!isRec(doc)) {
    d.error(root, `expected a TracingPolicy (a mapping), got ${kindOf(doc)}`, 'start the document with apiVersion: cilium.io/v1alpha1');
    return undefined;
  }
  checkFields(d, doc, base, TOP_FIELDS, 'the policy document');

  const apiVersion = readString(d, doc, 'apiVersion', base, { required: true });
  if (apiVersion !== undefined && apiVersion !== API_VERSION) {
    d.error(at(base, 'apiVersion'), `apiVersion must be ${API_VERSION}, got ${show(apiVersion)}`, apiVersion.startsWith('cilium.io/') ? `TracingPolicy is only served as ${API_VERSION}` : undefined);
  }
  const kindRaw = readString(d, doc, 'kind', base, { required: true });
  let kind: PolicyKind | undefined;
  if (kindRaw === 'TracingPolicy' || kindRaw === 'TracingPolicyNamespaced') kind = kindRaw;
  else if (kindRaw !== undefined) {
    const hint = didYouMean(kindRaw, ['TracingPolicy', 'TracingPolicyNamespaced'])
      ?? (/NetworkPolicy$/.test(kindRaw) ? 'network policies are Cilium\'s; this agent loads Tetragon TracingPolicy objects' : 'use TracingPolicy or TracingPolicyNamespaced');
    d.error(at(base, 'kind'), `${show(kindRaw)} is not a policy kind`, hint);
  }

  let metadata: PolicyMetadata | undefined;
  if (!has(doc, 'metadata')) d.error(at(base, 'metadata'), '"metadata" is required', 'add metadata: {name: my-policy}');
  else metadata = readMetadata(d, doc.metadata, at(base, 'metadata'), kind);

  let spec: TracingPolicySpec | undefined;
  if (!has(doc, 'spec')) d.error(at(base, 'spec'), '"spec" is required', 'add spec: with at least one hook (kprobes, tracepoints, lsmhooks, …)');
  else {
    const s = asRec(d, doc.spec, at(base, 'spec'), 'spec');
    if (s) spec = readSpec(d, s, at(base, 'spec'), kind ?? 'TracingPolicy');
  }
  if (d.errors.length > 0 || !kind || !metadata || !spec || apiVersion !== API_VERSION) return undefined;
  return { apiVersion: API_VERSION, kind, metadata, spec };
}

function readMetadata(d: Diag, v: unknown, path: string, kind: PolicyKind | undefined): PolicyMetadata | undefined {
  const r = asRec(d, v, path, 'metadata');
  if (!r) return undefined;
  checkFields(d, r, path, [...METADATA_FIELDS, ...METADATA_SERVER_FIELDS], 'metadata');
  const name = readString(d, r, 'name', path, { required: true });
  if (name !== undefined && (name.length > 253 || !DNS_SUBDOMAIN.test(name))) {
    const fixed = name.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '');
    d.error(at(path, 'name'), `${show(name)} is not a valid object name (lowercase letters, digits, "-" and ".", starting and ending alphanumeric; at most 253)`, fixed ? `e.g. "${fixed.slice(0, 253)}"` : undefined);
  }
  const namespace = readString(d, r, 'namespace', path);
  if (namespace !== undefined && (namespace.length > 63 || !DNS_LABEL.test(namespace))) {
    d.error(at(path, 'namespace'), `${show(namespace)} is not a valid namespace name (a DNS label)`);
  }
  if (kind === 'TracingPolicy' && namespace !== undefined) {
    d.warn(at(path, 'namespace'), 'a TracingPolicy is cluster-scoped; metadata.namespace is ignored', 'use kind: TracingPolicyNamespaced to limit it to one namespace');
  }
  if (kind === 'TracingPolicyNamespaced' && namespace === undefined) {
    d.warn(path, 'a TracingPolicyNamespaced without metadata.namespace takes the namespace it is applied in (kubectl -n); loaded from a file it has none', 'add metadata.namespace');
  }
  const labels = readStringMap(d, r, 'labels', path, true);
  const annotations = readStringMap(d, r, 'annotations', path, false);
  if (name === undefined) return undefined;
  const out: PolicyMetadata = { name };
  if (namespace !== undefined) out.namespace = namespace;
  if (labels) out.labels = labels;
  if (annotations) out.annotations = annotations;
  return out;
}

function readStringMap(d: Diag, r: Rec, key: string, path: string, labelRules: boolean): Record<string, string> | undefined {
  const m = asRec(d, r[key], at(path, key), key);
  if (!m) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    if (!d.step()) break;
    const p = at(at(path, key), k);
    const kp = labelKeyProblem(k, false);
    if (kp) d.error(p, kp);
    const str = stringish(d, v, p);
    if (str === undefined) {
      d.error(p, `${key} values must be strings, got ${kindOf(v)}`);
      continue;
    }
    if (labelRules) {
      const vp = labelValueProblem(str);
      if (vp) d.error(p, vp);
    }
    setOwn(out, k, str);
  }
  return out;
}

// ---------------------------------------------------------------------------
// spec

function readSpec(d: Diag, r: Rec, path: string, kind: PolicyKind): TracingPolicySpec | undefined {
  checkFields(d, r, path, SPEC_FIELDS, 'spec');
  const before = d.errors.length;
  const out: TracingPolicySpec = {};

  const loader = readBool(d, r, 'loader', path);
  if (loader !== undefined) out.loader = loader;

  const lists = readLists(d, r, path);
  if (lists.list) out.lists = lists.list;

  const options = readOptions(d, r, path);
  if (options) out.options = options;

  // workload selectors
  const sel = (key: 'podSelector' | 'containerSelector' | 'nodeSelector' | 'hostSelector', cilium: boolean): LabelSelector | undefined =>
    readLabelSelector(d, r[key], at(path, key), { what: key, ciliumSources: cilium });
  const pod = sel('podSelector', true);
  if (pod) out.podSelector = pod;
  const ctr = sel('containerSelector', false);
  if (ctr) {
    out.containerSelector = ctr;
    const keys = [...Object.keys(ctr.matchLabels ?? {}), ...(ctr.matchExpressions ?? []).map((e) => e.key)];
    for (const k of keys) {
      if (k !== 'name' && k !== 'repo') d.warn(at(path, 'containerSelector'), `containerSelector key ${show(k)} is not a container field`, 'container selectors match "name" (docs also mention "repo")');
    }
  }
  const node = sel('nodeSelector', false);
  if (node) out.nodeSelector = node;
  if (has(r, 'hostSelector')) {
    if (kind === 'TracingPolicyNamespaced') {
      d.error(at(path, 'hostSelector'), 'a TracingPolicyNamespaced must have a null hostSelector (it applies only to pods in its namespace)', 'remove hostSelector, or use kind: TracingPolicy');
    } else {
      const host = sel('hostSelector', false);
      if (host && !isEmptySelector(host)) d.error(at(path, 'hostSelector'), 'hostSelector should be either null or {} (all host processes); label matching is not supported', 'write hostSelector: {}');
      else if (host) out.hostSelector = host;
    }
  }
  if (kind === 'TracingPolicyNamespaced' && pod) {
    const nsKey = 'k8s:io.kubernetes.pod.namespace';
    if (pod.matchLabels && Object.prototype.hasOwnProperty.call(pod.matchLabels, nsKey)) {
      d.warn(at(at(path, 'podSelector'), 'matchLabels'), `${nsKey} is implied for a TracingPolicyNamespaced (it only sees its own namespace)`, 'drop the key');
    }
  }

  const { enforcers, usedLists } = readEnforcers(d, r, path, lists.map, lists.broken);

  // Macros: checked on their own now, and again in each hook that uses them.
  const macroRaw = new Map<string, { raw: unknown; path: string }>();
  const p: PolicyCtx = {
    d, kind, lists: lists.map, brokenLists: lists.broken, usedLists, macros: macroRaw, usedMacros: new Set(), hasEnforcer: (enforcers?.length ?? 0) > 0,
    notifyEnforcerPaths: [], followChildren: 0, followChildrenPaths: [],
  };
  const macros = asRec(d, r.selectorsMacros, at(path, 'selectorsMacros'), 'selectorsMacros (name → selector)');
  if (macros) {
    const outMacros: Record<string, KProbeSelector> = {};
    for (const [name, body] of Object.entries(macros)) {
      if (!d.step()) break;
      const mp = at(at(path, 'selectorsMacros'), name);
      if (name.trim() === '') d.error(mp, 'empty macro name');
      macroRaw.set(name, { raw: body, path: mp });
      const s = readSelector(p, body, mp, undefined, true);
      if (s) setOwn(outMacros, name, s);
    }
    out.selectorsMacros = outMacros;
  }
  if (enforcers) out.enforcers = enforcers;

  // hooks
  const hooks = <T>(key: string, read: (v: unknown, hp: string) => T | undefined): T[] | undefined => {
    const list = readList(d, r, key, path);
    if (!list) return undefined;
    const res: T[] = [];
    list.forEach((v, i) => {
      if (!d.step()) return;
      const h = read(v, idx(at(path, key), i));
      if (h !== undefined) res.push(h);
    });
    return res;
  };
  const kprobes = hooks('kprobes', (v, hp) => readKprobe(p, v, hp, 'kprobe'));
  if (kprobes) out.kprobes = kprobes;
  const fentries = hooks('fentries', (v, hp) => readKprobe(p, v, hp, 'fentry'));
  if (fentries) out.fentries = fentries;
  const tps = hooks('tracepoints', (v, hp) => readTracepoint(p, v, hp));
  if (tps) out.tracepoints = tps;
  const lsm = hooks('lsmhooks', (v, hp) => readLsm(p, v, hp));
  if (lsm) out.lsmhooks = lsm;
  const ups = hooks('uprobes', (v, hp) => readUprobe(p, v, hp, r));
  if (ups) out.uprobes = ups;
  const usdts = hooks('usdts', (v, hp) => readUsdt(p, v, hp));
  if (usdts) out.usdts = usdts;

  // cross-checks
  const hookCount = ['kprobes', 'fentries', 'tracepoints', 'lsmhooks', 'uprobes', 'usdts'].reduce((n, k) => n + (Array.isArray(r[k]) ? (r[k] as unknown[]).length : 0), 0);
  if (hookCount === 0 && !out.loader) d.warn(path, 'the policy has no hooks, so it observes nothing', 'add kprobes, tracepoints, lsmhooks, uprobes, usdts or fentries');
  if (!p.hasEnforcer) {
    for (const np of p.notifyEnforcerPaths) d.error(np, 'NotifyEnforcer needs an enforcer: add spec.enforcers: [{calls: [...]}]');
  } else if (p.notifyEnforcerPaths.length === 0) {
    d.warn(at(path, 'enforcers'), 'the enforcer is never notified (no NotifyEnforcer action)', 'add matchActions: [{action: NotifyEnforcer, argError: -1}] to a selector');
  }
  if (p.followChildren > LIMITS.followChildrenSections) {
    d.error(p.followChildrenPaths[LIMITS.followChildrenSections], `too many followChildren sections (${p.followChildren}; at most ${LIMITS.followChildrenSections})`);
  }
  for (const name of lists.map.keys()) {
    if (!p.usedLists.has(name)) d.warn(at(path, 'lists'), `list ${show(name)} is never used`, `reference it as call: "list:${name}", in an enforcer, or as an InMap value "list:${name}"`);
  }
  for (const name of macroRaw.keys()) {
    if (!p.usedMacros.has(name)) d.warn(at(at(path, 'selectorsMacros'), name), `macro ${show(name)} is never used`, `reference it from a selector: macros: [${name}]`);
  }
  return d.errors.length === before ? out : undefined;
}

// ---------------------------------------------------------------------------
// lists, options, enforcers

const LIST_TYPES: readonly ListType[] = ['syscalls', 'generated_syscalls', 'generated_ftrace'];

function readLists(d: Diag, r: Rec, path: string): { list?: ListSpec[]; map: Map<string, ListSpec>; broken: Set<string> } {
  const map = new Map<string, ListSpec>();
  const broken = new Set<string>();
  const raw = readList(d, r, 'lists', path);
  if (!raw) return { map, broken };
  const out: ListSpec[] = [];
  raw.forEach((v, i) => {
    if (!d.step()) return;
    const lp = idx(at(path, 'lists'), i);
    const lr = asRec(d, v, lp, 'a list');
    if (!lr) return;
    checkFields(d, lr, lp, ['name', 'values', 'type', 'pattern', 'validated'], 'a list');
    const before = d.errors.length;
    const name = readString(d, lr, 'name', lp, { required: true });
    if (name !== undefined && map.has(name)) d.error(at(lp, 'name'), `duplicate list name ${show(name)}`);
    const typeRaw = readString(d, lr, 'type', lp);
    let type: ListType | undefined;
    if (typeRaw !== undefined && typeRaw !== '') {
      type = LIST_TYPES.find((t) => t === typeRaw.toLowerCase());
      if (!type) d.error(at(lp, 'type'), `${show(typeRaw)} is not a list type`, didYouMean(typeRaw, LIST_TYPES) ?? `use ${LIST_TYPES.join(', ')} (or omit it)`);
    }
    const values = readStringList(d, lr, 'values', lp) ?? [];
    const pattern = readString(d, lr, 'pattern', lp);
    const validated = readBool(d, lr, 'validated', lp);
    const vp = at(lp, 'values');
    if (type === 'syscalls') {
      if (values.length === 0) d.warn(vp, 'an empty syscalls list matches nothing');
      values.forEach((s, j) => {
        if (!d.step()) return;
        const c = checkSyscallListValue(s);
        if (!c.ok) d.error(idx(vp, j), c.reason, c.hint);
        else if (c.warning) d.warn(idx(vp, j), c.warning, c.hint);
      });
    } else if (type === 'generated_syscalls' || type === 'generated_ftrace') {
      if (values.length > 0) d.error(vp, `a ${type} list is generated by the agent and must not have values`, 'remove values');
    }
    if (type === 'generated_ftrace') {
      if (pattern === undefined || pattern === '') d.error(at(lp, 'pattern'), 'a generated_ftrace list needs a pattern (a regular expression over available_filter_functions)');
      else {
        try {
          new RegExp(pattern);
        } catch (e) {
          d.error(at(lp, 'pattern'), `pattern is not a valid regular expression: ${(e as Error).message}`);
        }
      }
    } else if (pattern !== undefined) {
      d.warn(at(lp, 'pattern'), 'pattern is only used by generated_ftrace lists; ignored');
    }
    if (name !== undefined && d.errors.length !== before) broken.add(name);
    if (d.errors.length !== before || name === undefined) return;
    const l: ListSpec = { name, values };
    if (type) l.type = type;
    if (pattern !== undefined) l.pattern = pattern;
    if (validated !== undefined) l.validated = validated;
    map.set(name, l);
    out.push(l);
  });
  return { list: out, map, broken };
}

function readOptions(d: Diag, r: Rec, path: string): OptionSpec[] | undefined {
  const raw = readList(d, r, 'options', path);
  if (!raw) return undefined;
  const out: OptionSpec[] = [];
  const seen = new Set<string>();
  const names = Object.keys(OPTIONS) as OptionName[];
  raw.forEach((v, i) => {
    if (!d.step()) return;
    const op = idx(at(path, 'options'), i);
    const o = asRec(d, v, op, 'an option');
    if (!o) return;
    checkFields(d, o, op, ['name', 'value'], 'an option');
    const name = readString(d, o, 'name', op, { required: true });
    const value = readString(d, o, 'value', op);
    if (name === undefined) return;
    if (!(names as string[]).includes(name)) {
      d.error(at(op, 'name'), `unknown option ${show(name)}`, didYouMean(name, names) ?? `options are ${names.join(', ')}`);
      return;
    }
    const on = name as OptionName;
    if (seen.has(on)) d.error(at(op, 'name'), `option ${show(on)} is set twice`);
    seen.add(on);
    const info = OPTIONS[on];
    const vp = at(op, 'value');
    if (value === undefined) {
      if (has(o, 'value')) return; // wrong type, reported
      d.error(vp, `option ${on} needs a value`, info.kind === 'enum' ? `use ${info.values?.join(' or ')}` : info.kind === 'bool' ? 'use "true" or "false"' : 'use a positive integer');
      return;
    }
    if (info.kind === 'bool' && !GO_BOOL.has(value)) d.error(vp, `${show(value)} is not a boolean`, 'use "true" or "false"');
    if (info.kind === 'enum' && !info.values?.includes(value)) d.error(vp, `${show(value)} is not a valid ${on}`, didYouMean(value, info.values ?? []) ?? `use ${info.values?.join(' or ')}`);
    if (info.kind === 'posint' && (!/^\d+$/.test(value) || Number(value) <= 0)) d.error(vp, `${show(value)} is not a positive integer`);
    out.push({ name: on, value });
  });
  return out;
}

/** Enforcers, plus the lists they reference (which count as used). */
function readEnforcers(d: Diag, r: Rec, path: string, lists: ReadonlyMap<string, ListSpec>, broken: ReadonlySet<string>): { enforcers?: EnforcerSpec[]; usedLists: Set<string> } {
  const usedLists = new Set<string>();
  const raw = readList(d, r, 'enforcers', path);
  if (!raw) return { usedLists };
  const ep = at(path, 'enforcers');
  if (raw.length > 1) d.error(idx(ep, 1), `only one enforcer is allowed per policy (got ${raw.length})`, 'merge the calls into one enforcer');
  const out: EnforcerSpec[] = [];
  raw.forEach((v, i) => {
    if (!d.step()) return;
    const p = idx(ep, i);
    const e = asRec(d, v, p, 'an enforcer');
    if (!e) return;
    checkFields(d, e, p, ['calls'], 'an enforcer');
    const calls = readStringList(d, e, 'calls', p, { required: true, nonEmpty: true, what: 'syscalls the enforcer attaches to' });
    if (!calls) return;
    calls.forEach((c, j) => {
      const cp = idx(at(p, 'calls'), j);
      if (c.startsWith('list:')) {
        const name = c.slice(5);
        const l = lists.get(name);
        if (l) usedLists.add(name);
        if (!l && broken.has(name)) return;
        if (!l) d.error(cp, `unknown list ${show(name)}`, didYouMean(name, lists.keys()) ?? 'declare it under spec.lists');
        else if (l.type === 'generated_ftrace') d.error(cp, `list ${show(name)} holds kernel functions; an enforcer attaches to syscalls`, 'use a list of type syscalls');
        else if (!l.type) d.warn(cp, `list ${show(name)} has no type; its names are used as written`, 'give it type: syscalls so names get the arch prefix');
        return;
      }
      const s = checkSyscallSymbol(c);
      if (!s.ok) d.error(cp, s.reason, s.hint);
      else if (s.warning) d.warn(cp, s.warning, s.hint);
    });
    out.push({ calls });
  });
  return { enforcers: out, usedLists };
}

// ---------------------------------------------------------------------------
// hooks

interface CommonOut {
  message?: string;
  tags?: string[];
}

function readCommon(d: Diag, r: Rec, path: string): CommonOut {
  const out: CommonOut = {};
  const message = readString(d, r, 'message', path);
  if (message !== undefined) {
    if (message.length > LIMITS.messageChars) {
      d.warn(at(path, 'message'), `message is ${message.length} characters; it is truncated to ${LIMITS.messageChars}`);
      out.message = message.slice(0, LIMITS.messageChars);
    } else out.message = message;
  }
  const tags = readStringList(d, r, 'tags', path);
  if (tags) {
    const tp = at(path, 'tags');
    if (tags.length > LIMITS.tags) d.error(idx(tp, LIMITS.tags), `too many tags (${tags.length}; at most ${LIMITS.tags})`);
    tags.forEach((t, i) => {
      if (t.length > LIMITS.tagChars) d.error(idx(tp, i), `tag is ${t.length} characters; at most ${LIMITS.tagChars}`);
    });
    out.tags = tags;
  }
  return out;
}

/** One arg declaration; `index` is reported even when the declaration is otherwise broken. */
function readArgDecl(d: Diag, v: unknown, path: string, kind: HookKind, isData: boolean): { arg?: KProbeArg; index?: number } {
  let index: number | undefined;
  const arg = readArg(d, v, path, kind, isData, (n) => (index = n));
  return { arg, index };
}

/**
 * One arg. `index` is required for args and data; a returnArg may omit it
 * (it names the return value, and upstream examples leave it out).
 */
function readArg(d: Diag, v: unknown, path: string, kind: HookKind, isData: boolean, onIndex?: (n: number) => void, isReturn = false): KProbeArg | undefined {
  const r = asRec(d, v, path, isData ? 'a data entry' : 'an arg');
  if (!r) {
    if (v === null || v === undefined) d.error(path, `empty ${isData ? 'data entry' : 'arg'}`, 'write {index: 0, type: int}');
    return undefined;
  }
  checkFields(d, r, path, ARG_FIELDS, isData ? 'a data entry' : 'an arg');
  const before = d.errors.length;
  const index = readInt(d, r, 'index', path, { required: !isReturn, min: 0, max: 2147483647, what: 'the argument position, from 0' }) ?? (isReturn && !has(r, 'index') ? 0 : undefined);
  if (index !== undefined) onIndex?.(index);
  let type: ArgType = 'auto';
  const typeRaw = readString(d, r, 'type', path);
  if (typeRaw !== undefined) {
    const t = ARG_TYPE_SET.has(typeRaw) ? (typeRaw as ArgType) : ARG_TYPE_ALIASES.get(typeRaw);
    if (t) type = t;
    else {
      const known = TYPE_HINTS.get(typeRaw.toLowerCase());
      d.error(at(path, 'type'), `unknown arg type ${show(typeRaw)}`, known ? `use "${known}"` : didYouMean(typeRaw, ARG_TYPES) ?? 'see the arg types in the TracingPolicy reference (int, string, file, path, sock, …)');
    }
  }
  const out: KProbeArg = { index: index ?? 0, type };
  const resolve = readString(d, r, 'resolve', path);
  if (resolve !== undefined && resolve !== '') {
    const rp = at(path, 'resolve');
    if (kind === 'uprobe' || kind === 'usdt') d.error(rp, `resolve is not supported on ${kind} args`);
    const parts = resolve.split('.');
    if (parts.length > LIMITS.resolveDepth) d.error(rp, `resolve path is ${parts.length} levels deep; at most ${LIMITS.resolveDepth}`);
    if (!parts.every((s) => /^[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?$/.test(s))) d.error(rp, `${show(resolve)} is not a field path`, 'write struct members separated by dots, e.g. "mm.owner.pid"');
    out.resolve = resolve;
  }
  const size = readInt(d, r, 'sizeArgIndex', path, { min: 0, max: 2147483647 });
  const buf = type === 'char_buf' || type === 'char_iovec';
  if (size !== undefined) {
    if (!buf && size > 0) d.warn(at(path, 'sizeArgIndex'), `sizeArgIndex is only used by char_buf and char_iovec args; ignored for ${type}`);
    out.sizeArgIndex = size;
  }
  const returnCopy = readBool(d, r, 'returnCopy', path);
  if (returnCopy !== undefined) {
    if (returnCopy && !buf) d.warn(at(path, 'returnCopy'), `returnCopy is only used by char_buf and char_iovec args; ignored for ${type}`);
    out.returnCopy = returnCopy;
  }
  const maxData = readBool(d, r, 'maxData', path);
  if (maxData !== undefined) {
    if (maxData && type !== 'char_buf') d.warn(at(path, 'maxData'), `maxData is only used by char_buf args; ignored for ${type}`);
    if (maxData && returnCopy) d.error(at(path, 'maxData'), 'maxData cannot be combined with returnCopy');
    out.maxData = maxData;
  }
  const label = readString(d, r, 'label', path);
  if (label !== undefined) out.label = label;
  const source = readString(d, r, 'source', path);
  if (source !== undefined) {
    if (source === 'current_task' || source === 'pt_regs') out.source = source;
    else d.error(at(path, 'source'), `${show(source)} is not a data source`, didYouMean(source, ['current_task', 'pt_regs']) ?? 'use current_task or pt_regs');
  }
  const btfType = readString(d, r, 'btfType', path);
  if (btfType !== undefined) out.btfType = btfType;
  const btfTypeModule = readString(d, r, 'btfTypeModule', path);
  if (btfTypeModule !== undefined) out.btfTypeModule = btfTypeModule;
  return d.errors.length === before && index !== undefined ? out : undefined;
}

/** Reads args (and data); keeps positions so selectors can refer to broken entries without cascades. */
function readArgList(d: Diag, r: Rec, key: 'args' | 'data', path: string, kind: HookKind, broken?: Set<number | undefined>): (KProbeArg | undefined)[] {
  const list = readList(d, r, key, path);
  if (!list) return [];
  const out: (KProbeArg | undefined)[] = [];
  list.forEach((v, i) => {
    if (!d.step()) return;
    const { arg, index } = readArgDecl(d, v, idx(at(path, key), i), kind, key === 'data');
    if (!arg) broken?.add(index);
    out.push(arg);
  });
  return out;
}

function checkArgBudget(d: Diag, path: string, args: unknown[], data: unknown[]): void {
  const n = args.length + data.length;
  if (n > LIMITS.argsPlusDataPerHook) {
    const over = args.length > LIMITS.argsPlusDataPerHook ? idx(at(path, 'args'), LIMITS.argsPlusDataPerHook) : idx(at(path, 'data'), LIMITS.argsPlusDataPerHook - args.length);
    d.error(over, `too many args: args + data = ${n} (at most ${LIMITS.argsPlusDataPerHook} per hook)`, 'drop args you do not need, or split the hook');
  }
}

function readSelectors(p: PolicyCtx, r: Rec, path: string, hook: HookCtx): KProbeSelector[] | undefined {
  const list = readList(p.d, r, 'selectors', path);
  if (!list) return undefined;
  const sp = at(path, 'selectors');
  if (list.length > LIMITS.selectorsPerHook) {
    p.d.error(idx(sp, LIMITS.selectorsPerHook), `too many selectors (${list.length}; at most ${LIMITS.selectorsPerHook} per hook)`, 'selectors are ORed: merge filters or split the hook into two entries');
  }
  const out: KProbeSelector[] = [];
  list.forEach((v, i) => {
    if (!p.d.step()) return;
    const s = readSelector(p, v, idx(sp, i), hook);
    if (s) out.push(s);
  });
  return out;
}

function attach<T extends object>(target: T, common: CommonOut, args: (KProbeArg | undefined)[], selectors: KProbeSelector[] | undefined, r: Rec): void {
  const t = target as T & CommonOut & { args?: KProbeArg[]; selectors?: KProbeSelector[] };
  if (common.message !== undefined) t.message = common.message;
  if (has(r, 'args')) t.args = args.filter((a): a is KProbeArg => a !== undefined);
  if (selectors) t.selectors = selectors;
  if (common.tags) t.tags = common.tags;
}

function readKprobe(p: PolicyCtx, v: unknown, path: string, kind: 'kprobe' | 'fentry'): KProbeSpec | undefined {
  const d = p.d;
  const r = asRec(d, v, path, `a ${kind} hook`);
  if (!r) {
    if (v === null || v === undefined) d.error(path, `empty ${kind} entry`, 'write {call: "sys_execve", syscall: true}');
    return undefined;
  }
  checkFields(d, r, path, KPROBE_FIELDS, `a ${kind === 'kprobe' ? 'kprobe' : 'fentry'} hook`);
  const before = d.errors.length;
  const call = readString(d, r, 'call', path, { required: true });
  const ret = readBool(d, r, 'return', path) ?? false;
  const syscallRaw = readBool(d, r, 'syscall', path);
  const syscall = syscallRaw ?? true; // CRD default
  const common = readCommon(d, r, path);
  const brokenArgs = new Set<number | undefined>();
  const args = readArgList(d, r, 'args', path, kind, brokenArgs);
  const data = readArgList(d, r, 'data', path, kind);
  checkArgBudget(d, path, args, data);

  if (call !== undefined) checkCall(p, call, at(path, 'call'), syscall, syscallRaw !== undefined);

  let returnArg: KProbeArg | undefined;
  if (has(r, 'returnArg')) returnArg = readArg(d, r.returnArg, at(path, 'returnArg'), kind, false, undefined, true);
  if (ret && !has(r, 'returnArg')) d.error(at(path, 'returnArg'), 'return: true requires a returnArg', 'add returnArg: {index: 0, type: int}');
  if (!ret && has(r, 'returnArg')) d.warn(at(path, 'returnArg'), 'returnArg is ignored unless return: true');

  let returnArgAction: 'TrackSock' | 'UntrackSock' | undefined;
  const raa = readString(d, r, 'returnArgAction', path);
  if (raa !== undefined) {
    const low = raa.toLowerCase();
    if (low === 'tracksock') returnArgAction = 'TrackSock';
    else if (low === 'untracksock') returnArgAction = 'UntrackSock';
    else if (low === 'post') d.error(at(path, 'returnArgAction'), 'returnArgAction: Post is no longer accepted', 'remove it: the return value is posted anyway');
    else d.error(at(path, 'returnArgAction'), `${show(raa)} is not a returnArgAction`, didYouMean(raa, ['TrackSock', 'UntrackSock']) ?? 'use TrackSock or UntrackSock');
    if (returnArgAction && !ret) d.error(at(path, 'returnArgAction'), 'returnArgAction needs return: true and a returnArg');
    if (returnArgAction && returnArg && !['sock', 'socket', 'auto'].includes(returnArg.type)) d.error(at(path, 'returnArgAction'), `${returnArgAction} needs a sock returnArg, not ${returnArg.type}`);
  }

  const ignoreR = asRec(d, r.ignore, at(path, 'ignore'), 'ignore');
  let ignore: KProbeSpec['ignore'];
  if (ignoreR) {
    checkFields(d, ignoreR, at(path, 'ignore'), ['callNotFound'], 'ignore');
    const cnf = readBool(d, ignoreR, 'callNotFound', at(path, 'ignore'));
    ignore = cnf === undefined ? {} : { callNotFound: cnf };
  }

  const hook: HookCtx = { kind, path, args, brokenArgs, data, returnArg, hasReturn: ret && returnArg !== undefined };
  const selectors = readSelectors(p, r, path, hook);
  if (d.errors.length !== before || call === undefined) return undefined;
  const out: KProbeSpec = { call, return: ret, syscall };
  attach(out, common, args, selectors, r);
  if (has(r, 'data')) out.data = data.filter((a): a is KProbeArg => a !== undefined);
  if (returnArg) out.returnArg = returnArg;
  if (returnArgAction) out.returnArgAction = returnArgAction;
  if (ignore) out.ignore = ignore;
  return out;
}

function checkCall(p: PolicyCtx, call: string, cp: string, syscall: boolean, explicit: boolean): void {
  const d = p.d;
  if (call.startsWith('list:')) {
    const name = call.slice(5);
    const l = p.lists.get(name);
    if (!l && p.brokenLists.has(name)) return;
    if (!l) {
      d.error(cp, `unknown list ${show(name)}`, didYouMean(name, p.lists.keys()) ?? 'declare it under spec.lists: [{name: …, type: syscalls, values: [...]}]');
      return;
    }
    p.usedLists.add(name);
    if ((l.type === 'syscalls' || l.type === 'generated_syscalls') && explicit && !syscall) {
      d.warn(cp, `list ${show(name)} holds syscalls but the hook says syscall: false`, 'set syscall: true');
    }
    return;
  }
  if (!SYMBOL.test(call)) {
    d.error(cp, `${show(call)} is not a kernel symbol name`, /\s|\(/.test(call) ? 'write just the function name, e.g. "tcp_connect"' : undefined);
    return;
  }
  const s = checkSyscallSymbol(call);
  if (syscall && explicit) {
    if (!s.ok) d.error(cp, s.reason, s.hint);
    else if (s.warning) d.warn(cp, s.warning, s.hint);
    return;
  }
  if (syscall) {
    // syscall left at its CRD default (true).
    if (s.ok) {
      if (s.warning) d.warn(cp, s.warning, s.hint);
      return;
    }
    if (call.startsWith('sys_') || call.startsWith('__x64_sys_') || lookupSyscall(call)) {
      d.error(cp, s.reason, s.hint);
      return;
    }
    d.warn(cp, `${show(call)} is not a syscall, but syscall defaults to true in the CRD, so its args would be read as a syscall's`, 'add syscall: false for kernel functions');
    return;
  }
  if (s.ok && (call.startsWith('sys_') || call.startsWith('__x64_sys_'))) {
    d.warn(cp, `${show(call)} is a syscall but the hook says syscall: false`, call.startsWith('sys_') ? `set syscall: true (on x86_64 the symbol is __x64_${call})` : 'set syscall: true so args are read from the syscall\'s registers');
  }
}

function readTracepoint(p: PolicyCtx, v: unknown, path: string): TracepointSpec | undefined {
  const d = p.d;
  const r = asRec(d, v, path, 'a tracepoint hook');
  if (!r) {
    if (v === null || v === undefined) d.error(path, 'empty tracepoint entry', 'write {subsystem: syscalls, event: sys_enter_openat}');
    return undefined;
  }
  checkFields(d, r, path, TRACEPOINT_FIELDS, 'a tracepoint hook');
  const before = d.errors.length;
  const subsystem = readString(d, r, 'subsystem', path, { required: true });
  const event = readString(d, r, 'event', path, { required: true });
  if (subsystem !== undefined && !IDENT.test(subsystem)) {
    d.error(at(path, 'subsystem'), `${show(subsystem)} is not a tracepoint subsystem`, subsystem.includes('/') || subsystem.includes(':') ? 'write subsystem and event separately, e.g. subsystem: syscalls, event: sys_enter_openat' : undefined);
  }
  if (event !== undefined && !IDENT.test(event)) d.error(at(path, 'event'), `${show(event)} is not a tracepoint event name`);
  const raw = readBool(d, r, 'raw', path);
  const common = readCommon(d, r, path);
  const brokenArgs = new Set<number | undefined>();
  const args = readArgList(d, r, 'args', path, 'tracepoint', brokenArgs);
  checkArgBudget(d, path, args, []);
  const selectors = readSelectors(p, r, path, { kind: 'tracepoint', path, args, brokenArgs, data: [], hasReturn: false });
  if (d.errors.length !== before || subsystem === undefined || event === undefined) return undefined;
  const out: TracepointSpec = { subsystem, event };
  if (raw !== undefined) out.raw = raw;
  attach(out, common, args, selectors, r);
  return out;
}

function readLsm(p: PolicyCtx, v: unknown, path: string): LsmHookSpec | undefined {
  const d = p.d;
  const r = asRec(d, v, path, 'an LSM hook');
  if (!r) {
    if (v === null || v === undefined) d.error(path, 'empty lsmhooks entry', 'write {hook: file_open}');
    return undefined;
  }
  checkFields(d, r, path, LSM_FIELDS, 'an LSM hook');
  const before = d.errors.length;
  const hookName = readString(d, r, 'hook', path, { required: true });
  if (hookName !== undefined) {
    const hp = at(path, 'hook');
    const m = /^(security_|bpf_lsm_)(.+)$/.exec(hookName);
    if (m) d.error(hp, `LSM hooks are named without the ${m[1]} prefix`, `write hook: "${m[2]}"`);
    else if (!IDENT.test(hookName)) d.error(hp, `${show(hookName)} is not an LSM hook name`, 'e.g. file_open, bprm_check_security');
  }
  const common = readCommon(d, r, path);
  const brokenArgs = new Set<number | undefined>();
  const args = readArgList(d, r, 'args', path, 'lsmhook', brokenArgs);
  checkArgBudget(d, path, args, []);
  const selectors = readSelectors(p, r, path, { kind: 'lsmhook', path, args, brokenArgs, data: [], hasReturn: false });
  if (d.errors.length !== before || hookName === undefined) return undefined;
  const out: LsmHookSpec = { hook: hookName };
  attach(out, common, args, selectors, r);
  return out;
}

function readNumberList(d: Diag, r: Rec, key: string, path: string): number[] | undefined {
  const list = readList(d, r, key, path);
  if (!list) return undefined;
  const out: number[] = [];
  list.forEach((x, i) => {
    const ip = idx(at(path, key), i);
    if (typeof x === 'number' && Number.isInteger(x) && !Number.isSafeInteger(x)) {
      d.error(ip, `${show(x)} is too large to represent exactly (above 2^53)`, 'offsets and addresses must stay below 2^53');
      return;
    }
    const n = intValue(d, x, ip, { min: 0, max: Number.MAX_SAFE_INTEGER });
    if (n !== undefined) out.push(n);
  });
  return out;
}

function readUprobe(p: PolicyCtx, v: unknown, path: string, spec: Rec): UProbeSpec | undefined {
  const d = p.d;
  const r = asRec(d, v, path, 'a uprobe hook');
  if (!r) {
    if (v === null || v === undefined) d.error(path, 'empty uprobes entry', 'write {path: /usr/bin/bash, symbols: [readline]}');
    return undefined;
  }
  checkFields(d, r, path, UPROBE_FIELDS, 'a uprobe hook');
  const before = d.errors.length;
  const binPath = readString(d, r, 'path', path, { required: true });
  if (binPath !== undefined && !binPath.startsWith('/')) d.error(at(path, 'path'), `${show(binPath)} is not an absolute path`, 'write the full path of the binary or library, e.g. /usr/lib/x86_64-linux-gnu/libc.so.6');
  const btfPath = readString(d, r, 'btfPath', path);
  const symbols = readStringList(d, r, 'symbols', path);
  const offsets = readNumberList(d, r, 'offsets', path);
  const addrs = readNumberList(d, r, 'addrs', path);
  const refCtrOffsets = readNumberList(d, r, 'refCtrOffsets', path);
  const targets = (['symbols', 'offsets', 'addrs'] as const).filter((k) => has(r, k));
  if (targets.length === 0) d.error(at(path, 'symbols'), 'a uprobe needs symbols, offsets or addrs', 'e.g. symbols: [readline]');
  else if (targets.length > 1) d.error(at(path, targets[1]), `${targets.join(' and ')} are mutually exclusive`, 'use one way to name the probe points');
  for (const k of targets) {
    const l = r[k];
    if (Array.isArray(l) && l.length === 0) d.error(at(path, k), `${k} must not be empty`);
  }
  symbols?.forEach((s, i) => {
    if (!SYMBOL.test(s)) d.error(idx(at(path, 'symbols'), i), `${show(s)} is not a symbol name`);
  });
  const ret = readBool(d, r, 'return', path) ?? false;
  const common = readCommon(d, r, path);
  const brokenArgs = new Set<number | undefined>();
  const args = readArgList(d, r, 'args', path, 'uprobe', brokenArgs);
  const data = readArgList(d, r, 'data', path, 'uprobe');
  checkArgBudget(d, path, args, data);
  let returnArg: KProbeArg | undefined;
  if (has(r, 'returnArg')) returnArg = readArg(d, r.returnArg, at(path, 'returnArg'), 'uprobe', false, undefined, true);
  if (ret && !has(r, 'returnArg')) d.error(at(path, 'returnArg'), 'return: true requires a returnArg', 'add returnArg: {index: 0, type: int}');
  const digests = readStringList(d, r, 'binaryDigests', path);
  digests?.forEach((s, i) => {
    if (!/^(sha256:)?[0-9a-fA-F]{64}$/.test(s)) d.error(idx(at(path, 'binaryDigests'), i), `${show(s)} is not a sha256 digest`, 'write 64 hex digits, optionally prefixed with sha256:');
  });
  const ignoreR = asRec(d, r.ignore, at(path, 'ignore'), 'ignore');
  let ignore: UProbeSpec['ignore'];
  if (ignoreR) {
    checkFields(d, ignoreR, at(path, 'ignore'), ['digestVerificationFailure'], 'ignore');
    const dv = readBool(d, ignoreR, 'digestVerificationFailure', at(path, 'ignore'));
    ignore = dv === undefined ? {} : { digestVerificationFailure: dv };
  }
  const inContainer = readBool(d, r, 'resolvePathInContainer', path);
  if (inContainer && !has(spec, 'podSelector')) d.error(at(path, 'resolvePathInContainer'), 'uprobe resolvePathInContainer requires a podSelector', 'add spec.podSelector');
  const selectors = readSelectors(p, r, path, { kind: 'uprobe', path, args, brokenArgs, data, returnArg, hasReturn: ret && returnArg !== undefined });
  if (d.errors.length !== before || binPath === undefined) return undefined;
  const out: UProbeSpec = { path: binPath };
  if (btfPath !== undefined) out.btfPath = btfPath;
  if (symbols) out.symbols = symbols;
  if (offsets) out.offsets = offsets;
  if (addrs) out.addrs = addrs;
  if (refCtrOffsets) out.refCtrOffsets = refCtrOffsets;
  attach(out, common, args, selectors, r);
  if (has(r, 'data')) out.data = data.filter((a): a is KProbeArg => a !== undefined);
  if (has(r, 'return')) out.return = ret;
  if (returnArg) out.returnArg = returnArg;
  if (digests) out.binaryDigests = digests;
  if (ignore) out.ignore = ignore;
  if (inContainer !== undefined) out.resolvePathInContainer = inContainer;
  return out;
}

function readUsdt(p: PolicyCtx, v: unknown, path: string): UsdtSpec | undefined {
  const d = p.d;
  const r = asRec(d, v, path, 'a USDT hook');
  if (!r) {
    if (v === null || v === undefined) d.error(path, 'empty usdts entry', 'write {path: /usr/bin/app, provider: myprov, name: myprobe}');
    return undefined;
  }
  checkFields(d, r, path, USDT_FIELDS, 'a USDT hook');
  const before = d.errors.length;
  const binPath = readString(d, r, 'path', path, { required: true });
  if (binPath !== undefined && !binPath.startsWith('/')) d.error(at(path, 'path'), `${show(binPath)} is not an absolute path`);
  const btfPath = readString(d, r, 'btfPath', path);
  const provider = readString(d, r, 'provider', path, { required: true });
  const name = readString(d, r, 'name', path, { required: true });
  const common = readCommon(d, r, path);
  const brokenArgs = new Set<number | undefined>();
  const args = readArgList(d, r, 'args', path, 'usdt', brokenArgs);
  checkArgBudget(d, path, args, []);
  const selectors = readSelectors(p, r, path, { kind: 'usdt', path, args, brokenArgs, data: [], hasReturn: false });
  if (d.errors.length !== before || binPath === undefined || provider === undefined || name === undefined) return undefined;
  const out: UsdtSpec = { path: binPath, provider, name };
  if (btfPath !== undefined) out.btfPath = btfPath;
  attach(out, common, args, selectors, r);
  return out;
}
