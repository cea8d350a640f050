// PolicyManager with a recording fake loader (the kernel side is tested in
// src/policy/engine); the directory watcher with real files in a temp dir.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { PolicyDirWatcher, PolicyManager, PolicyManagerError } from '.';
import { FakeLoader, policyYaml as policy } from './testkit';

async function rejects(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PolicyManagerError, `expected PolicyManagerError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return true;
  });
}

test('add, list, delete; ids, sources, hooks, memory, counters', async () => {
  const loader = new FakeLoader();
  const m = new PolicyManager({ loader });
  const [v] = await m.add(policy('a'), { source: 'grpc' });
  assert.equal(v.id, 1);
  assert.equal(v.name, 'a');
  assert.equal(v.namespace, '');
  assert.equal(v.state, 'enabled');
  assert.equal(v.mode, 'monitor_only'); // no enforcement action
  assert.equal(v.source, 'grpc');
  assert.deepEqual(v.sensors, ['generic_kprobe']);
  assert.equal(v.hooks.length, 1);
  assert.equal(v.kernelMemoryBytes, 4096);
  assert.equal(v.counters.post, 3);
  await m.add(policy('b', { sigkill: true, mode: 'monitor' }), { source: 'file', file: '/x/b.yaml' });
  const list = m.list();
  assert.deepEqual(list.map((p) => [p.id, p.name, p.mode, p.file]), [[1, 'a', 'monitor_only', undefined], [2, 'b', 'monitor', '/x/b.yaml']]);
  assert.equal(loader.live().length, 2);
  assert.equal(loader.live()[1].mode, 'monitor');
  await m.delete('a');
  assert.deepEqual(m.list().map((p) => p.name), ['b']);
  assert.equal(loader.loaded[0].closed, true);
  await rejects(m.delete('a'), 'not_found', /tracing policy "a" not found/);
  assert.equal(m.counters().policies_loaded, 1);
});

test('duplicates, bad input and limits change nothing', async () => {
  const loader = new FakeLoader();
  const m = new PolicyManager({ loader, maxPolicies: 2, maxTextBytes: 4096 });
  await m.add(policy('a'), { source: 'grpc' });
  await rejects(m.add(policy('a', { call: 'sys_openat' }), { source: 'grpc' }), 'exists', /tracing policy "a" already exists \(id 1, from grpc\)/);
  await rejects(m.add(policy('x').replace('type: string', 'type: strng'), { source: 'grpc' }, { single: true }), 'invalid', /spec\.kprobes\[0\]\.args\[0\]\.type: unknown arg type "strng"/);
  await rejects(m.add('kind: [', { source: 'file', file: 'p.yaml' }), 'invalid', /p\.yaml:1:\d+: \(root\): YAML syntax error/);
  await rejects(m.add('', { source: 'grpc' }), 'invalid', /empty policy/);
  await rejects(m.add('x'.repeat(5000), { source: 'grpc' }), 'limit', /5000 bytes; the limit is 4096/);
  const two = `${policy('m1')}---\n${policy('m2')}`;
  await rejects(m.add(two, { source: 'grpc' }, { single: true }), 'invalid', /exactly one policy, found 2/);
  await rejects(m.add(two, { source: 'file', file: 'two.yaml' }), 'limit', /limit of 2/);
  assert.deepEqual(m.list().map((p) => p.name), ['a']);
  assert.equal(loader.loaded.length, 1);
  // A namespaced policy of the same name is another policy.
  await m.add(policy('a', { kind: 'TracingPolicyNamespaced', namespace: 'prod' }), { source: 'grpc' });
  assert.deepEqual(m.list().map((p) => `${p.namespace}/${p.name}`), ['/a', 'prod/a']);
  await rejects(m.delete('zz'), 'not_found', /"zz" not found/);
});

test('multi-document files add every policy', async () => {
  const m = new PolicyManager({ loader: new FakeLoader() });
  const vs = await m.add(`${policy('m1')}---\n${policy('m2')}`, { source: 'file', file: 'two.yaml' });
  assert.deepEqual(vs.map((v) => v.name), ['m1', 'm2']);
});

test('state transitions: disable, enable, mode, load errors kept and retried', async () => {
  const loader = new FakeLoader();
  const m = new PolicyManager({ loader });
  await m.add(policy('k', { sigkill: true }), { source: 'grpc' });
  assert.equal(m.get('k')?.mode, 'enforce');
  let v = await m.configure('k', '', { enable: false });
  assert.equal(v.state, 'disabled');
  assert.equal(loader.live()[0].enabled, false);
  await rejects(m.configure('k', '', { enable: false }), 'state', /already disabled/);
  v = await m.configure('k', '', { enable: true });
  assert.equal(v.state, 'enabled');
  assert.equal(loader.live()[0].enabled, true);
  await rejects(m.configure('k', '', { enable: true }), 'state', /already enabled/);
  v = await m.configure('k', '', { mode: 'monitor' });
  assert.equal(v.mode, 'monitor');
  assert.equal(loader.live()[0].mode, 'monitor');
  // An observe-only policy cannot be set to enforce.
  await m.add(policy('obs'), { source: 'grpc' });
  await rejects(m.configure('obs', '', { mode: 'enforce' }), 'state', /no enforcement action.*monitor_only/);

  loader.failing.add('bad');
  await rejects(m.add(policy('bad'), { source: 'grpc' }), 'load', /"bad" failed to load: verifier: R1 invalid mem access/);
  v = m.get('bad')!;
  assert.equal(v.state, 'load_error');
  assert.match(v.error ?? '', /verifier/);
  assert.equal(v.hooks[0].state, 'error');
  await rejects(m.configure('bad', '', { enable: true }), 'load', /failed to load/);
  loader.failing.delete('bad');
  v = await m.configure('bad', '', { enable: true });
  assert.equal(v.state, 'enabled');
  assert.equal(v.error, undefined);
  await m.close();
  assert.equal(loader.live().length, 0);
  await rejects(m.add(policy('late'), { source: 'grpc' }), 'unavailable', /stopping/);
});

test('without an engine policies are listed as load_error with the reason', async () => {
  const m = new PolicyManager({ unavailableReason: 'policy engine not available' });
  await rejects(m.add(policy('a'), { source: 'grpc' }), 'load', /policy engine not available/);
  assert.equal(m.get('a')?.state, 'load_error');
});

test('operations run one at a time', async () => {
  const loader = new FakeLoader();
  const m = new PolicyManager({ loader });
  const results = await Promise.allSettled([m.add(policy('a'), { source: 'grpc' }), m.add(policy('a'), { source: 'grpc' }), m.delete('a')]);
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  assert.equal(m.list().length, 0);
  assert.equal(loader.live().length, 0);
});

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('directory: add, change, invalid edit keeps the previous version, remove — live', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-tpdir-'));
  const loader = new FakeLoader();
  const m = new PolicyManager({ loader });
  const w = new PolicyDirWatcher(dir, m, { debounceMs: 20, rescanMs: 200 });
  try {
    fs.writeFileSync(path.join(dir, 'one.yaml'), policy('one'));
    fs.writeFileSync(path.join(dir, 'README.md'), 'not a policy');
    fs.writeFileSync(path.join(dir, '.hidden.yaml'), policy('hidden'));
    await w.start();
    assert.deepEqual(m.list().map((p) => [p.name, p.source, p.file]), [['one', 'dir', path.join(dir, 'one.yaml')]]);

    // Added live.
    fs.writeFileSync(path.join(dir, 'two.yml'), policy('two'));
    await until(() => m.get('two')?.state === 'enabled', 'two.yml to load');

    // Changed: the policy is replaced (new load first, then the old closed).
    const before = loader.live().find((l) => l.name === 'one')!;
    fs.writeFileSync(path.join(dir, 'one.yaml'), policy('one', { call: 'sys_openat' }));
    await until(() => m.get('one')?.hooks[0]?.call === 'sys_openat', 'one.yaml to be replaced');
    assert.equal(before.closed, true);
    assert.equal(m.get('one')?.counters.post, 6, 'counters survive a replacement');

    // Invalid edit: the previous version stays, the error is reported.
    fs.writeFileSync(path.join(dir, 'one.yaml'), policy('one').replace('type: string', 'type: strng'));
    await until(() => m.fileErrors.has(path.join(dir, 'one.yaml')), 'the invalid edit to be seen');
    assert.equal(m.get('one')?.state, 'enabled');
    assert.equal(m.get('one')?.hooks[0]?.call, 'sys_openat');
    assert.match(m.get('one')?.error ?? '', /previous version stays loaded.*unknown arg type "strng"/s);

    // Fixed again: error cleared.
    fs.writeFileSync(path.join(dir, 'one.yaml'), policy('one'));
    await until(() => m.get('one')?.hooks[0]?.call === 'sys_execve' && !m.fileErrors.size, 'the fix');
    assert.equal(m.get('one')?.error, undefined);

    // A second file claiming an existing name is refused, the first keeps it.
    fs.writeFileSync(path.join(dir, 'dup.json'), JSON.stringify({ apiVersion: 'cilium.io/v1alpha1', kind: 'TracingPolicy', metadata: { name: 'one' }, spec: { tracepoints: [{ subsystem: 'syscalls', event: 'sys_enter_openat' }] } }));
    await until(() => m.fileErrors.has(path.join(dir, 'dup.json')), 'the duplicate to be refused');
    assert.match(m.fileErrors.get(path.join(dir, 'dup.json')) ?? '', /"one" already exists/);
    assert.equal(m.get('one')?.file, path.join(dir, 'one.yaml'));

    // Removed: unloaded.
    fs.rmSync(path.join(dir, 'two.yml'));
    fs.rmSync(path.join(dir, 'dup.json'));
    await until(() => m.get('two') === undefined && !m.fileErrors.size, 'two.yml removal');
    assert.equal(loader.loaded.filter((l) => l.name === 'two').every((l) => l.closed), true);
  } finally {
    w.stop();
    await m.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('directory: a missing directory is watched for and picked up once created', async () => {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'th-tpdir-'));
  const dir = path.join(parent, 'later');
  const m = new PolicyManager({ loader: new FakeLoader() });
  const w = new PolicyDirWatcher(dir, m, { debounceMs: 20, rescanMs: 50 });
  try {
    await w.start();
    assert.match(w.dirError ?? '', /does not exist/);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'p.yaml'), policy('p'));
    await until(() => m.get('p')?.state === 'enabled', 'the policy in the new directory');
  } finally {
    w.stop();
    await m.close();
    fs.rmSync(parent, { recursive: true, force: true });
  }
});
