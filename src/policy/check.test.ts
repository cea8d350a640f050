import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parsePolicies } from './parse';
import { describePolicy, summarizePolicy } from './check';
import type { TracingPolicy } from './types';

const GOOD = path.resolve(__dirname, '..', '..', '..', 'integration', 'policies', 'good');

function load(file: string, doc = 0): TracingPolicy {
  const r = parsePolicies(fs.readFileSync(path.join(GOOD, file), 'utf8'), file)[doc];
  assert.ok(r.policy, JSON.stringify(r.errors));
  return r.policy;
}

test('summary of the seed policy', () => {
  const s = summarizePolicy(load('process-monitoring.yaml'));
  assert.deepEqual(s, {
    name: 'process-monitoring', kind: 'TracingPolicy', mode: 'enforce',
    hooks: [{ kind: 'kprobe', path: 'spec.kprobes[0]', target: 'sys_execve', sensor: 'generic_kprobe', programTypes: ['kprobe'], syscall: true, returnProbe: false, args: 3, selectors: 1, actions: ['Post'], enforces: false }],
    hookCount: 1, selectorCount: 1, actions: ['Post'], enforces: false, enforcing: false,
    scope: 'all processes on the node (host and containers)', loader: false, lists: 0, enforcerCalls: [], options: {}, extensions: [], requirements: [],
  });
});

test('enforcement, monitor mode and kernel requirements', () => {
  const kill = summarizePolicy(load('sigkill-exec.yaml'));
  assert.equal(kill.enforces, true);
  assert.equal(kill.enforcing, true);
  assert.deepEqual(kill.actions, ['Sigkill']);
  assert.ok(kill.requirements.some((r) => r.feature === 'send_signal' && r.minKernel === '5.3'));

  const mon = summarizePolicy(load('monitor-mode.yaml'));
  assert.equal(mon.mode, 'monitor');
  assert.equal(mon.enforces, true);
  assert.equal(mon.enforcing, false);
  assert.deepEqual(mon.options, { 'policy-mode': 'monitor', 'disable-kprobe-multi': 'false' });
  assert.match(describePolicy(load('monitor-mode.yaml')), /monitor mode: enforcement actions are counted, not run/);

  const lsm = summarizePolicy(load('lsm-file-open.yaml'));
  assert.deepEqual(lsm.hooks.map((h) => h.sensor), ['generic_lsm', 'generic_lsm']);
  assert.deepEqual(lsm.requirements.map((r) => r.feature), ['bpf_lsm', 'ima']);

  const fm = summarizePolicy(load('file-monitoring.yaml'));
  assert.deepEqual(fm.hooks[0].programTypes, ['kprobe', 'kretprobe']);
  assert.equal(fm.hooks[0].returnProbe, true);
  assert.equal(fm.selectorCount, 2);
});

test('scopes, extensions, enforcers and macros in the description', () => {
  const ns = summarizePolicy(load('namespaced-pods.yaml'));
  assert.match(ns.scope, /^pods in namespace shop; pods matching app=web, tier in \(frontend,edge\), !canary; containers matching name notin \(istio-proxy\); host processes excluded$/);
  const api = load('api-db-identity.yaml');
  const sa = summarizePolicy(api);
  assert.deepEqual(sa.extensions, ['DIdentity', 'DLabels']);
  assert.ok(sa.requirements.some((r) => r.feature === 'cilium_identity'));
  const text = describePolicy(api);
  assert.match(text, /arg0\(sock\) DLabels \{app=db, k8s:io\.kubernetes\.pod\.namespace=prod\}/);
  assert.match(text, /tetrahub extensions: DIdentity, DLabels \(not loadable on Tetragon\)/);
  const enf = summarizePolicy(load('lists-enforcer.yaml'));
  assert.deepEqual(enf.enforcerCalls, ['list:dups']);
  assert.deepEqual(enf.actions, ['NotifyEnforcer']);
  const mac = describePolicy(load('macros-fentry.yaml'));
  assert.match(mac, /selector 1 \(macros not-system-binaries, kill\): binary NotPrefix \[\/usr\/lib\/systemd\/, \/usr\/sbin\/\]; arg0\(string\) Prefix \[\/dev\/sd\]; → Sigkill/);
  assert.match(mac, /fentry security_sb_mount .*\[generic_fentry: fentry\]/);
});

test('every good policy can be described', () => {
  for (const f of fs.readdirSync(GOOD).filter((x) => x.endsWith('.yaml'))) {
    for (const r of parsePolicies(fs.readFileSync(path.join(GOOD, f), 'utf8'))) {
      assert.ok(r.policy);
      const text = describePolicy(r.policy);
      assert.ok(text.startsWith(r.policy.kind), f);
      assert.equal(summarizePolicy(r.policy).hookCount, text.split('\n').filter((l) => /^ {4}\S.* — .*\[generic_\w+: /.test(l)).length, f);
    }
  }
});
