import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompactEncodeError, formatCompact, goQuote } from './compact';
import { eventToTetragonJson, type TetragonJsonEvent, type TetragonJsonKprobeArgument } from './json';
import { dnsEvent, dnsResponse, fileEvent, netEvent, syscallEvent } from './sensorkit';
import { example61, makeExec, makeExit, makeProcess, xwingPod } from './testkit';

const plain = { color: false, timestamps: false };

test('exec line: pod source, binary, arguments', () => {
  const ev: TetragonJsonEvent = {
    process_exec: { process: { binary: '/usr/bin/curl', arguments: 'cilium.io', pod: { namespace: 'kube-system', name: 'tetragon' } } },
  };
  assert.equal(formatCompact(ev, plain), '🚀 process kube-system/tetragon /usr/bin/curl cilium.io');
});

test('exec line: host process uses node_name; empty arguments keep the trailing space', () => {
  const ev: TetragonJsonEvent = { process_exec: { process: { binary: '/usr/bin/true' } }, node_name: 'my-node' };
  assert.equal(formatCompact(ev, plain), '🚀 process my-node /usr/bin/true ');
});

test('exit line: signal, or numeric status when no signal', () => {
  const proc = { binary: '/usr/bin/curl', arguments: 'cilium.io', pod: { namespace: 'kube-system', name: 'tetragon' } };
  assert.equal(
    formatCompact({ process_exit: { process: proc, signal: 'SIGKILL' } }, plain),
    '💥 exit    kube-system/tetragon /usr/bin/curl cilium.io SIGKILL',
  );
  assert.equal(formatCompact({ process_exit: { process: proc, status: 1 } }, plain), '💥 exit    kube-system/tetragon /usr/bin/curl cilium.io 1');
  assert.equal(formatCompact({ process_exit: { process: proc } }, plain), '💥 exit    kube-system/tetragon /usr/bin/curl cilium.io 0');
});

test('from the model: exec of §6.1 and an exit, byte for byte', () => {
  const ev = example61();
  assert.equal(
    formatCompact(eventToTetragonJson(ev), plain),
    '🚀 process default/xwing /usr/bin/curl https://ebpf.io/applications/#tetragon',
  );
  const host = makeProcess({ binary: '/bin/sleep', arguments: '10' });
  assert.equal(formatCompact(eventToTetragonJson(makeExit(host, 0, 'SIGTERM', undefined, 'node-1')), plain), '💥 exit    node-1 /bin/sleep 10 SIGTERM');
  assert.equal(formatCompact(eventToTetragonJson(makeExit(host, 2, '', undefined, 'node-1')), plain), '💥 exit    node-1 /bin/sleep 10 2');
});

test('strings with spaces or non-printables are Go-quoted', () => {
  const p = makeProcess({ binary: '/tmp/my tool', arguments: '-c "echo hi"' });
  assert.equal(
    formatCompact(eventToTetragonJson(makeExec(p, undefined, 'node-1')), plain),
    '🚀 process node-1 "/tmp/my tool" "-c \\"echo hi\\""',
  );
  assert.equal(goQuote('a\tb\x01\x7f\u00a0é\u{1F680}'), '"a\\tb\\x01\\x7f\\u00a0é\u{1F680}"');
  assert.equal(goQuote('\u200b'), '"\\u200b"');
});

test('timestamps: fixed 9-digit fraction before the line', () => {
  const ev: TetragonJsonEvent = { process_exec: { process: { binary: '/usr/bin/curl', arguments: 'cilium.io', pod: { namespace: 'kube-system', name: 'tetragon' } } } };
  assert.equal(formatCompact(ev, { color: false, timestamps: true }), '1970-01-01T00:00:00.000000000Z 🚀 process kube-system/tetragon /usr/bin/curl cilium.io');
  assert.equal(
    formatCompact({ ...ev, time: '2023-10-06T22:03:57.7Z' }, { color: false, timestamps: true }).slice(0, 31),
    '2023-10-06T22:03:57.700000000Z ',
  );
});

test('colors: ANSI like tetra, colored (empty) caps pad the line to column 120', () => {
  const ev: TetragonJsonEvent = { process_exec: { process: { binary: '/bin/ls', arguments: '-l' } }, node_name: 'n' };
  const line = formatCompact(ev, { color: true, timestamps: false });
  const body = '\x1b[34m🚀 process\x1b[0m \x1b[32mn\x1b[0m \x1b[35m/bin/ls\x1b[0m \x1b[36m-l\x1b[0m';
  const caps = '\x1b[35m\x1b[0m';
  const pad = 120 - Buffer.byteLength(body) - [...caps].length;
  assert.equal(line, body + ' ' + ' '.repeat(pad) + caps);
});

test('kprobe rows and the fallback', () => {
  const process = { binary: '/usr/bin/curl', pod: { namespace: 'kube-system', name: 'tetragon' } };
  const kp = (function_name: string, args: TetragonJsonKprobeArgument[] | undefined) =>
    formatCompact({ process_kprobe: { process, function_name, args } }, plain);
  assert.equal(kp('unhandled_function', undefined), '❓ syscall kube-system/tetragon /usr/bin/curl unhandled_function');
  assert.equal(kp('__x64_sys_write', [{ file_arg: { path: '/etc/password' } }, {}, { size_arg: '1234' }]), '📝 write   kube-system/tetragon /usr/bin/curl /etc/password 1234 bytes');
  assert.equal(kp('__x64_sys_write', undefined), '📝 write   kube-system/tetragon /usr/bin/curl  ');
  assert.equal(kp('fd_install', [{}, { file_arg: { path: '/etc/password' } }]), '📬 open    kube-system/tetragon /usr/bin/curl /etc/password');
  assert.equal(kp('__arm64_sys_openat', [{}, { string_arg: '/etc/hosts' }]), '📬️ openat  kube-system/tetragon /usr/bin/curl /etc/hosts');
  assert.equal(
    kp('tcp_sendmsg', [{ sock_arg: { saddr: '10.0.0.1', sport: 4000, daddr: '1.1.1.1', dport: 443 } }, { int_arg: 99 }]),
    '📤 sendmsg kube-system/tetragon /usr/bin/curl tcp 10.0.0.1:4000 -> 1.1.1.1:443 bytes 99',
  );
  assert.equal(kp('security_file_permission', [{ file_arg: { path: '/etc/passwd' } }, { int_arg: 4 }]), '📚 read    kube-system/tetragon /usr/bin/curl /etc/passwd');
  assert.equal(kp('security_mmap_file', [{ file_arg: { path: '/lib/x.so' } }, { uint_arg: 5 }]), '📝 mmap-rx kube-system/tetragon /usr/bin/curl /lib/x.so');
  assert.equal(
    kp('bpf_check', [{ bpf_attr_arg: { ProgType: 'BPF_PROG_TYPE_KPROBE', InsnCnt: 2048, ProgName: 'amazing-program' } }]),
    '🐝 bpf_load kube-system/tetragon /usr/bin/curl BPF_PROG_TYPE_KPROBE amazing-program instruction count 2048',
  );
  assert.equal(kp('__x64_sys_clock_settime', undefined), '⏰ clock_settime kube-system/tetragon /usr/bin/curl');
});

test('other kinds: throttle, tracepoint, lsm, test; errors like tetra', () => {
  assert.equal(formatCompact({ process_throttle: { type: 'THROTTLE_START', cgroup: '/kubepods/x' } }, plain), '🧬 throttle START /kubepods/x');
  assert.equal(
    formatCompact({ process_tracepoint: { process: { binary: '/bin/x' }, subsys: 'sched', event: 'sched_switch' }, node_name: 'n' }, plain),
    '⁉️ tracepoint n /bin/x sched sched_switch',
  );
  assert.equal(formatCompact({ process_lsm: { process: { binary: '/bin/x' }, function_name: 'file_open' }, node_name: 'n' }, plain), '🔒 LSM     n /bin/x file_open');
  assert.equal(formatCompact({ test: {} }, plain), 'TEST EVENT');
  assert.throws(() => formatCompact({ process_exec: {} }, plain), (e: unknown) => e instanceof CompactEncodeError && e.message === 'process field is not set');
  assert.throws(() => formatCompact({ rate_limit_info: {} }, plain), (e: unknown) => e instanceof CompactEncodeError && e.message === 'unknown event type');
  assert.throws(() => formatCompact({ node_name: 'n' }, plain), CompactEncodeError);
});

// ---------------------------------------------------------------- sensor events (json.ts table)

test('sensor events print with tetra\'s prefixes, byte for byte', () => {
  const line = (ev: Parameters<typeof eventToTetragonJson>[0]): string => formatCompact(eventToTetragonJson(ev), plain);
  const cat = makeProcess({ binary: '/usr/bin/cat', pod: xwingPod() });
  assert.equal(line(fileEvent({}, cat)), '📬 open    default/xwing /usr/bin/cat /etc/passwd');
  assert.equal(line(fileEvent()), '📬 open    mynode /usr/bin/cat /etc/passwd');
  assert.equal(line(fileEvent({ path: '/tmp/with space' })), '📬 open    mynode /usr/bin/cat "/tmp/with space"');
  assert.equal(line(fileEvent({ op: 'close', syscall: 'close', ret: 0, bytesRead: 1, bytesWritten: 2 })), '📪 close   mynode /usr/bin/cat /etc/passwd');
  assert.equal(line(fileEvent({ syscall: '', ret: 4, bytesRead: 1, bytesWritten: 2048 })), '📝 write   mynode /usr/bin/cat /etc/passwd 2048 bytes');
  assert.equal(line(fileEvent({ syscall: '', ret: 4, bytesRead: 512, bytesWritten: 0 })), '📚 read    mynode /usr/bin/cat /etc/passwd 512 bytes');
  assert.equal(line(fileEvent({ op: 'truncate', syscall: 'truncate', ret: 0 })), '📝 truncate mynode /usr/bin/cat /etc/passwd');
  assert.equal(line(fileEvent({ op: 'mount', syscall: 'mount', path: 'tmpfs', path2: '/mnt', ret: 0 })), '💾 mount   mynode /usr/bin/cat tmpfs /mnt');
  assert.equal(line(fileEvent({ op: 'unlink', syscall: 'unlinkat', ret: 0 })), '❓ syscall mynode /usr/bin/cat security_path_unlink');
  assert.equal(line(fileEvent({ op: 'rename', syscall: 'rename', path2: '/x', ret: 0 })), '❓ syscall mynode /usr/bin/cat security_path_rename');
  assert.equal(line(netEvent()), '🔌 connect mynode /usr/bin/curl tcp 10.0.0.1:51234 -> 10.0.0.2:443');
  assert.equal(line(netEvent({ op: 'close', state: 'TCP_FIN_WAIT1' })), '🧹 close   mynode /usr/bin/curl tcp 10.0.0.1:51234 -> 10.0.0.2:443');
  assert.equal(line(netEvent({ op: 'accept', direction: 'ingress' })), '❓ syscall mynode /usr/bin/curl inet_csk_accept');
  assert.equal(line(netEvent({ op: 'send', protocol: 'udp' })), '❓ syscall mynode /usr/bin/curl udp_sendmsg');
  assert.equal(line(dnsEvent()), '❓ syscall mynode /usr/bin/dig dns_query');
  assert.equal(line(dnsResponse()), '❓ syscall mynode /usr/bin/dig dns_response');
  assert.equal(line(syscallEvent()), '☎  syscall mynode /usr/bin/python3 getppid()');
  assert.equal(line(syscallEvent({ count: 9, args: [], ret: undefined })), '☎  syscall mynode /usr/bin/python3 getppid()');
});

test('raw_syscalls/sys_enter: tetra\'s name(type name=value, …) from the prototype table', () => {
  const line = (ev: Parameters<typeof eventToTetragonJson>[0]): string => formatCompact(eventToTetragonJson(ev), plain);
  // openat(AT_FDCWD, 0x7ffd…, O_RDONLY|O_CLOEXEC, 0): size_arg values, pointers in hex.
  assert.equal(
    line(syscallEvent({ id: 257, name: 'openat', args: [0xffffffffffffff9cn, 0x7ffd1234n, 0o2000000n, 0n, 0n, 0n], ret: 3 })),
    '☎  syscall mynode /usr/bin/python3 openat(int dfd=18446744073709551516, const char *filename=0x7ffd1234, int flags=524288, umode_t mode=0)',
  );
  // Count reports carry no raw args: tetra prints "?" for them.
  assert.equal(
    line(syscallEvent({ id: 0, name: 'read', count: 2, args: [], ret: undefined })),
    '☎  syscall mynode /usr/bin/python3 read(unsigned int fd=?, char *buf=?, size_t count=?)',
  );
  const tp = (args: TetragonJsonKprobeArgument[]): string =>
    formatCompact({ process_tracepoint: { process: { binary: '/bin/x' }, subsys: 'raw_syscalls', event: 'sys_enter', args } }, plain);
  assert.equal(tp([{ long_arg: '99999' }]), '☎  syscall  /bin/x unknown');
  assert.equal(tp([]), '☎  syscall  /bin/x unknown');
  assert.equal(tp([{ syscall_id: { id: 39, abi: 'x64' } }]), '☎  syscall  /bin/x getpid()');
  assert.equal(tp([{ syscall_id: { id: 39, abi: 'i386' } }]), '☎  syscall  /bin/x unknown');
});
