// Items of the merged Hubble stream besides the bus's own (RuntimeEvent,
// LossNotice): flows followed from Cilium's Hubble and node status events
// about that connection. The Hubble server's history ring and GetFlows
// streams read HubbleItems from an ItemSource: the EventBus itself when no
// Cilium Hubble is followed, the MergedFeed (merge.ts) when one is.
import type { BusItem, NetEvent, WallTime } from '../../../model/event';
import type { CompiledFieldMask } from '../fieldmask';
import type { Flow } from '../types';

/** One flow received from Cilium's Hubble (GetFlowsResponse{flow}). */
export interface UpstreamFlowItem {
  kind: 'cilium';
  seq: number;
  time: WallTime;
  /** GetFlowsResponse.node_name as Cilium sent it. */
  nodeName: string;
  /**
   * The GetFlowsResponse bytes served without a field mask: exactly the
   * bytes Cilium sent when unmatched; with Summary and extensions rewritten
   * when enriched.
   */
  bytes: Uint8Array;
  /** The flow as a plain object (proto field names, enums as numbers), built on first need; includes the enrichment. */
  flow(): Flow;
  /** Masked encodings, built on first need per mask. */
  masked(mask: CompiledFieldMask): Uint8Array;
  /** Namespaces of the flow's two ends (GetNamespaces), read without building flow(). */
  namespaces(): string[];
  /** The local socket's event (connect/accept/send/receive) whose process enriched this flow. */
  socket?: NetEvent;
}

/**
 * A response that is not a flow and bypasses filters: our node_status
 * events about the Cilium connection, and Cilium's own node_status /
 * lost_events passed through.
 */
export interface UpstreamNoticeItem {
  kind: 'upstream_notice';
  seq: number;
  time: WallTime;
  nodeName: string;
  bytes: Uint8Array;
}

export type UpstreamItem = UpstreamFlowItem | UpstreamNoticeItem;
export type HubbleItem = BusItem | UpstreamItem;

export function isUpstream(it: HubbleItem): it is UpstreamItem {
  return it.kind === 'cilium' || it.kind === 'upstream_notice';
}

export interface ItemSubscriptionOptions {
  name: string;
  limit?: number;
  /** Called synchronously when new items were queued. */
  onReady: () => void;
  accept?: (item: HubbleItem) => boolean;
}

/** What the history ring and follow streams need of a subscription (bus Subscription fits). */
export interface ItemSubscription {
  readonly size: number;
  readonly dropped: number;
  take(max?: number): HubbleItem[];
  takeDropped(): { count: number; first?: WallTime; last?: WallTime };
  close(): void;
}

/** A publisher of HubbleItems (EventBus fits). */
export interface ItemSource {
  subscribe(opts: ItemSubscriptionOptions): ItemSubscription;
}
