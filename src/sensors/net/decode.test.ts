import { test } from 'node:test';
import assert from 'node:assert/strict';

import { formatAddress, formatIPv6 } from './addr';
import {
  decodeBatch,
  decodeStats,
  decodeUdpFlow,
  decodeUdpKey,
  encodeCfg,
  encodeUdpKey,
  newDecodeErrors,
  tcpStateName,
  type NetKernelRecord,
  type NetRecord,
} from './decode';
import {
  TH_DNS_F_EGRESS,
  TH_DNS_F_TRUNC,
  TH_NET_F_BYTES,
  TH_NET_F_FIRST,
  TH_NET_F_INGRESS,
  TH_NET_F_NOPROC,
  TH_NET_ID_D_IPCACHE,
  TH_NET_ID_MAP_IPCACHE,
  TH_NET_ID_MAP_LXC,
  TH_NET_ID_S_LXC,
  TH_NET_REC_ACCEPT,
  TH_NET_REC_CLOSE,
  TH_NET_REC_CONNECT,
  TH_NET_REC_UDP,
  th_net,
  th_net_cfg,
  th_udp_flow,
  th_udp_key,
} from './layout.gen';
import { encodeDns, encodeNet, encodeStats, frameBatch } from './test-encoder';
import type { DnsPacketRecord } from '../dns/decode';

const v4 = (a: string): Buffer => Buffer.from(a.split('.').map(Number));
const mapped = (a: string): Buffer => Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff]), v4(a)]);
const v6 = (groups: number[]): Buffer => {
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g, 2 * i));
  return b;
};

function decode(records: Buffer[], count = records.length): { out: NetKernelRecord[]; errors: ReturnType<typeof newDecodeErrors> } {
  const out: NetKernelRecord[] = [];
  const errors = newDecodeErrors();
  decodeBatch(frameBatch(records), count, out, errors);
  return { out, errors };
}

test('addresses: IPv4, RFC 5952 IPv6, mapped IPv4', () => {
  assert.deepEqual(formatAddress(2, v4('10.1.2.3')), { family: 4, addr: '10.1.2.3' });
  assert.deepEqual(formatAddress(10, mapped('127.0.0.1')), { family: 4, addr: '127.0.0.1' });
  assert.equal(formatIPv6(v6([0, 0, 0, 0, 0, 0, 0, 1])), '::1');
  assert.equal(formatIPv6(v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1])), '2001:db8::1:0:0:1');
  assert.equal(formatIPv6(v6([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1])), '2001:db8:0:1:1:1:1:1');
  assert.equal(formatIPv6(Buffer.alloc(16)), '::');
  assert.equal(formatIPv6(v6([0xfe80, 0, 0, 0, 0, 0, 0, 0])), 'fe80::');
});

test('connect, accept and close records decode field by field', () => {
  const { out, errors } = decode([
    encodeNet({ type: TH_NET_REC_CONNECT, ktime: 5n, tgid: 100, tid: 101, procKtime: 42n, cookie: 9n, netns: 4026531840, ret: -111, family: 2, protocol: 6, state: 7, saddr: v4('10.0.0.2'), sport: 40000, daddr: v4('10.0.0.1'), dport: 8080 }),
    encodeNet({ type: TH_NET_REC_ACCEPT, tgid: 200, flags: TH_NET_F_INGRESS, family: 10, protocol: 6, state: 1, saddr: v6([0, 0, 0, 0, 0, 0, 0, 1]), sport: 80, daddr: v6([0, 0, 0, 0, 0, 0, 0, 1]), dport: 50000 }),
    encodeNet({ type: TH_NET_REC_CLOSE, tgid: 100, flags: TH_NET_F_BYTES, family: 2, protocol: 6, state: 5, saddr: v4('10.0.0.2'), sport: 40000, daddr: v4('10.0.0.1'), dport: 8080, bytesSent: 1000n, bytesReceived: 300n }),
  ]);
  assert.deepEqual(errors, newDecodeErrors());
  assert.equal(out.length, 3);
  const c = out[0] as NetRecord;
  assert.equal(c.type, 'connect');
  assert.equal(c.ktime, 5n);
  assert.equal(c.tgid, 100);
  assert.equal(c.tid, 101);
  assert.equal(c.procKtime, 42n);
  assert.equal(c.cookie, 9n);
  assert.equal(c.netns, 4026531840);
  assert.equal(c.ret, -111);
  assert.equal(c.family, 4);
  assert.equal(c.saddr, '10.0.0.2');
  assert.equal(c.sport, 40000);
  assert.equal(c.daddr, '10.0.0.1');
  assert.equal(c.dport, 8080);
  assert.equal(c.bytesSent, undefined, 'no bytes without the flag');
  assert.equal(tcpStateName(c.state), 'TCP_CLOSE');
  const a = out[1] as NetRecord;
  assert.equal(a.type, 'accept');
  assert.equal(a.ingress, true);
  assert.equal(a.family, 6);
  assert.equal(a.saddr, '::1');
  const cl = out[2] as NetRecord;
  assert.equal(cl.bytesSent, 1000);
  assert.equal(cl.bytesReceived, 300);
  assert.equal(tcpStateName(cl.state), 'TCP_FIN_WAIT2');
});

test('dual-stack sockets: mapped peers become IPv4, wildcard local follows', () => {
  const { out } = decode([
    encodeNet({ type: TH_NET_REC_UDP, flags: TH_NET_F_FIRST, family: 10, protocol: 17, saddr: Buffer.alloc(16), sport: 5000, daddr: mapped('192.168.1.1'), dport: 53, packets: 1 }),
  ]);
  const r = out[0] as NetRecord;
  assert.equal(r.family, 4);
  assert.equal(r.saddr, '0.0.0.0');
  assert.equal(r.daddr, '192.168.1.1');
  assert.equal(r.first, true);
  assert.equal(r.ingress, false);
});

test('DNS records decode with a copied payload', () => {
  const payload = Buffer.from('0102030405060708090a0b0c', 'hex');
  const batch = frameBatch([
    encodeDns({ ktime: 7n, tgid: 55, cookie: 3n, flags: TH_DNS_F_EGRESS | TH_DNS_F_TRUNC, family: 2, protocol: 17, saddr: v4('127.0.0.1'), sport: 4444, daddr: v4('127.0.0.53'), dport: 53, payload, origLen: 900 }),
  ]);
  const out: NetKernelRecord[] = [];
  decodeBatch(batch, 1, out, newDecodeErrors());
  const r = out[0] as DnsPacketRecord;
  assert.equal(r.type, 'dns');
  assert.equal(r.tgid, 55);
  assert.equal(r.egress, true);
  assert.equal(r.truncated, true);
  assert.equal(r.origLen, 900);
  assert.equal(r.protocol, 'udp');
  assert.equal(r.daddr, '127.0.0.53');
  batch.fill(0); // the batch buffer is reused by the consumer
  assert.deepEqual(r.payload, payload);
});

test('malformed records are skipped and counted, the rest still decode', () => {
  const good = encodeNet({ type: TH_NET_REC_CONNECT, family: 2, protocol: 6, saddr: v4('1.1.1.1'), sport: 1, daddr: v4('2.2.2.2'), dport: 2 });
  const badVersion = Buffer.from(good);
  badVersion[th_net.hdr_version] = 99;
  const unknownType = Buffer.from(good);
  unknownType[th_net.hdr_type] = 31;
  const short = good.subarray(0, 40);
  const sizeLies = Buffer.from(good);
  sizeLies.writeUInt32LE(4096, th_net.hdr_size);
  const dnsShort = encodeDns({ family: 2, protocol: 17, saddr: v4('1.1.1.1'), sport: 53, daddr: v4('2.2.2.2'), dport: 5, payload: Buffer.alloc(8) });
  dnsShort.writeUInt16LE(200, 54); // payload_len past the record
  const { out, errors } = decode([badVersion, unknownType, short, sizeLies, dnsShort, good]);
  assert.equal(out.length, 1);
  assert.deepEqual(errors, { malformed: 3, unknownType: 1, badVersion: 1, framing: 0 });
});

test('broken framing drops the rest of the batch', () => {
  const good = encodeNet({ type: TH_NET_REC_CONNECT, family: 2, protocol: 6, saddr: v4('1.1.1.1'), sport: 1, daddr: v4('2.2.2.2'), dport: 2 });
  const batch = frameBatch([good, good]);
  batch.writeUInt32LE(100000, 8 + th_net.SIZE); // second frame claims more than the batch
  const out: NetKernelRecord[] = [];
  const errors = newDecodeErrors();
  decodeBatch(batch, 2, out, errors);
  assert.equal(out.length, 1);
  assert.equal(errors.framing, 1);
  decodeBatch(batch, 5, out, errors); // count larger than the batch holds
  assert.equal(errors.framing, 1 + 4);
});

test('stats are summed over CPUs, cfg and UDP keys round-trip', () => {
  const s = decodeStats(encodeStats(3, [1, 2, 0, 4, 5, 6], [0, 1, 0, 0, 0, 2], 7));
  assert.equal(s.emitted.connect, 3);
  assert.equal(s.emitted.dns, 18);
  assert.equal(s.dropped.accept, 3);
  assert.equal(s.droppedTotal, 9);
  assert.equal(s.sockInserts, 21);
  const cfg = encodeCfg(3, [53, 5353]);
  assert.equal(cfg.length, th_net_cfg.SIZE);
  assert.equal(cfg.readUInt16LE(th_net_cfg.dns_ports + 2), 5353);
  assert.throws(() => encodeCfg(1, [1, 2, 3, 4, 5]), RangeError);
  const k = encodeUdpKey(77n, 10, mapped('10.9.8.7'), 53, 1);
  assert.equal(k.length, th_udp_key.SIZE);
  assert.deepEqual(decodeUdpKey(k), { cookie: 77n, family: 4, familyRaw: 10, peer: '10.9.8.7', port: 53, dir: 1 });
  const f = Buffer.alloc(th_udp_flow.SIZE);
  f.writeBigUInt64LE(12n, th_udp_flow.packets);
  f.writeUInt32LE(9, th_udp_flow.tgid);
  f.writeUInt16LE(6000, th_udp_flow.sport);
  assert.deepEqual(decodeUdpFlow(f, 2), { tgid: 9, procKtime: 0n, netns: 0, firstKtime: 0n, lastKtime: 0n, packets: 12, bytes: 0, sport: 6000, saddr: '0.0.0.0' });
  assert.equal(decodeUdpFlow(f.subarray(0, 10), 2), null);
});

test('no-process flag', () => {
  const { out } = decode([encodeNet({ type: TH_NET_REC_CLOSE, flags: TH_NET_F_NOPROC, family: 2, protocol: 6, saddr: v4('1.1.1.1'), sport: 1, daddr: v4('2.2.2.2'), dport: 2 })]);
  assert.equal((out[0] as NetRecord).noProc, true);
});

test('Cilium identities and endpoint ids of both ends decode', () => {
  const flags = TH_NET_ID_MAP_IPCACHE | TH_NET_ID_MAP_LXC | TH_NET_ID_S_LXC | TH_NET_ID_D_IPCACHE;
  const { out, errors } = decode([
    encodeNet({ type: TH_NET_REC_CONNECT, family: 2, protocol: 6, saddr: v4('10.0.1.5'), sport: 40000, daddr: v4('10.0.2.9'), dport: 5432, sIdentity: 54321, dIdentity: 0x01000007, sEndpoint: 1234, dEndpoint: 0, idFlags: flags }),
    encodeNet({ type: TH_NET_REC_CONNECT, family: 2, protocol: 6, saddr: v4('1.1.1.1'), sport: 1, daddr: v4('2.2.2.2'), dport: 2 }),
  ]);
  assert.deepEqual(errors, newDecodeErrors());
  const r = out[0] as NetRecord;
  assert.equal(r.sIdentity, 54321);
  assert.equal(r.dIdentity, 0x01000007, 'local-scope (CIDR) identities keep their scope bits');
  assert.equal(r.sEndpoint, 1234);
  assert.equal(r.dEndpoint, 0);
  assert.equal(r.idFlags, flags);
  const none = out[1] as NetRecord;
  assert.deepEqual([none.sIdentity, none.dIdentity, none.sEndpoint, none.dEndpoint, none.idFlags], [0, 0, 0, 0, 0]);
});

test('records of the previous layout (version 1, 112 bytes) are refused, not misread', () => {
  const old = encodeNet({ type: TH_NET_REC_CONNECT, family: 2, protocol: 6, saddr: v4('1.1.1.1'), sport: 1, daddr: v4('2.2.2.2'), dport: 2 }).subarray(0, 112);
  old.writeUInt8(1, th_net.hdr_version);
  old.writeUInt32LE(112, th_net.hdr_size);
  const { out, errors } = decode([old]);
  assert.equal(out.length, 0);
  assert.equal(errors.badVersion, 1);
});
