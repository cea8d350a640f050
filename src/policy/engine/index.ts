// The kernel side of TracingPolicies: see types.ts for the contract.
import { createGenericLoader, type PolicyLoaderOptions } from './loader';
import type { HookBackend, PolicyLoader, PolicyLoaderDeps } from './types';

export * from './types';
export type { PolicyLoaderOptions } from './loader';

/**
 * The policy loader: registered backends (e.g. cgroup connect denial) are
 * asked first for each hook; bpf/policy.bpf.o's generic programs take the rest.
 */
export function createPolicyLoader(deps: PolicyLoaderDeps, backends: HookBackend[] = [], opts: PolicyLoaderOptions = {}): PolicyLoader {
  return createGenericLoader(deps, backends, opts);
}
