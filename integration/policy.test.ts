// TracingPolicies on the real kernel: the generic programs of
// bpf/policy.bpf.o filter and enforce in the kernel; real processes, real
// signals. The loader does no filtering in user space: every kernel record
// becomes an event, so "no event for pid X" means "no record for pid X".
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { FeatureProbe } from '../src/kernel/types';
import type { PolicyEvent } from '../src/model/event';
import { createPolicyLoader, PolicyLoadError, type LoadedPolicy, type PolicyLoader } from '../src/policy/engine';
import { parsePolicy } from '../src/policy/parse';
import type { TracingPolicy } from '../src/policy/types';
import { kernelSkipReason, startStack, waitFor, type Stack } from '../src/sensors/file/testkit';

const PY = '/usr/bin/python3';
const ROOT = path.resolve(__dirname, '..', '..');
const skip = kernelSkipReason(['policy.bpf.o']) ?? (fs.existsSync(PY) ? undefined : `${PY} not installed`);
if (skip) console.log(`# policy kernel tests skipped: ${skip}`);

let st: Stack;
let features: FeatureProbe;
let loader: PolicyLoader;
let tmp: string;

before(async () => {
  if (skip) return;
  st = await startStack('pol-it');
  features = st.native.probeFeatures();
  loader = createPolicyLoader({ native: st.native, bus: st.bus, cache: st.cache, clock: st.clock, config: st.config, log: st.log, features });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'th-pol-'));
});

after(async () => {
  if (skip) return;
  await st?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function parse(yaml: string): TracingPolicy {
  const r = parsePolicy(yaml, 'test.yaml');
  assert.deepEqual(r.errors, [], 'policy parses');
  return r.policy!;
}

async function withPolicy<T>(p: TracingPolicy, fn: (lp: LoadedPolicy) => Promise<T>, mode: 'enforce' | 'monitor' = 'enforce'): Promise<T> {
  const lp = await loader.load(p, { mode, strict: false });
  try {
    return await fn(lp);
  } finally {
    await lp.close();
  }
}

function run(cmd: string, args: string[], stdin: 'ignore' | 'pipe' = 'ignore'): { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawn(cmd, args, { stdio: [stdin, 'ignore', 'ignore'] });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, done };
}

const policyEvents = (name: string): PolicyEvent[] => st.items.filter((i): i is PolicyEvent => i.kind === 'policy' && i.policyName === name);
const settle = (ms = 300): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('seed policy loaded verbatim: execs by bash and sh are reported, python3\'s exec is filtered in the kernel', { skip }, async () => {
  const p = parse(fs.readFileSync(path.join(ROOT, 'integration/policies/good/process-monitoring.yaml'), 'utf8'));
  await withPolicy(p, async (lp) => {
    const h = lp.hooks[0];
    assert.equal(h.state, 'loaded');
    if (features.attach.kprobe) assert.equal(h.attachedAs, 'kprobe __x64_sys_execve');
    else {
      assert.equal(h.attachedAs, 'tracepoint syscalls/sys_enter_execve');
      assert.match(h.fallback ?? '', /syscall tracepoint/);
    }
    assert.deepEqual(h.inKernel, ['matchBinaries In (2 paths)']);

    const sh = run('/bin/sh', ['-c', '/usr/bin/true; exit 0']);
    const bash = run('/usr/bin/bash', ['-c', '/usr/bin/env true; exit 0']);
    const py = run(PY, ['-c', 'import os; os.execv("/usr/bin/true", ["true"])']);
    await Promise.all([sh.done, bash.done, py.done]);
    // the shell (or its fork, which still runs the shell's image) calls execve
    const of = (pid: number | undefined) => (e: PolicyEvent): boolean => e.process.pid === pid || e.parent?.pid === pid;
    const shEv = await waitFor(() => policyEvents('process-monitoring').find(of(sh.child.pid)), 5000, 'sh event');
    const bashEv = await waitFor(() => policyEvents('process-monitoring').find(of(bash.child.pid)), 5000, 'bash event');
    for (const [ev, bin, target] of [[shEv, '/bin/sh', '/usr/bin/true'], [bashEv, '/usr/bin/bash', '/usr/bin/env']] as const) {
      assert.equal(ev.hook, 'kprobe', 'syscall kprobes stay kprobe events even on the tracepoint fallback');
      assert.equal(ev.functionName, 'sys_execve');
      assert.equal(ev.process.binary, bin);
      assert.equal(ev.args.length, 3);
      assert.deepEqual(ev.args[0], { t: 'string', v: target });
      assert.equal(ev.action, 'post');
      assert.equal(ev.enforcement, undefined);
    }
    await settle();
    assert.deepEqual(policyEvents('process-monitoring').filter(of(py.child.pid)), [], 'python3 exec: no kernel record');
    assert.ok(lp.counters().post >= 2);
  });
});

function killPolicy(name: string, bin: string, extra = ''): TracingPolicy {
  return parse(`
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "${name}"}
spec:
${extra}  kprobes:
  - call: "sys_openat"
    syscall: true
    args: [{index: 0, type: "int"}, {index: 1, type: "string", label: "path"}]
    message: "secret opened"
    tags: ["test"]
    selectors:
    - matchBinaries: [{operator: In, values: ["${bin}"]}]
      matchArgs: [{index: 1, operator: Postfix, values: ["th-secret"]}]
      matchActions: [{action: Sigkill}]
`);
}

test('Sigkill: a copied cat opening a matching path dies of SIGKILL; other paths and binaries are untouched', { skip }, async () => {
  const bin = path.join(tmp, 'th-cat');
  fs.copyFileSync('/usr/bin/cat', bin);
  fs.chmodSync(bin, 0o755);
  const secret = path.join(tmp, 'a-th-secret');
  const plain = path.join(tmp, 'plain');
  fs.writeFileSync(secret, 'x');
  fs.writeFileSync(plain, 'x');
  await withPolicy(killPolicy('kill-secret', bin), async (lp) => {
    assert.match(lp.hooks[0].actions.join(), /Sigkill: bpf_send_signal/);
    assert.deepEqual(lp.hooks[0].inKernel, ['matchBinaries In (1 path)', 'matchArgs[1] Postfix']);
    const ok = await run(bin, [plain]).done;
    assert.deepEqual(ok, { code: 0, signal: null }, 'other path: runs');
    const other = await run('/usr/bin/cat', [secret]).done;
    assert.deepEqual(other, { code: 0, signal: null }, 'other binary: runs');
    const r = run(bin, [secret]);
    assert.deepEqual(await r.done, { code: null, signal: 'SIGKILL' });
    const ev = await waitFor(() => policyEvents('kill-secret').find((e) => e.process.pid === r.child.pid), 5000, 'kill event');
    assert.equal(ev.action, 'sigkill');
    assert.deepEqual(ev.enforcement, { kind: 'killed', monitor: false, signal: 9 });
    assert.deepEqual(ev.args[1], { t: 'string', v: secret, label: 'path' });
    assert.equal(ev.message, 'secret opened');
    assert.deepEqual(ev.tags, ['test']);
    assert.equal(lp.counters().signal, 1);
    assert.equal(policyEvents('kill-secret').length, 1, 'only the matching open');
  });
});

test('monitor mode (spec.options and setMode): the same process survives, the event says what would have happened', { skip }, async () => {
  const bin = path.join(tmp, 'th-cat2');
  fs.copyFileSync('/usr/bin/cat', bin);
  fs.chmodSync(bin, 0o755);
  const secret = path.join(tmp, 'b-th-secret');
  fs.writeFileSync(secret, 'x');
  const p = killPolicy('kill-monitor', bin, '  options: [{name: policy-mode, value: monitor}]\n');
  await withPolicy(p, async (lp) => {
    const r = run(bin, [secret]);
    assert.deepEqual(await r.done, { code: 0, signal: null }, 'monitor: not killed');
    const ev = await waitFor(() => policyEvents('kill-monitor').find((e) => e.process.pid === r.child.pid), 5000, 'monitor event');
    assert.deepEqual(ev.enforcement, { kind: 'killed', monitor: true, signal: 9 });
    let c = lp.counters();
    assert.equal(c.monitorSignal, 1);
    assert.equal(c.signal, 0);
    // switch to enforce in place
    await lp.setMode('enforce');
    const r2 = run(bin, [secret]);
    assert.deepEqual(await r2.done, { code: null, signal: 'SIGKILL' });
    c = lp.counters();
    assert.equal(c.signal, 1);
    // disabled: no kill, no event
    await lp.setEnabled(false);
    const r3 = run(bin, [secret]);
    assert.deepEqual(await r3.done, { code: 0, signal: null });
    await settle();
    assert.equal(policyEvents('kill-monitor').filter((e) => e.process.pid === r3.child.pid).length, 0);
  });
});

function umaskPolicy(name: string, selectors: string, extra = ''): TracingPolicy {
  return parse(`
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "${name}"}
spec:
  kprobes:
  - call: "sys_umask"
    syscall: true
${extra}    args: [{index: 0, type: "int"}]
    selectors:
${selectors}`);
}

const pyUmask = (masks: number[], wait = false): string =>
  `import os, sys\n${wait ? 'sys.stdin.readline()\n' : ''}${masks.map((m) => `os.umask(${m})`).join('\n')}\n`;

test('matchArgs on ints: Equal, NotEqual, GT, LT, Mask — selectors OR\'ed, first match wins', { skip }, async () => {
  const p = umaskPolicy('umask-ints', `    - matchBinaries: [{operator: In, values: ["${PY}"]}]
      matchArgs: [{index: 0, operator: Equal, values: ["0o27", "18"]}]
      matchActions: [{action: Post}]
    - matchBinaries: [{operator: In, values: ["${PY}"]}]
      matchArgs: [{index: 0, operator: GT, values: ["100"]}, {index: 0, operator: LT, values: ["200"]}, {index: 0, operator: NotEqual, values: ["150"]}]
    - matchBinaries: [{operator: In, values: ["${PY}"]}]
      matchArgs: [{index: 0, operator: Mask, values: ["0x200"]}]
`);
  await withPolicy(p, async () => {
    // 23 and 18 match selector 0; 120 selector 1; 150 nothing (NotEqual); 300 nothing; 0x201 selector 2; 7 nothing
    const r = run(PY, ['-c', pyUmask([0o27, 18, 120, 150, 300, 0x201, 7])]);
    await r.done;
    await waitFor(() => (policyEvents('umask-ints').filter((e) => e.process.pid === r.child.pid).length >= 4 ? true : undefined), 5000, 'four events');
    await settle();
    const got = policyEvents('umask-ints').filter((e) => e.process.pid === r.child.pid).map((e) => (e.args[0] as { v: number }).v);
    assert.deepEqual(got, [0o27, 18, 120, 0x201]);
  });
});

test('matchPIDs In and return values (matchReturnArgs): only the listed process, only when the old mask matches', { skip }, async () => {
  const a = run(PY, ['-c', pyUmask([0o27, 0o22, 0o77], true)], 'pipe');
  const b = run(PY, ['-c', pyUmask([0o27, 0o22, 0o77], true)], 'pipe');
  const p = umaskPolicy('umask-pids', `    - matchPIDs: [{operator: In, values: [${a.child.pid}]}]
      matchReturnArgs: [{index: 0, operator: Equal, values: ["0o27"]}]
`, '    return: true\n    returnArg: {index: 0, type: "int"}\n');
  await withPolicy(p, async (lp) => {
    assert.match(lp.hooks[0].inKernel.join(), /matchPIDs In/);
    assert.match(lp.hooks[0].inKernel.join(), /matchReturnArgs Equal/);
    a.child.stdin!.end('\n');
    b.child.stdin!.end('\n');
    await Promise.all([a.done, b.done]);
    const ev = await waitFor(() => policyEvents('umask-pids').find((e) => e.process.pid === a.child.pid), 5000, 'event of a');
    await settle();
    const evs = policyEvents('umask-pids');
    assert.equal(evs.length, 1, 'b never; a only for umask(0o22), whose return (old mask) is 0o27');
    assert.deepEqual(ev.args[0], { t: 'int', v: 0o22 });
    assert.deepEqual(ev.ret, { t: 'int', v: 0o27 });
  });
});

test('matchBinaries NotIn, and Post rateLimit: repeated identical calls post once', { skip }, async () => {
  const p = umaskPolicy('umask-notin-rate', `    - matchBinaries: [{operator: NotIn, values: ["/usr/bin/bash"]}]
      matchArgs: [{index: 0, operator: Equal, values: ["0o31"]}]
      matchActions: [{action: Post, rateLimit: "1m", rateLimitScope: process}]
`);
  await withPolicy(p, async (lp) => {
    const bash = run('/usr/bin/bash', ['-c', 'umask 031; umask 031']);
    const py = run(PY, ['-c', pyUmask([0o31, 0o31, 0o31, 0o31])]);
    await Promise.all([bash.done, py.done]);
    await waitFor(() => policyEvents('umask-notin-rate').find((e) => e.process.pid === py.child.pid), 5000, 'python event');
    await settle();
    assert.equal(policyEvents('umask-notin-rate').filter((e) => e.process.pid === py.child.pid).length, 1, 'rate limited to one');
    assert.equal(policyEvents('umask-notin-rate').filter((e) => e.process.pid === bash.child.pid).length, 0, 'bash excluded');
    assert.equal(lp.counters().post, 1);
  });
});

test('matchBinaries followChildren and Prefix: children of a matching binary keep matching across exec', { skip }, async () => {
  const dir = path.join(tmp, 'bin');
  fs.mkdirSync(dir, { recursive: true });
  const sh = path.join(dir, 'th-sh');
  fs.copyFileSync('/usr/bin/dash', sh);
  fs.chmodSync(sh, 0o755);
  const p = umaskPolicy('umask-follow', `    - matchBinaries: [{operator: In, values: ["${sh}"], followChildren: true}]
      matchArgs: [{index: 0, operator: Equal, values: ["0o33"]}]
    - matchBinaries: [{operator: Prefix, values: ["${dir}/"]}]
      matchArgs: [{index: 0, operator: Equal, values: ["0o34"]}]
`);
  await withPolicy(p, async () => {
    // th-sh runs python3 (a child that execs): its umask(0o33) matches through followChildren
    const r = run(sh, ['-c', `${PY} -c 'import os; os.umask(0o33); os.umask(0o34)'; umask 034`]);
    const outside = run(PY, ['-c', 'import os; os.umask(0o33)']);
    await Promise.all([r.done, outside.done]);
    await waitFor(() => (policyEvents('umask-follow').length >= 2 ? true : undefined), 5000, 'two events');
    await settle();
    const evs = policyEvents('umask-follow');
    const py = evs.filter((e) => e.process.binary === PY);
    assert.equal(py.length, 1, 'python child: 0o33 via followChildren; 0o34 not (Prefix does not follow)');
    assert.deepEqual(py[0].args[0], { t: 'int', v: 0o33 });
    assert.ok(evs.some((e) => e.process.binary === sh && (e.args[0] as { v: number }).v === 0o34), 'th-sh itself matches the Prefix selector');
    assert.equal(evs.filter((e) => e.process.pid === outside.child.pid).length, 0);
  });
});

test('fd args resolve to paths in the kernel; string Equal on them', { skip }, async () => {
  const target = path.join(tmp, 'fchmod-me');
  fs.writeFileSync(target, 'x');
  const p = parse(`
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "fchmod-fd"}
spec:
  kprobes:
  - call: "sys_fchmod"
    syscall: true
    args: [{index: 0, type: "fd"}, {index: 1, type: "uint32"}]
    selectors:
    - matchArgs: [{index: 0, operator: Equal, values: ["${target}"]}]
`);
  await withPolicy(p, async () => {
    const r = run(PY, ['-c', `import os\nfd = os.open("${target}", os.O_RDONLY)\nos.fchmod(fd, 0o640)\nos.fchmod(0, 0o600) if False else None\nfd2 = os.open("/dev/null", os.O_RDONLY)\ntry:\n  os.fchmod(fd2, 0o666)\nexcept OSError: pass\n`]);
    await r.done;
    const ev = await waitFor(() => policyEvents('fchmod-fd').find((e) => e.process.pid === r.child.pid), 5000, 'fchmod event');
    await settle();
    assert.equal(policyEvents('fchmod-fd').filter((e) => e.process.pid === r.child.pid).length, 1, '/dev/null does not match');
    assert.deepEqual(ev.args[0], { t: 'file', path: target });
    assert.deepEqual(ev.args[1], { t: 'uint', v: 0o640 });
  });
});

test('tracepoint hooks: args from the format file (data_loc string, pid), Prefix in the kernel', { skip }, async () => {
  const p = parse(`
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "tp-exec"}
spec:
  tracepoints:
  - subsystem: "sched"
    event: "sched_process_exec"
    args: [{index: 4, type: "string"}, {index: 5, type: "int"}]
    selectors:
    - matchArgs: [{index: 4, operator: Prefix, values: ["${tmp}/"]}]
`);
  const bin = path.join(tmp, 'th-true');
  fs.copyFileSync('/usr/bin/true', bin);
  fs.chmodSync(bin, 0o755);
  await withPolicy(p, async (lp) => {
    assert.equal(lp.hooks[0].attachedAs, 'tracepoint sched/sched_process_exec');
    const r = run(bin, []);
    await r.done;
    await run('/usr/bin/true', []).done;
    const ev = await waitFor(() => policyEvents('tp-exec').find((e) => e.process.pid === r.child.pid), 5000, 'tracepoint event');
    await settle();
    assert.equal(ev.hook, 'tracepoint');
    assert.equal(ev.subsys, 'sched');
    assert.equal(ev.event, 'sched_process_exec');
    assert.deepEqual(ev.args, [{ t: 'string', v: bin }, { t: 'int', v: r.child.pid }]);
    assert.equal(policyEvents('tp-exec').length, 1);
  });
});

test('bad inputs: unknown syscall and over-limit values refuse the policy with a PolicyLoadError naming the problem', { skip }, async () => {
  const base = (kprobe: Record<string, unknown>): TracingPolicy =>
    ({ apiVersion: 'cilium.io/v1alpha1', kind: 'TracingPolicy', metadata: { name: 'bad' }, spec: { kprobes: [{ return: false, syscall: true, ...kprobe }] } }) as unknown as TracingPolicy;
  await assert.rejects(loader.load(base({ call: 'sys_nosuchcall' }), { mode: 'enforce', strict: false }), (e: unknown) => {
    assert.ok(e instanceof PolicyLoadError);
    assert.match(e.message, /sys_nosuchcall.*not an x86_64 syscall/);
    return true;
  });
  await assert.rejects(
    loader.load(base({ call: 'sys_umask', args: [{ index: 0, type: 'int' }], selectors: [{ matchArgs: [{ index: 0, operator: 'Equal', values: ['1', '2', '3', '4', '5'] }] }] }), { mode: 'enforce', strict: false }),
    (e: unknown) => {
      assert.ok(e instanceof PolicyLoadError);
      assert.match(e.message, /matchArgs\[0\]\.values: 5 values; the limit is 4/);
      return true;
    },
  );
  const six = Array.from({ length: 6 }, () => ({}));
  await assert.rejects(loader.load(base({ call: 'sys_umask', selectors: six }), { mode: 'enforce', strict: false }), /6 selectors; the limit is 5/);
  // strict: an unsupported hook refuses the policy
  const lsm = parse(`
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "lsm-strict"}
spec:
  lsmhooks:
  - hook: "file_open"
`);
  if (!(features.attach.lsm && features.lsmActive)) {
    await assert.rejects(loader.load(lsm, { mode: 'enforce', strict: true }), /lsmhooks\[0\].*unsupported.*strict/);
    const lp = await loader.load(lsm, { mode: 'enforce', strict: false });
    assert.equal(lp.hooks[0].state, 'unsupported');
    assert.ok(lp.hooks[0].reason);
    await lp.close();
  }
});
