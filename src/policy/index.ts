// Public surface of the TracingPolicy front end.
export * from './types';
export { parsePolicy, parsePolicies, formatIssue, expandSelector } from './parse';
export type { ParseOptions } from './parse';
export { describePolicy, describeSelector, summarizePolicy, SENSOR_OF } from './check';
export type { HookSummary, KernelRequirement, PolicySummary } from './check';
export { parseIdentityValue, parseRateLimit } from './selectors';
export { checkSyscallSymbol, lookupSyscall } from './syscalls';
