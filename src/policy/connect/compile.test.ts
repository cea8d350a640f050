// Which connect-type hooks the cgroup connect backend claims, how selectors
// compile, and label-selector semantics (no kernel needed).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parsePolicy } from '../parse';
import type { TracingPolicy } from '../types';
import type { FeatureProbe } from '../../kernel/types';
import { compileConnectHook, createConnectBackend, selectorMatches, splitLabel } from './index';
import { TH_PC_ACT_OVERRIDE, TH_PC_ACT_POST, TH_PC_ACT_SIGKILL, TH_PC_PROTO_TCP } from './layout.gen';

const FEATURES = {
  btf: true,
  ringbuf: true,
  progTypes: {},
  attach: { kprobe: false, fentry: false, tpBtf: true, rawTp: true, tracepoint: true, lsm: false, cgroupSockAddr: true },
  lsmActive: false,
  helpers: {},
  reasons: { 'attach.lsm': 'EPERM', 'attach.kprobe': 'not built in' },
} as FeatureProbe;

function policy(hook: string, selectors: string, extra = ''): TracingPolicy {
  const r = parsePolicy(`
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: t}
spec:
${extra}
  kprobes:
  - ${hook}
    selectors:
${selectors}`);
  assert.deepEqual(r.errors, [], JSON.stringify(r.errors));
  return r.policy as TracingPolicy;
}

const TCP = `call: tcp_connect
    syscall: false
    args: [{index: 0, type: sock}]`;
const REF = { list: 'kprobes' as const, index: 0 };

test('tcp_connect with DLabels + DPort + NotIn binaries compiles to one rule', () => {
  const p = policy(TCP, `    - matchArgs:
      - {index: 0, operator: DLabels, labelSelector: {matchLabels: {app: db}}}
      - {index: 0, operator: DPort, values: ["5432", "6000:6010"]}
      matchBinaries: [{operator: NotIn, values: [/usr/bin/psql]}]
      matchActions: [{action: Sigkill}]`);
  const r = compileConnectHook(p, REF);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  const rule = r.hook.rules[0];
  assert.equal(rule.protocols, TH_PC_PROTO_TCP, 'tcp_connect sees TCP only');
  assert.deepEqual(rule.ports, [{ lo: 5432, hi: 5432 }, { lo: 6000, hi: 6010 }]);
  assert.deepEqual(rule.binaries, { bit: 0, not: true, paths: ['/usr/bin/psql'], followChildren: false });
  assert.equal(rule.checks[0].kind, 'labels');
  assert.equal(rule.actions, TH_PC_ACT_SIGKILL | TH_PC_ACT_POST);
  assert.equal(r.hook.usesLabels, true);
});

test('DIdentity world also covers world-ipv4/-ipv6; names and numbers', () => {
  const p = policy(TCP, `    - matchArgs:
      - {index: 0, operator: NotDIdentity, values: ["world", "reserved:host", "48213"]}
      matchActions: [{action: Override, argError: -111}]`);
  const r = compileConnectHook(p, REF);
  assert.ok(r.ok);
  const c = r.hook.rules[0].checks[0];
  assert.equal(c.kind, 'ident');
  assert.ok(c.kind === 'ident' && c.negate);
  assert.deepEqual(c.kind === 'ident' ? [...c.identities].sort((a, b) => a - b) : [], [1, 2, 9, 10, 48213]);
  assert.equal(r.hook.rules[0].actions, TH_PC_ACT_OVERRIDE | TH_PC_ACT_POST);
  assert.equal(r.hook.rules[0].err, -111);
});

test('sys_connect: S operators on the sockaddr are the destination', () => {
  const p = policy(`call: sys_connect
    syscall: true
    args: [{index: 0, type: int}, {index: 1, type: sockaddr}]`, `    - matchArgs:
      - {index: 1, operator: SAddr, values: ["10.0.0.0/8"]}
      - {index: 1, operator: SPortPriv}`);
  const r = compileConnectHook(p, REF);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  assert.equal(r.hook.rules[0].priv, true);
  assert.deepEqual(r.hook.rules[0].checks, [{ kind: 'addr', negate: false, set: 1, cidrs: ['10.0.0.0/8'] }]);
});

test('not claimed: what a cgroup connect hook cannot see', () => {
  const b = createConnectBackend();
  const cases: [string, string][] = [
    [TCP, `    - matchArgs: [{index: 0, operator: SPort, values: ["80"]}]`],
    [TCP, `    - matchArgs: [{index: 0, operator: State, values: ["TCP_SYN_SENT"]}]`],
    [TCP, `    - matchBinaries: [{operator: Prefix, values: [/usr/]}]`],
    [TCP, `    - matchPIDs: [{operator: In, values: [1]}]`],
    [TCP, `    - matchActions: [{action: Post, rateLimit: "1m"}]`],
    [`call: sys_connect
    syscall: true
    args: [{index: 0, type: int}]`, `    - matchArgs: [{index: 0, operator: Equal, values: ["3"]}]`],
    [`call: tcp_sendmsg
    syscall: false
    args: [{index: 0, type: sock}]`, `    - matchArgs: [{index: 0, operator: DPort, values: ["80"]}]`],
  ];
  for (const [hook, sel] of cases) {
    const p = policy(hook, sel);
    assert.equal(b.claims(p, REF, FEATURES), false, sel);
  }
  const why = b.whyNot(policy(TCP, cases[0][1]), REF, FEATURES);
  assert.match(why ?? '', /SPort on a socket is not known at connect time/);
});

test('lsm socket_connect is claimed, with the BPF-LSM fallback in the plan', () => {
  const r = parsePolicy(`
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: t}
spec:
  lsmhooks:
  - hook: socket_connect
    args: [{index: 0, type: socket}, {index: 1, type: sockaddr}]
    selectors:
    - matchArgs: [{index: 1, operator: SPort, values: ["25"]}]
      matchActions: [{action: Override, argError: -1}]`);
  assert.deepEqual(r.errors, []);
  const b = createConnectBackend({ cgroupRoot: '/sys/fs/cgroup' });
  const ref = { list: 'lsmhooks' as const, index: 0 };
  assert.equal(b.claims(r.policy as TracingPolicy, ref, FEATURES), true);
  const { status } = b.plan(r.policy as TracingPolicy, ref, FEATURES);
  assert.equal(status.attachedAs, 'cgroup connect4/connect6 on /sys/fs/cgroup');
  assert.match(status.fallback ?? '', /BPF-LSM refused here: EPERM.*→ cgroup socket hooks/);
  assert.match(status.actions[0], /^Override: cgroup connect4\/connect6 deny, connect fails with EPERM/);
});

test('label selectors: sources, matchExpressions', () => {
  const db = ['k8s:app=db', 'k8s:io.kubernetes.pod.namespace=prod', 'container:tier=backend'];
  assert.deepEqual(splitLabel('k8s:app=db'), { source: 'k8s', key: 'app', value: 'db' });
  assert.equal(selectorMatches({ matchLabels: { app: 'db' } }, db), true);
  assert.equal(selectorMatches({ matchLabels: { 'k8s:app': 'db' } }, db), true);
  assert.equal(selectorMatches({ matchLabels: { 'container:app': 'db' } }, db), false, 'source must match when given');
  assert.equal(selectorMatches({ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'prod', app: 'db' } }, db), true);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend'] }] }, db), true);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['backend'] }] }, db), false);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'version', operator: 'NotIn', values: ['2'] }] }, db), true, 'NotIn matches an absent key');
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'app', operator: 'Exists' }] }, db), true);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, db), false);
  assert.equal(selectorMatches({ matchLabels: { 'reserved:world': '' } }, ['reserved:world']), true);
  assert.equal(selectorMatches({}, []), true, 'empty selector matches everything');
});
