// Policy management: sources (files, directory, gRPC, CLI), state, mode, counters.
export { PolicyManager, PolicyManagerError, DEFAULT_MAX_POLICIES, DEFAULT_MAX_TEXT_BYTES } from './manager';
export type { ManagedPolicyView, PolicyErrorCode, PolicyManagerOptions, PolicySource, PolicyState, ReportedMode, AddOrigin } from './manager';
export { PolicyDirWatcher } from './dir';
export type { PolicyDirOptions } from './dir';
export { resolvePolicyLoader, ENGINE_MISSING } from './engine';
