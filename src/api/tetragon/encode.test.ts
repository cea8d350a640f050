import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RuntimeEvent } from '../../model/event';
import { encodeEvent, encodeEventUncached, encodeResponse, eventToProto, framedEvent } from './encode';
import { tetragonTypes } from './protos';
import { dnsEvent, dnsResponse, fileEvent, netEvent, syscallEvent } from './sensorkit';
import { example61, makeExec, makeExit, makeProcess, xwingPod } from './testkit';

function samples(): RuntimeEvent[] {
  const parent = makeProcess({ pid: 1, binary: '/sbin/init', flags: 'procFS', pod: undefined });
  const p = makeProcess({ parentExecId: parent.execId, pod: xwingPod(), refcnt: 3, flags: 'execve inInitTree' });
  const zero = makeProcess({ pid: 0, tid: 0, auid: 0, creds: { uid: 0, gid: 0, euid: 0, egid: 0 }, cwd: '', flags: '', parentExecId: '' });
  return [
    example61(),
    makeExec(p, parent),
    makeExec(zero, undefined, 'n', { sec: 0, nsec: 0 }),
    makeExit(p, 0, 'SIGKILL', parent),
    makeExit(p, 255, '', undefined, 'node-x', { sec: 1700000000, nsec: 999999999 }),
    ...sensorSamples(p, parent),
  ];
}

/** One event of every sensor shape, with and without parent, pod, zero values. */
function sensorSamples(p: ReturnType<typeof makeProcess>, parent: ReturnType<typeof makeProcess>): RuntimeEvent[] {
  return [
    fileEvent({}, p, parent),
    fileEvent({ flags: 0o101, mode: 0o600, ret: 0 }),
    fileEvent({ path: '/nope', ret: -2, truncated: true }),
    fileEvent({ op: 'close', syscall: 'close', ret: 0, bytesRead: 0, bytesWritten: 2 ** 40 }),
    fileEvent({ syscall: '', ret: 7, bytesRead: 5, bytesWritten: 0 }),
    fileEvent({ op: 'rename', syscall: 'renameat2', path: '/a', path2: '/b', ret: 0 }, p),
    fileEvent({ op: 'symlink', syscall: 'symlink', path: 'rel', path2: '/tmp/l', ret: 0 }),
    fileEvent({ op: 'chown', syscall: 'fchownat', uid: 0, gid: 0xffffffff, ret: 0 }),
    fileEvent({ op: 'mount', syscall: 'mount', path: '', path2: '/mnt', flags: 0, ret: -1 }),
    netEvent({}, p, parent),
    netEvent({ op: 'close', state: 'TCP_CLOSE_WAIT', bytesSent: 0, bytesReceived: 12, socketCookie: 0xffffffffffffffffn }),
    netEvent({ op: 'accept', direction: 'ingress', ret: 0, sport: 0 }),
    netEvent({ op: 'send', protocol: 'udp', family: 6, saddr: '::', daddr: 'fe80::1', state: undefined, packets: 3, bytesSent: 99 }),
    dnsEvent({}, p, parent),
    dnsResponse(),
    dnsEvent({ isResponse: true, rcode: 3, id: 0, protocol: 'tcp', clientAddr: '::1', serverAddr: '::1' }),
    syscallEvent({}, p, parent),
    syscallEvent({ args: [0xffffffffffffffffn, 1n, 2n, 3n, 4n, 5n], ret: -14 }),
    syscallEvent({ count: 3, args: [], ret: undefined }, undefined, undefined),
  ];
}

test('the assembled encoding is byte-identical to encoding the plain object', () => {
  for (const ev of samples()) {
    assert.deepEqual(Buffer.from(encodeEventUncached(ev)), Buffer.from(encodeResponse(eventToProto(ev))), ev.kind);
  }
});

test('framed bytes carry the gRPC header and decode back to the event', () => {
  const R = tetragonTypes().GetEventsResponse;
  for (const ev of samples()) {
    const framed = framedEvent(ev);
    assert.equal(framed[0], 0);
    assert.equal(framed.readUInt32BE(1), framed.length - 5);
    assert.equal(framedEvent(ev), framed, 'cached');
    assert.deepEqual(Buffer.from(encodeEvent(ev)), framed.subarray(5));
    const back = R.toObject(R.decode(framed.subarray(5)), { longs: String });
    const expect = R.toObject(R.decode(encodeResponse(eventToProto(ev))), { longs: String });
    assert.deepEqual(back, expect);
    assert.equal(back.node_name, ev.nodeName || undefined);
  }
});

test('sensor events: each encoding is an exact-size buffer of its own, shared by the framed copy', () => {
  const p = makeProcess({ pod: xwingPod() });
  for (const ev of sensorSamples(p, makeProcess({ pid: 1 }))) {
    const framed = framedEvent(ev);
    assert.equal(framed.buffer.byteLength, framed.byteLength, `${ev.kind}: not a pooled slice`);
    assert.equal(ev.wire.get('tetragon')?.buffer, framed.buffer);
    const R = tetragonTypes().GetEventsResponse;
    const back = R.toObject(R.decode(framed.subarray(5)), { longs: String }) as Record<string, unknown>;
    assert.ok(back[ev.kind === 'syscall' ? 'process_tracepoint' : 'process_kprobe'], ev.kind);
  }
});
