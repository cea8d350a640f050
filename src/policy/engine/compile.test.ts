// plan() and the compiler, without loading anything: what attaches where for
// a given feature set, which parts run in the kernel, limits, and the codecs.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import type { FeatureProbe } from '../../kernel/types';
import { parsePolicy } from '../parse';
import type { TracingPolicy } from '../types';
import { binaryMatches, parseIntValue, strKey } from './compile';
import { decodeArgs } from './decode';
import { createPolicyLoader, type PolicyLoaderDeps, type PolicyPlan } from './index';
import * as L from './layout.gen';
import { parseFormat } from './tracefs';

function features(o: { kprobe?: boolean; lsm?: boolean; override?: boolean } = {}): FeatureProbe {
  return {
    btf: true,
    ringbuf: true,
    progTypes: {},
    attach: { kprobe: !!o.kprobe, fentry: !!o.kprobe, tpBtf: true, rawTp: true, tracepoint: true, lsm: !!o.lsm, cgroupSockAddr: true },
    lsmActive: !!o.lsm,
    helpers: { bpf_override_return: !!o.override, bpf_send_signal: true },
    reasons: o.kprobe ? {} : { 'attach.kprobe': 'kprobes are not built into this kernel', 'attach.lsm': 'BPF-LSM refused (EPERM)' },
  };
}

function plan(p: TracingPolicy, f: FeatureProbe, strict = false): PolicyPlan {
  // plan() reads only deps.features
  return createPolicyLoader({ features: f } as unknown as PolicyLoaderDeps).plan(p, { mode: 'enforce', strict });
}

function parse(yaml: string): TracingPolicy {
  const r = parsePolicy(yaml, 't.yaml');
  assert.deepEqual(r.errors, []);
  return r.policy!;
}

const tracefs = fs.existsSync('/sys/kernel/tracing/events/syscalls/sys_enter_execve') ? undefined : 'tracefs with syscall events not mounted (source scripts/kernel-fs.sh)';

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

test('seed policy without kprobes: syscall tracepoint fallback, matchBinaries in the kernel, memory estimated', { skip: tracefs }, () => {
  const pl = plan(parse(SEED), features());
  assert.deepEqual(pl.errors, []);
  const h = pl.hooks[0];
  assert.equal(h.state, 'loaded');
  assert.equal(h.section, 'kprobes[0]');
  assert.equal(h.call, 'sys_execve');
  assert.equal(h.attachedAs, 'tracepoint syscalls/sys_enter_execve');
  assert.equal(h.fallback, 'kprobe __x64_sys_execve → syscall tracepoint (kprobes are not built into this kernel)');
  assert.deepEqual(h.inKernel, ['matchBinaries In (2 paths)']);
  assert.deepEqual(h.inUserSpace, []);
  assert.deepEqual(h.actions, ['Post: ring buffer']);
  assert.ok(pl.kernelMemoryBytes > L.TH_POL_EVENTS_DEFAULT_BYTES && pl.kernelMemoryBytes < 2 * 1024 * 1024, `${pl.kernelMemoryBytes} bytes`);
  assert.ok(pl.maps.some((m) => m.name === 'kprobes[0]:th_pol_tasks'));
});

test('seed policy with kprobes: kprobe on the x86_64 wrapper, no fallback', () => {
  const h = plan(parse(SEED), features({ kprobe: true })).hooks[0];
  assert.equal(h.attachedAs, 'kprobe __x64_sys_execve');
  assert.equal(h.fallback, undefined);
});

const OVERRIDE = (call: string, sigkill: boolean): string => `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "ovr"}
spec:
  kprobes:
  - call: "${call}"
    syscall: ${call.startsWith('sys_')}
    args: [{index: 0, type: "file"}]
    selectors:
    - matchActions: [{action: Override, argError: -1}${sigkill ? ', {action: Sigkill}' : ''}]
`;

test('Override on the syscall tracepoint fallback is reported as not enforced; strict refuses it', { skip: tracefs }, () => {
  const p = parse(OVERRIDE('sys_openat', true).replace('type: "file"', 'type: "int"'));
  const pl = plan(p, features());
  const a = pl.hooks[0].actions.find((x) => x.startsWith('Override'))!;
  assert.match(a, /NOT enforced/);
  assert.match(a, /Sigkill in the same selector still kills the caller/);
  assert.deepEqual(pl.errors, []);
  assert.match(plan(p, features(), true).errors.join(), /Override cannot be enforced.*strict/);
  // with kprobes and bpf_override_return
  const k = plan(p, features({ kprobe: true, override: true })).hooks[0];
  assert.match(k.actions.join(), /Override -1: bpf_override_return on the syscall entry/);
  // with kprobes, without the helper (Debian 6.1/6.12)
  assert.match(plan(p, features({ kprobe: true })).hooks[0].actions.join(), /NOT enforced — bpf_override_return is not available/);
});

test('security_* kprobes: BPF-LSM when it is active and Override is asked, kprobe otherwise, unsupported here', () => {
  const p = parse(OVERRIDE('security_file_open', false));
  const here = plan(p, features()).hooks[0];
  assert.equal(here.state, 'unsupported');
  assert.match(here.reason!, /kprobes are not built into this kernel and BPF-LSM is not usable/);
  const vm = plan(p, features({ kprobe: true, lsm: true })).hooks[0];
  assert.equal(vm.attachedAs, 'lsm file_open');
  assert.match(vm.actions.join(), /Override -1: BPF-LSM return value/);
  const noOverride = parse(OVERRIDE('security_file_open', false).replace(/    - matchActions.*\n/, '    - matchArgs: [{index: 0, operator: Prefix, values: ["/etc/"]}]\n'));
  const kp = plan(noOverride, features({ kprobe: true, lsm: true })).hooks[0];
  assert.equal(kp.attachedAs, 'kprobe security_file_open');
  assert.deepEqual(kp.inKernel, ['matchArgs[0] Prefix']);
});

test('lsmhooks: unsupported with the reason where BPF-LSM is refused; lsm program where active', () => {
  const p = parse(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "lsm"}
spec:
  lsmhooks:
  - hook: "file_open"
  - hook: "inode_rename"
`);
  const here = plan(p, features());
  assert.equal(here.hooks[0].state, 'unsupported');
  assert.match(here.hooks[0].reason!, /BPF-LSM programs cannot attach here: BPF-LSM refused/);
  assert.match(plan(p, features(), true).errors.join(), /lsmhooks\[0\].*unsupported.*strict/);
  const vm = plan(p, features({ kprobe: true, lsm: true }));
  assert.equal(vm.hooks[0].attachedAs, 'lsm file_open');
  assert.equal(vm.hooks[1].state, 'unsupported');
  assert.match(vm.hooks[1].reason!, /no BPF-LSM program for hook inode_rename/);
});

test('selectors not evaluated in the kernel make the hook unsupported, with the reason', () => {
  const ns = parse(SEED.replace('    - matchBinaries', '    - matchNamespaces: [{namespace: Pid, operator: In, values: ["host_ns"]}]\n      matchBinaries'));
  const h = plan(ns, features({ kprobe: true })).hooks[0];
  assert.equal(h.state, 'unsupported');
  assert.match(h.reason!, /matchNamespaces is not evaluated in the kernel/);
  const p = parse(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "lim"}
spec:
  kprobes:
  - call: "sys_umask"
    syscall: true
    args: [{index: 0, type: "int"}]
    selectors:
    - matchArgs: [{index: 0, operator: InRange, values: ["1:5"]}]
`);
  const pl = plan(p, features({ kprobe: true }));
  assert.match(pl.hooks[0].reason!, /operator InRange on an integer arg is not evaluated/);
});

test('codecs: integer values as Go ParseInt base 0, string keys, binary semantics, args area decoding', () => {
  assert.equal(parseIntValue('0o27'), 23n);
  assert.equal(parseIntValue('027'), 23n);
  assert.equal(parseIntValue('0x1F'), 31n);
  assert.equal(parseIntValue('-1'), 0xffffffffffffffffn);
  assert.throws(() => parseIntValue('ten'), /not an integer/);
  const eq = strKey('th_pol_str_eq', 7, '/bin/sh');
  assert.equal(eq.length, 4 + L.TH_POL_STR_LEN);
  assert.equal(eq.readUInt32LE(0), 7);
  assert.equal(eq.subarray(4, 11).toString(), '/bin/sh');
  const post = strKey('th_pol_str_post', 3, 'abc');
  assert.equal(post.readUInt32LE(0), 32 + 24);
  assert.equal(post.subarray(8, 11).toString(), 'cba');
  assert.throws(() => strKey('th_pol_str_pre', 1, 'x'.repeat(300)), /longer than 247 bytes/);
  assert.equal(binaryMatches('NotPostfix', ['sh'], '/bin/bash'), false);
  assert.equal(binaryMatches('Prefix', ['/usr/'], '/usr/bin/x'), true);
  const area = Buffer.alloc(64);
  area.writeBigInt64LE(-5n, 0);
  area.writeUInt32LE(3 | L.TH_IF_TRUNC, 8);
  area.write('abc', 12);
  const args = decodeArgs(area, [{ kind: L.TH_PA_INT, render: 'int', label: 'fd' }, { kind: L.TH_PA_FILE, render: 'file' }]);
  assert.deepEqual(args, [{ t: 'int', v: -5, label: 'fd' }, { t: 'file', path: 'abc', truncated: true }]);
});

test('tracepoint formats: every field counted, common ones included', () => {
  const f = parseFormat(`format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;
	field:__data_loc char[] filename;	offset:8;	size:4;	signed:0;
	field:char comm[16];	offset:12;	size:16;	signed:0;
	field:const char * pathname;	offset:32;	size:8;	signed:0;`);
  assert.deepEqual(f.map((x) => [x.name, x.offset, x.dataLoc, x.array, x.pointer]), [
    ['common_type', 0, false, false, false], ['common_pid', 4, false, false, false], ['filename', 8, true, false, false],
    ['comm', 12, false, true, false], ['pathname', 32, false, false, true],
  ]);
});
