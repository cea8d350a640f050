// Unit tests of the Cilium Hubble merge parts that need no kernel and no
// sockets: the byte splice, the socket table, and the merged feed's order,
// enrichment, dedupe and replay handling (fed raw responses directly).
// End to end (real gRPC, stand-in, real processes): integration/merge.test.ts.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as protobuf from 'protobufjs';
import { EventBus } from '../../../bus/bus';
import type { BusItem, NetEvent } from '../../../model/event';
import { extensionJson } from '../client';
import { protos, STRUCT_TYPE_URL } from '../proto';
import { proc } from '../testkit';
import { MergedFeed } from './merge';
import { SocketTable } from './sockets';
import { encodeTail, SpliceError, spliceResponseTail } from './splice';
import type { HubbleItem } from './types';

const P = protos();
const T0 = 1_700_000_000;

function response(flow: Record<string, unknown>, extra?: Uint8Array): Buffer {
  const bytes = P.GetFlowsResponse.encode(P.GetFlowsResponse.fromObject({ flow, node_name: 'kind-worker', time: flow.time })).finish();
  return Buffer.from(extra ? Buffer.concat([bytes, extra]) : bytes);
}

function trace(o: { sec?: number; ms?: number; src: string; sport: number; dst: string; dport: number; uuid: string; summary?: string; udp?: boolean }) {
  const ports = { source_port: o.sport, destination_port: o.dport };
  return {
    time: { seconds: o.sec ?? T0, nanos: (o.ms ?? 0) * 1e6 },
    uuid: o.uuid,
    verdict: 1,
    IP: { source: o.src, destination: o.dst, ipVersion: 1 },
    l4: o.udp ? { UDP: ports } : { TCP: { ...ports, flags: { SYN: true } } },
    source: { identity: 2, labels: ['reserved:world'] },
    Type: 1,
    node_name: 'kind-worker',
    event_type: { type: 4, sub_type: 3 },
    Summary: o.summary ?? 'TCP Flags: SYN',
  };
}

function netEvent(o: Partial<NetEvent> & { ms?: number }): NetEvent {
  return {
    kind: 'net',
    seq: 0,
    time: { sec: T0, nsec: (o.ms ?? 0) * 1e6 },
    nodeName: 'n',
    process: proc({ pid: 4242, binary: '/usr/bin/curl' }),
    wire: new Map(),
    op: 'connect',
    protocol: 'tcp',
    family: 4,
    saddr: '10.0.0.1',
    sport: 40000,
    daddr: '10.0.0.2',
    dport: 80,
    netns: 1,
    socketCookie: 77n,
    direction: 'egress',
    ret: 0,
    ...o,
  };
}

test('splice: Summary and extensions replaced, every other byte kept (unknown fields too)', () => {
  // An unknown Flow field (9999, varint) a newer Cilium might send: tag (9999<<3|0) then 1.
  const unknown = protobuf.Writer.create().uint32((9999 << 3) | 0).uint32(1).finish();
  const flowBytes = Buffer.concat([P.Flow.encode(P.Flow.fromObject(trace({ src: 'a', sport: 1, dst: 'b', dport: 2, uuid: 'u1' }))).finish(), unknown]);
  const resp = Buffer.from(protobuf.Writer.create().uint32((1 << 3) | 2).bytes(flowBytes).uint32((1000 << 3) | 2).string('kind-worker').finish());
  const ext = { type_url: STRUCT_TYPE_URL, value: P.Struct.encode(P.Struct.fromObject({ fields: { a: { stringValue: 'b' } } })).finish() };
  const out = spliceResponseTail(resp, encodeTail('TCP Flags: SYN; Process: /bin/x (pid 1)', ext));
  const got = P.GetFlowsResponse.toObject(P.GetFlowsResponse.decode(out), { longs: String }) as { flow: Record<string, unknown>; node_name: string };
  assert.equal(got.node_name, 'kind-worker');
  assert.equal(got.flow.Summary, 'TCP Flags: SYN; Process: /bin/x (pid 1)');
  assert.deepEqual(extensionJson(got.flow.extensions as { type_url: string; value: Uint8Array }), { a: 'b' });
  assert.equal(got.flow.uuid, 'u1');
  assert.ok(Buffer.from(out).includes(Buffer.from(unknown)), 'the unknown field is still there');
  // Splicing again replaces rather than appends.
  const again = spliceResponseTail(out, encodeTail('x', ext));
  const g2 = P.GetFlowsResponse.decode(again) as unknown as { flow: { Summary: string } };
  assert.equal(g2.flow.Summary, 'x');
  assert.equal(again.length, out.length - 'TCP Flags: SYN; Process: /bin/x (pid 1)'.length + 1);
  assert.throws(() => spliceResponseTail(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]), encodeTail('x', ext)), SpliceError);
});

test('socket table: both orientations, cookie first, time window, bounded', () => {
  const t = new SocketTable({ capacity: 16, graceMs: 1000, earlyMs: 500 });
  const ev = netEvent({});
  t.add(ev);
  const base = { protocol: 'tcp' as const, timeMs: T0 * 1000 + 10 };
  assert.equal(t.match({ ...base, srcIp: '10.0.0.1', srcPort: 40000, dstIp: '10.0.0.2', dstPort: 80 })?.ev, ev, 'egress orientation');
  assert.equal(t.match({ ...base, srcIp: '10.0.0.2', srcPort: 80, dstIp: '10.0.0.1', dstPort: 40000 })?.ev, ev, 'reply orientation');
  assert.equal(t.match({ ...base, srcIp: '9.9.9.9', srcPort: 1, dstIp: '8.8.8.8', dstPort: 2, cookie: '77' })?.ev, ev, 'by cookie');
  assert.equal(t.match({ ...base, protocol: 'udp', srcIp: '10.0.0.1', srcPort: 40000, dstIp: '10.0.0.2', dstPort: 80 }), undefined, 'protocol is part of the key');
  assert.equal(t.match({ ...base, timeMs: T0 * 1000 - 600, srcIp: '10.0.0.1', srcPort: 40000, dstIp: '10.0.0.2', dstPort: 80 }), undefined, 'long before the socket');
  t.add(netEvent({ op: 'close', ms: 100 }));
  assert.ok(t.match({ ...base, timeMs: T0 * 1000 + 900, srcIp: '10.0.0.1', srcPort: 40000, dstIp: '10.0.0.2', dstPort: 80 }), 'within the grace after close');
  assert.equal(t.match({ ...base, timeMs: T0 * 1000 + 2000, srcIp: '10.0.0.1', srcPort: 40000, dstIp: '10.0.0.2', dstPort: 80 }), undefined, 'past the grace');
  t.add(netEvent({ op: 'listen', daddr: '0.0.0.0', dport: 0 }));
  for (let i = 0; i < 40; i++) t.add(netEvent({ sport: 50000 + i, socketCookie: BigInt(1000 + i) }));
  assert.equal(t.stats().sockets, 16);
  assert.ok(t.stats().evicted > 0);
});

/** A feed fed directly (no follower): windowMs 0, runtime items pass at once. */
function feedOf(dedupe = true) {
  const bus = new EventBus();
  const feed = new MergedFeed({ bus, nodeName: 'n', dedupe, windowMs: 0 });
  const out: HubbleItem[] = [];
  const sub = feed.subscribe({ name: 't', onReady: () => out.push(...sub.take()) });
  return { bus, feed, out };
}

test('merge: matched flows enriched (process in extensions and Summary), unmatched bytes untouched, replays dropped', () => {
  const { bus, feed, out } = feedOf();
  const ev = netEvent({});
  bus.publish([ev as BusItem]);
  const hit = response(trace({ ms: 5, src: '10.0.0.1', sport: 40000, dst: '10.0.0.2', dport: 80, uuid: 'hit' }));
  const miss = response(trace({ ms: 6, src: '10.9.0.1', sport: 1, dst: '10.9.0.2', dport: 2, uuid: 'miss' }));
  feed.ingest([hit, miss, miss]);
  feed.pump();
  const cil = out.filter((i) => i.kind === 'cilium');
  assert.equal(cil.length, 2, 'the replayed uuid dropped');
  assert.equal(feed.c.replayed, 1);
  const [h, m] = cil as Extract<HubbleItem, { kind: 'cilium' }>[];
  assert.equal(h.flow().Summary, 'TCP Flags: SYN; Process: /usr/bin/curl (pid 4242)');
  const ext = extensionJson(h.flow().extensions) as { process_kprobe: { process: { pid: number; binary: string; exec_id: string } } };
  assert.equal(ext.process_kprobe.process.pid, 4242);
  assert.equal(ext.process_kprobe.process.exec_id, ev.process.execId);
  assert.equal(h.socket, ev);
  const decoded = P.GetFlowsResponse.decode(h.bytes) as unknown as { flow: { Summary: string; uuid: string } };
  assert.equal(decoded.flow.Summary, h.flow().Summary, 'bytes and object agree');
  assert.ok(Buffer.from(m.bytes).equals(miss), 'unmatched: the same bytes');
  assert.equal(feed.c.enriched, 1);
  assert.equal(feed.c.unmatched, 1);
  feed.close();
});

test('merge: our connection flows for a connection Cilium reported are left out (dedupe), kept without', () => {
  for (const dedupe of [true, false]) {
    const { bus, feed, out } = feedOf(dedupe);
    // Cilium's flow (reply direction) arrives first; our connect is released after it.
    feed.ingest([response(trace({ ms: 1, src: '10.0.0.2', sport: 80, dst: '10.0.0.1', dport: 40000, uuid: 'c' }))]);
    bus.publish([netEvent({ ms: 0 }) as BusItem, netEvent({ ms: 2, sport: 40001 }) as BusItem]);
    feed.pump();
    const nets = out.filter((i) => i.kind === 'net') as NetEvent[];
    assert.deepEqual(nets.map((n) => n.sport), dedupe ? [40001] : [40000, 40001], `dedupe ${dedupe}`);
    feed.close();
  }
});

test('merge: time order across the two sources within the window', async () => {
  const bus = new EventBus();
  const feed = new MergedFeed({ bus, nodeName: 'n', windowMs: 100 });
  // Pretend a follower is connected: runtime items wait for Cilium's.
  (feed as unknown as { follower: unknown }).follower = { connected: true, noteFlowTime: () => undefined, noteGarbage: () => undefined };
  const out: HubbleItem[] = [];
  const sub = feed.subscribe({ name: 't', onReady: () => out.push(...sub.take()) });
  bus.publish([netEvent({ ms: 20, op: 'listen', daddr: '0.0.0.0', dport: 0 }) as BusItem]);
  assert.equal(out.length, 0, 'held while Cilium may still send older flows');
  feed.ingest([response(trace({ ms: 10, src: 'a', sport: 1, dst: 'b', dport: 2, uuid: 'old' })), response(trace({ ms: 30, src: 'a', sport: 1, dst: 'b', dport: 2, uuid: 'new' }))]);
  feed.pump();
  await new Promise((r) => setTimeout(r, 250));
  assert.deepEqual(
    out.map((i) => (i.kind === 'cilium' ? (P.GetFlowsResponse.decode(i.bytes) as unknown as { flow: { uuid: string } }).flow.uuid : i.kind)),
    ['old', 'net', 'new'],
  );
  assert.equal(feed.c.late, 0);
  feed.close();
});
