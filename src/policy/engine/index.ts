// The kernel side of TracingPolicies: see types.ts for the contract.
export * from './types';
