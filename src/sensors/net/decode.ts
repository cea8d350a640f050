// Decoder of the network sensor's ring (bpf/include/th_net.h): TCP/UDP socket
// records and DNS packet records. Offsets come from layout.gen.ts.
//
// Input: one batch from the native ring consumer: records back to back, each
// [u32 length][u32 ring index][length bytes][pad to 8]. One DataView per batch.
import { decodeDnsRecord, type DnsPacketRecord } from '../dns/decode';
import { formatAddress, type Address } from './addr';
import {
  TH_NET_F_BYTES,
  TH_NET_F_FIRST,
  TH_NET_F_INGRESS,
  TH_NET_F_NOPROC,
  TH_NET_F_TUPLE_STASH,
  TH_NET_LAYOUT_VERSION,
  TH_NET_REC_ACCEPT,
  TH_NET_REC_CLOSE,
  TH_NET_REC_CONNECT,
  TH_NET_REC_DNS,
  TH_NET_REC_LISTEN,
  TH_NET_REC_MAX,
  TH_NET_REC_BASE,
  TH_NET_REC_UDP,
  LAYOUTS,
  th_net,
  th_net_cfg,
  th_net_stats,
  th_udp_flow,
  th_udp_key,
  TH_NET_DNS_PORTS,
} from './layout.gen';

export type NetRecordType = 'connect' | 'accept' | 'listen' | 'close' | 'udp';

export interface NetRecord {
  type: NetRecordType;
  /** ns since boot of the event. */
  ktime: bigint;
  /** Socket owner; 0 with noProc. */
  tgid: number;
  /** Thread in process context, 0 for softirq events (close). */
  tid: number;
  procKtime: bigint;
  noProc: boolean;
  cookie: bigint;
  netns: number;
  ret: number;
  /** Accepted / received: the peer initiated. */
  ingress: boolean;
  /** UDP: the first datagram of this (socket, peer, direction). */
  first: boolean;
  /** A failed connect's local end came from the state-change stash. */
  tupleStash: boolean;
  family: 4 | 6;
  protocol: number;
  /** TCP state before the event (kernel TCP_* number), 0 for UDP. */
  state: number;
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  /** Set when the kernel measured bytes (TCP close, connected UDP). */
  bytesSent?: number;
  bytesReceived?: number;
  packets: number;
  /** UDP only: raw daddr bytes (16), for keying the kernel's UDP flow. */
  daddrRaw?: Buffer;
  familyRaw: number;
  /**
   * Cilium identity of the local / remote address from the kernel lookup;
   * 0 = none (see idFlags). Always set by the decoder; optional so that
   * records built elsewhere (tests, synthetic) mean "no lookup".
   */
  sIdentity?: number;
  dIdentity?: number;
  /** Cilium endpoint id (cilium_lxc) of the local / remote address; 0 = not a local endpoint. */
  sEndpoint?: number;
  dEndpoint?: number;
  /** TH_NET_ID_* bits: which map gave each identity, which maps were attached. */
  idFlags?: number;
}

export type NetKernelRecord = NetRecord | DnsPacketRecord;

/** Records the decoder skipped, by reason (one object per consumer). */
export interface NetDecodeErrors {
  /** Shorter than its struct, or lengths past its end. */
  malformed: number;
  unknownType: number;
  badVersion: number;
  /** Batch framing broken: the rest of the batch was dropped. */
  framing: number;
}

export function newDecodeErrors(): NetDecodeErrors {
  return { malformed: 0, unknownType: 0, badVersion: 0, framing: 0 };
}

export function totalDecodeErrors(e: NetDecodeErrors): number {
  return e.malformed + e.unknownType + e.badVersion + e.framing;
}

const FRAME_HEADER = 8;

/** struct th_hdr leads every record (imported by th_net.h from tetrahub_events.h). */
const HDR = {
  SIZE: LAYOUTS.th_net.fields.hdr.size,
  type: th_net.hdr_type,
  version: th_net.hdr_version,
  size: th_net.hdr_size,
};

const TYPES: Record<number, NetRecordType> = {
  [TH_NET_REC_CONNECT]: 'connect',
  [TH_NET_REC_ACCEPT]: 'accept',
  [TH_NET_REC_LISTEN]: 'listen',
  [TH_NET_REC_CLOSE]: 'close',
  [TH_NET_REC_UDP]: 'udp',
};

/**
 * Decodes `count` framed records of `batch`, appending to `out` in ring
 * order. Malformed records are skipped and counted in `errors`.
 */
export function decodeBatch(batch: Buffer, count: number, out: NetKernelRecord[], errors: NetDecodeErrors): void {
  const dv = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const blen = batch.byteLength;
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + FRAME_HEADER > blen) {
      errors.framing += count - i;
      return;
    }
    const len = dv.getUint32(p, true);
    const rec = p + FRAME_HEADER;
    if (len > blen - rec) {
      errors.framing += count - i;
      return;
    }
    p = rec + ((len + 7) & ~7);
    if (len < HDR.SIZE) {
      errors.malformed++;
      continue;
    }
    const size = dv.getUint32(rec + HDR.size, true);
    if (size > len || size < HDR.SIZE) {
      errors.malformed++;
      continue;
    }
    if (dv.getUint8(rec + HDR.version) !== TH_NET_LAYOUT_VERSION) {
      errors.badVersion++;
      continue;
    }
    const type = dv.getUint8(rec + HDR.type);
    if (type === TH_NET_REC_DNS) {
      const r = decodeDnsRecord(batch, dv, rec, size);
      if (r) out.push(r);
      else errors.malformed++;
      continue;
    }
    const t = TYPES[type];
    if (!t) {
      errors.unknownType++;
      continue;
    }
    if (size < th_net.SIZE) {
      errors.malformed++;
      continue;
    }
    out.push(decodeNet(t, batch, dv, rec));
  }
}

function decodeNet(type: NetRecordType, b: Buffer, dv: DataView, rec: number): NetRecord {
  const flags = dv.getUint32(rec + th_net.flags, true);
  const familyRaw = dv.getUint16(rec + th_net.family, true);
  const s = formatAddress(familyRaw, b, rec + th_net.saddr);
  const d = formatAddress(familyRaw, b, rec + th_net.daddr);
  const ends = reconcile(s, d);
  const r: NetRecord = {
    type,
    ktime: dv.getBigUint64(rec + th_net.hdr_ktime, true),
    tgid: dv.getUint32(rec + th_net.tgid, true),
    tid: dv.getUint32(rec + th_net.tid, true),
    procKtime: dv.getBigUint64(rec + th_net.proc_ktime, true),
    noProc: (flags & TH_NET_F_NOPROC) !== 0,
    cookie: dv.getBigUint64(rec + th_net.cookie, true),
    netns: dv.getUint32(rec + th_net.netns, true),
    ret: dv.getInt32(rec + th_net.ret, true),
    ingress: (flags & TH_NET_F_INGRESS) !== 0,
    first: (flags & TH_NET_F_FIRST) !== 0,
    tupleStash: (flags & TH_NET_F_TUPLE_STASH) !== 0,
    family: ends.family,
    protocol: dv.getUint8(rec + th_net.protocol),
    state: dv.getUint8(rec + th_net.state),
    saddr: ends.saddr,
    sport: dv.getUint16(rec + th_net.sport, true),
    daddr: d.addr,
    dport: dv.getUint16(rec + th_net.dport, true),
    packets: dv.getUint32(rec + th_net.packets, true),
    familyRaw,
    sIdentity: dv.getUint32(rec + th_net.s_identity, true),
    dIdentity: dv.getUint32(rec + th_net.d_identity, true),
    sEndpoint: dv.getUint16(rec + th_net.s_endpoint, true),
    dEndpoint: dv.getUint16(rec + th_net.d_endpoint, true),
    idFlags: dv.getUint8(rec + th_net.id_flags),
  };
  if (type === 'udp') r.daddrRaw = Buffer.from(b.subarray(rec + th_net.daddr, rec + th_net.daddr + 16));
  if (flags & TH_NET_F_BYTES) {
    r.bytesSent = u64n(dv, rec + th_net.bytes_sent);
    r.bytesReceived = u64n(dv, rec + th_net.bytes_received);
  }
  return r;
}

/** A u64 counter as a number without a BigInt on the way (exact below 2^53). */
function u64n(dv: DataView, off: number): number {
  return dv.getUint32(off, true) + dv.getUint32(off + 4, true) * 4294967296;
}

/**
 * One family for both ends of a dual-stack (AF_INET6) socket: the remote end
 * decides (unless unset, as for listeners); a local IPv6 wildcard facing an
 * IPv4-mapped peer is the IPv4 wildcard.
 */
function reconcile(s: Address, d: Address): { family: 4 | 6; saddr: string } {
  if (s.family === d.family) return { family: s.family, saddr: s.addr };
  if (d.addr === '::') return { family: s.family, saddr: s.addr };
  if (d.family === 4 && s.addr === '::') return { family: 4, saddr: '0.0.0.0' };
  return { family: d.family, saddr: s.addr };
}

/** Kernel TCP state names (include/net/tcp_states.h), as Tetragon/ss print them. */
const TCP_STATES = [
  '',
  'TCP_ESTABLISHED',
  'TCP_SYN_SENT',
  'TCP_SYN_RECV',
  'TCP_FIN_WAIT1',
  'TCP_FIN_WAIT2',
  'TCP_TIME_WAIT',
  'TCP_CLOSE',
  'TCP_CLOSE_WAIT',
  'TCP_LAST_ACK',
  'TCP_LISTEN',
  'TCP_CLOSING',
  'TCP_NEW_SYN_RECV',
];

export function tcpStateName(state: number): string {
  return TCP_STATES[state] || `TCP_STATE_${state}`;
}

/** Counters of th_net_stats summed over CPUs. */
export interface NetKernelStats {
  /** Records written, by kind. */
  emitted: Record<string, number>;
  /** Records lost because the ring was full, by kind. */
  dropped: Record<string, number>;
  emittedTotal: number;
  droppedTotal: number;
  sockInserts: number;
  sockDeletes: number;
  sockUpdateErr: number;
  closeUntracked: number;
  udpFlowInserts: number;
  udpFlowErr: number;
  dnsTruncated: number;
}

const KIND_BY_INDEX = ['connect', 'accept', 'listen', 'close', 'udp', 'dns'];

/** Sums a per-CPU lookup of th_net_stats (values of every possible CPU, each padded to 8). */
export function decodeStats(buf: Uint8Array): NetKernelStats {
  const stride = (th_net_stats.SIZE + 7) & ~7;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const ncpu = Math.floor(buf.byteLength / stride);
  const emitted: Record<string, number> = {};
  const dropped: Record<string, number> = {};
  for (const k of KIND_BY_INDEX) emitted[k] = dropped[k] = 0;
  const st: NetKernelStats = {
    emitted,
    dropped,
    emittedTotal: 0,
    droppedTotal: 0,
    sockInserts: 0,
    sockDeletes: 0,
    sockUpdateErr: 0,
    closeUntracked: 0,
    udpFlowInserts: 0,
    udpFlowErr: 0,
    dnsTruncated: 0,
  };
  const u = (base: number, off: number): number => Number(dv.getBigUint64(base + off, true));
  for (let c = 0; c < ncpu; c++) {
    const base = c * stride;
    for (let t = 0; t < TH_NET_REC_MAX; t++) {
      const e = u(base, th_net_stats.emitted + 8 * t);
      const d = u(base, th_net_stats.dropped + 8 * t);
      const kind = KIND_BY_INDEX[t] ?? `type${TH_NET_REC_BASE + t}`;
      emitted[kind] = (emitted[kind] ?? 0) + e;
      dropped[kind] = (dropped[kind] ?? 0) + d;
      st.emittedTotal += e;
      st.droppedTotal += d;
    }
    st.sockInserts += u(base, th_net_stats.sock_inserts);
    st.sockDeletes += u(base, th_net_stats.sock_deletes);
    st.sockUpdateErr += u(base, th_net_stats.sock_update_err);
    st.closeUntracked += u(base, th_net_stats.close_untracked);
    st.udpFlowInserts += u(base, th_net_stats.udp_flow_inserts);
    st.udpFlowErr += u(base, th_net_stats.udp_flow_err);
    st.dnsTruncated += u(base, th_net_stats.dns_truncated);
  }
  return st;
}

/** Value of th_net_cfg. */
export function encodeCfg(flags: number, dnsPorts: readonly number[]): Buffer {
  if (dnsPorts.length > TH_NET_DNS_PORTS) throw new RangeError(`at most ${TH_NET_DNS_PORTS} DNS ports`);
  const b = Buffer.alloc(th_net_cfg.SIZE);
  b.writeUInt32LE(flags >>> 0, th_net_cfg.flags);
  dnsPorts.forEach((p, i) => b.writeUInt16LE(p, th_net_cfg.dns_ports + 2 * i));
  return b;
}

/** Key of th_net_udp, as bytes: what user space and the kernel agree a flow is. */
export function encodeUdpKey(cookie: bigint, family: number, addr16: Uint8Array, port: number, dir: 0 | 1): Buffer {
  const b = Buffer.alloc(th_udp_key.SIZE);
  b.writeBigUInt64LE(cookie, th_udp_key.cookie);
  b.set(addr16.subarray(0, 16), th_udp_key.addr);
  b.writeUInt16LE(port, th_udp_key.port);
  b.writeUInt16LE(family, th_udp_key.family);
  b.writeUInt8(dir, th_udp_key.dir);
  return b;
}

export interface UdpFlowKey {
  cookie: bigint;
  family: 4 | 6;
  familyRaw: number;
  peer: string;
  port: number;
  /** 0 = send, 1 = receive. */
  dir: 0 | 1;
}

export interface UdpFlow {
  tgid: number;
  procKtime: bigint;
  netns: number;
  firstKtime: bigint;
  lastKtime: bigint;
  packets: number;
  bytes: number;
  sport: number;
  saddr: string;
}

export function decodeUdpKey(b: Uint8Array): UdpFlowKey | null {
  if (b.byteLength < th_udp_key.SIZE) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const familyRaw = dv.getUint16(th_udp_key.family, true);
  const a = formatAddress(familyRaw, b, th_udp_key.addr);
  return {
    cookie: dv.getBigUint64(th_udp_key.cookie, true),
    family: a.family,
    familyRaw,
    peer: a.addr,
    port: dv.getUint16(th_udp_key.port, true),
    dir: dv.getUint8(th_udp_key.dir) ? 1 : 0,
  };
}

export function decodeUdpFlow(b: Uint8Array, familyRaw: number): UdpFlow | null {
  if (b.byteLength < th_udp_flow.SIZE) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    tgid: dv.getUint32(th_udp_flow.tgid, true),
    procKtime: dv.getBigUint64(th_udp_flow.proc_ktime, true),
    netns: dv.getUint32(th_udp_flow.netns, true),
    firstKtime: dv.getBigUint64(th_udp_flow.first_ktime, true),
    lastKtime: dv.getBigUint64(th_udp_flow.last_ktime, true),
    packets: Number(dv.getBigUint64(th_udp_flow.packets, true)),
    bytes: Number(dv.getBigUint64(th_udp_flow.bytes, true)),
    sport: dv.getUint16(th_udp_flow.sport, true),
    saddr: formatAddress(familyRaw, b, th_udp_flow.saddr).addr,
  };
}
