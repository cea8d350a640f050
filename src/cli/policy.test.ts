// `tetrahub policy` as users run it: the real CLI process against a real
// Tetragon API server (PolicyManager behind it, fake loader), and `check` on
// the policy corpus without an agent.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { StatusProvider, StatusSnapshot } from '../agent/status';
import { policyApiOf } from '../api/tetragon/policies';
import { startTetragonServer, type TetragonServer } from '../api/tetragon/server';
import { EventBus } from '../bus/bus';
import { repoRoot } from '../kernel/native';
import { PolicyManager } from '../policy/manager';
import { FakeLoader, policyYaml } from '../policy/manager/testkit';
import { formatPolicyList, humanizeIBytes, policyDocuments, tabulate } from './policy';

const root = repoRoot();
const bin = path.join(root, 'bin', 'tetrahub.js');
const corpus = path.join(root, 'integration', 'policies');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, 'policy', ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const snapshot: StatusSnapshot = { version: 'v', nodeName: 'n', startTime: { sec: 1, nsec: 0 }, uptimeNs: 1, sensors: [], features: {}, notes: [], counters: {}, listeners: {} };
const status: StatusProvider = { snapshot: () => snapshot };

let dir: string;
let srv: TetragonServer;
let manager: PolicyManager;
let addr: string;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-tpcli-'));
  manager = new PolicyManager({ loader: new FakeLoader() });
  srv = await startTetragonServer({ addresses: [`unix://${dir}/t.sock`], bus: new EventBus(), status, version: 'v', policies: policyApiOf(manager) });
  addr = `unix://${dir}/t.sock`;
});

after(async () => {
  await srv.close();
  await manager.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('add, list, mode, disable, enable, delete against an agent', async () => {
  const file = path.join(dir, 'p.yaml');
  fs.writeFileSync(file, policyYaml('kill-evil', { sigkill: true }));
  let r = await run('add', file, '--server-address', addr);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'tracing policy "kill-evil" added\n');

  r = await run('list', '--server-address', addr);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.deepEqual(lines.slice(0, 4), [
    'ID   NAME        DOMAIN   STATE     FILTERID   NAMESPACE   SENSORS          KERNELMEMORY   MODE      NPOST   NENFORCE   NMONITOR',
    '1    kill-evil   grpc     enabled   0          (global)    generic_kprobe   4.0 KiB        enforce   3       0          0',
    '    SECTION      CFGIDX   DESCRIPTION                                         STATUS',
    '    kprobes[0]   0        sys_execve → tracepoint syscalls/sys_enter_execve   loaded',
  ]);

  r = await run('mode', 'kill-evil', 'monitor', '--server-address', addr);
  assert.equal(r.stdout, 'tracing policy "kill-evil" set to mode "monitor"\n');
  r = await run('disable', 'kill-evil', '--server-address', addr);
  assert.equal(r.stdout, 'tracing policy "kill-evil" disabled\n');
  r = await run('list', '-o', 'json', '--server-address', addr);
  const json = JSON.parse(r.stdout) as { policies: { name: string; state: string; mode: string }[] };
  assert.deepEqual(json.policies.map((p) => [p.name, p.state, p.mode]), [['kill-evil', 'TP_STATE_DISABLED', 'TP_MODE_MONITOR']]);
  r = await run('enable', 'kill-evil', '--server-address', addr);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(manager.get('kill-evil')?.state, 'enabled');

  // Refusals come back with the agent's reason and exit 1.
  r = await run('add', file, '--server-address', addr);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /"kill-evil" already exists/);
  r = await run('delete', 'kill-evil', '--server-address', addr);
  assert.equal(r.stdout, 'tracing policy "kill-evil" deleted\n');
  r = await run('delete', 'kill-evil', '--server-address', addr);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /tracing policy "kill-evil" not found/);

  // --mode rewrites policy-mode before sending, as tetra does.
  r = await run('add', file, '--mode', 'monitor', '--server-address', addr);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(manager.get('kill-evil')?.mode, 'monitor');

  // A bad policy: the YAML path and the reason.
  fs.writeFileSync(file, policyYaml('bad').replace('type: string', 'type: strng'));
  r = await run('add', file, '--server-address', addr);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /spec\.kprobes\[0\]\.args\[0\]\.type: unknown arg type "strng"/);
});

test('unreachable agent and usage errors', async () => {
  let r = await run('list', '--server-address', `unix://${dir}/nobody.sock`, '--timeout', '5');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot reach the agent at unix:\/\/.*nobody\.sock/);
  r = await run('mode', 'x', 'sideways');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /expected enforce or monitor/);
  r = await run('frobnicate');
  assert.equal(r.code, 2);
  r = await run('list', '--bogus');
  assert.equal(r.code, 2);
});

test('check: every good corpus file passes, every bad one fails naming the path', async () => {
  const good = fs.readdirSync(path.join(corpus, 'good')).filter((f) => f.endsWith('.yaml'));
  const bad = fs.readdirSync(path.join(corpus, 'bad')).filter((f) => f.endsWith('.yaml'));
  assert.ok(good.length >= 5 && bad.length >= 40);
  for (const f of good.slice(0, 6)) {
    const r = await run('check', path.join(corpus, 'good', f));
    // 0 = loads here; 1 only when the kernel plan says it would not load (never a parse error).
    assert.ok(r.code === 0 || (r.code === 1 && /would not load/.test(r.stdout)), `${f}: ${r.code} ${r.stderr}`);
    assert.match(r.stdout, /hooks \(\d+\):/, f);
    assert.match(r.stdout, /kernel plan/, f);
    assert.doesNotMatch(r.stderr, /^error:/m, f);
  }
  for (const f of bad.slice(0, 10)) {
    const r = await run('check', path.join(corpus, 'bad', f));
    assert.equal(r.code, 1, f);
    const expect = /^# expect: (\S+)/m.exec(fs.readFileSync(path.join(corpus, 'bad', f), 'utf8'))?.[1];
    assert.ok(expect, f);
    assert.ok(r.stderr.includes(`: ${expect}: `), `${f}: expected ${expect} in ${r.stderr}`);
  }
  // Strict mode refuses a policy whose hooks cannot attach here (BPF-LSM is refused on the test kernel, not in the VMs).
  const lsm = await run('check', path.join(corpus, 'good', 'lsm-file-open.yaml'), '--strict');
  if (/unsupported/.test(lsm.stdout)) {
    assert.equal(lsm.code, 1, lsm.stdout);
    assert.match(lsm.stdout, /would not load: lsmhooks\[0\] \(file_open\): unsupported: .*\(strict mode\)/);
    const lax = await run('check', path.join(corpus, 'good', 'lsm-file-open.yaml'));
    assert.equal(lax.code, 0, lax.stdout);
    assert.match(lax.stdout, /ok \(1 policy\); 2 of 2 hooks unsupported on this kernel/);
  }
  const json = JSON.parse((await run('check', path.join(corpus, 'good', 'process-monitoring.yaml'), '-o', 'json')).stdout) as { ok: boolean; policies: { name: string; plan?: { hooks: unknown[] }; planUnavailable?: string }[] };
  assert.equal(json.ok, true);
  assert.equal(json.policies[0].name, 'process-monitoring');
  // Without the kernel side (engine or addon missing) the plan is replaced by why.
  if (json.policies[0].plan) assert.equal(json.policies[0].plan.hooks.length, 1);
  else assert.match(json.policies[0].planUnavailable ?? '', /./);
  const seed = await run('check', path.join(corpus, 'good', 'process-monitoring.yaml'));
  assert.equal(seed.code, 0, seed.stdout + seed.stderr);
  assert.match(seed.stdout, /kprobe sys_execve \(syscall\)/);
  assert.match(seed.stdout, /binary In \[\/usr\/bin\/bash, \/bin\/sh\]/);
  assert.match(seed.stdout, /kernel memory: /);
});

test('helpers: humanized sizes, tabwriter padding, documents and --mode rewrite', () => {
  assert.deepEqual([0, 9, 10, 512, 1024, 4096, 10 * 1024, 1536 * 1024].map(humanizeIBytes), ['0 B', '9 B', '10 B', '512 B', '1.0 KiB', '4.0 KiB', '10 KiB', '1.5 MiB']);
  assert.deepEqual(tabulate([['A', 'BB', 'C'], ['aaa', 'b', 'c']]), ['A     BB   C', 'aaa   b    c']);
  const docs = policyDocuments(`${policyYaml('a')}---\n${policyYaml('b', { mode: 'enforce' })}`, 'monitor');
  assert.deepEqual(docs.map((d) => d.name), ['a', 'b']);
  for (const d of docs) assert.match(d.yaml, /name: policy-mode\n\s+value: monitor/);
  assert.doesNotMatch(docs[1].yaml, /value: enforce/);
  assert.equal(formatPolicyList([]), 'ID   NAME   DOMAIN   STATE   FILTERID   NAMESPACE   SENSORS   KERNELMEMORY   MODE   NPOST   NENFORCE   NMONITOR\n');
});
