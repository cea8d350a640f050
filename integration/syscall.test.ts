// The syscall sensor on the real kernel: only the selected syscalls of the
// selected processes arrive, with their args, returns and counts.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { after, before, test } from 'node:test';
import type { ExecEvent, SyscallEvent } from '../src/model/event';
import { kernelSkipReason, startStack, waitFor, type Stack } from '../src/sensors/file/testkit';
import { SyscallSensor, type SyscallSensorOptions } from '../src/sensors/syscall/sensor';

const PY = '/usr/bin/python3';
const NR = { getppid: 110, sched_yield: 24, umask: 95, exit_group: 231 };
const skip = kernelSkipReason(['syscall.bpf.o']) ?? (fs.existsSync(PY) ? undefined : `${PY} not installed`);
if (skip) console.log(`# syscall sensor kernel tests skipped: ${skip}`);

let st: Stack;

before(async () => {
  if (!skip) st = await startStack('sys-it');
});

after(async () => {
  if (!skip) await st?.close();
});

async function withSensor<T>(options: SyscallSensorOptions, fn: (s: SyscallSensor) => Promise<T>): Promise<T> {
  const s = new SyscallSensor({ ...st, options });
  await s.start();
  try {
    return await fn(s);
  } finally {
    await s.stop();
  }
}

function start(cmd: string, args: string[], stdin: 'ignore' | 'pipe' = 'ignore'): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(cmd, args, { stdio: [stdin, 'ignore', 'inherit'] });
  const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, done };
}

const eventsOf = (pid: number): SyscallEvent[] => st.syscallEvents().filter((e) => e.process.pid === pid);
const calls = (pid: number): SyscallEvent[] => eventsOf(pid).filter((e) => e.count === undefined);
const counts = (pid: number, id: number): number =>
  eventsOf(pid)
    .filter((e) => e.count !== undefined && e.id === id)
    .reduce((a, e) => a + (e.count ?? 0), 0);

test('only the selected syscalls of a python3 child: ids, args, returns, counts', { skip }, async () => {
  await withSensor({ events: ['getppid', 'sched_yield', 'umask', 'exit_group'], counts: ['getppid', 'sched_yield'] }, async (s) => {
    const py = 'import os\nfor i in range(3): os.getppid()\nos.sched_yield()\nos.umask(0o27)\nos._exit(3)';
    const { child, done } = start(PY, ['-c', py]);
    assert.equal(await done, 3);
    const pid = child.pid!;
    await waitFor(() => (calls(pid).length >= 6 ? true : undefined), 5000, 'six calls');
    const evs = calls(pid);
    assert.deepEqual(
      evs.map((e) => e.name),
      ['getppid', 'getppid', 'getppid', 'sched_yield', 'umask', 'exit_group'],
      'nothing else of this child, in order',
    );
    for (const e of evs.slice(0, 3)) {
      assert.equal(e.id, NR.getppid);
      assert.equal(e.ret, process.pid); // its parent is this test
    }
    assert.equal(evs[3].id, NR.sched_yield);
    assert.equal(evs[3].ret, 0);
    const um = evs[4];
    assert.equal(um.id, NR.umask);
    assert.equal(um.args.length, 6);
    assert.equal(um.args[0], 0o27n);
    assert.equal(um.ret, process.umask());
    const ex = evs[5];
    assert.equal(ex.id, NR.exit_group);
    assert.equal(ex.args[0], 3n);
    assert.equal(ex.ret, undefined, 'exit_group never returns: reported at entry');

    const exec = st.items.find((i): i is ExecEvent => i.kind === 'exec' && i.process.pid === pid);
    assert.ok(exec);
    for (const e of evs) {
      assert.equal(e.process.execId, exec.process.execId);
      assert.equal(e.process.binary, PY);
      assert.equal(e.kind, 'syscall');
    }

    s.sweepCounts();
    await waitFor(() => (counts(pid, NR.getppid) === 3 && counts(pid, NR.sched_yield) === 1 ? true : undefined), 5000, 'counts');
    const c = eventsOf(pid).find((e) => e.count !== undefined && e.id === NR.getppid)!;
    assert.equal(c.name, 'getppid');
    assert.deepEqual(c.args, []);
    assert.equal(c.process.execId, exec.process.execId);
    // a second sweep reports nothing new for the exited process
    const before = eventsOf(pid).length;
    s.sweepCounts();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(eventsOf(pid).length, before);
    assert.equal(s.counters().syscall_decode_errors, 0);
    assert.equal(s.counters().syscall_kernel_ring_drops, 0);
  });
});

test('binaries filter: python3 reported, bash (which calls getppid too) not', { skip }, async () => {
  await withSensor({ events: ['getppid'], binaries: [PY] }, async (s) => {
    assert.deepEqual(s.status().hooks.slice(0, 3), ['raw_tp/sched_process_exec', 'raw_tp/sched_process_fork', 'raw_tp/sched_process_exit']);
    const sh = start('/bin/bash', ['-c', 'echo $PPID >/dev/null']);
    await sh.done;
    const py = start(PY, ['-c', 'import os; os.getppid()']);
    await py.done;
    await waitFor(() => (calls(py.child.pid!).length ? true : undefined), 5000, 'python getppid');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(calls(sh.child.pid!), []);
    assert.equal(calls(py.child.pid!)[0].ret, process.pid);
  });
});

test('pids filter: only the listed process', { skip }, async () => {
  const code = 'import os, sys\nsys.stdin.readline()\nos.getppid()';
  const a = start(PY, ['-c', code], 'pipe');
  const b = start(PY, ['-c', code], 'pipe');
  await withSensor({ events: ['getppid'], pids: [a.child.pid!] }, async () => {
    a.child.stdin!.end('go\n');
    b.child.stdin!.end('go\n');
    await Promise.all([a.done, b.done]);
    await waitFor(() => (calls(a.child.pid!).length ? true : undefined), 5000, 'listed pid');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(calls(a.child.pid!).length, 1);
    assert.deepEqual(calls(b.child.pid!), []);
  });
});

test('unknown syscall names are refused with the name', { skip }, () => {
  assert.throws(() => new SyscallSensor({ ...st, options: { events: ['getppid', 'no_such_call'] } }), /unknown syscall "no_such_call" in events/);
});
