// Test helpers: synthetic file / network / DNS / syscall events shaped as the
// sensors fill them (src/sensors/*/sensor.ts). Shared by the Tetragon and
// Hubble encoder tests; not a test file itself.
import type { DnsEvent, FileEvent, NetEvent, PolicyEvent, ProcessInfo, SyscallEvent, WallTime } from '../../model/event';
import { makeProcess } from './testkit';

const T: WallTime = { sec: 1696629837, nsec: 700000000 };

function base(process: ProcessInfo | undefined, parent: ProcessInfo | undefined, time: WallTime | undefined) {
  const p = process ?? makeProcess({ binary: '/usr/bin/cat', arguments: '/etc/passwd', args: ['/etc/passwd'] });
  return { seq: 0, time: time ?? T, nodeName: 'mynode', process: p, ...(parent ? { parent } : {}), wire: new Map<string, Uint8Array>() };
}

export function fileEvent(over: Partial<FileEvent> = {}, process?: ProcessInfo, parent?: ProcessInfo): FileEvent {
  return { ...base(process, parent, over.time), kind: 'file', op: 'open', syscall: 'openat', path: '/etc/passwd', truncated: false, flags: 0o2000000, ret: 3, ...over };
}

export function netEvent(over: Partial<NetEvent> = {}, process?: ProcessInfo, parent?: ProcessInfo): NetEvent {
  const p = process ?? makeProcess({ binary: '/usr/bin/curl', arguments: 'https://10.0.0.2', args: ['https://10.0.0.2'], cgroupId: 4242n });
  return {
    ...base(p, parent, over.time),
    kind: 'net',
    op: 'connect',
    protocol: 'tcp',
    family: 4,
    saddr: '10.0.0.1',
    sport: 51234,
    daddr: '10.0.0.2',
    dport: 443,
    netns: 4026531840,
    socketCookie: 8193n,
    direction: 'egress',
    ret: 0,
    state: 'TCP_SYN_SENT',
    ...over,
  };
}

export function dnsEvent(over: Partial<DnsEvent> = {}, process?: ProcessInfo, parent?: ProcessInfo): DnsEvent {
  const p = process ?? makeProcess({ binary: '/usr/bin/dig', arguments: 'example.com', args: ['example.com'] });
  return {
    ...base(p, parent, over.time),
    kind: 'dns',
    protocol: 'udp',
    isResponse: false,
    id: 0x1234,
    query: 'example.com',
    qtypes: ['A'],
    rcode: 0,
    answers: [],
    clientAddr: '10.0.0.1',
    clientPort: 40000,
    serverAddr: '10.0.0.53',
    serverPort: 53,
    ...over,
  };
}

export function dnsResponse(over: Partial<DnsEvent> = {}, process?: ProcessInfo): DnsEvent {
  return dnsEvent({
    isResponse: true,
    latencyNs: 1500000,
    answers: [
      { name: 'example.com', type: 'CNAME', ttl: 60, data: 'edge.example.net' },
      { name: 'edge.example.net', type: 'A', ttl: 300, data: '93.184.216.34' },
      { name: 'edge.example.net', type: 'A', ttl: 30, data: '93.184.216.35' },
    ],
    ...over,
  }, process);
}

export function syscallEvent(over: Partial<SyscallEvent> = {}, process?: ProcessInfo, parent?: ProcessInfo): SyscallEvent {
  const p = process ?? makeProcess({ binary: '/usr/bin/python3', arguments: '-c "import os; os.getppid()"', args: ['-c', 'import os; os.getppid()'] });
  return { ...base(p, parent, over.time), kind: 'syscall', id: 110, name: 'getppid', args: [0n, 0n, 0n, 0n, 0n, 0n], ret: 1234, ...over };
}

/** A policy hook's event as the policy engine fills it (defaults: kprobe sys_openat, Post). */
export function policyEvent(over: Partial<PolicyEvent> = {}, process?: ProcessInfo, parent?: ProcessInfo): PolicyEvent {
  const p = process ?? makeProcess({ binary: '/bin/sh', arguments: '-c true', args: ['-c', 'true'] });
  return {
    ...base(p, parent, over.time),
    kind: 'policy',
    hook: 'kprobe',
    functionName: 'sys_openat',
    args: [{ t: 'int', v: -100 }, { t: 'string', v: '/etc/passwd' }],
    policyName: 'file-watch',
    action: 'post',
    ...over,
  };
}
