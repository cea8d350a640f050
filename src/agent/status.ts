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
}

export interface StatusProvider {
  snapshot(): StatusSnapshot;
}
