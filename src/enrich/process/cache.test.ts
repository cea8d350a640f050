import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { RuntimeEvent } from '../../model/event';
import type { ExecRecord } from '../../sensors/process/decode';
import { containerIdFromCgroup, joinArguments, resolveBinary, signalName } from './args';
import { ProcessCache } from './cache';
import { BootClock } from './clock';
import { execIdOf, parseExecId } from './execId';
import { flagString } from './flags';

const clock = new BootClock(() => ({ boottime: 1_000_000_000n, realtime: 1_700_000_000_000_000_000n }));

function exec(over: Partial<ExecRecord>): ExecRecord {
  return {
    type: 'exec', ktime: 5_000n, pid: 100, tid: 100, parentPid: 1, parentKtime: 0n,
    uid: 0, gid: 0, euid: 0, egid: 0, auid: 4294967295, flags: 0, cgroupId: 1n, cgroupName: '',
    filename: '/bin/true', args: [], cwd: '/', ...over,
  };
}

test('exec_id is base64 of node:ktime:pid, as Tetragon builds it', () => {
  assert.equal(execIdOf('mynode', 1234567890n, 42), 'bXlub2RlOjEyMzQ1Njc4OTA6NDI=');
  assert.equal(
    execIdOf('gke-john-632-default-pool-7041cac0-9s95', 13548674321373n, 52699),
    'Z2tlLWpvaG4tNjMyLWRlZmF1bHQtcG9vbC03MDQxY2FjMC05czk1OjEzNTQ4Njc0MzIxMzczOjUyNjk5',
  );
  assert.deepEqual(parseExecId('bXlub2RlOjEyMzQ1Njc4OTA6NDI='), { nodeName: 'mynode', ktime: 1234567890n, pid: 42 });
});

test('arguments, flags, binaries and container ids render like Tetragon', () => {
  assert.equal(joinArguments(['-c', 'curl https://x', 'y']), '-c "curl https://x" y');
  assert.equal(flagString(0x1 | 0x1000 | 0x4000), 'execve rootcwd clone');
  assert.equal(flagString(0x4), 'procFS');
  assert.equal(resolveBinary('./bin/../sh', '/usr'), '/usr/sh');
  assert.equal(resolveBinary('/bin/ls', '/tmp'), '/bin/ls');
  assert.equal(containerIdFromCgroup('docker-551e161c47d8ff0eb665438a7bcd5b4e3ef5a297282b40a92b7c77d6bd168eb3.scope'), '551e161c47d8ff0eb665438a7bcd5b4');
  assert.equal(containerIdFromCgroup('user.slice'), '');
  assert.equal(signalName(9), 'SIGKILL');
  assert.equal(signalName(0), '');
});

test('fork then exec: the exec parent is the clone image of the same pid, whose parent is the forking shell', () => {
  const cache = new ProcessCache({ nodeName: 'n1', clock });
  const out: RuntimeEvent[] = [];
  cache.apply([exec({ pid: 10, ktime: 100n, filename: '/bin/bash', args: ['-c', 'curl x'], cwd: '/root' })], out);
  cache.apply([{ type: 'clone', ktime: 200n, pid: 11, tid: 11, parentPid: 10, parentKtime: 100n, flags: 0x4000 }], out);
  cache.apply([exec({ pid: 11, ktime: 300n, parentPid: 11, parentKtime: 200n, filename: '/usr/bin/curl', args: ['x'], cwd: '/root' })], out);
  cache.apply([{ type: 'exit', ktime: 400n, procKtime: 300n, pid: 11, tid: 11, status: 7, signal: 0 }], out);
  assert.equal(out.length, 3);
  const [bash, curl, exit] = out;
  assert.equal(curl.kind, 'exec');
  assert.equal(curl.process.execId, execIdOf('n1', 300n, 11));
  assert.equal(curl.process.parentExecId, execIdOf('n1', 200n, 11));
  assert.equal(curl.parent?.binary, '/bin/bash');
  assert.equal(curl.parent?.flags, 'execve clone');
  assert.equal(curl.parent?.parentExecId, bash.process.execId);
  assert.equal(curl.process.arguments, 'x');
  assert.equal(exit.kind, 'exit');
  if (exit.kind === 'exit') {
    assert.equal(exit.process.execId, curl.process.execId);
    assert.equal(exit.status, 7);
    assert.equal(exit.signal, '');
  }
  // wall time = ktime + (realtime - boottime)
  assert.deepEqual(curl.process.startTime, { sec: 1_699_999_999, nsec: 300 });
});

test('exec without fork gets a new exec_id whose parent is the previous image', () => {
  const cache = new ProcessCache({ nodeName: 'n1', clock });
  const out: RuntimeEvent[] = [];
  cache.apply([exec({ pid: 20, ktime: 100n, filename: '/bin/sh' })], out);
  cache.apply([exec({ pid: 20, ktime: 150n, parentPid: 20, parentKtime: 100n, filename: '/bin/sleep' })], out);
  assert.equal(out[1].process.parentExecId, out[0].process.execId);
  assert.equal(cache.current(20)?.binary, '/bin/sleep');
  // The replaced image still resolves during the grace period.
  assert.equal(cache.get(out[0].process.execId)?.binary, '/bin/sh');
});

test('exit by signal reports the signal name and status 0; unknown processes are flagged unknown', () => {
  const cache = new ProcessCache({ nodeName: 'n1', clock });
  const out: RuntimeEvent[] = [];
  cache.apply([{ type: 'exit', ktime: 9n, procKtime: 3n, pid: 99, tid: 99, status: 0, signal: 9 }], out);
  const e = out[0];
  assert.equal(e.kind, 'exit');
  if (e.kind === 'exit') assert.equal(e.signal, 'SIGKILL');
  assert.equal(e.process.flags, 'unknown');
  assert.equal(cache.misses, 1);
});

test('the cache is bounded: exited images go first, evictions are counted, gc honours the grace period', () => {
  const cache = new ProcessCache({ nodeName: 'n1', clock, capacity: 100, graceMs: 1000 });
  const out: RuntimeEvent[] = [];
  for (let i = 0; i < 100; i++) cache.apply([exec({ pid: 1000 + i, ktime: BigInt(i + 1) })], out);
  for (let i = 0; i < 10; i++) cache.apply([{ type: 'exit', ktime: 999n, procKtime: BigInt(i + 1), pid: 1000 + i, tid: 1000 + i, status: 0, signal: 0 }], out);
  for (let i = 0; i < 20; i++) cache.apply([exec({ pid: 5000 + i, ktime: BigInt(1000 + i) })], out);
  const s = cache.stats();
  assert.equal(s.size, 100);
  assert.equal(s.evictions, 20);
  // the 10 exited went first, then the 10 oldest live ones
  assert.equal(cache.current(1010), undefined);
  assert.ok(cache.current(1020));
  cache.apply([{ type: 'exit', ktime: 999n, procKtime: 1000n, pid: 5000, tid: 5000, status: 0, signal: 0 }], out);
  assert.equal(cache.gc(Date.now()), 0);
  assert.equal(cache.gc(Date.now() + 2000), 1);
  assert.equal(cache.stats().size, 99);
});
