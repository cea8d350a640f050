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
import { getEvents, tetragonClient, unary, type Plain } from './clients';
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

function skipReason(): string | undefined {
  const k = kernelSkipReason();
  if (k) return k;
  if (typeof (engine as unknown as Record<string, unknown>).createPolicyLoader !== 'function') return 'policy engine not available (src/policy/engine exports no createPolicyLoader)';
  if (!fs.existsSync(path.join(ROOT, 'bpf/.output/policy.bpf.o'))) return 'bpf/.output/policy.bpf.o not built';
  if (!fs.existsSync('/bin/sh') || !fs.existsSync('/usr/bin/env')) return '/bin/sh or /usr/bin/env missing';
  return undefined;
}

const skip = skipReason();
if (skip) console.log(`# policy API integration tests skipped: ${skip}`);

let agent: RunningAgent;
let tpDir: string;

before(async () => {
  if (skip) return;
  const seed = path.join(process.env.TMPDIR ?? '/tmp', `th-seed-${process.pid}.yaml`);
  fs.writeFileSync(seed, SEED);
  tpDir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'th-tpdir-'));
  agent = await startAgent(['--tracing-policy', seed, '--tracing-policy-dir', tpDir]);
  fs.rmSync(seed, { force: true });
});

after(async () => {
  if (skip) return;
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

test('--tracing-policy-dir: a file added is loaded, removed is unloaded (live)', { skip }, async () => {
  const file = path.join(tpDir, 'env.yaml');
  fs.writeFileSync(file, ENV_WATCH.replace('env-watch', 'dir-env'));
  const p = await waitFor(async () => (await list()).find((x) => x.name === 'dir-env' && x.state === 'TP_STATE_ENABLED'), 15_000, 'dir-env loaded');
  assert.equal(p.domain, 'static');
  fs.rmSync(file);
  await waitFor(async () => ((await list()).some((x) => x.name === 'dir-env') ? undefined : true), 15_000, 'dir-env unloaded');
});
