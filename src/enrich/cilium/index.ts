// Cilium identity enrichment: what the agent wires up.
//   maps    — Cilium's pinned ipcache / lxc maps (IP → identity, local endpoints)
//   api     — the Cilium agent REST API (identity labels, pod names), cached
//   enrich  — both combined into the model's EndpointInfo
//   layout / reserved — byte layouts and the reserved identity table
export { CiliumMaps, DEFAULT_CILIUM_MAPS_DIR, checkMapBtf, layoutMismatch } from './maps';
export type { CiliumGeneration, CiliumMapsChange, CiliumMapsOptions, CiliumMapsStats, CiliumMapsStatus, IdentityLookup, LocalEndpoint, MapState } from './maps';
export { CiliumApiClient, DEFAULT_CILIUM_SOCKET, parseEndpoint, parseIdentity, socketPathOf } from './api';
export type { CiliumApiErrorKind, CiliumApiOptions, CiliumApiStats, CiliumEndpoint, CiliumIdentity } from './api';
export { CiliumEnricher } from './enrich';
export type { CiliumEnricherOptions } from './enrich';
export { IPCACHE_V1, IPCACHE_V2, LAYOUTS, LXC } from './layout';
export type { CiliumMapName, EndpointValue, IpcacheValue, MapLayout } from './layout';
export * from './reserved';
