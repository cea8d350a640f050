// Cilium's numeric identity space (shared/reference/cilium-maps.md §5):
// reserved identities resolve locally by name, without the agent API.

export const IDENTITY_UNKNOWN = 0;
export const IDENTITY_HOST = 1;
export const IDENTITY_WORLD = 2;
export const IDENTITY_WORLD_IPV4 = 9;
export const IDENTITY_WORLD_IPV6 = 10;

/** Reserved identity → name (the names `hubble observe --identity` accepts). */
export const RESERVED_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'unknown'],
  [1, 'host'],
  [2, 'world'],
  [3, 'unmanaged'],
  [4, 'health'],
  [5, 'init'],
  [6, 'remote-node'],
  [7, 'kube-apiserver'],
  [8, 'ingress'],
  [9, 'world-ipv4'],
  [10, 'world-ipv6'],
  [11, 'overlay-to-encrypt'],
]);

const RESERVED_IDS: ReadonlyMap<string, number> = new Map([...RESERVED_NAMES].map(([id, name]) => [name, id]));

/** Labels of reserved identities 1–10; 0 and 11 carry none. kube-apiserver is also a remote node. */
const RESERVED_LABELS: ReadonlyMap<number, readonly string[]> = new Map(
  [...RESERVED_NAMES]
    .filter(([id]) => id >= 1 && id <= 10)
    .map(([id, name]): [number, readonly string[]] => [id, id === 7 ? ['reserved:kube-apiserver', 'reserved:remote-node'] : [`reserved:${name}`]]),
);

/** Identities below this are reserved (Cilium's MinimalNumericIdentity is 256; 100–255 are well-known/user-reserved). */
const FIRST_RESERVED_RANGE_END = 12;

export function isReservedIdentity(id: number): boolean {
  return id >= 0 && id < FIRST_RESERVED_RANGE_END;
}

export function reservedName(id: number): string | undefined {
  return RESERVED_NAMES.get(id);
}

export function reservedIdentity(name: string): number | undefined {
  return RESERVED_IDS.get(name);
}

/** `reserved:<name>` labels of a reserved identity; undefined when not one of 1–10. */
export function reservedLabels(id: number): string[] | undefined {
  const l = RESERVED_LABELS.get(id);
  return l ? [...l] : undefined;
}

export type IdentityScope = 'reserved' | 'well-known' | 'user-reserved' | 'cluster' | 'local' | 'remote-node' | 'unknown';

const LOCAL_SCOPE = 0x01000000;
const REMOTE_NODE_SCOPE = 0x02000000;
const SCOPE_MASK = 0xff000000;

/**
 * Where an identity comes from. Local-scope (CIDR/FQDN) identities are
 * node-local: only this node's agent API can name them.
 */
export function identityScope(id: number): IdentityScope {
  const scope = (id & SCOPE_MASK) >>> 0;
  if (scope === LOCAL_SCOPE) return 'local';
  if (scope === REMOTE_NODE_SCOPE) return 'remote-node';
  if (scope !== 0) return 'unknown';
  if (id < FIRST_RESERVED_RANGE_END) return 'reserved';
  if (id >= 100 && id <= 115) return 'well-known';
  if (id >= 128 && id <= 255) return 'user-reserved';
  if (id >= 256) return 'cluster';
  return 'unknown';
}

/** ClusterMesh cluster ID carried in bits 16–23 of cluster-scoped identities (0 = local cluster). */
export function clusterIdOf(id: number): number {
  return identityScope(id) === 'cluster' ? (id >>> 16) & 0xff : 0;
}
