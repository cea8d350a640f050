// The Hubble history ring: the last N bus items (flows and loss notices), fed
// by one bus subscription that is drained synchronously, so the ring is always
// current outside a publish call. Readers address items by absolute position;
// a position older than `oldest` has been overwritten, and the reader reports
// the gap as HUBBLE_RING_BUFFER loss.
import type { BusItem, RuntimeEvent } from '../../model/event';
import { eventNamespaces } from './encode';
import { isUpstream, type HubbleItem, type ItemSource, type ItemSubscription } from './upstream/types';

export const DEFAULT_HISTORY_SIZE = 4095;
const RATE_WINDOW_S = 60;
const NAMESPACE_TTL_MS = 60 * 60 * 1000;
const MAX_NAMESPACES = 10_000;

/** Rounds up to the next 2ⁿ−1 (Cilium's ring capacities), minimum 1. */
export function ringCapacity(size: number): number {
  const n = Math.max(1, Math.floor(size));
  let cap = 1;
  while (cap < n) cap = cap * 2 + 1;
  return cap;
}

export interface HistoryOptions {
  capacity?: number;
  /** Clock for rates and namespace ages (tests). */
  now?: () => number;
}

export class FlowHistory {
  readonly capacity: number;
  private readonly slots: (HubbleItem | undefined)[];
  /** Absolute position of the next write; also the number of items ever written. */
  private written = 0;
  /** Runtime events seen since start (ServerStatus.seen_flows). */
  seenFlows = 0;
  /** Items the ring's own bus subscription dropped (a single batch larger than its queue). */
  intakeDrops = 0;
  private readonly sub: ItemSubscription;
  private readonly now: () => number;
  // Flows per second: one counter per second over the last minute.
  private readonly rateBuckets = new Array<number>(RATE_WINDOW_S).fill(0);
  private rateSecond = 0;
  private readonly startedMs: number;
  /** "cluster\0namespace" → last seen (ms); insertion order = age order. */
  private readonly namespaceSeen = new Map<string, number>();

  /** `bus`: the EventBus, or the merged feed when Cilium's Hubble is followed (upstream/). */
  constructor(bus: ItemSource, opts: HistoryOptions = {}) {
    this.capacity = ringCapacity(opts.capacity ?? DEFAULT_HISTORY_SIZE);
    this.slots = new Array<HubbleItem | undefined>(this.capacity);
    this.now = opts.now ?? Date.now;
    this.startedMs = this.now();
    this.rateSecond = Math.floor(this.startedMs / 1000);
    this.sub = bus.subscribe({
      name: 'hubble-history',
      // Drained inside publish, so the queue only has to hold one batch.
      limit: Math.max(this.capacity, 1 << 16),
      onReady: () => this.drain(),
    });
  }

  private drain(): void {
    const items = this.sub.take();
    const nowMs = this.now();
    for (const it of items) {
      this.push(it);
      if (it.kind === 'cilium') this.countUpstream(it.namespaces(), nowMs);
      else if (it.kind !== 'lost' && it.kind !== 'upstream_notice') this.countFlow(it, nowMs);
    }
    const drop = this.sub.takeDropped();
    if (drop.count > 0) {
      // The newest items of an oversized batch never reached the ring: record
      // the gap in the ring itself so every reader reports it.
      this.intakeDrops += drop.count;
      this.seenFlows += drop.count;
      const time = drop.last ?? { sec: Math.floor(nowMs / 1000), nsec: (nowMs % 1000) * 1e6 };
      this.push({ kind: 'lost', seq: 0, time, nodeName: '', source: 'history_ring', count: drop.count, first: drop.first, last: drop.last, wire: new Map() });
    }
  }

  private push(it: HubbleItem): void {
    this.slots[this.written % this.capacity] = it;
    this.written++;
  }

  private countFlow(ev: RuntimeEvent, nowMs: number): void {
    this.seenFlows++;
    this.advanceRate(nowMs);
    this.rateBuckets[this.rateSecond % RATE_WINDOW_S]++;
    for (const ns of eventNamespaces(ev)) this.seeNamespace(`${ns.cluster}\u0000${ns.namespace}`, nowMs);
  }

  /** A Cilium flow (upstream/): counted like ours; its namespaces with the cluster unknown. */
  private countUpstream(namespaces: string[], nowMs: number): void {
    this.seenFlows++;
    this.advanceRate(nowMs);
    this.rateBuckets[this.rateSecond % RATE_WINDOW_S]++;
    for (const ns of namespaces) this.seeNamespace(`\u0000${ns}`, nowMs);
  }

  private seeNamespace(key: string, nowMs: number): void {
    const prev = this.namespaceSeen.get(key);
    // Refresh at most once a second to keep the hot path to a Map lookup.
    if (prev !== undefined && nowMs - prev < 1000) return;
    this.namespaceSeen.delete(key);
    this.namespaceSeen.set(key, nowMs);
    if (this.namespaceSeen.size > MAX_NAMESPACES) {
      const oldest = this.namespaceSeen.keys().next().value;
      if (oldest !== undefined) this.namespaceSeen.delete(oldest);
    }
  }

  private advanceRate(nowMs: number): void {
    const sec = Math.floor(nowMs / 1000);
    if (sec <= this.rateSecond) return;
    const steps = Math.min(sec - this.rateSecond, RATE_WINDOW_S);
    for (let i = 1; i <= steps; i++) this.rateBuckets[(this.rateSecond + i) % RATE_WINDOW_S] = 0;
    this.rateSecond = sec;
  }

  /** Absolute position the next item will get. */
  get head(): number {
    return this.written;
  }

  /** Absolute position of the oldest item still held. */
  get oldest(): number {
    return Math.max(0, this.written - this.capacity);
  }

  /** Items currently held (ServerStatus.num_flows). */
  get size(): number {
    return this.written - this.oldest;
  }

  /** The bus item at an absolute position, or undefined when overwritten, not yet written, or a Cilium item (see entry()). */
  at(pos: number): BusItem | undefined {
    const it = this.entry(pos);
    return it && !isUpstream(it) ? it : undefined;
  }

  /** Any item at an absolute position (bus items and Cilium's, upstream/), or undefined when overwritten or not yet written. */
  entry(pos: number): HubbleItem | undefined {
    if (pos < this.oldest || pos >= this.written) return undefined;
    return this.slots[pos % this.capacity];
  }

  /** Flows per second over the last minute (or since start when younger). */
  flowsRate(): number {
    const nowMs = this.now();
    this.advanceRate(nowMs);
    let sum = 0;
    for (const n of this.rateBuckets) sum += n;
    const windowS = Math.min(RATE_WINDOW_S, Math.max(1, (nowMs - this.startedMs) / 1000));
    return sum / windowS;
  }

  /** Namespaces seen in flows during the last hour, sorted by cluster then namespace. */
  namespaces(): { cluster: string; namespace: string }[] {
    const cutoff = this.now() - NAMESPACE_TTL_MS;
    const out: { cluster: string; namespace: string }[] = [];
    for (const [key, seen] of this.namespaceSeen) {
      if (seen < cutoff) {
        this.namespaceSeen.delete(key);
        continue;
      }
      const i = key.indexOf('\u0000');
      out.push({ cluster: key.slice(0, i), namespace: key.slice(i + 1) });
    }
    out.sort((a, b) => (a.cluster === b.cluster ? (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0) : a.cluster < b.cluster ? -1 : 1));
    return out;
  }

  close(): void {
    this.sub.close();
    this.slots.fill(undefined);
  }
}
