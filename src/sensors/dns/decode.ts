// Decoder of TH_NET_REC_DNS records (bpf/include/th_net.h, struct th_dns): the
// packet metadata plus a copy of the captured DNS payload. The records arrive
// in the network sensor's ring; src/sensors/net/decode.ts frames the batch and
// calls decodeDnsRecord for them.
import { formatAddress } from '../net/addr';
import { TH_DNS_F_EGRESS, TH_DNS_F_NOPROC, TH_DNS_F_TRUNC, th_dns } from '../net/layout.gen';

export interface DnsPacketRecord {
  type: 'dns';
  /** ns since boot when the packet passed the hook. */
  ktime: bigint;
  /** Owner of the local socket (0 with noProc). */
  tgid: number;
  procKtime: bigint;
  noProc: boolean;
  cookie: bigint;
  netns: number;
  ifindex: number;
  family: 4 | 6;
  protocol: 'udp' | 'tcp';
  /** Sent by the local socket (a query) rather than received (a response). */
  egress: boolean;
  /** The payload was cut at TH_DNS_PAYLOAD_MAX. */
  truncated: boolean;
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  /** L4 payload length on the wire. */
  origLen: number;
  /** Captured payload (a copy: the batch buffer is reused). */
  payload: Buffer;
}

/** Decodes one th_dns record at `rec` (size bytes, header already checked); null if malformed. */
export function decodeDnsRecord(b: Buffer, dv: DataView, rec: number, size: number): DnsPacketRecord | null {
  if (size < th_dns.SIZE) return null;
  const plen = dv.getUint16(rec + th_dns.payload_len, true);
  if (th_dns.SIZE + plen > size) return null;
  const family = dv.getUint16(rec + th_dns.family, true);
  const s = formatAddress(family, b, rec + th_dns.saddr);
  const d = formatAddress(family, b, rec + th_dns.daddr);
  const flags = dv.getUint8(rec + th_dns.flags);
  const start = rec + th_dns.SIZE;
  return {
    type: 'dns',
    ktime: dv.getBigUint64(rec + th_dns.hdr_ktime, true),
    tgid: dv.getUint32(rec + th_dns.tgid, true),
    procKtime: dv.getBigUint64(rec + th_dns.proc_ktime, true),
    noProc: (flags & TH_DNS_F_NOPROC) !== 0,
    cookie: dv.getBigUint64(rec + th_dns.cookie, true),
    netns: dv.getUint32(rec + th_dns.netns, true),
    ifindex: dv.getUint32(rec + th_dns.ifindex, true),
    family: s.family,
    protocol: dv.getUint8(rec + th_dns.protocol) === 6 ? 'tcp' : 'udp',
    egress: (flags & TH_DNS_F_EGRESS) !== 0,
    truncated: (flags & TH_DNS_F_TRUNC) !== 0,
    saddr: s.addr,
    sport: dv.getUint16(rec + th_dns.sport, true),
    daddr: d.addr,
    dport: dv.getUint16(rec + th_dns.dport, true),
    origLen: dv.getUint32(rec + th_dns.orig_len, true),
    payload: Buffer.from(b.subarray(start, start + plen)),
  };
}
