// The Sensors gRPC methods' view of the PolicyManager: errors become gRPC
// statuses, managed policies become TracingPolicyStatus (server.ts renders).
import * as grpc from '@grpc/grpc-js';
import type { HookStatusInfo } from '../../policy/engine/types';
import { PolicyManagerError, type ManagedPolicyView, type PolicyErrorCode, type PolicyManager } from '../../policy/manager';
import { ApiError, type HookStateName, type PolicyApi, type TracingPolicyInfo } from './server';

const CODES: Record<PolicyErrorCode, grpc.status> = {
  invalid: grpc.status.INVALID_ARGUMENT,
  exists: grpc.status.ALREADY_EXISTS,
  not_found: grpc.status.NOT_FOUND,
  limit: grpc.status.RESOURCE_EXHAUSTED,
  load: grpc.status.FAILED_PRECONDITION,
  state: grpc.status.FAILED_PRECONDITION,
  unavailable: grpc.status.UNAVAILABLE,
};

function mapped<T>(fn: () => Promise<T>): Promise<T> {
  return fn().catch((e: unknown) => {
    if (e instanceof PolicyManagerError) throw new ApiError(CODES[e.code], e.message);
    throw e;
  });
}

function hookState(h: HookStatusInfo): HookStateName {
  if (h.state === 'loaded') return 'loaded';
  if (h.state === 'call-not-found') return 'call_not_found';
  return 'unspecified';
}

/** One line per hook: what attached where, the fallback taken, or why it did not. */
export function hookDescription(h: HookStatusInfo): string {
  const parts = [h.call];
  if (h.attachedAs) parts.push(`→ ${h.attachedAs}`);
  if (h.fallback) parts.push(`(fallback: ${h.fallback})`);
  if (h.state !== 'loaded') parts.push(`[${h.state}${h.reason ? `: ${h.reason}` : ''}]`);
  return parts.join(' ');
}

/** Policy domain in Tetragon's terms: files are "static", the rest "grpc". */
function domainOf(v: ManagedPolicyView): string {
  return v.source === 'file' || v.source === 'dir' ? 'static' : 'grpc';
}

export function policyInfo(v: ManagedPolicyView): TracingPolicyInfo {
  const partial = v.state === 'enabled' && v.hooks.some((h) => h.state !== 'loaded');
  const info: TracingPolicyInfo = {
    id: v.id,
    name: v.name,
    state: partial ? 'partially_enabled' : v.state,
    mode: v.mode,
    sensors: v.sensors,
    kernelMemoryBytes: v.kernelMemoryBytes,
    stats: {
      post: v.counters.post,
      signal: v.counters.signal,
      monitorSignal: v.counters.monitorSignal,
      override: v.counters.override,
      monitorOverride: v.counters.monitorOverride,
      notifyEnforcer: v.counters.notifyEnforcer,
      monitorNotifyEnforcer: v.counters.monitorNotifyEnforcer,
      nopost: v.counters.nopost,
    },
    domain: domainOf(v),
    hooks: v.hooks.map((h, i) => ({ section: h.section, state: hookState(h), description: hookDescription(h), index: i })),
  };
  if (v.namespace) info.namespace = v.namespace;
  if (v.error) info.error = v.error;
  return info;
}

/** Sensors in Tetragon's ListSensors style: one per hook kind per policy, the policy as the collection. */
export function policySensors(list: ManagedPolicyView[]): { name: string; enabled: boolean; collection: string }[] {
  const out: { name: string; enabled: boolean; collection: string }[] = [];
  for (const v of list) {
    const collection = v.namespace ? `${v.namespace}/${v.name}` : v.name;
    for (const s of v.sensors) out.push({ name: s, enabled: v.state === 'enabled', collection });
  }
  return out;
}

/** The PolicyApi of the Tetragon server backed by a PolicyManager. */
export function policyApiOf(manager: PolicyManager): PolicyApi {
  return {
    add: (yaml) => mapped(async () => void (await manager.add(yaml, { source: 'grpc' }, { single: true }))),
    delete: (name, opts) => mapped(() => manager.delete(name, opts.namespace)),
    list: () => manager.list().map(policyInfo),
    configure: (name, opts) => mapped(async () => void (await manager.configure(name, opts.namespace, { enable: opts.enable, mode: opts.mode }))),
    domains: () => ['grpc', 'static'],
    sensors: () => policySensors(manager.list()),
  };
}
