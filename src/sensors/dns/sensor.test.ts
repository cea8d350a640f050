// The user-space half of the DNS and network sensors, without a kernel:
// captured packets → DnsEvents (matching, latency, process, cache) → names on
// a later connect's NetEvent.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Logger } from '../../agent/log';
import { EventBus } from '../../bus/bus';
import { defaultConfig } from '../../config/config';
import { DnsNameCache } from '../../enrich/dns/cache';
import { ProcessCache } from '../../enrich/process/cache';
import { BootClock } from '../../enrich/process/clock';
import type { NativeBinding } from '../../kernel/types';
import type { ProcessInfo } from '../../model/event';
import type { NetRecord } from '../net/decode';
import { NetConfigError } from '../net/kernel';
import { NetSensor, toNetEvent } from '../net/sensor';
import type { DnsPacketRecord } from './decode';
import { DnsSensor } from './sensor';
import { DNS_TYPE } from './parse';
import { QUERY, RESPONSE, encodeName, header, ipv4Bytes, ptr, question, rr } from './wire';

const clock = new BootClock(() => ({ boottime: 0n, realtime: 1_700_000_000_000_000_000n }));
const noNative = {} as NativeBinding; // never touched: nothing is loaded in these tests

function deps(): { cache: ProcessCache; names: DnsNameCache; bus: EventBus; sensor: DnsSensor } {
  const cache = new ProcessCache({ nodeName: 'n1', clock });
  const proc: ProcessInfo = {
    execId: cache.execIdOf(5000n, 321),
    parentExecId: '',
    pid: 321,
    tid: 321,
    ktime: 5000n,
    creds: { uid: 0, gid: 0, euid: 0, egid: 0 },
    auid: 0,
    cwd: '/',
    binary: '/usr/bin/curl',
    args: [],
    arguments: '',
    flags: 'execve',
    startTime: clock.toWall(5000n),
    cgroupId: 0n,
    docker: '',
    refcnt: 1,
  };
  cache.seed(proc);
  const names = new DnsNameCache();
  const bus = new EventBus();
  const config = { ...defaultConfig(), nodeName: 'n1' };
  const sensor = new DnsSensor({ native: noNative, bus, cache, clock, config, log: new Logger('error'), dnsNames: names }, { ports: [53] });
  return { cache, names, bus, sensor };
}

function packet(egress: boolean, payload: Buffer, ktime: bigint, over: Partial<DnsPacketRecord> = {}): DnsPacketRecord {
  const client = { addr: '10.0.0.2', port: 41000 };
  const server = { addr: '10.0.0.53', port: 53 };
  const [s, d] = egress ? [client, server] : [server, client];
  return {
    type: 'dns',
    ktime,
    tgid: 321,
    procKtime: 5000n,
    noProc: false,
    cookie: 77n,
    netns: 1,
    ifindex: 2,
    family: 4,
    protocol: 'udp',
    egress,
    truncated: false,
    saddr: s.addr,
    sport: s.port,
    daddr: d.addr,
    dport: d.port,
    origLen: payload.length,
    payload,
    ...over,
  };
}

const query = Buffer.concat([header(0x4242, QUERY, 1, 0), question(encodeName('api.example.com'), DNS_TYPE.A)]);
const answer = Buffer.concat([
  header(0x4242, RESPONSE, 1, 2),
  question(encodeName('api.example.com'), DNS_TYPE.A),
  rr(ptr(12), DNS_TYPE.CNAME, 300, encodeName('lb.example.net')),
  rr(Buffer.concat([Buffer.from([2]), Buffer.from('lb'), Buffer.from([7]), Buffer.from('example'), Buffer.from([3]), Buffer.from('net'), Buffer.from([0])]), DNS_TYPE.A, 120, ipv4Bytes('10.0.0.80')),
]);

test('query and response: names, types, answers, latency, the querying process', () => {
  const { sensor } = deps();
  const q = sensor.onPacket(packet(true, query, 1_000_000n));
  assert.ok(q);
  assert.equal(q.isResponse, false);
  assert.equal(q.query, 'api.example.com');
  assert.deepEqual(q.qtypes, ['A']);
  assert.equal(q.clientAddr, '10.0.0.2');
  assert.equal(q.serverPort, 53);
  assert.equal(q.process.binary, '/usr/bin/curl');
  const r = sensor.onPacket(packet(false, answer, 3_500_000n));
  assert.ok(r);
  assert.equal(r.isResponse, true);
  assert.equal(r.id, 0x4242);
  assert.equal(r.rcode, 0);
  assert.equal(r.latencyNs, 2_500_000);
  assert.equal(r.clientAddr, '10.0.0.2', 'client = the local end for both directions');
  assert.equal(r.clientPort, 41000);
  assert.equal(r.serverAddr, '10.0.0.53');
  assert.deepEqual(r.answers, [
    { name: 'api.example.com', type: 'CNAME', ttl: 300, data: 'lb.example.net' },
    { name: 'lb.example.net', type: 'A', ttl: 120, data: '10.0.0.80' },
  ]);
  assert.equal(r.process.pid, 321);
  assert.equal(r.malformed, undefined);
  assert.equal(sensor.counters().dns_unmatched_responses, 0);
});

test('answers feed the name cache; a later connect carries the names', () => {
  const { sensor, names, cache } = deps();
  sensor.onPacket(packet(true, query, 1n));
  sensor.onPacket(packet(false, answer, 2n));
  const rec: NetRecord = {
    type: 'connect',
    ktime: 10n,
    tgid: 321,
    tid: 321,
    procKtime: 5000n,
    noProc: false,
    cookie: 5n,
    netns: 1,
    ret: 0,
    ingress: false,
    first: false,
    tupleStash: false,
    family: 4,
    protocol: 6,
    state: 1,
    saddr: '10.0.0.2',
    sport: 45000,
    daddr: '10.0.0.80',
    dport: 443,
    packets: 0,
    familyRaw: 2,
  };
  const ev = toNetEvent(rec, { time: clock.toWall(10n), nodeName: 'n1', process: cache.current(321)! }, names);
  assert.deepEqual(ev.destinationNames, ['api.example.com', 'lb.example.net']);
  assert.equal(ev.op, 'connect');
  assert.equal(ev.direction, 'egress');
  assert.equal(ev.state, 'TCP_ESTABLISHED');
  assert.equal(ev.socketCookie, 5n);
  const other = toNetEvent({ ...rec, daddr: '10.0.0.81' }, { time: clock.toWall(10n), nodeName: 'n1', process: cache.current(321)! }, names);
  assert.equal(other.destinationNames, undefined);
});

test('NXDOMAIN and unmatched responses; nothing cached from errors', () => {
  const { sensor, names } = deps();
  const nx = Buffer.concat([header(9, RESPONSE | 3, 1, 1), question(encodeName('x.invalid'), DNS_TYPE.A), rr(ptr(12), DNS_TYPE.A, 60, ipv4Bytes('10.9.9.9'))]);
  const r = sensor.onPacket(packet(false, nx, 5n));
  assert.ok(r);
  assert.equal(r.rcode, 3);
  assert.equal(r.latencyNs, undefined);
  assert.equal(sensor.counters().dns_unmatched_responses, 1);
  assert.equal(names.lookup('10.9.9.9'), undefined);
});

test('malformed and truncated captures are flagged, never thrown', () => {
  const { sensor } = deps();
  const cut = answer.subarray(0, answer.length - 5);
  const r = sensor.onPacket(packet(false, cut, 5n, { truncated: true, origLen: answer.length + 100 }));
  assert.ok(r);
  assert.match(r.malformed ?? '', /^truncated record \(captured \d+ of \d+ bytes\)$/);
  assert.equal(r.answers.length, 1, 'the CNAME before the cut is kept');
  const loop = Buffer.concat([header(1, QUERY, 1, 0), ptr(12), Buffer.from([0, 1, 0, 1])]);
  assert.equal(sensor.onPacket(packet(true, loop, 6n))?.malformed, 'compression loop');
  assert.equal(sensor.counters().dns_malformed, 2);
  // A TCP segment that does not start a message is skipped.
  assert.equal(sensor.onPacket(packet(true, Buffer.from([0, 1, 2]), 7n, { protocol: 'tcp' })), null);
});

test('TCP: the length prefix is stripped; unknown owner gets a placeholder process', () => {
  const { sensor } = deps();
  const seg = Buffer.concat([Buffer.from([query.length >> 8, query.length & 0xff]), query]);
  const q = sensor.onPacket(packet(true, seg, 1n, { protocol: 'tcp', noProc: true, tgid: 0 }));
  assert.ok(q);
  assert.equal(q.protocol, 'tcp');
  assert.equal(q.query, 'api.example.com');
  assert.equal(q.process.pid, 0);
  assert.equal(q.process.flags, 'unknown');
});

test('pending queries are bounded and expire', () => {
  const cache = new ProcessCache({ nodeName: 'n1', clock });
  const s = new DnsSensor(
    { native: noNative, bus: new EventBus(), cache, clock, config: defaultConfig(), log: new Logger('error') },
    { pendingQueries: 2, queryTimeoutMs: 1000 },
  );
  for (let id = 1; id <= 3; id++) {
    const q = Buffer.concat([header(id, QUERY, 1, 0), question(encodeName('p.example'), DNS_TYPE.A)]);
    s.onPacket(packet(true, q, BigInt(id)));
  }
  assert.equal(s.counters().dns_pending_evicted, 1);
  s.onPacket(packet(true, query, 2_000_000_000n));
  assert.equal(s.counters().dns_pending_expired, 2);
  assert.equal(s.counters().dns_pending_queries, 1);
});

test('options are validated with clear errors', () => {
  const cache = new ProcessCache({ nodeName: 'n1', clock });
  const base = { native: noNative, bus: new EventBus(), cache, clock, config: defaultConfig(), log: new Logger('error') };
  assert.throws(() => new DnsSensor(base, { ports: [] }), NetConfigError);
  assert.throws(() => new DnsSensor(base, { ports: [53, 53] }), /repeat/);
  assert.throws(() => new DnsSensor(base, { ports: [1, 2, 3, 4, 5] }), NetConfigError);
  assert.throws(() => new DnsSensor(base, { ports: [70000] }), /\[1, 65535\]/);
  assert.throws(() => new DnsSensor(base, { cgroupRoot: 'relative' }), /absolute/);
  assert.throws(() => new NetSensor(base, { ringBytes: 5000 }), /power of two/);
  assert.throws(() => new NetSensor(base, { socketMapEntries: 1 }), /socketMapEntries/);
  assert.throws(() => new NetSensor(base, { udpReportMs: 1 }), /udpReportMs/);
});
