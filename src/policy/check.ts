// Structured summary and human description of a parsed policy, for
// `tetrahub policy check` (which adds the kernel plan on top).
import type {
  ActionName, ActionSelector, ArgSelector, HookKind, KProbeArg, KProbeSelector, KProbeSpec, TracingPolicy,
} from './types';
import { ENFORCING_ACTIONS, OPERATOR_INFO } from './tables';
import { describeLabelSelector, isEmptySelector } from './labels';
import { expandSelector } from './parse';

/** Sensor (tetragon-api.md §11.3) each hook kind is served by. */
export const SENSOR_OF: Readonly<Record<HookKind, string>> = {
  kprobe: 'generic_kprobe',
  fentry: 'generic_fentry',
  tracepoint: 'generic_tracepoint',
  lsmhook: 'generic_lsm',
  uprobe: 'generic_uprobe',
  usdt: 'generic_usdt',
};

export interface HookSummary {
  kind: HookKind;
  /** YAML path of the hook, e.g. `spec.kprobes[0]`. */
  path: string;
  /** What is hooked: symbol, `subsystem:event`, LSM hook, `binary:symbol`, `provider:name`. */
  target: string;
  sensor: string;
  /** BPF program types this hook needs (before kernel-specific choices such as kprobe_multi). */
  programTypes: string[];
  syscall: boolean;
  returnProbe: boolean;
  args: number;
  selectors: number;
  /** Actions in this hook (including return actions), de-duplicated; implicit Post when a selector has none. */
  actions: ActionName[];
  enforces: boolean;
}

export interface KernelRequirement {
  /** Short feature name, e.g. `bpf_lsm`, `large_progs`, `kprobe_override`. */
  feature: string;
  /** Minimum kernel (major.minor), when one applies. */
  minKernel?: string;
  /** Kernel config or agent flag needed. */
  needs?: string;
  why: string;
  /** First YAML path that needs it. */
  path: string;
}

export interface PolicySummary {
  name: string;
  kind: TracingPolicy['kind'];
  namespace?: string;
  /** Configured mode (`spec.options` policy-mode; default enforce). */
  mode: 'enforce' | 'monitor';
  hooks: HookSummary[];
  hookCount: number;
  selectorCount: number;
  actions: ActionName[];
  /** The policy contains enforcement actions (Sigkill, Signal, Override, NotifyEnforcer, Set). */
  enforces: boolean;
  /** …and would run them (mode enforce). Monitor mode counts them instead. */
  enforcing: boolean;
  /** Which processes the policy applies to. */
  scope: string;
  loader: boolean;
  lists: number;
  enforcerCalls: string[];
  options: Record<string, string>;
  /** tetrahub-only operators used (the policy will not load on Tetragon). */
  extensions: string[];
  requirements: KernelRequirement[];
}

interface HookView {
  kind: HookKind;
  path: string;
  target: string;
  syscall: boolean;
  returnProbe: boolean;
  args: KProbeArg[];
  selectors: KProbeSelector[];
  spec?: KProbeSpec;
}

function hooksOf(p: TracingPolicy): HookView[] {
  const s = p.spec;
  const out: HookView[] = [];
  const kp = (list: KProbeSpec[] | undefined, kind: 'kprobe' | 'fentry', key: string): void => {
    list?.forEach((h, i) => out.push({ kind, path: `spec.${key}[${i}]`, target: h.call, syscall: h.syscall, returnProbe: h.return, args: [...(h.args ?? []), ...(h.data ?? [])], selectors: h.selectors ?? [], spec: h }));
  };
  kp(s.kprobes, 'kprobe', 'kprobes');
  kp(s.fentries, 'fentry', 'fentries');
  s.tracepoints?.forEach((h, i) => out.push({ kind: 'tracepoint', path: `spec.tracepoints[${i}]`, target: `${h.subsystem}:${h.event}${h.raw ? ' (raw)' : ''}`, syscall: false, returnProbe: false, args: h.args ?? [], selectors: h.selectors ?? [] }));
  s.lsmhooks?.forEach((h, i) => out.push({ kind: 'lsmhook', path: `spec.lsmhooks[${i}]`, target: h.hook, syscall: false, returnProbe: false, args: h.args ?? [], selectors: h.selectors ?? [] }));
  s.uprobes?.forEach((h, i) => {
    const where = h.symbols?.join(',') ?? (h.offsets ? `offsets ${h.offsets.join(',')}` : `addrs ${(h.addrs ?? []).join(',')}`);
    out.push({ kind: 'uprobe', path: `spec.uprobes[${i}]`, target: `${h.path}:${where}`, syscall: false, returnProbe: h.return ?? false, args: [...(h.args ?? []), ...(h.data ?? [])], selectors: h.selectors ?? [] });
  });
  s.usdts?.forEach((h, i) => out.push({ kind: 'usdt', path: `spec.usdts[${i}]`, target: `${h.path}:${h.provider}:${h.name}`, syscall: false, returnProbe: false, args: h.args ?? [], selectors: h.selectors ?? [] }));
  return out;
}

function programTypes(h: HookView): string[] {
  switch (h.kind) {
    case 'kprobe': return h.returnProbe ? ['kprobe', 'kretprobe'] : ['kprobe'];
    case 'fentry': return h.returnProbe ? ['fentry', 'fexit'] : ['fentry'];
    case 'tracepoint': return [h.target.endsWith('(raw)') ? 'raw_tracepoint' : 'tracepoint'];
    case 'lsmhook': return ['lsm'];
    case 'uprobe': return h.returnProbe ? ['uprobe', 'uretprobe'] : ['uprobe'];
    case 'usdt': return ['uprobe'];
  }
}

function actionsOf(sel: KProbeSelector): ActionSelector[] {
  return [...(sel.matchActions ?? []), ...(sel.matchReturnActions ?? [])];
}

function uniq<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/** Structured facts about a valid policy. */
export function summarizePolicy(p: TracingPolicy): PolicySummary {
  const macros = p.spec.selectorsMacros;
  const mode = p.spec.options?.find((o) => o.name === 'policy-mode')?.value === 'monitor' ? 'monitor' : 'enforce';
  const reqs = new Map<string, KernelRequirement>();
  const need = (r: KernelRequirement): void => {
    if (!reqs.has(r.feature)) reqs.set(r.feature, r);
  };
  const extensions = new Set<string>();

  const hooks: HookSummary[] = hooksOf(p).map((h) => {
    const sels = h.selectors.map((s) => expandSelector(s, macros));
    const acts: ActionName[] = [];
    sels.forEach((s, si) => {
      const sp = `${h.path}.selectors[${si}]`;
      const a = actionsOf(s);
      if ((s.matchActions ?? []).length === 0) acts.push('Post');
      for (const x of a) acts.push(x.action);
      requirementsOfSelector(h, s, sp, need, extensions);
    });
    if (h.selectors.length === 0) acts.push('Post');
    requirementsOfHook(h, need);
    const actions = uniq(acts);
    return {
      kind: h.kind, path: h.path, target: h.target, sensor: SENSOR_OF[h.kind], programTypes: programTypes(h), syscall: h.syscall,
      returnProbe: h.returnProbe, args: h.args.length, selectors: h.selectors.length, actions, enforces: actions.some((a) => ENFORCING_ACTIONS.has(a)),
    };
  });
  const actions = uniq(hooks.flatMap((h) => h.actions));
  const enforces = hooks.some((h) => h.enforces);
  const options: Record<string, string> = {};
  for (const o of p.spec.options ?? []) options[o.name] = o.value;
  if (p.spec.loader) need({ feature: 'loader', why: 'loader events hook perf_event_mmap_output', path: 'spec.loader' });
  for (const [i, sel] of [p.spec.podSelector, p.spec.containerSelector].entries()) {
    if (sel) need({ feature: 'cgroup_workloads', needs: 'cgroup v2 (or MEMCG/CPUSETS v1 on ≥6.11)', why: 'pod/container selectors filter by cgroup id in the kernel', path: i === 0 ? 'spec.podSelector' : 'spec.containerSelector' });
  }
  const summary: PolicySummary = {
    name: p.metadata.name, kind: p.kind, mode, hooks, hookCount: hooks.length, selectorCount: hooks.reduce((n, h) => n + h.selectors, 0),
    actions, enforces, enforcing: enforces && mode === 'enforce', scope: scopeOf(p), loader: p.spec.loader ?? false,
    lists: p.spec.lists?.length ?? 0, enforcerCalls: p.spec.enforcers?.flatMap((e) => e.calls) ?? [], options,
    extensions: [...extensions].sort(), requirements: [...reqs.values()],
  };
  if (p.metadata.namespace !== undefined) summary.namespace = p.metadata.namespace;
  return summary;
}

function requirementsOfHook(h: HookView, need: (r: KernelRequirement) => void): void {
  if (h.kind === 'lsmhook') need({ feature: 'bpf_lsm', minKernel: '5.7', needs: 'CONFIG_BPF_LSM and "bpf" in the lsm= boot parameter', why: 'lsmhooks attach BPF-LSM programs', path: h.path });
  if (h.kind === 'fentry') need({ feature: 'fentry', minKernel: '5.5', needs: 'BTF trampolines', why: 'fentries attach fentry/fexit programs', path: h.path });
  if (h.kind === 'uprobe' || h.kind === 'usdt') need({ feature: 'uprobe', why: 'uprobes/usdts attach to user binaries', path: h.path });
  h.args.forEach((a, i) => {
    const ap = `${h.path}.args[${i}]`;
    if (a.maxData) need({ feature: 'max_data', minKernel: '5.4', why: 'maxData reads up to 327360 bytes', path: ap });
    if (a.resolve) need({ feature: h.kind === 'lsmhook' ? 'resolve_lsm' : 'resolve', minKernel: h.kind === 'lsmhook' ? '5.7' : '5.4', why: 'resolve walks BTF types in the kernel', path: ap });
  });
  if (h.spec?.returnArgAction) need({ feature: 'socket_tracking', minKernel: '5.3', why: `${h.spec.returnArgAction} keeps a socket → process map`, path: `${h.path}.returnArgAction` });
}

function requirementsOfSelector(h: HookView, s: KProbeSelector, sp: string, need: (r: KernelRequirement) => void, extensions: Set<string>): void {
  const large = (why: string, path: string): void => need({ feature: 'large_progs', minKernel: '5.3', why, path });
  const filters = (s.matchArgs?.length ?? 0) + (s.matchData?.length ?? 0);
  if (filters > 1) large('more than one argument filter per selector', `${sp}.matchArgs`);
  for (const b of [...(s.matchBinaries ?? []), ...(s.matchParentBinaries ?? [])]) {
    if (b.operator !== 'In' && b.operator !== 'NotIn') large(`matchBinaries ${b.operator}`, `${sp}.matchBinaries`);
  }
  if (s.matchParentBinaries?.length) need({ feature: 'parents_map', needs: 'agent flag --parents-map-enabled', why: 'matchParentBinaries looks up the parent binary', path: `${sp}.matchParentBinaries` });
  if (s.matchNamespaceChanges?.length) large('matchNamespaceChanges', `${sp}.matchNamespaceChanges`);
  if ((s.matchNamespaces?.length ?? 0) > 4) large('more than 4 matchNamespaces filters', `${sp}.matchNamespaces`);
  if (s.matchNamespaces?.some((n) => n.namespace === 'Time' || n.namespace === 'TimeForChildren')) need({ feature: 'time_ns', minKernel: '5.6', why: 'time namespaces', path: `${sp}.matchNamespaces` });
  const argFilters: ArgSelector[] = [...(s.matchArgs ?? []), ...(s.matchData ?? []), ...(s.matchReturnArgs ?? [])];
  for (const f of argFilters) {
    const info = OPERATOR_INFO[f.operator];
    if (info.extension) {
      extensions.add(f.operator);
      need({ feature: 'cilium_identity', needs: 'Cilium on the node (ipcache/endpoint maps)', why: `${f.operator} resolves peers to Cilium security identities`, path: sp });
    }
    if (f.operator === 'GT' || f.operator === 'LT' || f.operator === 'CapabilitiesGained') large(`operator ${f.operator}`, sp);
    if (f.operator === 'SubString') need({ feature: 'bpf_strnstr', minKernel: '6.17', why: 'SubString uses bpf_strnstr', path: sp });
    if (f.operator === 'SubStringIgnCase') need({ feature: 'bpf_strncasestr', minKernel: '6.19', why: 'SubStringIgnCase uses bpf_strncasestr', path: sp });
  }
  for (const a of actionsOf(s)) {
    if (a.action === 'Sigkill' || a.action === 'Signal') need({ feature: 'send_signal', minKernel: '5.3', why: `${a.action} uses bpf_send_signal`, path: sp });
    if (a.action === 'Override') {
      if (h.kind === 'kprobe') {
        need({ feature: 'kprobe_override', needs: 'CONFIG_BPF_KPROBE_OVERRIDE; the function must allow error injection (syscalls do)', why: 'Override on a kprobe uses bpf_override_return', path: sp });
        if (h.target.startsWith('security_')) need({ feature: 'override_security', minKernel: '5.7', why: 'overriding security_* functions', path: sp });
      } else if (h.kind === 'uprobe' && (a.argRegs?.length || a.argNewSymbol || a.argNewAddr !== undefined || a.argNewOffset !== undefined)) {
        need({ feature: 'uprobe_regs_change', minKernel: '6.18', why: 'uprobe Override changes registers', path: sp });
      } else if (h.kind === 'fentry') {
        need({ feature: 'fmodret', why: 'Override on fentries uses fmod_ret', path: sp });
      }
    }
    if (a.action === 'TrackSock' || a.action === 'UntrackSock') need({ feature: 'socket_tracking', minKernel: '5.3', why: `${a.action} keeps a socket → process map`, path: sp });
    if (a.imaHash) need({ feature: 'ima', minKernel: '5.11', needs: 'CONFIG_IMA and BPF-LSM', why: 'imaHash reads IMA hashes from a sleepable LSM program', path: sp });
    if (a.userStackTrace) need({ feature: 'user_stacks', minKernel: '5.15', why: 'complete user stack traces', path: sp });
  }
}

function scopeOf(p: TracingPolicy): string {
  const s = p.spec;
  const parts: string[] = [];
  if (p.kind === 'TracingPolicyNamespaced') parts.push(`pods in namespace ${p.metadata.namespace ?? '(where applied)'}`);
  if (s.podSelector) parts.push(`pods matching ${describeLabelSelector(s.podSelector)}`);
  if (s.containerSelector) parts.push(`containers matching ${describeLabelSelector(s.containerSelector)}`);
  const workloadFilter = p.kind === 'TracingPolicyNamespaced' || s.podSelector !== undefined || s.containerSelector !== undefined;
  const host = s.hostSelector !== undefined && isEmptySelector(s.hostSelector);
  let text: string;
  if (!workloadFilter && !s.hostSelector) text = 'all processes on the node (host and containers)';
  else if (!workloadFilter && host) text = 'host processes only';
  else text = parts.join('; ') + (host ? '; and host processes' : '; host processes excluded');
  if (s.nodeSelector) text += ` — on nodes matching ${describeLabelSelector(s.nodeSelector)}`;
  return text;
}

// ---------------------------------------------------------------------------
// text

function list(xs: readonly (string | number)[], max = 6): string {
  const shown = xs.slice(0, max).join(', ');
  return `[${shown}${xs.length > max ? `, … (${xs.length} total)` : ''}]`;
}

function describeArgFilter(f: ArgSelector, args: KProbeArg[]): string {
  const arg = f.args?.length ? `args${list(f.args)}` : `arg${f.index}`;
  const type = args.find((a) => a.index === f.index)?.type;
  const what = type ? `${arg}(${type})` : arg;
  if (f.labelSelector) return `${what} ${f.operator} {${describeLabelSelector(f.labelSelector)}}`;
  return f.values.length ? `${what} ${f.operator} ${list(f.values)}` : `${what} ${f.operator}`;
}

function describeAction(a: ActionSelector): string {
  const extra: string[] = [];
  if (a.argSig !== undefined) extra.push(`sig ${a.argSig}`);
  if (a.argError !== undefined) extra.push(`error ${a.argError}`);
  if (a.rateLimit !== undefined) extra.push(`rate limit ${a.rateLimit}${a.rateLimitScope ? `/${a.rateLimitScope}` : ''}`);
  if (a.argUrl) extra.push(a.argUrl);
  if (a.argFqdn) extra.push(a.argFqdn);
  if (a.kernelStackTrace) extra.push('kernel stack');
  if (a.userStackTrace) extra.push('user stack');
  if (a.imaHash) extra.push('IMA hash');
  return extra.length ? `${a.action} (${extra.join(', ')})` : a.action;
}

/** One line per filter of a selector (macros merged). */
export function describeSelector(s: KProbeSelector, args: KProbeArg[] = []): string[] {
  const out: string[] = [];
  if (s.label) out.push(`label ${JSON.stringify(s.label)}`);
  for (const p of s.matchPIDs ?? []) out.push(`pid ${p.operator} ${list(p.values)}${p.isNamespacePID ? ' (namespace pids)' : ''}${p.followForks ? ' + forks' : ''}`);
  for (const b of s.matchBinaries ?? []) out.push(`binary ${b.operator} ${list(b.values)}${b.followChildren ? ' + children' : ''}`);
  for (const b of s.matchParentBinaries ?? []) out.push(`parent binary ${b.operator} ${list(b.values)}`);
  for (const n of s.matchNamespaces ?? []) out.push(`${n.namespace} namespace ${n.operator} ${list(n.values)}`);
  for (const n of s.matchNamespaceChanges ?? []) out.push(`namespace change ${n.operator} ${list(n.values)}`);
  for (const c of s.matchCapabilities ?? []) out.push(`${c.type} caps ${c.operator} ${list(c.values)}`);
  for (const c of s.matchCapabilityChanges ?? []) out.push(`${c.type} cap change ${c.operator} ${list(c.values)}`);
  for (const w of s.matchWorkloads ?? []) {
    const parts = [w.podSelector && `pods {${describeLabelSelector(w.podSelector)}}`, w.containerSelector && `containers {${describeLabelSelector(w.containerSelector)}}`, w.hostSelector && 'host'].filter(Boolean);
    out.push(`workloads ${parts.join(' + ')}`);
  }
  for (const f of s.matchArgs ?? []) out.push(describeArgFilter(f, args));
  for (const f of s.matchData ?? []) out.push(`data ${describeArgFilter(f, [])}`);
  for (const f of s.matchReturnArgs ?? []) out.push(`return ${describeArgFilter(f, [])}`);
  const acts = s.matchActions?.length ? s.matchActions.map(describeAction).join(', ') : 'Post';
  out.push(`→ ${acts}`);
  if (s.matchReturnActions?.length) out.push(`→ at return: ${s.matchReturnActions.map(describeAction).join(', ')}`);
  return out;
}

/** Human-readable multi-line description of a valid policy. */
export function describePolicy(p: TracingPolicy): string {
  const sum = summarizePolicy(p);
  const lines: string[] = [];
  const where = p.kind === 'TracingPolicyNamespaced' ? `namespaced${p.metadata.namespace ? ` (${p.metadata.namespace})` : ''}` : 'cluster-wide';
  lines.push(`${p.kind} ${JSON.stringify(p.metadata.name)} — ${where}, mode ${sum.mode}`);
  lines.push(`  applies to: ${sum.scope}`);
  lines.push(`  hooks (${sum.hookCount}):`);
  const views = hooksOf(p);
  sum.hooks.forEach((h, i) => {
    const flags = [h.syscall && h.kind !== 'tracepoint' ? 'syscall' : '', h.returnProbe ? 'with return probe' : ''].filter(Boolean).join(', ');
    lines.push(`    ${h.kind} ${h.target}${flags ? ` (${flags})` : ''} — ${h.args} arg${h.args === 1 ? '' : 's'}, ${h.selectors} selector${h.selectors === 1 ? '' : 's'} [${h.sensor}: ${h.programTypes.join('+')}]`);
    const view = views[i];
    if (view.selectors.length === 0) lines.push('      every call → Post');
    view.selectors.forEach((s, si) => {
      const e = expandSelector(s, p.spec.selectorsMacros);
      const body = describeSelector(e, view.args);
      const via = s.macros?.length ? ` (macros ${s.macros.join(', ')})` : '';
      lines.push(`      selector ${si + 1}${via}: ${body.join('; ')}`);
    });
  });
  if (sum.loader) lines.push('  loader events: on');
  if (sum.enforcerCalls.length) lines.push(`  enforcer on: ${list(sum.enforcerCalls)}`);
  const enforcement = !sum.enforces ? 'none (observe only)' : sum.enforcing ? `yes (${sum.actions.filter((a) => ENFORCING_ACTIONS.has(a)).join(', ')})` : 'monitor mode: enforcement actions are counted, not run';
  lines.push(`  enforcement: ${enforcement}`);
  if (Object.keys(sum.options).length) lines.push(`  options: ${Object.entries(sum.options).map(([k, v]) => `${k}=${v}`).join(', ')}`);
  if (sum.extensions.length) lines.push(`  tetrahub extensions: ${sum.extensions.join(', ')} (not loadable on Tetragon)`);
  if (sum.requirements.length) {
    lines.push('  kernel requirements:');
    for (const r of sum.requirements) {
      const k = [r.minKernel ? `≥${r.minKernel}` : '', r.needs ?? ''].filter(Boolean).join('; ');
      lines.push(`    ${r.feature}${k ? ` (${k})` : ''}: ${r.why}`);
    }
  } else {
    lines.push('  kernel requirements: only the base (4.19 + BTF)');
  }
  return lines.join('\n');
}

