// Test-only encoder: builds records exactly as bpf/net.bpf.c writes them
// (layout from layout.gen.ts) and frames them like the native ring consumer.
import { TH_NET_LAYOUT_VERSION, TH_NET_REC_DNS, th_dns, th_net, th_net_stats, TH_NET_REC_MAX } from './layout.gen';

export interface NetInput {
  type: number;
  ktime?: bigint;
  tgid?: number;
  tid?: number;
  procKtime?: bigint;
  cookie?: bigint;
  netns?: number;
  ret?: number;
  flags?: number;
  packets?: number;
  family: number;
  protocol: number;
  state?: number;
  saddr: Buffer;
  sport: number;
  daddr: Buffer;
  dport: number;
  bytesSent?: bigint;
  bytesReceived?: bigint;
  sIdentity?: number;
  dIdentity?: number;
  sEndpoint?: number;
  dEndpoint?: number;
  idFlags?: number;
}

function addr16(b: Buffer): Buffer {
  const out = Buffer.alloc(16);
  b.copy(out, 0, 0, Math.min(16, b.length));
  return out;
}

export function encodeNet(e: NetInput): Buffer {
  const b = Buffer.alloc(th_net.SIZE);
  b.writeUInt8(e.type, th_net.hdr_type);
  b.writeUInt8(TH_NET_LAYOUT_VERSION, th_net.hdr_version);
  b.writeUInt32LE(th_net.SIZE, th_net.hdr_size);
  b.writeBigUInt64LE(e.ktime ?? 1_000_000n, th_net.hdr_ktime);
  b.writeBigUInt64LE(e.cookie ?? 0n, th_net.cookie);
  b.writeBigUInt64LE(e.procKtime ?? 0n, th_net.proc_ktime);
  b.writeBigUInt64LE(e.bytesSent ?? 0n, th_net.bytes_sent);
  b.writeBigUInt64LE(e.bytesReceived ?? 0n, th_net.bytes_received);
  b.writeUInt32LE(e.tgid ?? 0, th_net.tgid);
  b.writeUInt32LE(e.tid ?? 0, th_net.tid);
  b.writeUInt32LE(e.netns ?? 0, th_net.netns);
  b.writeInt32LE(e.ret ?? 0, th_net.ret);
  b.writeUInt32LE(e.flags ?? 0, th_net.flags);
  b.writeUInt32LE(e.packets ?? 0, th_net.packets);
  b.writeUInt16LE(e.family, th_net.family);
  b.writeUInt16LE(e.sport, th_net.sport);
  b.writeUInt16LE(e.dport, th_net.dport);
  b.writeUInt8(e.protocol, th_net.protocol);
  b.writeUInt8(e.state ?? 0, th_net.state);
  addr16(e.saddr).copy(b, th_net.saddr);
  addr16(e.daddr).copy(b, th_net.daddr);
  b.writeUInt32LE(e.sIdentity ?? 0, th_net.s_identity);
  b.writeUInt32LE(e.dIdentity ?? 0, th_net.d_identity);
  b.writeUInt16LE(e.sEndpoint ?? 0, th_net.s_endpoint);
  b.writeUInt16LE(e.dEndpoint ?? 0, th_net.d_endpoint);
  b.writeUInt8(e.idFlags ?? 0, th_net.id_flags);
  return b;
}

export interface DnsInput {
  ktime?: bigint;
  tgid?: number;
  procKtime?: bigint;
  cookie?: bigint;
  netns?: number;
  ifindex?: number;
  flags?: number;
  family: number;
  protocol: number;
  saddr: Buffer;
  sport: number;
  daddr: Buffer;
  dport: number;
  payload: Buffer;
  origLen?: number;
}

export function encodeDns(e: DnsInput): Buffer {
  const b = Buffer.alloc(th_dns.SIZE + e.payload.length);
  b.writeUInt8(TH_NET_REC_DNS, th_dns.hdr_type);
  b.writeUInt8(TH_NET_LAYOUT_VERSION, th_dns.hdr_version);
  b.writeUInt32LE(b.length, th_dns.hdr_size);
  b.writeBigUInt64LE(e.ktime ?? 1_000_000n, th_dns.hdr_ktime);
  b.writeBigUInt64LE(e.cookie ?? 0n, th_dns.cookie);
  b.writeBigUInt64LE(e.procKtime ?? 0n, th_dns.proc_ktime);
  b.writeUInt32LE(e.tgid ?? 0, th_dns.tgid);
  b.writeUInt32LE(e.netns ?? 0, th_dns.netns);
  b.writeUInt32LE(e.ifindex ?? 1, th_dns.ifindex);
  b.writeUInt32LE(e.origLen ?? e.payload.length, th_dns.orig_len);
  b.writeUInt16LE(e.family, th_dns.family);
  b.writeUInt16LE(e.sport, th_dns.sport);
  b.writeUInt16LE(e.dport, th_dns.dport);
  b.writeUInt16LE(e.payload.length, th_dns.payload_len);
  b.writeUInt8(e.protocol, th_dns.protocol);
  b.writeUInt8(e.flags ?? 0, th_dns.flags);
  addr16(e.saddr).copy(b, th_dns.saddr);
  addr16(e.daddr).copy(b, th_dns.daddr);
  e.payload.copy(b, th_dns.SIZE);
  return b;
}

/** Frames records like the native consumer: [u32 len][u32 ring][record][pad to 8]. */
export function frameBatch(records: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(r.length, 0);
    parts.push(h, r, Buffer.alloc((8 - (r.length % 8)) % 8));
  }
  return Buffer.concat(parts);
}

/** A per-CPU th_net_stats lookup result with `ncpu` copies of the given counters. */
export function encodeStats(ncpu: number, emitted: number[], dropped: number[], sockInserts = 0): Buffer {
  const stride = (th_net_stats.SIZE + 7) & ~7;
  const b = Buffer.alloc(stride * ncpu);
  for (let c = 0; c < ncpu; c++) {
    for (let t = 0; t < TH_NET_REC_MAX; t++) {
      b.writeBigUInt64LE(BigInt(emitted[t] ?? 0), c * stride + th_net_stats.emitted + 8 * t);
      b.writeBigUInt64LE(BigInt(dropped[t] ?? 0), c * stride + th_net_stats.dropped + 8 * t);
    }
    b.writeBigUInt64LE(BigInt(sockInserts), c * stride + th_net_stats.sock_inserts);
  }
  return b;
}
