// Policy events on the Tetragon API: process_kprobe / process_tracepoint /
// process_lsm JSON (golden), protobuf bytes that decode to the same JSON,
// compact lines as tetra prints them, and the policy_names / event_set filters.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PolicyEvent } from '../../model/event';
import { formatCompact } from './compact';
import { encodeEvent, encodeEventUncached, encodeResponse, eventToProto } from './encode';
import { compileEventFilter } from './filter';
import { eventToTetragonJson } from './json';
import { decodeTetragonResponseJson } from './protojson';
import { EventType, tetragonTypes } from './protos';
import { policyEvent } from './sensorkit';
import { makeProcess } from './testkit';

const plain = { color: false, timestamps: false };

function everyArg(): PolicyEvent {
  return policyEvent({
    functionName: 'security_bprm_check',
    args: [
      { t: 'int', v: -1 },
      { t: 'uint', v: 0 },
      { t: 'size', v: 2n ** 64n - 1n },
      { t: 'long', v: -5n },
      { t: 'string', v: '/etc/shadow', label: 'path' },
      { t: 'bytes', v: Uint8Array.from([0, 1, 2, 255]) },
      { t: 'bytes', v: Uint8Array.from([104, 105]), truncated: true },
      { t: 'file', path: '/etc/passwd', permission: '-rw-r--r--', flags: 'O_RDONLY' },
      { t: 'path', path: '/very/long', truncated: true },
      { t: 'sock', sock: { family: 'AF_INET', type: 'SOCK_STREAM', protocol: 'IPPROTO_TCP', saddr: '10.0.0.1', daddr: '10.0.1.5', sport: 40000, dport: 5432, cookie: 2n ** 63n, state: 'TCP_SYN_SENT' } },
      { t: 'sockaddr', family: 'AF_INET6', addr: 'fd00::5', port: 443 },
      { t: 'cred', uid: 0, gid: 0, euid: 1000, egid: 1000 },
      { t: 'capability', value: 21, name: 'CAP_SYS_ADMIN' },
      { t: 'linux_binprm', path: '/usr/bin/su' },
    ],
    ret: { t: 'int', v: -13 },
    action: 'override',
    returnAction: 'post',
    message: 'exec of a setuid binary',
    tags: ['privesc', 'cis'],
    policyName: 'bprm',
  });
}

test('process_kprobe JSON with every argument type (golden)', () => {
  const j = eventToTetragonJson(everyArg());
  const kp = j.process_kprobe!;
  assert.ok(kp.process?.exec_id);
  const { process: _p, ...rest } = kp;
  assert.deepEqual(JSON.parse(JSON.stringify(rest)), {
    function_name: 'security_bprm_check',
    args: [
      { int_arg: -1 },
      { uint_arg: 0 },
      { size_arg: '18446744073709551615' },
      { long_arg: '-5' },
      { string_arg: '/etc/shadow', label: 'path' },
      { bytes_arg: 'AAEC/w==' },
      { truncated_bytes_arg: { bytes_arg: 'aGk=' } },
      { file_arg: { path: '/etc/passwd', flags: 'O_RDONLY', permission: '-rw-r--r--' } },
      { path_arg: { path: '/very/long', flags: 'unresolvedPathComponents' } },
      { sock_arg: { family: 'AF_INET', type: 'SOCK_STREAM', protocol: 'IPPROTO_TCP', saddr: '10.0.0.1', daddr: '10.0.1.5', sport: 40000, dport: 5432, cookie: '9223372036854775808', state: 'TCP_SYN_SENT' } },
      { sockaddr_arg: { family: 'AF_INET6', addr: 'fd00::5', port: 443 } },
      { process_credentials_arg: { uid: 0, gid: 0, euid: 1000, egid: 1000 } },
      { capability_arg: { value: 21, name: 'CAP_SYS_ADMIN' } },
      { linux_binprm_arg: { path: '/usr/bin/su' } },
    ],
    return: { int_arg: -13 },
    action: 'KPROBE_ACTION_OVERRIDE',
    policy_name: 'bprm',
    return_action: 'KPROBE_ACTION_POST',
    message: 'exec of a setuid binary',
    tags: ['privesc', 'cis'],
  });
  assert.equal(j.node_name, 'mynode');
});

test('syscall kprobes get the x86_64 symbol; actions map to the KprobeAction names', () => {
  const names: [PolicyEvent['action'], string][] = [
    ['post', 'KPROBE_ACTION_POST'],
    ['nopost', 'KPROBE_ACTION_NOPOST'],
    ['sigkill', 'KPROBE_ACTION_SIGKILL'],
    ['signal', 'KPROBE_ACTION_SIGNAL'],
    ['override', 'KPROBE_ACTION_OVERRIDE'],
    ['notify_enforcer', 'KPROBE_ACTION_NOTIFYENFORCER'],
  ];
  for (const [action, name] of names) {
    const kp = eventToTetragonJson(policyEvent({ functionName: 'sys_execve', action })).process_kprobe!;
    assert.equal(kp.function_name, '__x64_sys_execve');
    assert.equal(kp.action, name);
    assert.equal(kp.return_action, undefined, 'no return value, no return action');
  }
  // A symbol written with its prefix stays as written.
  assert.equal(eventToTetragonJson(policyEvent({ functionName: '__x64_sys_execve' })).process_kprobe!.function_name, '__x64_sys_execve');
});

test('process_tracepoint and process_lsm bodies', () => {
  const tp = eventToTetragonJson(policyEvent({ hook: 'tracepoint', functionName: '', subsys: 'syscalls', event: 'sys_enter_openat', args: [{ t: 'long', v: 257n }], action: 'sigkill', tags: ['t'] }));
  const { process: _a, ...tpRest } = tp.process_tracepoint!;
  assert.deepEqual(JSON.parse(JSON.stringify(tpRest)), { subsys: 'syscalls', event: 'sys_enter_openat', args: [{ long_arg: '257' }], policy_name: 'file-watch', action: 'KPROBE_ACTION_SIGKILL', tags: ['t'] });
  const lsm = eventToTetragonJson(policyEvent({ hook: 'lsm', functionName: 'file_open', args: [{ t: 'file', path: '/etc/shadow' }], action: 'override', message: 'no' }));
  assert.equal(lsm.process_kprobe, undefined);
  const { process: _b, ...lsmRest } = lsm.process_lsm!;
  assert.deepEqual(JSON.parse(JSON.stringify(lsmRest)), { function_name: 'file_open', policy_name: 'file-watch', message: 'no', args: [{ file_arg: { path: '/etc/shadow' } }], action: 'KPROBE_ACTION_OVERRIDE' });
});

function samples(): PolicyEvent[] {
  const parent = makeProcess({ pid: 1, binary: '/sbin/init' });
  return [
    everyArg(),
    policyEvent({}, undefined, parent),
    policyEvent({ functionName: 'sys_execve', args: [{ t: 'string', v: '' }, { t: 'bytes', v: new Uint8Array(0) }, { t: 'bytes', v: new Uint8Array(0), truncated: true }], action: 'sigkill' }),
    policyEvent({ hook: 'tracepoint', subsys: 'sched', event: 'sched_process_fork', args: [], action: 'nopost' }),
    policyEvent({ hook: 'lsm', functionName: 'bprm_check_security', args: [{ t: 'linux_binprm', path: '' }, { t: 'sockaddr', family: '', addr: '', port: 0 }, { t: 'capability', value: 0, name: '' }] }, undefined, parent),
    policyEvent({ hook: 'uprobe', subsys: '/bin/bash', functionName: 'readline', args: [], tags: ['shell'], message: 'm' }),
  ];
}

test('protobuf bytes decode to the same JSON; the assembled encoding equals the plain-object one', () => {
  for (const ev of samples()) {
    const what = `${ev.hook} ${ev.functionName}`;
    assert.deepEqual(Buffer.from(encodeEventUncached(ev)), Buffer.from(encodeResponse(eventToProto(ev))), what);
    assert.deepEqual(decodeTetragonResponseJson(encodeEvent(ev)), JSON.parse(JSON.stringify(eventToTetragonJson(ev))), what);
  }
  // Field numbers: process_lsm is oneof member 28, its action field 8.
  const lsm = samples()[4];
  const decoded = tetragonTypes().GetEventsResponse.decode(encodeEvent({ ...lsm, wire: new Map() })) as unknown as Record<string, unknown>;
  assert.ok(decoded.process_lsm, 'process_lsm set');
  const bytes = Buffer.from(encodeEventUncached(lsm));
  assert.equal(bytes[0], (((28 << 3) | 2) & 0x7f) | 0x80, 'first byte: tag of field 28 (varint, low 7 bits)');
});

test('compact lines as tetra prints kprobe, tracepoint and LSM events', () => {
  const p = makeProcess({ binary: '/bin/sh', arguments: '-c true' });
  const line = (ev: PolicyEvent): string => formatCompact(eventToTetragonJson(ev), plain);
  assert.equal(line(policyEvent({}, p)), '📬️ openat  mynode /bin/sh /etc/passwd');
  assert.equal(line(policyEvent({ functionName: 'sys_execve', args: [{ t: 'string', v: '/bin/true' }] }, p)), '❓ syscall mynode /bin/sh __x64_sys_execve');
  assert.equal(line(policyEvent({ functionName: 'tcp_connect', args: [{ t: 'sock', sock: { family: 'AF_INET', type: 'SOCK_STREAM', protocol: 'IPPROTO_TCP', saddr: '10.0.0.1', daddr: '10.0.1.5', sport: 40000, dport: 5432 } }] }, p)), '🔌 connect mynode /bin/sh tcp 10.0.0.1:40000 -> 10.0.1.5:5432');
  assert.equal(line(policyEvent({ hook: 'tracepoint', subsys: 'syscalls', event: 'sys_enter_openat', args: [] }, p)), '⁉️ tracepoint mynode /bin/sh syscalls sys_enter_openat');
  assert.equal(line(policyEvent({ hook: 'lsm', functionName: 'file_open', args: [] }, p)), '🔒 LSM     mynode /bin/sh file_open');
});

test('filters: policy_names and event_set select policy events by hook', () => {
  const kp = policyEvent({ policyName: 'a' });
  const tp = policyEvent({ hook: 'tracepoint', subsys: 's', event: 'e', policyName: 'b' });
  const lsm = policyEvent({ hook: 'lsm', functionName: 'file_open', policyName: 'c' });
  const pass = (req: object, ev: PolicyEvent): boolean => compileEventFilter(req)(ev);
  assert.equal(pass({ allow_list: [{ policy_names: ['a'] }] }, kp), true);
  assert.equal(pass({ allow_list: [{ policy_names: ['a'] }] }, tp), false);
  assert.equal(pass({ deny_list: [{ policy_names: ['c'] }] }, lsm), false);
  assert.equal(pass({ allow_list: [{ event_set: [EventType.PROCESS_KPROBE] }] }, kp), true);
  assert.equal(pass({ allow_list: [{ event_set: [EventType.PROCESS_KPROBE] }] }, tp), false);
  assert.equal(pass({ allow_list: [{ event_set: [EventType.PROCESS_TRACEPOINT] }] }, tp), true);
  assert.equal(pass({ allow_list: [{ event_set: [EventType.PROCESS_LSM] }] }, lsm), true);
  assert.equal(pass({ allow_list: [{ event_set: [EventType.PROCESS_LSM] }] }, kp), false);
});
