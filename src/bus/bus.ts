// The event bus: sensors publish batches; every consumer (API stream, exporter,
// history ring) holds a Subscription with its own bounded queue. Publishing never
// blocks: a full queue drops the newest items and counts them, and the consumer
// reports the count to its clients (Hubble lost_events, metrics, status).
import type { BusItem, WallTime } from '../model/event';

export class Subscription {
  private queue: BusItem[] = [];
  private head = 0;
  /** Drops since the consumer last called takeDropped(). */
  private pendingDrops = 0;
  private firstDrop?: WallTime;
  private lastDrop?: WallTime;
  /** All drops since the subscription started. */
  dropped = 0;
  delivered = 0;
  closed = false;

  constructor(
    readonly name: string,
    readonly limit: number,
    private readonly onReady: () => void,
    private readonly accept: (item: BusItem) => boolean,
    private readonly bus: EventBus,
  ) {}

  /** Called by the bus for each published batch. */
  offer(items: readonly BusItem[]): void {
    let added = false;
    for (const item of items) {
      if (!this.accept(item)) continue;
      if (this.queue.length - this.head >= this.limit) {
        this.dropped++;
        this.pendingDrops++;
        this.bus.countDrop();
        if (!this.firstDrop) this.firstDrop = item.time;
        this.lastDrop = item.time;
        continue;
      }
      this.queue.push(item);
      added = true;
    }
    if (added) this.onReady();
  }

  get size(): number {
    return this.queue.length - this.head;
  }

  /** Takes up to max queued items, oldest first. */
  take(max = Infinity): BusItem[] {
    const end = Math.min(this.queue.length, this.head + max);
    const out = this.queue.slice(this.head, end);
    this.head = end;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.delivered += out.length;
    return out;
  }

  /** Returns and resets the drops not yet reported to this consumer's client. */
  takeDropped(): { count: number; first?: WallTime; last?: WallTime } {
    const r = { count: this.pendingDrops, first: this.firstDrop, last: this.lastDrop };
    this.pendingDrops = 0;
    this.firstDrop = this.lastDrop = undefined;
    return r;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.head = 0;
    this.bus.remove(this);
  }
}

export interface SubscribeOptions {
  name: string;
  /** Queue bound; items past it are dropped and counted. */
  limit?: number;
  /** Called (synchronously, inside publish) when new items were queued. */
  onReady: () => void;
  /** In-process prefilter; rejected items are neither queued nor counted as drops. */
  accept?: (item: BusItem) => boolean;
}

export class EventBus {
  private subs = new Set<Subscription>();
  private seq = 0;
  /** Items published since start. */
  published = 0;
  /** Items dropped by any subscriber queue since start. */
  subscriberDrops = 0;

  /** Assigns sequence numbers and hands the batch to every subscriber. */
  publish(items: BusItem[]): void {
    if (items.length === 0) return;
    for (const it of items) it.seq = ++this.seq;
    this.published += items.length;
    for (const s of this.subs) s.offer(items);
  }

  subscribe(opts: SubscribeOptions): Subscription {
    const sub = new Subscription(opts.name, opts.limit ?? 10000, opts.onReady, opts.accept ?? (() => true), this);
    this.subs.add(sub);
    return sub;
  }

  get subscriberCount(): number {
    return this.subs.size;
  }

  subscribers(): Subscription[] {
    return [...this.subs];
  }

  /** @internal */
  countDrop(): void {
    this.subscriberDrops++;
  }

  /** @internal */
  remove(sub: Subscription): void {
    this.subs.delete(sub);
  }
}
