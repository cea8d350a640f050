import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errnoName, eventToTetragonJson, formatResult, formatTimestamp, openFlagNames } from './json';
import { dnsEvent, dnsResponse, fileEvent, netEvent, syscallEvent } from './sensorkit';
import { EXAMPLE_61_JSON, example61, makeExec, makeExecId, makeExit, makeProcess } from './testkit';

test('process_exec JSON equals the §6.1 example (parsed)', () => {
  const got = eventToTetragonJson(example61());
  assert.deepEqual(JSON.parse(JSON.stringify(got)), JSON.parse(EXAMPLE_61_JSON));
});

test('exec_id example from §4 round-trips', () => {
  assert.equal(makeExecId('mynode', 1234567890n, 42), 'bXlub2RlOjEyMzQ1Njc4OTA6NDI=');
  assert.equal(Buffer.from('bXlub2RlOjEyMzQ1Njc4OTA6NDI=', 'base64').toString(), 'mynode:1234567890:42');
  assert.equal(
    Buffer.from('Z2tlLWpvaG4tNjMyLWRlZmF1bHQtcG9vbC03MDQxY2FjMC05czk1OjEzNTQ4Njc0MzIxMzczOjUyNjk5', 'base64').toString(),
    'gke-john-632-default-pool-7041cac0-9s95:13548674321373:52699',
  );
});

test('formatTimestamp trims the fraction to 0/3/6/9 digits', () => {
  const sec = Date.parse('2023-10-06T22:03:57Z') / 1000;
  assert.equal(formatTimestamp({ sec, nsec: 0 }), '2023-10-06T22:03:57Z');
  assert.equal(formatTimestamp({ sec, nsec: 700_000_000 }), '2023-10-06T22:03:57.700Z');
  assert.equal(formatTimestamp({ sec, nsec: 1_000_000 }), '2023-10-06T22:03:57.001Z');
  assert.equal(formatTimestamp({ sec, nsec: 700_327_000 }), '2023-10-06T22:03:57.700327Z');
  assert.equal(formatTimestamp({ sec, nsec: 700_327_580 }), '2023-10-06T22:03:57.700327580Z');
  assert.equal(formatTimestamp({ sec, nsec: 5 }), '2023-10-06T22:03:57.000000005Z');
  assert.equal(formatTimestamp({ sec: 0, nsec: 0 }), '1970-01-01T00:00:00Z');
});

test('wrappers print when zero, empty strings and pods are omitted', () => {
  const p = makeProcess({ pid: 0, tid: 0, auid: 0, creds: { uid: 0, gid: 0, euid: 0, egid: 0 }, cwd: '', arguments: '', flags: '', parentExecId: '' });
  const j = eventToTetragonJson(makeExec(p));
  const proc = j.process_exec?.process;
  assert.ok(proc);
  assert.equal(proc.pid, 0);
  assert.equal(proc.uid, 0);
  assert.equal(proc.auid, 0);
  assert.equal(proc.tid, 0);
  for (const k of ['cwd', 'arguments', 'flags', 'parent_exec_id', 'pod', 'docker', 'refcnt', 'in_init_tree']) {
    assert.equal(k in proc, false, k);
  }
  assert.equal('parent' in (j.process_exec ?? {}), false);
});

test('uid is the effective uid; in_init_tree and refcnt appear when set', () => {
  const p = makeProcess({ creds: { uid: 1000, gid: 1000, euid: 0, egid: 0 }, flags: 'execve inInitTree', refcnt: 2 });
  const proc = eventToTetragonJson(makeExec(p)).process_exec?.process;
  assert.equal(proc?.uid, 0);
  assert.equal(proc?.in_init_tree, true);
  assert.equal(proc?.refcnt, 2);
});

test('process_exit carries signal/status/time and the envelope', () => {
  const parent = makeProcess({ pid: 1, binary: '/bin/sh' });
  const p = makeProcess({ parentExecId: parent.execId });
  const t = { sec: 1696629840, nsec: 123000000 };
  const killed = eventToTetragonJson(makeExit(p, 0, 'SIGKILL', parent, 'n1', t));
  assert.deepEqual(Object.keys(killed), ['process_exit', 'node_name', 'time']);
  assert.equal(killed.node_name, 'n1');
  assert.equal(killed.time, '2023-10-06T22:04:00.123Z');
  assert.equal(killed.process_exit?.signal, 'SIGKILL');
  assert.equal('status' in (killed.process_exit ?? {}), false);
  assert.equal(killed.process_exit?.time, '2023-10-06T22:04:00.123Z');
  assert.equal(killed.process_exit?.parent?.binary, '/bin/sh');
  const failed = eventToTetragonJson(makeExit(p, 3, '', undefined, 'n1', t));
  assert.equal(failed.process_exit?.status, 3);
  assert.equal('signal' in (failed.process_exit ?? {}), false);
  assert.equal('parent' in (failed.process_exit ?? {}), false);
});

// ---------------------------------------------------------------- sensor events

test('file open → process_kprobe fd_install with the file, its flags and the syscall result', () => {
  const parent = makeProcess({ pid: 1, binary: '/bin/sh' });
  const j = eventToTetragonJson(fileEvent({ flags: 0o1101, mode: 0o640, ret: 3 }, undefined, parent));
  assert.deepEqual(Object.keys(j), ['process_kprobe', 'node_name', 'time']);
  const kp = j.process_kprobe!;
  assert.equal(kp.process?.binary, '/usr/bin/cat');
  assert.equal(kp.parent?.binary, '/bin/sh');
  assert.equal(kp.function_name, 'fd_install');
  assert.deepEqual(kp.args, [
    { int_arg: 3, label: 'fd' },
    { file_arg: { path: '/etc/passwd' } },
    { string_arg: 'O_WRONLY|O_CREAT|O_TRUNC', label: 'flags' },
    { uint_arg: 0o640, label: 'mode' },
  ]);
  assert.deepEqual(kp.return, { int_arg: 3 });
  assert.equal(kp.action, 'KPROBE_ACTION_POST');
  assert.equal(kp.return_action, 'KPROBE_ACTION_POST');
  assert.equal(kp.policy_name, 'tetrahub-file');
  assert.equal(j.node_name, 'mynode');
  assert.equal(j.time, '2023-10-06T22:03:57.700Z');
});

test('file ops map to the LSM hooks / syscalls of the table in json.ts', () => {
  const kp = (over: Parameters<typeof fileEvent>[0]) => eventToTetragonJson(fileEvent({ ret: 0, ...over })).process_kprobe!;
  const close = kp({ op: 'close', syscall: 'close', bytesRead: 10, bytesWritten: 0 });
  assert.equal(close.function_name, '__x64_sys_close');
  assert.deepEqual(close.args, [{ file_arg: { path: '/etc/passwd' } }, { size_arg: '10', label: 'bytes_read' }, { size_arg: '0', label: 'bytes_written' }]);
  const write = kp({ syscall: '', ret: 4, bytesRead: 1, bytesWritten: 99 });
  assert.equal(write.function_name, '__x64_sys_write');
  assert.deepEqual(write.args?.[2], { size_arg: '99', label: 'bytes_written' });
  const read = kp({ syscall: '', ret: 4, bytesRead: 7, bytesWritten: 0 });
  assert.equal(read.function_name, '__x64_sys_read');
  assert.deepEqual(read.args?.[2], { size_arg: '7', label: 'bytes_read' });
  assert.deepEqual(kp({ op: 'unlink', syscall: 'unlinkat' }), { ...kp({ op: 'unlink', syscall: 'unlinkat' }), function_name: 'security_path_unlink', args: [{ path_arg: { path: '/etc/passwd' } }] });
  const rename = kp({ op: 'rename', syscall: 'renameat2', path: '/a', path2: '/b' });
  assert.equal(rename.function_name, 'security_path_rename');
  assert.deepEqual(rename.args, [{ path_arg: { path: '/a' } }, { path_arg: { path: '/b' } }]);
  const sym = kp({ op: 'symlink', syscall: 'symlinkat', path: '/etc/hosts', path2: '/tmp/l' });
  assert.deepEqual(sym.args, [{ path_arg: { path: '/tmp/l' } }, { string_arg: '/etc/hosts', label: 'target' }]);
  assert.deepEqual(kp({ op: 'chmod', syscall: 'chmod', mode: 0o755 }).args, [{ path_arg: { path: '/etc/passwd' } }, { uint_arg: 0o755, label: 'mode' }]);
  assert.deepEqual(kp({ op: 'chown', syscall: 'chown', uid: 0, gid: 0xffffffff }).args, [
    { path_arg: { path: '/etc/passwd' } },
    { uint_arg: 0, label: 'uid' },
    { uint_arg: 4294967295, label: 'gid' },
  ]);
  assert.equal(kp({ op: 'truncate', syscall: 'truncate' }).function_name, 'security_path_truncate');
  assert.equal(kp({ op: 'mkdir', syscall: 'mkdir', mode: 0o700 }).function_name, 'security_path_mkdir');
  assert.equal(kp({ op: 'rmdir', syscall: 'rmdir' }).function_name, 'security_path_rmdir');
  assert.equal(kp({ op: 'link', syscall: 'linkat', path2: '/x' }).function_name, 'security_path_link');
  const mount = kp({ op: 'mount', syscall: 'mount', path: 'tmpfs', path2: '/mnt', flags: 0 });
  assert.equal(mount.function_name, '__x64_sys_mount');
  assert.deepEqual(mount.args, [{ string_arg: 'tmpfs', label: 'source' }, { string_arg: '/mnt', label: 'target' }, { int_arg: 0, label: 'flags' }]);
  assert.equal(kp({ op: 'umount', syscall: 'umount2', flags: 2 }).function_name, 'security_sb_umount');
  // A path the sensor could not resolve whole carries Tetragon's flag; failures show in return.
  const cut = kp({ op: 'unlink', syscall: 'unlink', truncated: true, ret: -2 });
  assert.deepEqual(cut.args, [{ path_arg: { path: '/etc/passwd', flags: 'unresolvedPathComponents' } }]);
  assert.deepEqual(cut.return, { int_arg: -2 });
});

test('TCP connect → process_kprobe tcp_connect with a sock_arg (64-bit cookie as a string)', () => {
  const kp = eventToTetragonJson(netEvent()).process_kprobe!;
  assert.equal(kp.function_name, 'tcp_connect');
  assert.deepEqual(kp.args, [
    {
      sock_arg: {
        family: 'AF_INET',
        type: 'SOCK_STREAM',
        protocol: 'IPPROTO_TCP',
        saddr: '10.0.0.1',
        daddr: '10.0.0.2',
        sport: 51234,
        dport: 443,
        cookie: '8193',
        state: 'TCP_SYN_SENT',
      },
    },
  ]);
  assert.deepEqual(kp.return, { int_arg: 0 });
  assert.equal(kp.policy_name, 'tetrahub-net');
  assert.equal(kp.action, 'KPROBE_ACTION_POST');
});

test('net ops: close with bytes, accept, listen, UDP send/receive, IPv6', () => {
  const kp = (over: Parameters<typeof netEvent>[0]) => eventToTetragonJson(netEvent(over)).process_kprobe!;
  const close = kp({ op: 'close', state: 'TCP_FIN_WAIT1', bytesSent: 1234, bytesReceived: 5678 });
  assert.equal(close.function_name, 'tcp_close');
  assert.deepEqual(close.args?.slice(1), [{ size_arg: '1234', label: 'bytes_sent' }, { size_arg: '5678', label: 'bytes_received' }]);
  assert.equal(close.return, undefined);
  assert.equal(close.return_action, undefined);
  assert.equal(kp({ op: 'accept', direction: 'ingress' }).function_name, 'inet_csk_accept');
  const listen = kp({ op: 'listen', direction: 'ingress', daddr: '0.0.0.0', dport: 0, state: 'TCP_LISTEN' });
  assert.equal(listen.function_name, 'inet_csk_listen_start');
  assert.deepEqual(listen.args?.[0].sock_arg, { family: 'AF_INET', type: 'SOCK_STREAM', protocol: 'IPPROTO_TCP', saddr: '10.0.0.1', daddr: '0.0.0.0', sport: 51234, cookie: '8193', state: 'TCP_LISTEN' });
  const send = kp({ op: 'send', protocol: 'udp', state: undefined, bytesSent: 40, packets: 2 });
  assert.equal(send.function_name, 'udp_sendmsg');
  assert.deepEqual(send.args, [
    { sock_arg: { family: 'AF_INET', type: 'SOCK_DGRAM', protocol: 'IPPROTO_UDP', saddr: '10.0.0.1', daddr: '10.0.0.2', sport: 51234, dport: 443, cookie: '8193' } },
    { size_arg: '40', label: 'bytes' },
    { uint_arg: 2, label: 'packets' },
  ]);
  assert.equal(kp({ op: 'receive', protocol: 'udp', family: 6, saddr: '::1', daddr: '::1', state: undefined }).function_name, 'udpv6_recvmsg');
  assert.equal(kp({ protocol: 'udp', state: undefined }).function_name, 'ip4_datagram_connect');
});

test('DNS → process_kprobe dns_query / dns_response (policy tetrahub-dns, Cilium summary in message)', () => {
  const q = eventToTetragonJson(dnsEvent()).process_kprobe!;
  assert.equal(q.function_name, 'dns_query');
  assert.equal(q.policy_name, 'tetrahub-dns');
  assert.deepEqual(q.args, [
    { sock_arg: { family: 'AF_INET', type: 'SOCK_DGRAM', protocol: 'IPPROTO_UDP', saddr: '10.0.0.1', daddr: '10.0.0.53', sport: 40000, dport: 53 } },
    { string_arg: 'example.com.', label: 'query' },
    { string_arg: 'A', label: 'qtypes' },
    { int_arg: 0x1234, label: 'id' },
  ]);
  assert.equal(q.message, 'DNS Query example.com. A');
  const r = eventToTetragonJson(dnsResponse()).process_kprobe!;
  assert.equal(r.function_name, 'dns_response');
  assert.deepEqual(r.args?.slice(4), [
    { int_arg: 0, label: 'rcode' },
    { string_arg: 'example.com. 60 IN CNAME edge.example.net.', label: 'answer' },
    { string_arg: 'edge.example.net. 300 IN A 93.184.216.34', label: 'answer' },
    { string_arg: 'edge.example.net. 30 IN A 93.184.216.35', label: 'answer' },
    { size_arg: '1500000', label: 'latency_ns' },
  ]);
  assert.equal(r.message, 'DNS Answer "93.184.216.34,93.184.216.35" CNAMEs: "edge.example.net." TTL: 30 (Query example.com. A)');
  const bad = eventToTetragonJson(dnsEvent({ malformed: 'truncated name' })).process_kprobe!;
  assert.equal(bad.message, 'DNS Query example.com. A (malformed: truncated name)');
});

test('syscall → process_tracepoint raw_syscalls/sys_enter, id first then the raw args', () => {
  const j = eventToTetragonJson(syscallEvent({ args: [1n, 0xffffffffffffff9cn, 0n, 0n, 0n, 0n] }));
  assert.deepEqual(Object.keys(j), ['process_tracepoint', 'node_name', 'time']);
  const tp = j.process_tracepoint!;
  assert.equal(tp.subsys, 'raw_syscalls');
  assert.equal(tp.event, 'sys_enter');
  assert.deepEqual(tp.args, [
    { long_arg: '110' },
    { size_arg: '1' },
    { size_arg: '18446744073709551516' },
    { size_arg: '0' },
    { size_arg: '0' },
    { size_arg: '0' },
    { size_arg: '0' },
    { long_arg: '1234', label: 'return' },
  ]);
  assert.equal(tp.policy_name, 'tetrahub-syscall');
  assert.equal(tp.action, 'KPROBE_ACTION_POST');
  const count = eventToTetragonJson(syscallEvent({ count: 42, args: [], ret: undefined })).process_tracepoint!;
  assert.deepEqual(count.args, [{ long_arg: '110' }, { long_arg: '42', label: 'count' }]);
});

test('helpers: open flags, errno names, results', () => {
  assert.equal(openFlagNames(0), 'O_RDONLY');
  assert.equal(openFlagNames(0o2), 'O_RDWR');
  assert.equal(openFlagNames(0o4010001), 'O_WRONLY|O_SYNC');
  assert.equal(openFlagNames(0o20200002), 'O_RDWR|O_TMPFILE');
  assert.equal(openFlagNames(0o10000 | 0o200000), 'O_RDONLY|O_DSYNC|O_DIRECTORY');
  assert.equal(openFlagNames(0x80000000 | 0o2000000), 'O_RDONLY|O_CLOEXEC|0x80000000');
  assert.equal(formatResult(3), '= 3');
  assert.equal(formatResult(-2), '= -1 ENOENT');
  assert.equal(formatResult(-111), '= -1 ECONNREFUSED');
  assert.equal(errnoName(-9999), 'errno 9999');
});
