// Finds the kernel side of policies (createPolicyLoader in ../engine) at run
// time. The engine is written separately; until it exports its factory the
// agent still runs, and every policy is listed as load_error saying the
// engine is missing (and `tetrahub policy check` prints the parser's summary).
import * as engine from '../engine';
import * as connect from '../connect';
import type { HookBackend, PolicyLoader, PolicyLoaderDeps } from '../engine/types';

type CreateLoader = (deps: PolicyLoaderDeps, backends: HookBackend[]) => PolicyLoader;
type CreateConnect = (opts: { cgroupRoot?: string }) => HookBackend;

export const ENGINE_MISSING = 'policy engine not available in this build (src/policy/engine has no createPolicyLoader)';

/** The loader with the specialised backends (connect-type hooks through cgroup socket hooks), or why there is none. */
export function resolvePolicyLoader(deps: PolicyLoaderDeps): { loader?: PolicyLoader; reason?: string } {
  const create = (engine as unknown as Record<string, unknown>).createPolicyLoader as CreateLoader | undefined;
  if (typeof create !== 'function') return { reason: ENGINE_MISSING };
  const backends: HookBackend[] = [];
  const makeConnect = (connect as unknown as Record<string, unknown>).createConnectBackend as CreateConnect | undefined;
  if (typeof makeConnect === 'function') {
    try {
      backends.push(makeConnect({ cgroupRoot: deps.config.cgroupRoot || undefined }));
    } catch (e) {
      deps.log.warn(`policy connect backend unavailable: ${(e as Error).message}`);
    }
  }
  try {
    return { loader: create(deps, backends) };
  } catch (e) {
    return { reason: `policy engine failed to start: ${(e as Error).message}` };
  }
}
