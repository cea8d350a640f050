// What the agent knows about itself: the answer behind `tetrahub status`,
// Hubble ServerStatus, Tetragon GetHealth and the metrics endpoint.
import type { WallTime } from '../model/event';

export type SensorState = 'running' | 'fallback' | 'off' | 'failed';

export interface SensorStatus {
  name: string;
  state: SensorState;
  /** Hooks attached, e.g. "raw_tp/sched_process_exec". */
  hooks: string[];
  /** Why it is in a fallback/off/failed state. */
  note?: string;
}

export interface StatusSnapshot {
  version: string;
  nodeName: string;
  startTime: WallTime;
  uptimeNs: number;
  sensors: SensorStatus[];
  /** Kernel features found (name → available). */
  features: Record<string, boolean>;
  /** Plain-language notes: missing features, degraded host visibility, ... */
  notes: string[];
  /** Named counters: kernel_ring_drops, subscriber_drops, process_cache_evictions, events_seen, ... */
  counters: Record<string, number>;
  /** Where each API listens. */
  listeners: Record<string, string[]>;
  /** TracingPolicies held by the agent (absent when policies are not set up). */
  policies?: PolicyStatus[];
}

/** One TracingPolicy as `tetrahub status` and /metrics show it. */
export interface PolicyStatus {
  id: number;
  name: string;
  namespace: string;
  /** enabled | disabled | load_error | error | loading | unloading */
  state: string;
  /** enforce | monitor | monitor_only */
  mode: string;
  /** file | dir | grpc | cli */
  source: string;
  file?: string;
  error?: string;
  kernelMemoryBytes: number;
  hooks: { section: string; call: string; attachedAs: string; state: string; fallback?: string; reason?: string }[];
  /** Action counters: post, signal, monitorSignal, override, monitorOverride, notifyEnforcer, monitorNotifyEnforcer, nopost. */
  counters: Record<string, number>;
}

export interface StatusProvider {
  snapshot(): StatusSnapshot;
}

/** Hooks grouped by their common prefix: "tracepoint/syscalls/{sys_enter_openat, sys_exit_openat}". */
export function summarizeHooks(hooks: readonly string[]): string {
  if (hooks.length <= 4) return hooks.join(', ');
  const groups = new Map<string, string[]>();
  for (const h of hooks) {
    const i = h.lastIndexOf('/');
    const [prefix, name] = i > 0 && !h.includes(' ') ? [h.slice(0, i + 1), h.slice(i + 1)] : ['', h];
    const g = groups.get(prefix) ?? [];
    g.push(name);
    groups.set(prefix, g);
  }
  const parts = [...groups].map(([prefix, names]) => (prefix && names.length > 1 ? `${prefix}{${names.join(', ')}}` : names.map((n) => prefix + n).join(', ')));
  return `${hooks.length} hooks: ${parts.join(', ')}`;
}
