// Fills the model's EndpointInfo (≈ Hubble flow.Endpoint) for an IP address
// from Cilium's sources, as shared/reference/cilium-maps.md §7.4 lays out:
// cilium_lxc for local pods (endpoint ID + identity), the ipcache for
// everything else (world by rule when no entry covers it), labels from the
// agent API (reserved ones locally), pod name/namespace from the agent's
// endpoint list. Synchronous; what is not known yet is left empty and
// fetched in the background by the API client.
import type { EndpointInfo } from '../../model/event';
import type { CiliumApiClient } from './api';
import type { CiliumMaps } from './maps';
import { IDENTITY_HOST, IDENTITY_WORLD, reservedLabels } from './reserved';
import { parseIp } from './layout';

export interface CiliumEnricherOptions {
  /** Map reader (started by the caller). Without it, identities come from the API's endpoint list or the world rule. */
  maps?: CiliumMaps;
  /** Agent API client. Without it, labels are only known for reserved identities. */
  api?: CiliumApiClient;
  /** Identity when neither source knows the address. Default 2 (world). */
  worldIdentity?: number;
}

export class CiliumEnricher {
  private readonly maps?: CiliumMaps;
  private readonly api?: CiliumApiClient;
  private readonly world: number;

  constructor(opts: CiliumEnricherOptions) {
    this.maps = opts.maps;
    this.api = opts.api;
    this.world = opts.worldIdentity ?? IDENTITY_WORLD;
  }

  /** Endpoint context of an address; undefined only when ip is not an address. */
  endpointOf(ip: string): EndpointInfo | undefined {
    if (!parseIp(ip)) return undefined;
    let id = 0;
    let identity: number | undefined;
    const local = this.maps?.lookupEndpoint(ip);
    if (local) {
      id = local.isHost ? 0 : local.id;
      identity = local.isHost ? IDENTITY_HOST : local.identity;
    }
    const apiEp = this.api?.endpointByIp(ip);
    if (identity === undefined && apiEp) {
      // Maps absent or refused: the agent's endpoint list is the fallback for local pods.
      id = apiEp.id;
      identity = apiEp.identity;
    }
    identity ??= this.maps?.lookupIdentity(ip)?.identity ?? this.world;
    const known = this.api?.identityOf(identity);
    const labels = known?.labels ?? reservedLabels(identity) ?? [];
    const sameEndpoint = apiEp && (id === 0 || apiEp.id === id);
    return {
      id,
      identity,
      namespace: (sameEndpoint ? apiEp.namespace : '') || known?.namespace || '',
      podName: sameEndpoint ? apiEp.podName : '',
      labels: [...labels],
    };
  }
}
