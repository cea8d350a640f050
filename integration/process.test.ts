// The foundation end to end: real BPF programs on this kernel, real processes,
// the real agent binary, and real gRPC clients of both APIs.
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cgroup2Mount } from '../src/enrich/process/procfs';
import { execIdOf } from '../src/enrich/process/execId';
import { packRuntimeFilter } from '../src/api/hubble/client';
import { getEvents, getFlows, runtimeOf, type Plain } from './clients';
import { kernelSkipReason, startAgent, waitFor, type RunningAgent } from './harness';

const skip = kernelSkipReason();
const NODE = 'it-node';

describe('process telemetry through both APIs', { skip }, () => {
  let agent: RunningAgent;
  let stream: ReturnType<typeof getEvents>;

  before(async () => {
    agent = await startAgent([], { NODE_NAME: NODE });
    // As `tetra getevents` sends it: one Filter in allow_list (here narrowed to the binaries we run).
    stream = getEvents(agent.tetragon, { allow_list: [{ binary_regex: ['^/(usr/)?bin/(true|sleep|echo|sh|bash|dash|cat)$'] }] });
    await new Promise((r) => setTimeout(r, 300));
  });
  after(async () => {
    stream?.close();
    if (agent) assert.equal(await agent.stop(), 0, 'agent exits cleanly on SIGTERM');
  });

  const execOf = (pid: number): Plain | undefined => stream.events.find((e) => e.process_exec?.process?.pid?.value === pid);
  const exitOf = (pid: number): Plain | undefined => stream.events.find((e) => e.process_exit?.process?.pid?.value === pid);

  test('exec and exit of a command with many and long arguments, cwd, uid, auid, parent', async () => {
    const args = Array.from({ length: 60 }, (_, i) => `arg${i}`);
    args.push('has space');
    const child = spawn('/bin/echo', args, { cwd: '/tmp', stdio: 'ignore' });
    const pid = child.pid!;
    const exec = (await waitFor(() => execOf(pid), 5000, 'exec event')).process_exec;
    assert.equal(exec.process.binary, '/bin/echo', 'the path as executed');
    assert.equal(exec.process.arguments, [...args.slice(0, -1), '"has space"'].join(' '));
    assert.equal(exec.process.cwd, '/tmp');
    assert.equal(exec.process.uid?.value ?? 0, process.getuid!());
    const loginuid = Number(fs.readFileSync('/proc/self/loginuid', 'utf8'));
    assert.equal(exec.process.auid.value, loginuid);
    assert.match(exec.process.flags, /^execve/);
    // exec_id = base64(node:ktime:pid); the parent is the clone image of the same pid, whose parent is this node process.
    const decoded = Buffer.from(exec.process.exec_id, 'base64').toString();
    assert.match(decoded, new RegExp(`^${NODE}:\\d+:${pid}$`));
    assert.equal(exec.process.parent_exec_id, exec.parent?.exec_id);
    assert.equal(exec.parent?.pid?.value, pid);
    assert.match(exec.parent?.flags ?? '', /clone/);
    assert.ok(exec.process.start_time?.seconds > 0);
    const exit = (await waitFor(() => exitOf(pid), 5000, 'exit event')).process_exit;
    assert.equal(exit.process.exec_id, exec.process.exec_id);
    assert.equal(exit.status ?? 0, 0);
    assert.equal(exit.signal ?? '', '');
  });

  test('arguments over the bound are cut and flagged truncArgs', async () => {
    const long = 'x'.repeat(6000);
    const child = spawn('/bin/echo', [long], { stdio: 'ignore' });
    const exec = (await waitFor(() => execOf(child.pid!), 5000, 'exec event')).process_exec;
    assert.match(exec.process.flags, /truncArgs/);
    assert.ok(exec.process.arguments.length > 3000 && exec.process.arguments.length < 6000);
  });

  test('exit status and death by signal', async () => {
    const a = spawn('/bin/sh', ['-c', 'exit 3'], { stdio: 'ignore' });
    const e3 = (await waitFor(() => exitOf(a.pid!), 5000, 'exit 3')).process_exit;
    assert.equal(e3.status, 3);
    const b = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
    await waitFor(() => execOf(b.pid!), 5000, 'sleep exec');
    b.kill('SIGKILL');
    const e9 = (await waitFor(() => exitOf(b.pid!), 5000, 'kill -9 exit')).process_exit;
    assert.equal(e9.signal, 'SIGKILL');
    assert.equal(e9.status ?? 0, 0);
  });

  test('a short-lived child and exec without fork', async () => {
    // sh forks /bin/true (short-lived child), then execs /bin/sleep in place (no fork).
    const sh = spawn('/bin/sh', ['-c', '/bin/true; exec /bin/sleep 0'], { stdio: 'ignore' });
    const pid = sh.pid!;
    const shExec = (await waitFor(() => execOf(pid), 5000, 'sh exec')).process_exec;
    const sleepExec = (await waitFor(
      () => stream.events.find((e) => e.process_exec?.process?.pid?.value === pid && e.process_exec.process.binary.endsWith('/sleep')),
      5000,
      'sleep exec in place',
    )).process_exec;
    assert.notEqual(sleepExec.process.exec_id, shExec.process.exec_id, 'a new image gets a new exec_id');
    assert.equal(sleepExec.process.parent_exec_id, shExec.process.exec_id, 'its parent is the previous image of the same pid');
    // The short-lived child: a /bin/true whose parent chain leads to this sh.
    const child = await waitFor(
      () => stream.events.find((e) => e.process_exec?.process?.binary?.endsWith('/true') && e.process_exec.parent?.parent_exec_id === shExec.process.exec_id),
      5000,
      'true child of sh',
    );
    const tpid = child.process_exec.process.pid.value;
    const texit = await waitFor(() => exitOf(tpid), 5000, 'true exit');
    assert.equal(texit.process_exit.process.exec_id, child.process_exec.process.exec_id);
    const shExit = await waitFor(() => exitOf(pid), 5000, 'sleep exit');
    assert.equal(shExit.process_exit.process.exec_id, sleepExec.process.exec_id, 'the exit carries the exec_id of the last image');
  });

  test('a process in another cgroup carries its container id', { skip: cgroup2Mount() ? undefined : 'no cgroup v2 mount' }, async () => {
    const id = 'ab'.repeat(32);
    const dir = path.join(cgroup2Mount()!, `docker-${id}.scope`);
    fs.mkdirSync(dir, { recursive: true });
    try {
      const sh = spawn('/bin/sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec /bin/cat /dev/null`], { stdio: 'ignore' });
      const ev = await waitFor(
        () => stream.events.find((e) => e.process_exec?.process?.pid?.value === sh.pid && e.process_exec.process.binary.endsWith('/cat')),
        5000,
        'cat exec in the cgroup',
      );
      assert.equal(ev.process_exec.process.docker, id.slice(0, 31));
      await waitFor(() => exitOf(sh.pid!), 5000, 'exit');
    } finally {
      for (let i = 0; i < 50 && fs.existsSync(dir); i++) {
        try {
          fs.rmdirSync(dir);
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  });

  test('the same events through the Hubble API: history, filters, summary, extensions', async () => {
    const child = spawn('/bin/sh', ['-c', 'exit 0'], { stdio: 'ignore' });
    const pid = child.pid!;
    await waitFor(() => exitOf(pid), 5000, 'exit seen on the tetragon stream');
    // hubble observe --last 20 --type 200:1 --type 200:5 with our private pid filter
    // (the file and network sensors, on by default, report this sh too).
    const ext = packRuntimeFilter({ pid: [pid] });
    const execExit = [{ event_type: [{ type: 200, match_sub_type: true, sub_type: 1 }, { type: 200, match_sub_type: true, sub_type: 5 }] }];
    const all = await getFlows(agent.hubble, { number: 20, whitelist: execExit, extensions: ext });
    const flows = all.filter((r) => r.flow);
    assert.equal(flows.length, 2, 'exec and exit of the pid');
    const [fexec, fexit] = flows;
    assert.equal(fexec.node_name, NODE);
    assert.ok(fexec.time?.seconds);
    assert.equal(fexec.flow.verdict, 'FORWARDED');
    assert.deepEqual(fexec.flow.event_type, { type: 200, sub_type: 1 });
    assert.ok(fexec.flow.IP, 'IP message present so pod names print');
    assert.equal(fexec.flow.Summary, 'exec /bin/sh -c "exit 0"');
    assert.match(fexit.flow.Summary, /^exit \/.*sh 0$/);
    const rt = runtimeOf(fexec);
    assert.equal(rt?.process_exec?.process?.pid, pid);
    assert.equal(rt?.process_exec?.process?.exec_id, execIdOf(NODE, BigInt(Buffer.from(rt!.process_exec!.process!.exec_id!, 'base64').toString().split(':')[1]), pid));
    // --type 200:5 selects exits only
    const exits = await getFlows(agent.hubble, { number: 5, whitelist: [{ event_type: [{ type: 200, match_sub_type: true, sub_type: 5 }] }], extensions: ext });
    assert.equal(exits.filter((r) => r.flow).length, 1);
    assert.deepEqual(exits.find((r) => r.flow)!.flow.event_type, { type: 200, sub_type: 5 });
  });

  test('tetrahub observe prints the events compact and as JSON', async () => {
    const child = spawn('/bin/sh', ['-c', 'exit 4'], { cwd: '/tmp', stdio: 'ignore' });
    const pid = child.pid!;
    await waitFor(() => exitOf(pid), 5000, 'exit');
    const cli = path.join(__dirname, '../../bin/tetrahub.js');
    const compact = spawnSync(process.execPath, [cli, 'observe', '--server', agent.hubble, '--pid', String(pid), '--type', 'exec', '--type', 'exit', '--color', 'never'], { encoding: 'utf8' });
    assert.equal(compact.status, 0, compact.stderr);
    const lines = compact.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    // tetra Go-quotes an arguments string that contains a space.
    assert.equal(lines[0], `🚀 process ${NODE} /bin/sh "-c \\"exit 4\\""`);
    assert.equal(lines[1], `💥 exit    ${NODE} /bin/sh "-c \\"exit 4\\"" 4`);
    const json = spawnSync(process.execPath, [cli, 'observe', '--server', agent.hubble, '--pid', String(pid), '-o', 'json', '--type', 'exit'], { encoding: 'utf8' });
    assert.equal(json.status, 0, json.stderr);
    const ev = JSON.parse(json.stdout.trim());
    assert.equal(ev.process_exit.process.pid, pid);
    assert.equal(ev.process_exit.process.cwd, '/tmp');
    assert.equal(ev.process_exit.status, 4);
    assert.equal(ev.node_name, NODE);
    const bad = spawnSync(process.execPath, [cli, 'observe', '--server', agent.hubble, '--binary', '('], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--binary: invalid regex/);
  });

  test('an exec storm: events received plus events counted lost equals processes started', async () => {
    const N = 1500;
    const r = await gatedStorm(agent, N);
    const total = r.received + r.kernelLost + r.queueLost;
    if (r.kernelLost === 0) assert.equal(total, N, `received ${r.received} + lost ${r.queueLost} = ${N}`);
    // Kernel drops are counted for every exec on the host: other work may add at most its own execs.
    else assert.ok(total >= N && total <= r.kernelExecs, `received ${r.received} + lost ${r.kernelLost + r.queueLost} for ${N} (host execs ${r.kernelExecs})`);
  });

  test('status reports sensors, features and counters', async () => {
    const s = await agent.status();
    const proc = s.sensors.find((x) => x.name === 'process');
    assert.equal(proc?.state, 'running');
    assert.ok(proc?.hooks.includes('raw_tp/sched_process_exec'));
    assert.equal(s.features.rawTp, true);
    assert.equal(typeof s.counters.kernel_ring_drops, 'number');
    assert.equal(typeof s.counters.process_cache_evictions, 'number');
    assert.ok(s.counters.process_cache_procfs_seeded > 0, 'running processes found in /proc');
  });
});

/**
 * Runs N execs of /bin/true from one bash that waits for a go signal, while a
 * GetEvents stream filtered on that bash's process tree (pid_set) counts them.
 */
async function gatedStorm(agent: RunningAgent, n: number, freeze = false): Promise<{ received: number; kernelLost: number; queueLost: number; kernelExecs: number }> {
  const bash = spawn('/bin/bash', ['-c', `read go; for i in $(seq ${n}); do /bin/true; done`], { stdio: ['pipe', 'ignore', 'ignore'] });
  const done = new Promise<number | null>((res) => bash.once('exit', (c) => res(c)));
  const storm = getEvents(agent.tetragon, { allow_list: [{ pid_set: [bash.pid], binary_regex: ['/true$'], event_set: [1] }] });
  await new Promise((r) => setTimeout(r, 300));
  const before = (await agent.status()).counters;
  if (freeze) agent.proc.kill('SIGSTOP');
  try {
    bash.stdin!.end('go\n');
    assert.equal(await done, 0);
  } finally {
    if (freeze) agent.proc.kill('SIGCONT');
  }
  let last = -1;
  await waitFor(async () => {
    await new Promise((res) => setTimeout(res, 1000));
    const stable = storm.events.length === last;
    last = storm.events.length;
    return stable ? true : undefined;
  }, 60_000, 'storm to settle');
  const after = (await agent.status()).counters;
  storm.close();
  assert.equal(storm.error, undefined);
  return {
    received: storm.events.length,
    kernelLost: after.kernel_ring_drops_exec - before.kernel_ring_drops_exec,
    queueLost: after.subscriber_drops - before.subscriber_drops,
    kernelExecs:
      after.kernel_records_emitted_exec + after.kernel_ring_drops_exec - before.kernel_records_emitted_exec - before.kernel_ring_drops_exec,
  };
}

describe('loss is counted and reported when the kernel ring overflows', { skip }, () => {
  test('tiny ring, frozen consumer: received + counted lost = started, and Hubble sends lost_events', async () => {
    // Process sensor only: file events of the storm would push the loss notice out of the Hubble history.
    const agent = await startAgent(['--ring-buffer-bytes', '4096', '--disable-sensor', 'file', '--disable-sensor', 'net', '--disable-sensor', 'dns'], { NODE_NAME: NODE });
    try {
      const N = 2000;
      // Freeze the agent so nothing drains the ring: the kernel side must count every record it cannot write.
      const r = await gatedStorm(agent, N, true);
      assert.ok(r.kernelLost > 0, `a 4 KiB ring must overflow under ${N} execs`);
      // Every start is accounted for. The kernel's drop count covers every exec on the host, so
      // other work on the machine may add to it, by at most the number of other execs it saw.
      const total = r.received + r.kernelLost + r.queueLost;
      const others = r.kernelExecs - N;
      assert.ok(total >= N && total <= N + others, `received ${r.received} + lost ${r.kernelLost + r.queueLost} should account for ${N} (other execs on the host: ${others})`);
      const flows = await getFlows(agent.hubble, { number: 4095 });
      const lost = flows.filter((x) => x.lost_events);
      assert.ok(lost.length > 0, 'lost_events in the Hubble history');
      assert.equal(lost[0].lost_events.source, 'PERF_EVENT_RING_BUFFER');
      assert.ok(Number(lost[0].lost_events.num_events_lost) > 0);
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  });
});
