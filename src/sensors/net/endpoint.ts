// NetEvent.source / destination (EndpointInfo ≈ Hubble flow.Endpoint) from
// the identities the kernel looked up in Cilium's maps (bpf/net.bpf.c,
// cilium_identify) plus cached labels and endpoint names. Synchronous and
// cache-only: it runs on the event path. source = the local end (saddr),
// destination = the remote end (daddr), whatever the direction, as for the
// addresses of a NetEvent.
//
// Rules for an end no Cilium entry covers (shared/reference/cilium-maps.md
// §3.4, §4.3, §9):
//   remote  world (2, configurable; 'by-family' = 9/10) when the ipcache was
//           attached or Cilium is absent; unknown (0) when Cilium's ipcache
//           is there but refused (we cannot tell, so we do not guess)
//   local   the endpoint learned for the socket's network namespace (pod
//           netns: an earlier socket there had the pod IP as local address),
//           else host (1) in the host netns, else unknown (0)
import type { EndpointInfo } from '../../model/event';
import { IDENTITY_HOST, IDENTITY_UNKNOWN, IDENTITY_WORLD, IDENTITY_WORLD_IPV4, IDENTITY_WORLD_IPV6, reservedLabels } from '../../enrich/cilium/reserved';
import {
  TH_NET_ID_D_HOST,
  TH_NET_ID_D_IPCACHE,
  TH_NET_ID_D_LXC,
  TH_NET_ID_MAP_IPCACHE,
  TH_NET_ID_S_HOST,
  TH_NET_ID_S_IPCACHE,
  TH_NET_ID_S_LXC,
} from './layout.gen';

/** What the resolver needs of a record (NetRecord has all of it). */
export interface EndpointQuery {
  /** Socket owner (for probing its netns); 0 when unknown. */
  tgid: number;
  family: 4 | 6;
  saddr: string;
  daddr: string;
  netns: number;
  /** From the kernel lookup (th_net); absent = 0 = no lookup. */
  sIdentity?: number;
  dIdentity?: number;
  sEndpoint?: number;
  dEndpoint?: number;
  idFlags?: number;
}

/**
 * State of Cilium's ipcache as seen from here now: attached to the kernel
 * lookup, absent (no Cilium on this node), or unusable (refused layout,
 * open error, kernel refused it as inner map).
 */
export type IpcacheState = 'attached' | 'absent' | 'unusable';

/** Cached label/endpoint sources (CiliumApiClient fits). All synchronous, never blocking. */
export interface EndpointSources {
  identityOf?(identity: number): { labels: readonly string[]; namespace: string } | undefined;
  endpointById?(id: number): { identity: number; namespace: string; podName: string } | undefined;
  endpointByIp?(ip: string): { id: number; identity: number; namespace: string; podName: string } | undefined;
}

export interface EndpointResolverOptions {
  sources?: EndpointSources;
  /** Identity of remote ends without an entry. Default 2 (world). */
  worldIdentity?: number | 'by-family';
  /** Network namespace inode of the host; local ends there are host (1). */
  hostNetns?: number;
  /** Current ipcache state (records made before a change carry their own MAP_ flag). */
  ipcacheState?: () => IpcacheState;
  /** Bound of the EndpointInfo and netns caches. Default 4096. */
  capacity?: number;
  /**
   * Called for a pod netns whose endpoint is not known yet (local end
   * without entry): the owner may look it up off the event path and
   * learnNetns() the result.
   */
  onUnknownNetns?: (netns: number, query: EndpointQuery) => void;
}

export interface EndpointResolverStats {
  /** Ends resolved from a kernel lookup (lxc or ipcache entry). */
  kernel: number;
  /** Local ends resolved through the netns → endpoint cache. */
  netns: number;
  /** Ends resolved from the agent API's endpoint list (maps not attached). */
  api: number;
  worldRule: number;
  hostRule: number;
  unknown: number;
  /** EndpointInfo objects built (the rest came from the cache). */
  built: number;
}

interface NetnsEndpoint {
  id: number;
  identity: number;
}

const ANY = new Set(['0.0.0.0', '::']);
const WORLD_IDS = new Set([IDENTITY_WORLD, IDENTITY_WORLD_IPV4, IDENTITY_WORLD_IPV6]);
const EMPTY: readonly string[] = Object.freeze([]);

export class EndpointResolver {
  private readonly sources: EndpointSources;
  private readonly world: number | 'by-family';
  private readonly hostNetns: number;
  private readonly ipcacheState: () => IpcacheState;
  private readonly capacity: number;
  private readonly onUnknownNetns?: (netns: number, query: EndpointQuery) => void;
  /** Complete EndpointInfo objects by "identity/endpoint id"; shared between events, frozen. */
  private readonly infos = new Map<string, EndpointInfo>();
  private readonly netnsEndpoints = new Map<number, NetnsEndpoint>();
  private readonly c: EndpointResolverStats = { kernel: 0, netns: 0, api: 0, worldRule: 0, hostRule: 0, unknown: 0, built: 0 };

  constructor(opts: EndpointResolverOptions = {}) {
    this.sources = opts.sources ?? {};
    this.world = opts.worldIdentity ?? IDENTITY_WORLD;
    this.hostNetns = opts.hostNetns ?? 0;
    this.ipcacheState = opts.ipcacheState ?? (() => 'absent');
    this.capacity = Math.max(16, opts.capacity ?? 4096);
    this.onUnknownNetns = opts.onUnknownNetns;
  }

  stats(): EndpointResolverStats {
    return { ...this.c };
  }

  /** Forgets cached EndpointInfo objects (Cilium's maps changed). The netns cache stays. */
  reset(): void {
    this.infos.clear();
  }

  /** Remembers the endpoint of a pod network namespace (from a probe, or a record). */
  learnNetns(netns: number, id: number, identity: number): void {
    if (!netns || netns === this.hostNetns) return;
    const cur = this.netnsEndpoints.get(netns);
    if (cur && cur.id === id && cur.identity === identity) return;
    if (this.netnsEndpoints.size >= this.capacity) this.netnsEndpoints.clear();
    this.netnsEndpoints.set(netns, { id, identity });
  }

  forgetNetns(netns: number): void {
    this.netnsEndpoints.delete(netns);
  }

  /** Forgets every learned pod netns (cilium_lxc changed). */
  resetNetns(): void {
    this.netnsEndpoints.clear();
  }

  netnsEndpoint(netns: number): NetnsEndpoint | undefined {
    return this.netnsEndpoints.get(netns);
  }

  /** Both ends of a record. destination is undefined when the remote address is unspecified (listen, unconnected UDP). */
  resolve(q: EndpointQuery): { source: EndpointInfo; destination?: EndpointInfo } {
    return { source: this.local(q), destination: ANY.has(q.daddr) ? undefined : this.remote(q) };
  }

  private local(q: EndpointQuery): EndpointInfo {
    const f = q.idFlags ?? 0;
    const sIdentity = q.sIdentity ?? 0;
    if (f & (TH_NET_ID_S_LXC | TH_NET_ID_S_IPCACHE)) {
      if (f & TH_NET_ID_S_HOST) {
        this.c.kernel++;
        return this.info(sIdentity || IDENTITY_HOST, 0);
      }
      // Only lxc entries are about this host; an ipcache match of a local address can be the
      // 0.0.0.0/0 world entry (loopback, secondary addresses), which says nothing about the socket.
      if (sIdentity !== IDENTITY_UNKNOWN && ((f & TH_NET_ID_S_LXC) !== 0 || !WORLD_IDS.has(sIdentity))) {
        this.c.kernel++;
        const id = f & TH_NET_ID_S_LXC ? q.sEndpoint ?? 0 : 0;
        // A pod IP as local address: the socket's netns is that pod's.
        if (id) this.learnNetns(q.netns, id, sIdentity);
        return this.info(sIdentity, id);
      }
    }
    const byNetns = q.netns && q.netns !== this.hostNetns ? this.netnsEndpoints.get(q.netns) : undefined;
    if (byNetns) {
      this.c.netns++;
      return this.info(byNetns.identity, byNetns.id);
    }
    const api = f & TH_NET_ID_MAP_IPCACHE ? undefined : this.apiEndpoint(q.saddr);
    if (api) {
      this.learnNetns(q.netns, api.id, api.identity);
      return api.info;
    }
    if (q.netns && q.netns === this.hostNetns) {
      this.c.hostRule++;
      return this.info(IDENTITY_HOST, 0);
    }
    if (q.netns && this.onUnknownNetns) this.onUnknownNetns(q.netns, q);
    this.c.unknown++;
    return this.info(IDENTITY_UNKNOWN, 0);
  }

  private remote(q: EndpointQuery): EndpointInfo {
    const f = q.idFlags ?? 0;
    const dIdentity = q.dIdentity ?? 0;
    if (f & (TH_NET_ID_D_LXC | TH_NET_ID_D_IPCACHE)) {
      if (f & TH_NET_ID_D_HOST) {
        this.c.kernel++;
        return this.info(dIdentity || IDENTITY_HOST, 0);
      }
      if (dIdentity !== IDENTITY_UNKNOWN) {
        this.c.kernel++;
        return this.info(dIdentity, f & TH_NET_ID_D_LXC ? q.dEndpoint ?? 0 : 0);
      }
    }
    const attached = (f & TH_NET_ID_MAP_IPCACHE) !== 0;
    if (!attached) {
      const api = this.apiEndpoint(q.daddr);
      if (api) return api.info;
      if (this.ipcacheState() === 'unusable') {
        this.c.unknown++;
        return this.info(IDENTITY_UNKNOWN, 0);
      }
    }
    this.c.worldRule++;
    const world = this.world === 'by-family' ? (q.family === 4 ? IDENTITY_WORLD_IPV4 : IDENTITY_WORLD_IPV6) : this.world;
    return this.info(world, 0);
  }

  /** A local endpoint by address from the agent's endpoint list (the fallback when the maps are not attached). */
  private apiEndpoint(ip: string): { id: number; identity: number; info: EndpointInfo } | undefined {
    const by = this.sources.endpointByIp;
    if (!by || ANY.has(ip)) return undefined;
    const ep = by(ip);
    if (!ep || !ep.identity) return undefined;
    this.c.api++;
    return { id: ep.id, identity: ep.identity, info: this.info(ep.identity, ep.id) };
  }

  /**
   * The EndpointInfo of (identity, endpoint id), cached once complete
   * (labels known, and the endpoint's names when it has an id). Identity →
   * labels is immutable in Cilium, endpoint id → pod for the endpoint's life.
   */
  private info(identity: number, id: number): EndpointInfo {
    const key = `${identity}/${id}`;
    const hit = this.infos.get(key);
    if (hit) return hit;
    const ident = identity === IDENTITY_UNKNOWN ? undefined : this.sources.identityOf?.(identity);
    const reservedList = ident ? undefined : reservedLabels(identity);
    const reserved = reservedList && Object.freeze(reservedList);
    const ep = id ? this.sources.endpointById?.(id) : undefined;
    const info: EndpointInfo = Object.freeze({
      id,
      identity,
      namespace: ep?.namespace || ident?.namespace || '',
      podName: ep?.podName ?? '',
      // Shared, frozen arrays: events are immutable once published.
      labels: (ident?.labels ?? reserved ?? EMPTY) as string[],
    });
    this.c.built++;
    const labelsFinal = ident !== undefined || reserved !== undefined || identity === IDENTITY_UNKNOWN || !this.sources.identityOf;
    const namesFinal = id === 0 || ep !== undefined || !this.sources.endpointById;
    if (labelsFinal && namesFinal) {
      if (this.infos.size >= this.capacity) this.infos.clear();
      this.infos.set(key, info);
    }
    return info;
  }
}
