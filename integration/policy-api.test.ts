// TracingPolicies through the agent's Tetragon API on the real kernel: the
// seed policy from --tracing-policy produces process_kprobe events with its
// policy_name for sh (and not for other binaries), `tetrahub policy list`
// shows it enabled with its hooks, policies are added and deleted over gRPC
// live, and the watched --tracing-policy-dir picks files up and drops them.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as engine from '../src/policy/engine';
import * as net from 'node:net';
import { getEvents, getFlows, tetragonClient, unary, type Plain } from './clients';
import { kernelSkipReason, ROOT, startAgent, waitFor, type RunningAgent } from './harness';

const SEED = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "process-monitoring"}
spec:
  kprobes:
  - call: "sys_execve"
    syscall: true
    args: [{index: 0, type: "string"}, {index: 1, type: "string"}, {index: 2, type: "string"}]
    selectors:
    - matchBinaries: [{operator: In, values: ["/usr/bin/bash", "/bin/sh"]}]
`;

const ENV_WATCH = SEED.replace('process-monitoring', 'env-watch').replace('["/usr/bin/bash", "/bin/sh"]', '["/usr/bin/env"]');

function agentSkipReason(): string | undefined {
  const k = kernelSkipReason();
  if (k) return k;
  if (typeof (engine as unknown as Record<string, unknown>).createPolicyLoader !== 'function') return 'policy engine not available (src/policy/engine exports no createPolicyLoader)';
  return undefined;
}

function genericSkipReason(): string | undefined {
  if (!fs.existsSync(path.join(ROOT, 'bpf/.output/policy.bpf.o'))) return 'bpf/.output/policy.bpf.o not built';
  if (!fs.existsSync('/bin/sh') || !fs.existsSync('/usr/bin/env')) return '/bin/sh or /usr/bin/env missing';
  return undefined;
}

function connectSkipReason(): string | undefined {
  if (!fs.existsSync(path.join(ROOT, 'bpf/.output/policy_connect.bpf.o'))) return 'bpf/.output/policy_connect.bpf.o not built';
  if (!fs.existsSync('/usr/bin/python3')) return '/usr/bin/python3 missing';
  return undefined;
}

const agentSkip = agentSkipReason();
const skip = agentSkip ?? genericSkipReason();
const connectSkip = agentSkip ?? connectSkipReason();
if (skip) console.log(`# policy API integration tests (generic hooks) skipped: ${skip}`);
if (connectSkip) console.log(`# policy API integration tests (connect hooks) skipped: ${connectSkip}`);

let agent: RunningAgent;
let tpDir: string;

before(async () => {
  if (agentSkip) return;
  const seed = path.join(process.env.TMPDIR ?? '/tmp', `th-seed-${process.pid}.yaml`);
  fs.writeFileSync(seed, SEED);
  tpDir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'th-tpdir-'));
  agent = await startAgent(['--tracing-policy', seed, '--tracing-policy-dir', tpDir]);
  fs.rmSync(seed, { force: true });
});

after(async () => {
  if (agentSkip) return;
  await agent?.stop();
  fs.rmSync(tpDir, { recursive: true, force: true });
});

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    c.on('error', reject);
    c.on('exit', () => resolve());
  });
}

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/tetrahub.js'), 'policy', ...args, '--server-address', agent.tetragon], (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

function kprobes(events: Plain[], policy: string): Plain[] {
  return events.map((e) => e.process_kprobe).filter((k): k is Plain => k !== undefined && k.policy_name === policy);
}

async function list(): Promise<Plain[]> {
  const c = tetragonClient(agent.tetragon);
  try {
    return ((await unary(c, 'ListTracingPolicies', {})).policies as Plain[] | undefined) ?? [];
  } finally {
    c.close();
  }
}

test('seed policy: loaded from --tracing-policy, enabled with hooks in `tetrahub policy list`', { skip }, async () => {
  const seed = (await list()).find((p) => p.name === 'process-monitoring');
  assert.ok(seed, `policy listed: ${agent.logs()}`);
  assert.equal(seed.state, 'TP_STATE_ENABLED', `state ${seed.state}: ${seed.error ?? ''}`);
  assert.ok((seed.hook_statuses as Plain[]).length >= 1);
  const r = await cli('list');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /process-monitoring\s+static\s+enabled\s/);
  assert.match(r.stdout, /kprobes\[0\]\s+0\s+sys_execve → .*loaded$/m);
  const st = await agent.status();
  assert.equal(st.policies?.find((p) => p.name === 'process-monitoring')?.state, 'enabled');
});

test('seed policy: execve from sh arrives as process_kprobe with policy_name; from env it does not', { skip }, async () => {
  const stream = getEvents(agent.tetragon, { allow_list: [{ policy_names: ['process-monitoring'] }] });
  try {
    await new Promise((r) => setTimeout(r, 300));
    await run('/usr/bin/env', ['/bin/true', 'from-env']);
    await run('/bin/sh', ['-c', '/bin/true from-sh; /bin/true']);
    const ev = await waitFor(() => kprobes(stream.events, 'process-monitoring').find((k) => JSON.stringify(k.args ?? []).includes('/bin/true')), 15_000, 'the execve of /bin/true by sh');
    assert.equal(ev.function_name, '__x64_sys_execve');
    assert.equal(ev.action, 'KPROBE_ACTION_POST');
    assert.match(String(ev.process.binary), /^\/(usr\/)?bin\/(sh|dash)$/);
    assert.equal(ev.args[0].string_arg, '/bin/true');
    assert.equal(stream.error, undefined);
    // env's exec came first and was filtered in the kernel: never delivered.
    assert.equal(kprobes(stream.events, 'process-monitoring').filter((k) => String(k.process?.binary).endsWith('/env')).length, 0);
  } finally {
    stream.close();
  }
});

test('AddTracingPolicy / DeleteTracingPolicy over gRPC take effect live', { skip }, async () => {
  const c = tetragonClient(agent.tetragon);
  const stream = getEvents(agent.tetragon, { allow_list: [{ policy_names: ['env-watch'] }] });
  try {
    await unary(c, 'AddTracingPolicy', { yaml: ENV_WATCH });
    const p = (await list()).find((x) => x.name === 'env-watch');
    assert.equal(p?.state, 'TP_STATE_ENABLED', JSON.stringify(p));
    await new Promise((r) => setTimeout(r, 300));
    await run('/usr/bin/env', ['/bin/true', 'env-added']);
    const ev = await waitFor(() => kprobes(stream.events, 'env-watch')[0], 15_000, 'an env-watch event');
    assert.match(String(ev.process.binary), /\/env$/);

    await unary(c, 'DeleteTracingPolicy', { name: 'env-watch' });
    assert.equal((await list()).some((x) => x.name === 'env-watch'), false);
    const before = kprobes(stream.events, 'env-watch').length;
    await run('/usr/bin/env', ['/bin/true', 'env-deleted']);
    // A second, still-loaded policy's event marks that the ring was drained past env's exec.
    const seed = getEvents(agent.tetragon, { allow_list: [{ policy_names: ['process-monitoring'] }] });
    try {
      await new Promise((r) => setTimeout(r, 300));
      await run('/bin/sh', ['-c', '/bin/true marker; /bin/true']);
      await waitFor(() => kprobes(seed.events, 'process-monitoring')[0], 15_000, 'the seed marker');
    } finally {
      seed.close();
    }
    assert.equal(kprobes(stream.events, 'env-watch').length, before, 'no env-watch events after the delete');
    await assert.rejects(unary(c, 'DeleteTracingPolicy', { name: 'env-watch' }), /not found/);
  } finally {
    stream.close();
    c.close();
  }
});

const CLIENT = `
import socket, sys
s = socket.socket(socket.AF_INET)
s.settimeout(5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print('ok', flush=True)
except OSError as e:
    print('err', e.errno, flush=True)
`;

function connectFrom(bin: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    execFile(bin, ['-c', CLIENT, '127.0.0.1', String(port)], { timeout: 20_000 }, (_err, stdout) => resolve(stdout.trim()));
  });
}

test('a connect policy added over gRPC: refused in the kernel, reported on both APIs, monitor mode live, delete restores', { skip: connectSkip }, async () => {
  const py = fs.realpathSync('/usr/bin/python3');
  const server = net.createServer((c) => c.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const policy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "deny-test-port"}
spec:
  kprobes:
  - call: "tcp_connect"
    syscall: false
    args: [{index: 0, type: "sock"}]
    selectors:
    - matchArgs: [{index: 0, operator: DPort, values: ["${port}"]}]
      matchBinaries: [{operator: In, values: ["${py}"]}]
      matchActions: [{action: Override, argError: -1}]
`;
  const c = tetragonClient(agent.tetragon);
  const stream = getEvents(agent.tetragon, { allow_list: [{ policy_names: ['deny-test-port'] }] });
  try {
    assert.equal(await connectFrom(py, port), 'ok', 'before the policy');
    await unary(c, 'AddTracingPolicy', { yaml: policy });
    const p = (await list()).find((x) => x.name === 'deny-test-port');
    assert.equal(p?.state, 'TP_STATE_ENABLED', JSON.stringify(p));
    assert.equal(p?.mode, 'TP_MODE_ENFORCE');
    assert.match(JSON.stringify(p?.hook_statuses), /cgroup connect4/);
    assert.ok(Number(p?.kernel_memory_bytes) > 0);
    const shown = await cli('list');
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /deny-test-port\s+grpc\s+enabled\s+0\s+\(global\)\s+generic_kprobe\s+\S+ \S+\s+enforce\s/);
    assert.match(shown.stdout, /kprobes\[0\]\s+0\s+tcp_connect → cgroup connect4.*loaded$/m);

    assert.equal(await connectFrom(py, port), 'err 1', 'refused with EPERM in the kernel');
    const ev = await waitFor(() => kprobes(stream.events, 'deny-test-port')[0], 15_000, 'the denial on GetEvents');
    assert.equal(ev.action, 'KPROBE_ACTION_OVERRIDE');
    assert.equal(ev.process.binary, py);
    const flows = await waitFor(async () => {
      const f = await getFlows(agent.hubble, { number: 200, whitelist: [{ verdict: ['DROPPED'] }] });
      return f.find((r) => String(r.flow?.Summary ?? '').includes('deny-test-port'));
    }, 15_000, 'the DROPPED flow on Hubble');
    assert.equal(flows.flow.drop_reason_desc, 'POLICY_DENIED');
    assert.equal(flows.flow.l4.TCP.destination_port, port);
    assert.match(flows.flow.Summary, new RegExp(`^connect denied ${py.replace(/[.]/g, '\\.')} → 127\\.0\\.0\\.1:${port} .*\\(policy deny-test-port\\)$`));
    const counted = await waitFor(async () => {
      const x = (await list()).find((y) => y.name === 'deny-test-port');
      return Number(x?.stats?.action_counters?.override ?? 0) > 0 ? x : undefined;
    }, 15_000, 'the override counter');
    assert.ok(counted);

    // Monitor mode: the connect goes through, the event says what would have happened.
    await unary(c, 'ConfigureTracingPolicy', { name: 'deny-test-port', mode: 2 });
    assert.equal(await connectFrom(py, port), 'ok', 'monitor mode lets it through');
    await waitFor(async () => {
      const f = await getFlows(agent.hubble, { number: 200, whitelist: [{ verdict: ['AUDIT'] }] });
      return f.find((r) => String(r.flow?.Summary ?? '').includes('would be denied'));
    }, 15_000, 'the AUDIT flow');
    await unary(c, 'ConfigureTracingPolicy', { name: 'deny-test-port', mode: 1 });
    assert.equal(await connectFrom(py, port), 'err 1', 'enforced again');

    // Disabled: loaded but inert; deleted: gone.
    await unary(c, 'ConfigureTracingPolicy', { name: 'deny-test-port', enable: false });
    assert.equal(await connectFrom(py, port), 'ok', 'disabled');
    await unary(c, 'ConfigureTracingPolicy', { name: 'deny-test-port', enable: true });
    assert.equal(await connectFrom(py, port), 'err 1', 'enabled again');
    await unary(c, 'DeleteTracingPolicy', { name: 'deny-test-port' });
    assert.equal(await connectFrom(py, port), 'ok', 'after the delete');
    assert.equal((await list()).some((x) => x.name === 'deny-test-port'), false);
  } finally {
    stream.close();
    c.close();
    server.close();
  }
});

function denyPolicy(name: string, port: number, bin: string): string {
  return `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "${name}"}
spec:
  kprobes:
  - call: "tcp_connect"
    syscall: false
    args: [{index: 0, type: "sock"}]
    selectors:
    - matchArgs: [{index: 0, operator: DPort, values: ["${port}"]}]
      matchBinaries: [{operator: In, values: ["${bin}"]}]
      matchActions: [{action: Override, argError: -1}]
`;
}

test('--tracing-policy-dir: a file added loads, a change replaces, an invalid edit keeps the old one, removal unloads (live)', { skip: connectSkip }, async () => {
  const py = fs.realpathSync('/usr/bin/python3');
  const servers = [net.createServer((c) => c.destroy()), net.createServer((c) => c.destroy())];
  for (const srv of servers) await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const [a, b] = servers.map((srv) => (srv.address() as net.AddressInfo).port);
  const file = path.join(tpDir, 'deny.yaml');
  try {
    fs.writeFileSync(file, denyPolicy('dir-deny', a, py));
    const p = await waitFor(async () => (await list()).find((x) => x.name === 'dir-deny' && x.state === 'TP_STATE_ENABLED'), 15_000, 'dir-deny loaded');
    assert.equal(p.domain, 'static');
    assert.equal(await connectFrom(py, a), 'err 1', 'port A denied');
    assert.equal(await connectFrom(py, b), 'ok');

    // Changed: now port B.
    fs.writeFileSync(file, denyPolicy('dir-deny', b, py));
    await waitFor(async () => ((await connectFrom(py, b)) === 'err 1' ? true : undefined), 15_000, 'the change to take effect');
    assert.equal(await connectFrom(py, a), 'ok', 'port A no longer denied');

    // Invalid edit: the previous version keeps enforcing, the error is reported.
    fs.writeFileSync(file, denyPolicy('dir-deny', a, py).replace('DPort', 'DPortt'));
    const bad = await waitFor(async () => (await list()).find((x) => x.name === 'dir-deny' && x.error), 15_000, 'the invalid edit to be reported');
    assert.match(String(bad.error), /previous version stays loaded.*DPortt/s);
    assert.equal(await connectFrom(py, b), 'err 1', 'still enforcing the previous version');
    assert.match((await agent.status()).notes.join('\n'), /deny\.yaml refused/);

    fs.rmSync(file);
    await waitFor(async () => ((await list()).some((x) => x.name === 'dir-deny') ? undefined : true), 15_000, 'dir-deny unloaded');
    assert.equal(await connectFrom(py, b), 'ok', 'after removal');
  } finally {
    fs.rmSync(file, { force: true });
    for (const srv of servers) srv.close();
  }
});
