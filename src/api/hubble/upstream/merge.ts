// The merged Hubble stream: our bus items and Cilium's flows, one sequence
// in time order, served to the history ring and every GetFlows stream.
//
// Ordering: a two-way merge of per-source queues (each source is assumed in
// order by itself: the bus in publish order, Cilium in its ring order).
// While both queues hold items, the older head goes out at once; while one
// is empty, its items may still be on the way, so the other's head waits at
// most `windowMs` (default 200 ms) after its arrival. When Cilium is not
// connected there is nothing to wait for: runtime items pass at once. At most
// `maxHeld` items wait (default 8192); beyond that the oldest head goes out
// early (counted `forced`). A Cilium flow also waits `enrichDelayMs` (default
// 50 ms) after its arrival even when it is the older head: our own event
// about its socket may still be in the ring (drained every 10 ms) or in a
// batch behind it, and it must be in the socket table before the match. An item older than one already sent is sent
// anyway (counted `late`): never lost, only out of order.
//
// At release:
//   Cilium flow      matched against the socket table and enriched (late
//                    enough that our own event about the socket is in)
//   our NetEvent     with dedupe on, dropped when Cilium reported a flow of
//                    the same connection (Cilium's copy, enriched, wins)
//
// Socket table input and Cilium's "reported" marks are taken on arrival.
import type { EventBus, Subscription } from '../../../bus/bus';
import type { LossNotice, WallTime } from '../../../model/event';
import { toTimestamp } from '../encode';
import { protos } from '../proto';
import { NodeState } from '../types';
import { decodeUpstream, enrichFlow, type CiliumFlow } from './enrich';
import type { CiliumHubbleFollower } from './follower';
import { SocketTable, wallMs } from './sockets';
import type { HubbleItem, ItemSource, ItemSubscription, ItemSubscriptionOptions, UpstreamNoticeItem } from './types';

export interface MergedFeedOptions {
  bus: EventBus;
  table?: SocketTable;
  /** Our node name (node_status responses). */
  nodeName: string;
  /** Drop our connection flows Cilium reported too. Default true. */
  dedupe?: boolean;
  windowMs?: number;
  /** Minimum hold of a Cilium flow before its socket lookup, ms. Default 50 (at most windowMs). */
  enrichDelayMs?: number;
  maxHeld?: number;
  /** Upstream responses decoded per turn. Default 1024. */
  batch?: number;
  now?: () => number;
}

export interface MergeCounters {
  /** Cilium flows decoded. */
  flows: number;
  enriched: number;
  unmatched: number;
  /** Flows Cilium sent again after a reconnect (same uuid), dropped. */
  replayed: number;
  /** Our connection flows left out because Cilium reported the connection. */
  deduped: number;
  late: number;
  forced: number;
  /** Cilium's own node_status / lost_events passed through, and our node status events. */
  notices: number;
  nodeStatusEvents: number;
  /** Items a slow GetFlows stream's queue dropped (reported to it as lost_events). */
  streamDrops: number;
}

interface Held {
  it: HubbleItem;
  ms: number;
  arrived: number;
}

/** A bounded queue per consumer, as the bus has (drops counted, newest dropped). */
class FeedSubscription implements ItemSubscription {
  private queue: HubbleItem[] = [];
  private head = 0;
  private pendingDrops = 0;
  private firstDrop?: WallTime;
  private lastDrop?: WallTime;
  dropped = 0;
  closed = false;

  constructor(
    private readonly limit: number,
    private readonly onReady: () => void,
    private readonly accept: ((it: HubbleItem) => boolean) | undefined,
    private readonly remove: (s: FeedSubscription) => void,
    private readonly countDrop: () => void,
  ) {}

  offer(items: readonly HubbleItem[]): void {
    let added = false;
    for (const it of items) {
      if (this.accept && !this.accept(it)) continue;
      if (this.queue.length - this.head >= this.limit) {
        this.dropped++;
        this.pendingDrops++;
        this.countDrop();
        this.firstDrop ??= it.time;
        this.lastDrop = it.time;
        continue;
      }
      this.queue.push(it);
      added = true;
    }
    if (added) this.onReady();
  }

  get size(): number {
    return this.queue.length - this.head;
  }

  take(max = Infinity): HubbleItem[] {
    const end = Math.min(this.queue.length, this.head + max);
    const out = this.queue.slice(this.head, end);
    this.head = end;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return out;
  }

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
    this.remove(this);
  }
}

/** Remembers the last `limit` uuids seen, to drop what a reconnect replays (FIFO ring + set). */
class RecentIds {
  readonly set = new Set<string>();
  private readonly ring: string[];
  private pos = 0;
  constructor(private readonly limit: number) {
    this.ring = new Array<string>(limit).fill('');
  }
  /** false when already seen. */
  add(id: string): boolean {
    if (!id) return true;
    if (this.set.has(id)) return false;
    const old = this.ring[this.pos];
    if (old) this.set.delete(old);
    this.ring[this.pos] = id;
    this.pos = (this.pos + 1) % this.limit;
    this.set.add(id);
    return true;
  }
  clear(): void {
    this.set.clear();
    this.ring.fill('');
  }
}

export class MergedFeed implements ItemSource {
  readonly table: SocketTable;
  readonly c: MergeCounters = { flows: 0, enriched: 0, unmatched: 0, replayed: 0, deduped: 0, late: 0, forced: 0, notices: 0, nodeStatusEvents: 0, streamDrops: 0 };
  private readonly subs = new Set<FeedSubscription>();
  private readonly busSub: Subscription;
  private readonly runtime: Held[] = [];
  private rHead = 0;
  private readonly upstream: Held[] = [];
  private uHead = 0;
  private lastOutMs = 0;
  private timer?: NodeJS.Timeout;
  private timerAt = 0;
  private drainScheduled = false;
  private seq = 0;
  private follower?: CiliumHubbleFollower;
  private readonly recent = new RecentIds(16384);
  private readonly windowMs: number;
  private readonly enrichDelayMs: number;
  private readonly maxHeld: number;
  private readonly batch: number;
  private readonly dedupe: boolean;
  private readonly now: () => number;
  private closed = false;
  /** Cilium's node name as its flows carry it. */
  ciliumNode = '';

  constructor(private readonly o: MergedFeedOptions) {
    this.table = o.table ?? new SocketTable();
    this.windowMs = o.windowMs ?? 200;
    this.enrichDelayMs = Math.min(this.windowMs, o.enrichDelayMs ?? 50);
    this.maxHeld = o.maxHeld ?? 8192;
    this.batch = o.batch ?? 1024;
    this.dedupe = o.dedupe ?? true;
    this.now = o.now ?? Date.now;
    this.busSub = o.bus.subscribe({ name: 'hubble-merge', limit: Math.max(this.maxHeld, 1 << 16), onReady: () => this.onBus() });
  }

  /** Connects the follower: its responses and state changes come in here. */
  attach(f: CiliumHubbleFollower): void {
    this.follower = f;
    f.setHandlers({
      onReady: () => this.scheduleDrain(),
      onState: (up, message) => this.nodeStatus(up, message),
    });
  }

  subscribe(opts: ItemSubscriptionOptions): ItemSubscription {
    const s = new FeedSubscription(opts.limit ?? 10000, opts.onReady, opts.accept, (x) => this.subs.delete(x), () => this.c.streamDrops++);
    this.subs.add(s);
    return s;
  }

  /** Forgets the uuids seen (benchmarks replay the same flows). */
  forgetSeenIds(): void {
    this.recent.clear();
  }

  get held(): number {
    return this.runtime.length - this.rHead + (this.upstream.length - this.uHead);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.busSub.close();
    for (const s of [...this.subs]) s.close();
  }

  // ------------------------------------------------------------ intake

  private onBus(): void {
    const now = this.now();
    for (const it of this.busSub.take()) {
      if (it.kind === 'net') this.table.add(it);
      this.runtime.push({ it, ms: wallMs(it.time), arrived: now });
    }
    const d = this.busSub.takeDropped();
    if (d.count > 0) this.runtime.push({ it: this.lossNotice(d.count, 'subscriber_queue', d.first, d.last), ms: now, arrived: now });
    this.pump();
  }

  private scheduleDrain(): void {
    if (this.drainScheduled || this.closed) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drainUpstream();
    });
  }

  /** Decodes queued Cilium responses (a batch per turn, so the bus and the streams get turns too). */
  drainUpstream(): void {
    const f = this.follower;
    if (!f || this.closed) return;
    this.ingest(f.take(this.batch));
    const dropped = f.takeDropped();
    if (dropped > 0) {
      const now = this.now();
      this.upstream.push({ it: this.lossNotice(dropped, 'subscriber_queue'), ms: now, arrived: now });
    }
    this.pump();
    if (f.size > 0) this.scheduleDrain();
  }

  /** Takes raw Cilium GetFlowsResponses (the follower's, or a benchmark's) into the merge; pump() releases them. */
  ingest(raws: readonly Buffer[]): void {
    const f = this.follower;
    const now = this.now();
    const fallback = this.ciliumNode || this.o.nodeName;
    for (const raw of raws) {
      const d = decodeUpstream(raw, fallback);
      switch (d.kind) {
        case 'garbage':
          f?.noteGarbage(d.error);
          break;
        case 'empty':
          break;
        case 'notice':
          this.c.notices++;
          d.item.seq = ++this.seq;
          this.upstream.push({ it: d.item, ms: wallMs(d.item.time), arrived: now });
          break;
        case 'flow': {
          const item = d.item;
          f?.noteFlowTime(item.time);
          if (!this.recent.add(item.uuid)) {
            this.c.replayed++;
            break;
          }
          this.c.flows++;
          if (item.nodeName) this.ciliumNode = item.nodeName;
          item.seq = ++this.seq;
          if (item.tuple) this.table.markReported(item.tuple);
          this.upstream.push({ it: item, ms: item.tuple?.timeMs ?? wallMs(item.time), arrived: now });
          break;
        }
      }
    }
  }

  private lossNotice(count: number, source: LossNotice['source'], first?: WallTime, last?: WallTime): LossNotice {
    const ms = this.now();
    const time = { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
    return { kind: 'lost', seq: ++this.seq, time, nodeName: this.o.nodeName, source, count, first, last, wire: new Map() };
  }

  /** A node_status event about the Cilium connection, in the stream like a flow. */
  private nodeStatus(up: boolean, message: string): void {
    if (this.closed) return;
    const ms = this.now();
    const time = { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
    const P = protos();
    const bytes = Uint8Array.prototype.slice.call(
      P.GetFlowsResponse.encode({
        node_status: { state_change: up ? NodeState.NODE_CONNECTED : NodeState.NODE_UNAVAILABLE, node_names: [this.ciliumNode || this.o.nodeName], message },
        node_name: this.o.nodeName,
        time: toTimestamp(time),
      }).finish(),
    );
    const it: UpstreamNoticeItem = { kind: 'upstream_notice', seq: ++this.seq, time, nodeName: this.o.nodeName, bytes };
    this.c.nodeStatusEvents++;
    // Flows already queued from before the outage go out first.
    if (!up) this.drainUpstream();
    this.upstream.push({ it, ms, arrived: ms });
    this.pump();
  }

  // ------------------------------------------------------------ release

  /** Releases what may go now, in time order; arms the timer for the rest. */
  pump(): void {
    if (this.closed) return;
    const now = this.now();
    const out: HubbleItem[] = [];
    const waitForUpstream = this.follower?.connected ?? false;
    for (;;) {
      const r = this.rHead < this.runtime.length ? this.runtime[this.rHead] : undefined;
      const u = this.uHead < this.upstream.length ? this.upstream[this.uHead] : undefined;
      if (!r && !u) break;
      let next: Held;
      let fromRuntime: boolean;
      if (r && u) {
        fromRuntime = r.ms <= u.ms;
        next = fromRuntime ? r : u;
        if (!fromRuntime && now - u.arrived < this.enrichDelayMs && this.held <= this.maxHeld) break;
      } else if (r) {
        fromRuntime = true;
        next = r;
        // Cilium's flows of the same moment may still be on the way.
        if (waitForUpstream && now - r.arrived < this.windowMs && this.held <= this.maxHeld) break;
        if (this.held > this.maxHeld) this.c.forced++;
      } else {
        fromRuntime = false;
        next = u as Held;
        if (now - next.arrived < this.windowMs && this.held <= this.maxHeld) break;
        if (this.held > this.maxHeld) this.c.forced++;
      }
      if (fromRuntime) this.rHead++;
      else this.uHead++;
      this.release(next, out);
    }
    this.compact();
    if (out.length) for (const s of this.subs) s.offer(out);
    this.arm(now);
  }

  private release(h: Held, out: HubbleItem[]): void {
    const it = h.it;
    if (it.kind === 'net' && this.dedupe && this.table.reported(it)) {
      this.c.deduped++;
      return;
    }
    if (it.kind === 'cilium') {
      if (enrichFlow(it as CiliumFlow, this.table)) this.c.enriched++;
      else this.c.unmatched++;
    }
    if (h.ms < this.lastOutMs) this.c.late++;
    else this.lastOutMs = h.ms;
    out.push(it);
  }

  private compact(): void {
    if (this.rHead > 1024 && this.rHead * 2 > this.runtime.length) {
      this.runtime.splice(0, this.rHead);
      this.rHead = 0;
    } else if (this.rHead === this.runtime.length) {
      this.runtime.length = 0;
      this.rHead = 0;
    }
    if (this.uHead > 1024 && this.uHead * 2 > this.upstream.length) {
      this.upstream.splice(0, this.uHead);
      this.uHead = 0;
    } else if (this.uHead === this.upstream.length) {
      this.upstream.length = 0;
      this.uHead = 0;
    }
  }

  /** A timer for the earliest head whose wait ends. */
  private arm(now: number): void {
    const r = this.rHead < this.runtime.length ? this.runtime[this.rHead] : undefined;
    const u = this.uHead < this.upstream.length ? this.upstream[this.uHead] : undefined;
    if (!r && !u) return;
    // The upstream head waits enrichDelayMs beside a runtime head, windowMs alone; a runtime head windowMs.
    let at = Infinity;
    if (r) at = r.arrived + this.windowMs;
    if (u) at = Math.min(at, u.arrived + (r ? this.enrichDelayMs : this.windowMs));
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.max(1, at - now + 1));
    this.timer.unref();
  }
}
