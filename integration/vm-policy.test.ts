// TracingPolicies inside the Debian 6.1 and 6.12 kernels (scripts/test-vm.sh,
// one boot per kernel with vm.test.js): syscall hooks attach as kprobes
// there, kernel functions get kprobes, and BPF-LSM denies with Override.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { FeatureProbe } from '../src/kernel/types';
import type { PolicyEvent } from '../src/model/event';
import { createPolicyLoader, type LoadedPolicy, type PolicyLoader } from '../src/policy/engine';
import { parsePolicy } from '../src/policy/parse';
import type { TracingPolicy } from '../src/policy/types';
import { kernelSkipReason, startStack, waitFor, type Stack } from '../src/sensors/file/testkit';

const inVm = process.env.TETRAHUB_IN_VM;
const skip = !inVm ? 'runs only inside the VM kernels (scripts/test-vm.sh, part of npm test)' : kernelSkipReason(['policy.bpf.o']);
const ROOT = path.resolve(__dirname, '..', '..');
const LONG = 120_000;

let st: Stack;
let features: FeatureProbe;
let loader: PolicyLoader;
let tmp: string;
let activeLsms = '';

before(async () => {
  if (skip) return;
  st = await startStack('pol-vm');
  features = st.native.probeFeatures();
  loader = createPolicyLoader({ native: st.native, bus: st.bus, cache: st.cache, clock: st.clock, config: st.config, log: st.log, features });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'th-polvm-'));
  try {
    activeLsms = fs.readFileSync('/sys/kernel/security/lsm', 'utf8').trim();
  } catch (e) {
    activeLsms = `(unreadable: ${(e as Error).message})`;
  }
  console.log(`# kernel ${inVm}: active LSMs: ${activeLsms}; kprobe=${features.attach.kprobe} lsm=${features.attach.lsm} lsmActive=${features.lsmActive} bpf_override_return=${features.helpers.bpf_override_return}`);
});

after(async () => {
  if (skip) return;
  await st?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function parse(yaml: string): TracingPolicy {
  const r = parsePolicy(yaml, 'vm.yaml');
  assert.deepEqual(r.errors, []);
  return r.policy!;
}

async function withPolicy<T>(p: TracingPolicy, fn: (lp: LoadedPolicy) => Promise<T>): Promise<T> {
  const lp = await loader.load(p, { mode: 'enforce', strict: false });
  try {
    return await fn(lp);
  } finally {
    await lp.close();
  }
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

const policyEvents = (name: string): PolicyEvent[] => st.items.filter((i): i is PolicyEvent => i.kind === 'policy' && i.policyName === name);

function copyBin(name: string, from = '/usr/bin/cat'): string {
  const p = path.join(tmp, name);
  fs.copyFileSync(from, p);
  fs.chmodSync(p, 0o755);
  return p;
}

test(`seed policy: sys_execve attaches as a kprobe on ${inVm ?? '(vm)'}`, { skip, timeout: LONG * 3 }, async () => {
  assert.equal(features.attach.kprobe, true, features.reasons['attach.kprobe']);
  const p = parse(fs.readFileSync(path.join(ROOT, 'integration/policies/good/process-monitoring.yaml'), 'utf8'));
  await withPolicy(p, async (lp) => {
    assert.equal(lp.hooks[0].state, 'loaded');
    assert.equal(lp.hooks[0].attachedAs, 'kprobe __x64_sys_execve');
    assert.equal(lp.hooks[0].fallback, undefined);
    const child = spawn('/bin/sh', ['-c', '/usr/bin/true; exit 0'], { stdio: 'ignore' });
    const py = spawn('/usr/bin/python3', ['-c', 'import os; os.execv("/usr/bin/true", ["true"])'], { stdio: 'ignore' });
    const ev = await waitFor(() => policyEvents('process-monitoring').find((e) => e.process.pid === child.pid || e.parent?.pid === child.pid), LONG, 'sh exec event');
    assert.equal(ev.hook, 'kprobe');
    assert.equal(ev.functionName, 'sys_execve');
    assert.equal(ev.process.binary, '/bin/sh');
    assert.deepEqual(ev.args[0], { t: 'string', v: '/usr/bin/true' });
    await new Promise((r) => py.on('exit', r));
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(policyEvents('process-monitoring').filter((e) => e.process.pid === py.pid).length, 0);
  });
});

test(`kprobe on a kernel function (security_file_open, file arg) on ${inVm ?? '(vm)'}`, { skip, timeout: LONG * 3 }, async () => {
  const bin = copyBin('th-vm-cat');
  const target = path.join(tmp, 'watched');
  fs.writeFileSync(target, 'x');
  const p = parse(`
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "kp-file-open"}
spec:
  kprobes:
  - call: "security_file_open"
    syscall: false
    args: [{index: 0, type: "file"}]
    selectors:
    - matchBinaries: [{operator: In, values: ["${bin}"]}]
      matchArgs: [{index: 0, operator: Equal, values: ["${target}"]}]
`);
  await withPolicy(p, async (lp) => {
    assert.equal(lp.hooks[0].attachedAs, 'kprobe security_file_open');
    const r = await run(bin, [target]);
    assert.equal(r.code, 0);
    const ev = await waitFor(() => policyEvents('kp-file-open')[0], LONG, 'kprobe event');
    assert.equal(ev.hook, 'kprobe');
    assert.equal(ev.functionName, 'security_file_open');
    assert.deepEqual(ev.args[0], { t: 'file', path: target });
    assert.equal(ev.process.binary, bin);
  });
});

for (const [kind, spec] of [
  ['lsmhooks: file_open', (bin: string, target: string) => `  lsmhooks:
  - hook: "file_open"
    args: [{index: 0, type: "file"}]
    selectors:
    - matchBinaries: [{operator: In, values: ["${bin}"]}]
      matchArgs: [{index: 0, operator: Equal, values: ["${target}"]}]
      matchActions: [{action: Override, argError: -1}]
`],
  ['kprobe security_file_open + Override (→ BPF-LSM)', (bin: string, target: string) => `  kprobes:
  - call: "security_file_open"
    syscall: false
    args: [{index: 0, type: "file"}]
    selectors:
    - matchBinaries: [{operator: In, values: ["${bin}"]}]
      matchArgs: [{index: 0, operator: Postfix, values: ["${path.basename(target)}"]}]
      matchActions: [{action: Override, argError: -1}]
`],
] as const) {
  test(`${kind}: EPERM on the protected file for one binary on ${inVm ?? '(vm)'}`, { skip, timeout: LONG * 3 }, async (t) => {
    if (!features.lsmActive || !features.attach.lsm) {
      t.skip(`BPF-LSM not usable in this kernel: active LSMs "${activeLsms}", attach.lsm=${features.attach.lsm} (${features.reasons['attach.lsm'] ?? ''})`);
      return;
    }
    const name = kind.startsWith('lsm') ? 'lsm-deny' : 'kp-lsm-deny';
    const bin = copyBin(`th-${name}`);
    const target = path.join(tmp, `${name}-protected`);
    const other = path.join(tmp, `${name}-other`);
    fs.writeFileSync(target, 'x');
    fs.writeFileSync(other, 'x');
    const p = parse(`apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: "${name}"}\nspec:\n${spec(bin, target)}`);
    await withPolicy(p, async (lp) => {
      assert.equal(lp.hooks[0].attachedAs, 'lsm file_open');
      assert.match(lp.hooks[0].actions.join(), /Override -1: BPF-LSM return value/);
      const denied = await run(bin, [target]);
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /Operation not permitted/);
      assert.equal((await run(bin, [other])).code, 0, 'other file: allowed');
      assert.equal((await run('/usr/bin/cat', [target])).code, 0, 'other binary: allowed');
      const ev = await waitFor(() => policyEvents(name)[0], LONG, 'deny event');
      assert.equal(ev.action, 'override');
      assert.deepEqual(ev.enforcement, { kind: 'denied', monitor: false, errno: 1 });
      assert.deepEqual(ev.args[0], { t: 'file', path: target });
      assert.ok(lp.counters().override >= 1);
      // monitor mode: allowed, audited
      await lp.setMode('monitor');
      assert.equal((await run(bin, [target])).code, 0);
      assert.ok(lp.counters().monitorOverride >= 1);
      await waitFor(() => (lp.counters().override === policyEvents(name).filter((e) => !e.enforcement?.monitor).length ? true : undefined), LONG, 'one event per denial');
    });
  });
}

test(`Override on a syscall kprobe (bpf_override_return) on ${inVm ?? '(vm)'}`, { skip, timeout: LONG * 3 }, async (t) => {
  if (!features.helpers.bpf_override_return) {
    t.skip(`bpf_override_return is not available in kernel ${inVm} (no CONFIG_BPF_KPROBE_OVERRIDE): Override on kprobes is reported as not enforced`);
    return;
  }
  const bin = copyBin('th-ovr-cat');
  const target = path.join(tmp, 'ovr-protected');
  fs.writeFileSync(target, 'x');
  const p = parse(`
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "sys-ovr"}
spec:
  kprobes:
  - call: "sys_openat"
    syscall: true
    args: [{index: 0, type: "int"}, {index: 1, type: "string"}]
    selectors:
    - matchBinaries: [{operator: In, values: ["${bin}"]}]
      matchArgs: [{index: 1, operator: Equal, values: ["${target}"]}]
      matchActions: [{action: Override, argError: -13}]
`);
  await withPolicy(p, async (lp) => {
    assert.equal(lp.hooks[0].attachedAs, 'kprobe __x64_sys_openat');
    if (/NOT enforced/.test(lp.hooks[0].actions.join())) {
      // loaded without the helper: the process is not denied, and the status says why
      assert.equal((await run(bin, [target])).code, 0);
      t.skip(`kernel ${inVm}: ${lp.hooks[0].actions.join()}`);
      return;
    }
    assert.match(lp.hooks[0].actions.join(), /Override -13: bpf_override_return/);
    const denied = await run(bin, [target]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /Permission denied/);
    assert.equal((await run('/usr/bin/cat', [target])).code, 0, 'other binary: allowed');
    const ev = await waitFor(() => policyEvents('sys-ovr')[0], LONG, 'override event');
    assert.deepEqual(ev.enforcement, { kind: 'denied', monitor: false, errno: 13 });
  });
});
