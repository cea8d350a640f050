import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventToTetragonJson, formatTimestamp } from './json';
import { EXAMPLE_61_JSON, example61, makeExec, makeExecId, makeExit, makeProcess } from './testkit';

test('process_exec JSON equals the §6.1 example (parsed)', () => {
  const got = eventToTetragonJson(example61());
  assert.deepEqual(JSON.parse(JSON.stringify(got)), JSON.parse(EXAMPLE_61_JSON));
});

test('exec_id example from §4 round-trips', () => {
  assert.equal(makeExecId('mynode', 1234567890n, 42), 'bXlub2RlOjEyMzQ1Njc4OTA6NDI=');
  assert.equal(Buffer.from('bXlub2RlOjEyMzQ1Njc4OTA6NDI=', 'base64').toString(), 'mynode:1234567890:42');
  assert.equal(
    Buffer.from('Z2tlLWpvaG4tNjMyLWRlZmF1bHQtcG9vbC03MDQxY2FjMC05czk1OjEzNTQ4Njc0MzIxMzczOjUyNjk5', 'base64').toString(),
    'gke-john-632-default-pool-7041cac0-9s95:13548674321373:52699',
  );
});

test('formatTimestamp trims the fraction to 0/3/6/9 digits', () => {
  const sec = Date.parse('2023-10-06T22:03:57Z') / 1000;
  assert.equal(formatTimestamp({ sec, nsec: 0 }), '2023-10-06T22:03:57Z');
  assert.equal(formatTimestamp({ sec, nsec: 700_000_000 }), '2023-10-06T22:03:57.700Z');
  assert.equal(formatTimestamp({ sec, nsec: 1_000_000 }), '2023-10-06T22:03:57.001Z');
  assert.equal(formatTimestamp({ sec, nsec: 700_327_000 }), '2023-10-06T22:03:57.700327Z');
  assert.equal(formatTimestamp({ sec, nsec: 700_327_580 }), '2023-10-06T22:03:57.700327580Z');
  assert.equal(formatTimestamp({ sec, nsec: 5 }), '2023-10-06T22:03:57.000000005Z');
  assert.equal(formatTimestamp({ sec: 0, nsec: 0 }), '1970-01-01T00:00:00Z');
});

test('wrappers print when zero, empty strings and pods are omitted', () => {
  const p = makeProcess({ pid: 0, tid: 0, auid: 0, creds: { uid: 0, gid: 0, euid: 0, egid: 0 }, cwd: '', arguments: '', flags: '', parentExecId: '' });
  const j = eventToTetragonJson(makeExec(p));
  const proc = j.process_exec?.process;
  assert.ok(proc);
  assert.equal(proc.pid, 0);
  assert.equal(proc.uid, 0);
  assert.equal(proc.auid, 0);
  assert.equal(proc.tid, 0);
  for (const k of ['cwd', 'arguments', 'flags', 'parent_exec_id', 'pod', 'docker', 'refcnt', 'in_init_tree']) {
    assert.equal(k in proc, false, k);
  }
  assert.equal('parent' in (j.process_exec ?? {}), false);
});

test('uid is the effective uid; in_init_tree and refcnt appear when set', () => {
  const p = makeProcess({ creds: { uid: 1000, gid: 1000, euid: 0, egid: 0 }, flags: 'execve inInitTree', refcnt: 2 });
  const proc = eventToTetragonJson(makeExec(p)).process_exec?.process;
  assert.equal(proc?.uid, 0);
  assert.equal(proc?.in_init_tree, true);
  assert.equal(proc?.refcnt, 2);
});

test('process_exit carries signal/status/time and the envelope', () => {
  const parent = makeProcess({ pid: 1, binary: '/bin/sh' });
  const p = makeProcess({ parentExecId: parent.execId });
  const t = { sec: 1696629840, nsec: 123000000 };
  const killed = eventToTetragonJson(makeExit(p, 0, 'SIGKILL', parent, 'n1', t));
  assert.deepEqual(Object.keys(killed), ['process_exit', 'node_name', 'time']);
  assert.equal(killed.node_name, 'n1');
  assert.equal(killed.time, '2023-10-06T22:04:00.123Z');
  assert.equal(killed.process_exit?.signal, 'SIGKILL');
  assert.equal('status' in (killed.process_exit ?? {}), false);
  assert.equal(killed.process_exit?.time, '2023-10-06T22:04:00.123Z');
  assert.equal(killed.process_exit?.parent?.binary, '/bin/sh');
  const failed = eventToTetragonJson(makeExit(p, 3, '', undefined, 'n1', t));
  assert.equal(failed.process_exit?.status, 3);
  assert.equal('signal' in (failed.process_exit ?? {}), false);
  assert.equal('parent' in (failed.process_exit ?? {}), false);
});
