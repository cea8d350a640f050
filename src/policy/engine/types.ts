// The contract between the policy manager (sources, gRPC, CLI, state) and the
// kernel side of policies (planning and loading hooks). The manager never
// touches BPF; the loader never knows where a policy came from.
import type { Logger } from '../../agent/log';
import type { AgentConfig } from '../../config/config';
import type { EventBus } from '../../bus/bus';
import type { ProcessCache } from '../../enrich/process/cache';
import type { BootClock } from '../../enrich/process/clock';
import type { FeatureProbe, NativeBinding } from '../../kernel/types';
import type { CiliumIdentity } from '../../sensors/net/identity';
import type { TracingPolicy } from '../types';

export type PolicyMode = 'enforce' | 'monitor';

/** Tetragon's HookState, by meaning. */
export type HookState = 'loaded' | 'unsupported' | 'error' | 'call-not-found';

/** One hook of a policy, as planned for this kernel and (once loaded) as attached. */
export interface HookStatusInfo {
  /** Where it is in the policy, e.g. "kprobes[0]", "tracepoints[1]", "lsmhooks[0]". */
  section: string;
  /** The call as written: "sys_execve", "security_file_open", "syscalls/sys_enter_openat". */
  call: string;
  /** What attaches, e.g. "tracepoint syscalls/sys_enter_execve + sys_exit_execve", "kprobe __x64_sys_execve", "lsm file_open", "cgroup connect4/connect6". */
  attachedAs: string;
  state: HookState;
  /** The hook the policy asked for when a fallback was taken, and why. */
  fallback?: string;
  /** Why the hook is unsupported or failed. */
  reason?: string;
  /** Selector parts checked in the kernel, e.g. "matchBinaries In (2 paths)", "matchArgs[0] Prefix". */
  inKernel: string[];
  /** Selector parts checked in user space (if any), with why. */
  inUserSpace: string[];
  /** Actions and how each is carried out here, e.g. "Sigkill: bpf_send_signal", "Override: cgroup connect4 deny". */
  actions: string[];
}

export interface PolicyMapPlan {
  name: string;
  /** Estimated kernel memory (key+value size × max entries, rounded). */
  bytes: number;
}

/** What `tetrahub policy check FILE` prints and what load() would do. */
export interface PolicyPlan {
  hooks: HookStatusInfo[];
  maps: PolicyMapPlan[];
  kernelMemoryBytes: number;
  /** Problems that stop the policy from loading at all (strict mode adds unsupported hooks). */
  errors: string[];
}

/** Tetragon's TracingPolicyActionCounters by meaning. */
export interface ActionCounters {
  post: number;
  signal: number;
  monitorSignal: number;
  override: number;
  monitorOverride: number;
  notifyEnforcer: number;
  monitorNotifyEnforcer: number;
  nopost: number;
}

export interface LoadedPolicy {
  readonly hooks: HookStatusInfo[];
  readonly kernelMemoryBytes: number;
  counters(): ActionCounters;
  /** Switch enforce ↔ monitor in place (a map update; no reload). */
  setMode(mode: PolicyMode): Promise<void>;
  /** Stop or resume producing events and enforcing, keeping the programs loaded. */
  setEnabled(on: boolean): Promise<void>;
  /** Detach and free everything. Idempotent. */
  close(): Promise<void>;
}

export interface LoadOptions {
  mode: PolicyMode;
  /** Refuse the whole policy when any hook is unsupported. */
  strict: boolean;
}

export interface PolicyLoaderDeps {
  native: NativeBinding;
  bus: EventBus;
  cache: ProcessCache;
  clock: BootClock;
  config: AgentConfig;
  log: Logger;
  features: FeatureProbe;
  /** Cilium identities (DIdentity/DLabels); absent without the net sensor. */
  identity?: CiliumIdentity;
}

/** The kernel side of policies. */
export interface PolicyLoader {
  plan(policy: TracingPolicy, opts: LoadOptions): PolicyPlan;
  /** Throws PolicyLoadError naming the problem; unsupported hooks are reported in hooks unless strict. */
  load(policy: TracingPolicy, opts: LoadOptions): Promise<LoadedPolicy>;
}

export class PolicyLoadError extends Error {
  constructor(
    message: string,
    readonly plan?: PolicyPlan,
  ) {
    super(message);
    this.name = 'PolicyLoadError';
  }
}

export function zeroCounters(): ActionCounters {
  return { post: 0, signal: 0, monitorSignal: 0, override: 0, monitorOverride: 0, notifyEnforcer: 0, monitorNotifyEnforcer: 0, nopost: 0 };
}

/** A hook of a policy by its place: spec.kprobes[2] is { list: 'kprobes', index: 2 }. */
export interface HookRef {
  list: 'kprobes' | 'tracepoints' | 'lsmhooks' | 'uprobes' | 'usdts';
  index: number;
}

export interface HookLoadContext {
  deps: PolicyLoaderDeps;
  mode: PolicyMode;
  /** Small integer unique per loaded policy (kernel maps key on it). */
  policyId: number;
  /** The policy's counters; the backend increments them as actions happen. */
  counters: ActionCounters;
}

export interface LoadedHook {
  readonly status: HookStatusInfo;
  readonly kernelMemoryBytes: number;
  setMode(mode: PolicyMode): Promise<void>;
  setEnabled(on: boolean): Promise<void>;
  close(): Promise<void>;
}

/**
 * A specialised kernel side for some hooks (e.g. connect denial through cgroup
 * socket hooks). The loader asks each backend in turn; the first that claims a
 * hook plans and loads it, the generic backend takes the rest.
 */
export interface HookBackend {
  readonly name: string;
  claims(policy: TracingPolicy, hook: HookRef, features: FeatureProbe): boolean;
  plan(policy: TracingPolicy, hook: HookRef, features: FeatureProbe): { status: HookStatusInfo; maps: PolicyMapPlan[] };
  load(policy: TracingPolicy, hook: HookRef, ctx: HookLoadContext): Promise<LoadedHook>;
}
