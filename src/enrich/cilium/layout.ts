// Byte layouts of Cilium's identity maps (shared/reference/cilium-maps.md
// §3–§4; C side: bpf/include/cilium_maps.h) and the codecs the user-space
// reader needs. Integers are host order (little-endian on every platform we
// ship), addresses network order.
import * as net from 'node:net';

export const IPCACHE_V1 = 'cilium_ipcache';
export const IPCACHE_V2 = 'cilium_ipcache_v2';
export const LXC = 'cilium_lxc';
export type CiliumMapName = typeof IPCACHE_V1 | typeof IPCACHE_V2 | typeof LXC;

/** Kernel map type numbers (enum bpf_map_type). */
export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_LPM_TRIE = 11;
export const BPF_F_NO_PREALLOC = 1;

export interface MapLayout {
  name: CiliumMapName;
  /** Which Cilium releases pin a map of this name and shape. */
  releases: string;
  type: number;
  typeName: 'lpm_trie' | 'hash';
  keySize: number;
  valueSize: number;
}

export const LAYOUTS: Readonly<Record<CiliumMapName, MapLayout>> = {
  [IPCACHE_V1]: { name: IPCACHE_V1, releases: 'Cilium 1.16/1.17', type: BPF_MAP_TYPE_LPM_TRIE, typeName: 'lpm_trie', keySize: 24, valueSize: 12 },
  [IPCACHE_V2]: { name: IPCACHE_V2, releases: 'Cilium 1.18+', type: BPF_MAP_TYPE_LPM_TRIE, typeName: 'lpm_trie', keySize: 24, valueSize: 24 },
  [LXC]: { name: LXC, releases: 'Cilium 1.16+', type: BPF_MAP_TYPE_HASH, typeName: 'hash', keySize: 20, valueSize: 48 },
};

export const FAMILY_IPV4 = 1;
export const FAMILY_IPV6 = 2;
/** cluster_id + pad1 + family: the key bits before the address that always match exactly. */
export const IPCACHE_STATIC_PREFIX = 32;
export const ENDPOINT_F_HOST = 1;
export const ENDPOINT_F_ATHOSTNS = 2;

export interface IpAddr {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Buffer;
}

/**
 * Parses an IPv4 or IPv6 address. IPv4-mapped IPv6 (::ffff:a.b.c.d, what
 * dual-stack sockets report) becomes IPv4, which is how Cilium keys it.
 * Zone suffixes (%eth0) are dropped. undefined when not an address.
 */
export function parseIp(text: string): IpAddr | undefined {
  const v4 = parseIpv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const s = text.includes('%') ? text.slice(0, text.indexOf('%')) : text;
  if (!s.includes(':')) return undefined;
  if (!net.isIPv6(s)) return undefined;
  const bytes = ipv6Bytes(s);
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return { family: 4, bytes: Buffer.from(bytes.subarray(12)) };
  }
  return { family: 6, bytes };
}

/** Dotted-quad IPv4 without allocation beyond the result (the event-path case). */
function parseIpv4(s: string): Buffer | undefined {
  if (s.length < 7 || s.length > 15) return undefined;
  const out = Buffer.allocUnsafe(4);
  let part = 0;
  let val = 0;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      // No leading zeros ("01"), as net.isIPv4.
      if (digits === 1 && val === 0) return undefined;
      val = val * 10 + (c - 48);
      if (++digits > 3 || val > 255) return undefined;
    } else if (c === 46 && digits > 0 && part < 3) {
      out[part++] = val;
      val = 0;
      digits = 0;
    } else return undefined;
  }
  if (part !== 3 || digits === 0) return undefined;
  out[3] = val;
  return out;
}

// Only called on strings net.isIPv6 accepted.
function ipv6Bytes(s: string): Buffer {
  let text = s;
  const quad: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) >= 0) {
    // Embedded dotted quad: the last 32 bits.
    const q = text.slice(lastColon + 1).split('.').map(Number);
    quad.push((q[0] << 8) | q[1], (q[2] << 8) | q[3]);
    text = text.slice(0, lastColon + 1);
    if (!text.endsWith('::')) text = text.slice(0, -1);
  }
  const words = (part: string): number[] => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  const dbl = text.indexOf('::');
  const head = words(dbl >= 0 ? text.slice(0, dbl) : text);
  const tail = [...(dbl >= 0 ? words(text.slice(dbl + 2)) : []), ...quad];
  const all = [...head, ...new Array<number>(Math.max(0, 8 - head.length - tail.length)).fill(0), ...tail];
  const out = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(all[i] ?? 0, i * 2);
  return out;
}

export function formatIp(addr: IpAddr): string {
  if (addr.family === 4) return Array.from(addr.bytes.subarray(0, 4)).join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(addr.bytes.readUInt16BE(i).toString(16));
  // Compress the longest run of zero words (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return words.join(':');
  return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
}

export interface Cidr {
  addr: IpAddr;
  /** Prefix bits of the address (0..32 / 0..128). */
  bits: number;
}

/** "10.0.0.0/8", "2001:db8::/32", or a bare address (= /32, /128). */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const addr = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!addr) return undefined;
  const max = addr.family === 4 ? 32 : 128;
  if (slash < 0) return { addr, bits: max };
  const bitsText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText)) return undefined;
  let bits = Number(bitsText);
  // ::ffff:a.b.c.d/120 → a.b.c.d/24
  if (addr.family === 4 && net.isIPv6(text.slice(0, slash))) bits -= 96;
  if (bits < 0 || bits > max) return undefined;
  return { addr, bits };
}

/**
 * struct ipcache_key (24 B): prefixlen u32 @0, cluster_id u16 @4, pad1 @6,
 * family @7, address @8 (IPv4 in bytes 8–11). prefixBits defaults to the
 * whole address, i.e. the key of a point lookup (prefixlen 64 / 160).
 */
export function ipcacheKey(addr: IpAddr, prefixBits?: number, clusterId = 0): Buffer {
  const key = Buffer.alloc(24);
  const bits = prefixBits ?? addr.bytes.length * 8;
  key.writeUInt32LE(IPCACHE_STATIC_PREFIX + bits, 0);
  key.writeUInt16LE(clusterId, 4);
  key[7] = addr.family === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
  addr.bytes.copy(key, 8);
  return key;
}

/** struct endpoint_key (20 B): address @0, family @16, key @17 (0), cluster_id u16 @18. */
export function endpointKey(addr: IpAddr, clusterId = 0): Buffer {
  const key = Buffer.alloc(20);
  addr.bytes.copy(key, 0);
  key[16] = addr.family === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
  key.writeUInt16LE(clusterId, 18);
  return key;
}

export interface IpcacheValue {
  identity: number;
  /** Tunnel endpoint (remote node IP), "" when none. */
  tunnelEndpoint: string;
  /** IPsec key index. */
  encryptKey: number;
  /** Raw flag byte (v1 bit0 skip_tunnel; v2 bit0..4 skip_tunnel, has_tunnel_ep, ipv6_tunnel_ep, remote_cluster, unroutable). */
  flags: number;
  skipTunnel: boolean;
}

/** remote_endpoint_info v1 (12 B, cilium_ipcache): identity @0, tunnel IPv4 @4, pad @8, key @10, flags @11. */
export function decodeIpcacheV1(v: Buffer): IpcacheValue {
  const tun = v.subarray(4, 8);
  const flags = v[11];
  return {
    identity: v.readUInt32LE(0),
    tunnelEndpoint: tun.every((b) => b === 0) ? '' : formatIp({ family: 4, bytes: tun }),
    encryptKey: v[10],
    flags,
    skipTunnel: (flags & 1) !== 0,
  };
}

/** remote_endpoint_info v2 (24 B, cilium_ipcache_v2): identity @0, tunnel union @4 (16 B), pad @20, key @22, flag bits @23. */
export function decodeIpcacheV2(v: Buffer): IpcacheValue {
  const flags = v[23];
  const hasTunnel = (flags & 2) !== 0;
  const v6 = (flags & 4) !== 0;
  let tunnelEndpoint = '';
  if (hasTunnel) {
    tunnelEndpoint = formatIp(v6 ? { family: 6, bytes: v.subarray(4, 20) } : { family: 4, bytes: v.subarray(4, 8) });
  } else if (!v.subarray(4, 8).every((b) => b === 0)) {
    // Builds without flag_has_tunnel_ep semantics still fill ip4.
    tunnelEndpoint = formatIp({ family: 4, bytes: v.subarray(4, 8) });
  }
  return { identity: v.readUInt32LE(0), tunnelEndpoint, encryptKey: v[22], flags, skipTunnel: (flags & 1) !== 0 };
}

export interface EndpointValue {
  ifindex: number;
  /** Cilium endpoint ID (lxc_id). */
  id: number;
  flags: number;
  isHost: boolean;
  mac: string;
  nodeMac: string;
  identity: number;
  /** 1.17+ (0 on 1.16, where it is padding). */
  parentIfindex: number;
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

function macAt(v: Buffer, off: number): string {
  // mac_t is a u64 whose low 6 bytes hold the octets in wire order.
  return `${HEX[v[off]]}:${HEX[v[off + 1]]}:${HEX[v[off + 2]]}:${HEX[v[off + 3]]}:${HEX[v[off + 4]]}:${HEX[v[off + 5]]}`;
}

/** struct endpoint_info (48 B): ifindex @0, lxc_id @6, flags @8, mac @16, node_mac @24, sec_id @32, parent_ifindex @36. */
export function decodeEndpointInfo(v: Buffer): EndpointValue {
  const flags = v.readUInt32LE(8);
  return {
    ifindex: v.readUInt32LE(0),
    id: v.readUInt16LE(6),
    flags,
    isHost: (flags & ENDPOINT_F_HOST) !== 0,
    mac: macAt(v, 16),
    nodeMac: macAt(v, 24),
    identity: v.readUInt32LE(32),
    parentIfindex: v.readUInt32LE(36),
  };
}
