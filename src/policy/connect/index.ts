// The connect backend of the policy loader (HookBackend, engine/types.ts):
// connect-type hooks (sys_connect, security_socket_connect / lsm
// socket_connect, tcp_connect, tcp_v4/v6_connect, ip4/ip6_datagram_connect)
// whose selectors a cgroup connect4/connect6 hook can evaluate are planned
// and loaded here (bpf/policy_connect.bpf.c); the generic backend takes the
// rest. Works without kprobes and without BPF-LSM.
import { cgroup2Mount } from '../../enrich/process/procfs';
import type { FeatureProbe } from '../../kernel/types';
import type { HookBackend, HookLoadContext, HookRef, HookStatusInfo, LoadedHook, PolicyMapPlan } from '../engine/types';
import type { TracingPolicy } from '../types';
import { describeLabelSelector } from '../labels';
import { compileConnectHook, connectCall, type CompiledHook } from './compile';
import { ConnectHook, type ConnectKernelOptions } from './kernel';
import {
  TH_PC_ADDRS_ENTRIES,
  TH_PC_BINS_ENTRIES,
  TH_PC_EVENTS_BYTES,
  TH_PC_IDS_ENTRIES,
  TH_PC_MAX_RULES,
  TH_PC_NETNS_ENTRIES,
  TH_PC_PATH_MAX,
  TH_PC_PROCS_ENTRIES,
  TH_PC_ACT_OVERRIDE,
  TH_PC_ACT_SIGKILL,
  th_pc_rule,
} from './layout.gen';

export { compileConnectHook, connectCall, CONNECT_CALLS } from './compile';
export type { CompiledHook, CompiledRule, CompileResult } from './compile';
export { ConnectHook, decodeDecision } from './kernel';
export type { ConnectDecision, ConnectKernelOptions, ConnectStats } from './kernel';
export { selectorMatches, splitLabel } from './labels';

/** Per-element bookkeeping of a hash map in the kernel (struct htab_elem), rounded. */
const HASH_ELEM = 48;
const r8 = (n: number): number => Math.ceil(n / 8) * 8;
const hashBytes = (key: number, value: number, entries: number): number => (r8(key) + r8(value) + HASH_ELEM) * entries;

/** Kernel memory of one loaded hook's maps: key + value + element overhead × entries (what bpftool reports as memlock, roughly). */
export function connectMaps(hook: CompiledHook): PolicyMapPlan[] {
  const plan: PolicyMapPlan[] = [
    { name: 'th_pc_events', bytes: TH_PC_EVENTS_BYTES + 4096 },
    { name: 'th_pc_rules', bytes: th_pc_rule.SIZE * TH_PC_MAX_RULES },
  ];
  if (hook.binarySets.length) {
    plan.push({ name: 'th_pc_procs', bytes: hashBytes(4, 16, TH_PC_PROCS_ENTRIES) });
    plan.push({ name: 'th_pc_bins', bytes: hashBytes(TH_PC_PATH_MAX, 8, TH_PC_BINS_ENTRIES) });
  }
  // Sets are allocated on use (BPF_F_NO_PREALLOC): count what the policy puts there.
  let ids = 0;
  let addrs = 0;
  for (const r of hook.rules)
    for (const c of r.checks) {
      if (c.kind === 'addr') addrs += c.cidrs.length;
      else if (c.kind === 'ident') ids += c.identities.length;
      else ids += 64; // a DLabels set: a few dozen identities typically
    }
  if (ids) plan.push({ name: 'th_pc_ids', bytes: hashBytes(8, 1, Math.min(ids, TH_PC_IDS_ENTRIES)) });
  if (addrs) plan.push({ name: 'th_pc_addrs', bytes: Math.min(addrs, TH_PC_ADDRS_ENTRIES) * (24 + 8 + 48) });
  if (hook.podSelector) plan.push({ name: 'th_pc_netns', bytes: hashBytes(4, 1, TH_PC_NETNS_ENTRIES) });
  return plan;
}

function statusOf(policy: TracingPolicy, hook: CompiledHook, features: FeatureProbe, cgroupRoot: string, argErrorHonoured?: boolean): HookStatusInfo {
  const asked = hook.hook === 'lsm' ? `lsm ${hook.call}` : `kprobe ${hook.call}`;
  let fallback: string | undefined;
  if (hook.hook === 'lsm' || hook.call === 'security_socket_connect') {
    fallback = features.attach.lsm && features.lsmActive ? undefined : `${hook.hook === 'lsm' ? `lsm ${hook.call}` : 'security_socket_connect'} (BPF-LSM ${features.reasons['attach.lsm'] ? `refused here: ${features.reasons['attach.lsm']}` : 'not usable here'}) → cgroup socket hooks`;
  } else if (!features.attach.kprobe) {
    fallback = `${asked} (kprobes ${features.reasons['attach.kprobe'] ? `refused here: ${features.reasons['attach.kprobe']}` : 'not usable here'}) → cgroup socket hooks`;
  }
  const inKernel: string[] = [];
  for (const r of hook.rules) for (const d of r.describe) inKernel.push(`selectors[${r.index}] ${d}`);
  if (hook.podSelector) inKernel.push(`podSelector ${describeLabelSelector(hook.podSelector)} → pod netns set (Cilium endpoints, refreshed)`);
  const actions: string[] = [];
  const any = (bit: number): boolean => hook.rules.some((r) => (r.actions & bit) !== 0);
  if (any(TH_PC_ACT_OVERRIDE)) {
    const errs = [...new Set(hook.rules.filter((r) => r.actions & TH_PC_ACT_OVERRIDE).map((r) => r.err))];
    const other = errs.filter((e) => e !== -1);
    const how = other.length === 0 ? 'connect fails with EPERM' : argErrorHonoured === false ? `connect fails with EPERM (argError ${other.join(', ')} cannot be returned by a cgroup hook on this kernel)` : `connect fails with argError ${errs.join(', ')} (bpf_set_retval; EPERM where the kernel lacks it)`;
    actions.push(`Override: cgroup connect4/connect6 deny, ${how}`);
  }
  if (any(TH_PC_ACT_SIGKILL)) actions.push(`Sigkill: connect${hook.sendmsg ? '/send' : ''} refused in the cgroup hook, SIGKILL by bpf_send_signal at sys_exit_connect${hook.sendmsg ? '/sendto/sendmsg' : ''} (same thread)`);
  actions.push('Post: ring record per matching connect (NoPost: counted only)');
  void policy;
  return {
    section: hook.section,
    call: hook.call,
    attachedAs: `cgroup connect4/connect6${hook.sendmsg ? '/sendmsg4/sendmsg6' : ''} on ${cgroupRoot}`,
    state: 'loaded',
    ...(fallback ? { fallback } : {}),
    inKernel,
    inUserSpace: hook.usesLabels ? ['DLabels → identity numbers (Cilium API, re-resolved periodically and on Cilium map changes)'] : [],
    actions,
  };
}

export interface ConnectBackendOptions extends ConnectKernelOptions {}

export class ConnectBackend implements HookBackend {
  readonly name = 'connect';
  /** Loaded hooks (tests, status). */
  readonly loaded = new Set<ConnectHook>();

  constructor(private readonly opts: ConnectBackendOptions = {}) {}

  claims(policy: TracingPolicy, hook: HookRef, features: FeatureProbe): boolean {
    if (!connectCall(policy, hook)) return false;
    if (features.attach.cgroupSockAddr === false) return false;
    return compileConnectHook(policy, hook).ok;
  }

  /** Why a connect-type hook is not claimed (undefined when it is, or is not a connect hook at all). */
  whyNot(policy: TracingPolicy, hook: HookRef, features: FeatureProbe): string | undefined {
    if (!connectCall(policy, hook)) return undefined;
    if (features.attach.cgroupSockAddr === false) return `cgroup sock_addr programs unusable: ${features.reasons['attach.cgroupSockAddr'] ?? 'refused'}`;
    const r = compileConnectHook(policy, hook);
    return r.ok ? undefined : r.reason;
  }

  plan(policy: TracingPolicy, hook: HookRef, features: FeatureProbe): { status: HookStatusInfo; maps: PolicyMapPlan[] } {
    const r = compileConnectHook(policy, hook);
    if (!r.ok) {
      const c = connectCall(policy, hook);
      return {
        status: { section: c?.section ?? `${hook.list}[${hook.index}]`, call: c?.call ?? '', attachedAs: '', state: 'unsupported', reason: r.reason, inKernel: [], inUserSpace: [], actions: [] },
        maps: [],
      };
    }
    return { status: statusOf(policy, r.hook, features, this.opts.cgroupRoot || cgroup2Mount() || '<cgroup2 mount>'), maps: connectMaps(r.hook) };
  }

  async load(policy: TracingPolicy, hook: HookRef, ctx: HookLoadContext): Promise<LoadedHook> {
    const r = compileConnectHook(policy, hook);
    if (!r.ok) throw new Error(`${hook.list}[${hook.index}]: ${r.reason}`);
    const maps = connectMaps(r.hook);
    const bytes = maps.reduce((a, m) => a + m.bytes, 0);
    const h = new ConnectHook(policy, r.hook, ctx, statusOf(policy, r.hook, ctx.deps.features, this.opts.cgroupRoot || ctx.deps.config.cgroupRoot || cgroup2Mount() || '<cgroup2 mount>'), bytes, this.opts);
    await h.load();
    h.status = statusOf(policy, r.hook, ctx.deps.features, h.cgroupRoot, h.argErrorHonoured);
    this.loaded.add(h);
    const close = h.close.bind(h);
    h.close = async () => {
      this.loaded.delete(h);
      await close();
    };
    return h;
  }
}

export function createConnectBackend(opts: ConnectBackendOptions = {}): ConnectBackend {
  return new ConnectBackend(opts);
}
