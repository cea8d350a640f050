import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCompact } from './compact';
import { encodeEvent } from './encode';
import { eventToTetragonJson } from './json';
import { decodeTetragonResponseJson } from './protojson';
import { tetragonTypes } from './protos';
import { dnsEvent, dnsResponse, fileEvent, netEvent, syscallEvent } from './sensorkit';
import { example61, makeExec, makeExit, makeProcess, xwingPod } from './testkit';

test('wire bytes → protojson equals the JSON built from the model', () => {
  const parent = makeProcess({ pid: 1, binary: '/sbin/init', flags: 'procFS' });
  const p = makeProcess({ parentExecId: parent.execId, pod: xwingPod(), refcnt: 3, flags: 'execve inInitTree' });
  const zero = makeProcess({ pid: 0, tid: 0, auid: 0, creds: { uid: 0, gid: 0, euid: 0, egid: 0 }, cwd: '' });
  for (const ev of [example61(), makeExec(p, parent), makeExec(zero), makeExit(p, 0, 'SIGKILL', parent), makeExit(p, 9, '')]) {
    assert.deepEqual(decodeTetragonResponseJson(encodeEvent(ev)), JSON.parse(JSON.stringify(eventToTetragonJson(ev))));
  }
});

test('kprobe events: oneof zero values, enums, 64-bit strings, wrappers (the §6.1 kprobe tail)', () => {
  const bytes = tetragonTypes()
    .GetEventsResponse.encode({
      process_kprobe: {
        process: { exec_id: 'eA==', pid: { value: 7 }, uid: { value: 0 }, binary: '/usr/bin/cat' },
        function_name: 'security_file_permission',
        args: [{ file_arg: { path: '/etc/passwd', permission: '-rw-r--r--' } }, { int_arg: 4 }, { size_arg: 1024 }],
        return: { int_arg: 0 },
        action: 1,
        policy_name: 'file-monitoring',
        return_action: 1,
      },
      node_name: 'n1',
      time: { seconds: 1696629837, nanos: 700000000 },
    })
    .finish();
  const j = decodeTetragonResponseJson(bytes);
  assert.deepEqual(j, {
    process_kprobe: {
      process: { exec_id: 'eA==', pid: 7, uid: 0, binary: '/usr/bin/cat' },
      function_name: 'security_file_permission',
      args: [{ file_arg: { path: '/etc/passwd', permission: '-rw-r--r--' } }, { int_arg: 4 }, { size_arg: '1024' }],
      return: { int_arg: 0 },
      action: 'KPROBE_ACTION_POST',
      policy_name: 'file-monitoring',
      return_action: 'KPROBE_ACTION_POST',
    },
    node_name: 'n1',
    time: '2023-10-06T22:03:57.700Z',
  });
  assert.equal(formatCompact(j, { color: false, timestamps: false }), '📚 read    n1 /usr/bin/cat /etc/passwd');
});

test('sensor events: wire bytes → protojson equals the JSON built from the model', () => {
  const parent = makeProcess({ pid: 1, binary: '/sbin/init' });
  const p = makeProcess({ pod: xwingPod(), parentExecId: parent.execId });
  const evs = [
    fileEvent({}, p, parent),
    fileEvent({ ret: -13, truncated: true, mode: 0o644, flags: 0o100 }),
    fileEvent({ op: 'close', syscall: 'close', ret: 0, bytesRead: 0, bytesWritten: 0 }),
    fileEvent({ syscall: '', ret: 9, bytesRead: 3, bytesWritten: 4 }),
    fileEvent({ op: 'chown', syscall: 'chown', uid: 0, gid: 0, ret: 0 }),
    fileEvent({ op: 'mount', syscall: 'mount', path: '', path2: '/mnt', ret: 0 }),
    netEvent({}, p, parent),
    netEvent({ op: 'close', state: 'TCP_FIN_WAIT2', bytesSent: 0, bytesReceived: 2 ** 33, socketCookie: 0n }),
    netEvent({ op: 'receive', protocol: 'udp', family: 6, saddr: '::1', daddr: '::1', state: undefined, direction: 'ingress' }),
    dnsEvent({}, p),
    dnsResponse(),
    syscallEvent({}, p, parent),
    syscallEvent({ args: [2n ** 64n - 1n, 0n, 0n, 0n, 0n, 0n], ret: -1 }),
    syscallEvent({ count: 7, args: [], ret: undefined }),
  ];
  for (const ev of evs) {
    assert.deepEqual(decodeTetragonResponseJson(encodeEvent(ev)), JSON.parse(JSON.stringify(eventToTetragonJson(ev))), ev.kind);
  }
});
