// Following Cilium's Hubble and serving one merged stream (issue 4, item 5):
//
//   follower.ts  gRPC client of Cilium's observer.Observer/GetFlows
//                (reconnect with backoff, keepalive, bounded intake)
//   enrich.ts    response → item; flow → local socket → process context
//   sockets.ts   the bounded socket table from our own NetEvents
//   merge.ts     time-ordered merge with our bus items, dedupe, node status
//   splice.ts    byte-level Summary/extensions rewrite
//
// Use: createCiliumHubble() before the Hubble server, pass `.feed` as its
// `upstream.feed`, start() once the server listens, close() on stop.
import type { EventBus } from '../../../bus/bus';
import { NodeState } from '../types';
import { CiliumHubbleFollower, type FollowerOptions } from './follower';
import { MergedFeed } from './merge';
import { SocketTable, type SocketTableOptions } from './sockets';

export { CiliumHubbleFollower } from './follower';
export { MergedFeed } from './merge';
export { SocketTable } from './sockets';
export type { HubbleItem, ItemSource, ItemSubscription, UpstreamItem, UpstreamFlowItem, UpstreamNoticeItem } from './types';
export { isUpstream } from './types';

export interface CiliumHubbleOptions {
  /** Cilium's Hubble socket, e.g. unix:///var/run/cilium/hubble.sock. */
  address: string;
  bus: EventBus;
  nodeName: string;
  /** Leave out our connection flows for connections Cilium reported (config ciliumHubbleDedupe). Default true. */
  dedupe?: boolean;
  /** Reorder window, ms. Default 200. */
  windowMs?: number;
  enrichDelayMs?: number;
  maxHeld?: number;
  table?: SocketTableOptions;
  follower?: Omit<FollowerOptions, 'address'>;
}

/** A node entry for GetNodes (observer.Node fields). */
export interface UpstreamNode {
  name: string;
  version: string;
  address: string;
  state: number;
}

export class CiliumHubble {
  readonly feed: MergedFeed;
  readonly follower: CiliumHubbleFollower;
  readonly table: SocketTable;

  constructor(readonly o: CiliumHubbleOptions) {
    this.table = new SocketTable(o.table);
    this.feed = new MergedFeed({ bus: o.bus, table: this.table, nodeName: o.nodeName, dedupe: o.dedupe, windowMs: o.windowMs, enrichDelayMs: o.enrichDelayMs, maxHeld: o.maxHeld });
    this.follower = new CiliumHubbleFollower({ ...o.follower, address: o.address });
    this.feed.attach(this.follower);
  }

  /** Starts following (connects in the background; never throws for an absent Cilium). */
  start(): void {
    this.follower.start();
  }

  close(): void {
    this.follower.close();
    this.feed.close();
  }

  get connected(): boolean {
    return this.follower.connected;
  }

  /** One line for the log and status notes. */
  describe(): string {
    const st = this.follower.state;
    const dedupe = this.o.dedupe ?? true;
    return `Cilium Hubble at ${this.o.address}: ${st.connected ? 'connected' : `not connected${st.lastError ? ` (${st.lastError})` : ''}`}; merged into our GetFlows stream, our duplicate connection flows ${dedupe ? 'left out' : 'kept'}`;
  }

  /** Counters for status and metrics. */
  counters(): Record<string, number> {
    const f = this.follower.c;
    const m = this.feed.c;
    const t = this.table.stats();
    return {
      cilium_hubble_connected: this.follower.connected ? 1 : 0,
      cilium_hubble_flows_received: m.flows,
      cilium_hubble_flows_enriched: m.enriched,
      cilium_hubble_flows_unmatched: m.unmatched,
      cilium_hubble_flows_replayed: m.replayed,
      cilium_hubble_flows_dropped: f.dropped,
      cilium_hubble_responses: f.responses,
      cilium_hubble_garbage: f.garbage,
      cilium_hubble_errors: f.errors,
      cilium_hubble_connects: f.connects,
      cilium_hubble_reconnects: f.reconnects,
      cilium_hubble_own_flows_deduped: m.deduped,
      cilium_hubble_merge_late: m.late,
      cilium_hubble_merge_forced: m.forced,
      cilium_hubble_merge_held: this.feed.held,
      cilium_hubble_node_status_events: m.nodeStatusEvents,
      cilium_hubble_stream_drops: m.streamDrops,
      cilium_hubble_socket_table_size: t.sockets,
      cilium_hubble_socket_table_evictions: t.evicted,
    };
  }

  /** The Cilium node as GetNodes reports it (once its name is known or it connected). */
  node(): UpstreamNode | undefined {
    const st = this.follower.state;
    if (!this.feed.ciliumNode && !st.version) return undefined;
    return {
      name: this.feed.ciliumNode || `cilium/${this.o.nodeName}`,
      version: st.version,
      address: this.o.address,
      state: st.connected ? NodeState.NODE_CONNECTED : NodeState.NODE_UNAVAILABLE,
    };
  }
}

export function createCiliumHubble(o: CiliumHubbleOptions): CiliumHubble {
  return new CiliumHubble(o);
}
