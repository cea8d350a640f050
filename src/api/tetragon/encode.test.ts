import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RuntimeEvent } from '../../model/event';
import { encodeEvent, encodeEventUncached, encodeResponse, eventToProto, framedEvent } from './encode';
import { tetragonTypes } from './protos';
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
