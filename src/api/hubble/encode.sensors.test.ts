// File / network / DNS / syscall events as Hubble flows: the fields the CLI
// prints and filters on, the wire encoding, and the filters that run on them.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { EndpointInfo, RuntimeEvent } from '../../model/event';
import { dnsEvent, dnsResponse, fileEvent, netEvent, syscallEvent } from '../tetragon/sensorkit';
import { makeProcess } from '../tetragon/testkit';
import { DEFAULT_MASK_1_19, compileFieldMask } from './fieldmask';
import { eventNamespaces, eventSummary, flowOf, flowResponseBytes, fullFlowOf, WIRE_KEY } from './encode';
import { compileFilterLists } from './filter';
import { protos } from './proto';
import { podProcess, protojson, structToJson } from './testkit';
import type { Flow, FlowFilter } from './types';

type Obj = Record<string, unknown>;

function decode(bytes: Uint8Array): Obj {
  const T = protos().GetFlowsResponse;
  return protojson(T, T.decode(bytes));
}

function extensionOf(ev: RuntimeEvent): Obj {
  const S = protos().Struct;
  return structToJson(S.toObject(S.decode(fullFlowOf(ev, 'node1').extensions!.value)) as Obj);
}

function flow(ev: RuntimeEvent): Flow {
  return flowOf(ev, 'node1');
}

const match = (white: FlowFilter[], f: Flow): boolean => compileFilterLists(white)(f);

const client = makeProcess({ binary: '/usr/bin/curl', arguments: 'https://10.0.0.2', cgroupId: 777n, ...podProcess('default', 'client') });
const serverInfo: EndpointInfo = { id: 0, identity: 2, namespace: '', podName: '', labels: ['reserved:world'] };
const localInfo: EndpointInfo = { id: 12, identity: 4321, namespace: 'default', podName: 'client', labels: ['k8s:app=client'] };

test('TCP connect: an L3_L4 trace-sock flow from the process to the peer', () => {
  const f = flow(netEvent({ source: localInfo, destination: serverInfo, destinationNames: ['api.example.com'] }, client));
  assert.equal(f.Type, 1, 'L3_L4');
  assert.deepEqual(f.event_type, { type: 7, sub_type: 1 });
  assert.equal(f.sock_xlate_point, 1);
  assert.equal(f.verdict, 1, 'FORWARDED');
  assert.deepEqual(f.IP, { source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 1 });
  assert.deepEqual(f.l4, { TCP: { source_port: 51234, destination_port: 443, flags: { SYN: true } } });
  assert.equal(f.traffic_direction, 2, 'EGRESS');
  assert.deepEqual(f.is_reply, { value: false });
  assert.equal(f.source?.pod_name, 'client');
  assert.equal(f.source?.namespace, 'default');
  assert.equal(f.source?.identity, 4321, 'identity of the local end from the kernel lookup');
  assert.equal(f.source?.ID, 12);
  assert.deepEqual(f.destination, { identity: 2, labels: ['reserved:world'] });
  assert.deepEqual(f.destination_names, ['api.example.com']);
  assert.equal(f.socket_cookie, '8193');
  assert.equal(f.cgroup_id, '777');
  assert.equal(f.node_name, 'mynode');
  assert.equal(f.Summary, 'connect /usr/bin/curl 10.0.0.2:443');
});

test('close carries byte counts and FIN or RST by the state it left', () => {
  const fin = flow(netEvent({ op: 'close', state: 'TCP_FIN_WAIT1', bytesSent: 1234, bytesReceived: 5678 }));
  assert.equal(fin.Summary, 'close /usr/bin/curl 10.0.0.2:443 sent 1234 received 5678');
  assert.deepEqual(fin.l4?.TCP?.flags, { FIN: true });
  assert.deepEqual(flow(netEvent({ op: 'close', state: 'TCP_LAST_ACK' })).l4?.TCP?.flags, { FIN: true });
  assert.deepEqual(flow(netEvent({ op: 'close', state: 'TCP_ESTABLISHED' })).l4?.TCP?.flags, { RST: true });
  assert.deepEqual(flow(netEvent({ op: 'close', state: 'TCP_SYN_SENT' })).l4?.TCP?.flags, { RST: true });
  assert.equal(flow(netEvent({ op: 'close', state: 'TCP_LISTEN' })).l4?.TCP?.flags, undefined);
  // A listener's close has no peer, like its listen.
  const listener = flow(netEvent({ op: 'close', direction: 'ingress', saddr: '127.0.0.1', sport: 8080, daddr: '0.0.0.0', dport: 0, state: 'TCP_LISTEN' }));
  assert.deepEqual(listener.IP, { destination: '127.0.0.1', ipVersion: 1 });
  assert.deepEqual(listener.l4, { TCP: { destination_port: 8080 } });
  assert.equal(listener.Summary, 'close /usr/bin/curl 127.0.0.1:8080');
});

test('accept and the close of an accepted socket run from the peer to the process (INGRESS)', () => {
  const server = makeProcess({ binary: '/usr/sbin/nginx', ...podProcess('web', 'nginx-1') });
  const acc = flow(netEvent({ op: 'accept', direction: 'ingress', saddr: '10.0.0.2', sport: 443, daddr: '10.0.0.1', dport: 51234, destinationNames: ['client.example.com'] }, server));
  assert.deepEqual(acc.IP, { source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 1 });
  assert.deepEqual(acc.l4, { TCP: { source_port: 51234, destination_port: 443, flags: { SYN: true } } });
  assert.equal(acc.traffic_direction, 1, 'INGRESS');
  assert.deepEqual(acc.is_reply, { value: false });
  assert.equal(acc.destination?.pod_name, 'nginx-1');
  assert.deepEqual(acc.source, {});
  assert.deepEqual(acc.source_names, ['client.example.com'], 'names of the remote end, here the source');
  assert.equal(acc.destination_names, undefined);
  assert.deepEqual(acc.event_type, { type: 7, sub_type: 3 });
  assert.equal(acc.Summary, 'accept /usr/sbin/nginx 10.0.0.1:51234');
  const close = flow(netEvent({ op: 'close', direction: 'ingress', saddr: '10.0.0.2', sport: 443, daddr: '10.0.0.1', dport: 51234, state: 'TCP_CLOSE_WAIT' }, server));
  assert.equal(close.IP?.source, '10.0.0.1');
  assert.equal(close.traffic_direction, 1);
});

test('listen has only the local end; UDP send/receive; IPv6', () => {
  const l = flow(netEvent({ op: 'listen', direction: 'ingress', saddr: '0.0.0.0', sport: 8080, daddr: '0.0.0.0', dport: 0, state: 'TCP_LISTEN' }));
  assert.deepEqual(l.IP, { destination: '0.0.0.0', ipVersion: 1 });
  assert.deepEqual(l.l4, { TCP: { destination_port: 8080 } });
  assert.equal(l.Summary, 'listen /usr/bin/curl 0.0.0.0:8080');
  const send = flow(netEvent({ op: 'send', protocol: 'udp', dport: 53, daddr: '10.0.0.53', state: undefined, bytesSent: 40 }));
  assert.deepEqual(send.l4, { UDP: { source_port: 51234, destination_port: 53 } });
  assert.equal(send.traffic_direction, 2);
  assert.equal(send.Summary, 'send /usr/bin/curl 10.0.0.53:53 40 bytes');
  const recv = flow(netEvent({ op: 'receive', protocol: 'udp', direction: 'ingress', saddr: '10.0.0.1', sport: 5353, daddr: '10.0.0.9', dport: 40000, state: undefined, packets: 3, bytesReceived: 300 }));
  assert.deepEqual(recv.l4, { UDP: { source_port: 40000, destination_port: 5353 } });
  assert.equal(recv.IP?.source, '10.0.0.9');
  assert.equal(recv.Summary, 'receive /usr/bin/curl 10.0.0.9:40000 3 packets 300 bytes');
  const v6 = flow(netEvent({ family: 6, saddr: '::1', daddr: '::1', dport: 8443 }));
  assert.deepEqual(v6.IP, { source: '::1', destination: '::1', ipVersion: 2 });
  assert.equal(v6.Summary, 'connect /usr/bin/curl [::1]:8443');
});

test('failed connects: DROPPED when refused locally, ERROR otherwise, FORWARDED while in progress', () => {
  const refused = flow(netEvent({ ret: -111 }));
  assert.equal(refused.verdict, 3, 'ERROR');
  assert.equal(refused.Summary, 'connect /usr/bin/curl 10.0.0.2:443 = -1 ECONNREFUSED');
  assert.equal(flow(netEvent({ ret: -1 })).verdict, 2, 'EPERM → DROPPED');
  assert.equal(flow(netEvent({ ret: -13 })).verdict, 2, 'EACCES → DROPPED');
  const inProgress = flow(netEvent({ ret: -115 }));
  assert.equal(inProgress.verdict, 1);
});

test('DNS query and response are L7 flows seen from the client', () => {
  const p = makeProcess({ binary: '/usr/bin/dig', ...podProcess('default', 'client') });
  const q = flow(dnsEvent({}, p));
  assert.equal(q.Type, 2, 'L7');
  assert.deepEqual(q.event_type, { type: 129 });
  assert.deepEqual(q.l7, { type: 1, dns: { query: 'example.com.', observation_source: 'tetrahub', qtypes: ['A'] } });
  assert.deepEqual(q.IP, { source: '10.0.0.1', destination: '10.0.0.53', ipVersion: 1 });
  assert.deepEqual(q.l4, { UDP: { source_port: 40000, destination_port: 53 } });
  assert.deepEqual(q.is_reply, { value: false });
  assert.equal(q.traffic_direction, 2);
  assert.equal(q.source?.pod_name, 'client');
  assert.equal(q.Summary, 'DNS Query example.com. A');

  const r = flow(dnsResponse({}, p));
  assert.deepEqual(r.l7, {
    type: 2,
    latency_ns: 1500000,
    dns: {
      query: 'example.com.',
      ips: ['93.184.216.34', '93.184.216.35'],
      ttl: 30,
      cnames: ['edge.example.net.'],
      observation_source: 'tetrahub',
      qtypes: ['A'],
      rrtypes: ['CNAME', 'A', 'A'],
    },
  });
  assert.deepEqual(r.IP, { source: '10.0.0.53', destination: '10.0.0.1', ipVersion: 1 });
  assert.deepEqual(r.l4, { UDP: { source_port: 53, destination_port: 40000 } });
  assert.deepEqual(r.is_reply, { value: true });
  assert.equal(r.traffic_direction, 2, 'EGRESS: the direction of the client’s exchange');
  assert.equal(r.destination?.pod_name, 'client');
  assert.equal(r.Summary, 'DNS Answer "93.184.216.34,93.184.216.35" CNAMEs: "edge.example.net." TTL: 30 (Query example.com. A)');

  const nx = flow(dnsEvent({ isResponse: true, rcode: 3, query: 'nope.test', protocol: 'tcp' }, p));
  assert.equal(nx.l7?.dns?.rcode, 3);
  assert.ok(nx.l4?.TCP);
  assert.equal(nx.Summary, 'DNS Answer RCode: Non-Existent Domain TTL: 0 (Query nope.test. A)');
});

test('file and syscall events use the runtime encoding (type 200, Tetragon sub type)', () => {
  const open = flow(fileEvent());
  assert.deepEqual(open.event_type, { type: 200, sub_type: 9 });
  assert.deepEqual(open.IP, { source: '', ipVersion: 0 }, 'IP present so the CLI prints pod names');
  assert.equal(open.Type, 0);
  assert.equal(open.Summary, 'open /usr/bin/cat /etc/passwd O_RDONLY|O_CLOEXEC');
  const sc = flow(syscallEvent());
  assert.deepEqual(sc.event_type, { type: 200, sub_type: 10 });
  assert.equal(sc.Summary, 'syscall /usr/bin/python3 getppid = 1234');
  assert.equal(eventSummary(syscallEvent({ count: 42, args: [], ret: undefined })), 'syscall /usr/bin/python3 getppid count 42');
  assert.equal(eventSummary(syscallEvent({ name: 'openat', id: 257, ret: -2 })), 'syscall /usr/bin/python3 openat = -1 ENOENT');
});

test('file summaries name the operation, the process and the paths', () => {
  const s = (over: Parameters<typeof fileEvent>[0]): string => eventSummary(fileEvent(over));
  assert.equal(s({ flags: 0o1101, mode: 0o644 }), 'open /usr/bin/cat /etc/passwd O_WRONLY|O_CREAT|O_TRUNC 0644');
  assert.equal(s({ path: '/nope', flags: 0, ret: -2 }), 'open /usr/bin/cat /nope O_RDONLY = -1 ENOENT');
  assert.equal(s({ op: 'close', syscall: 'close', ret: 0, bytesRead: 10, bytesWritten: 2 }), 'close /usr/bin/cat /etc/passwd read 10 written 2');
  assert.equal(s({ syscall: '', ret: 4, bytesRead: 0, bytesWritten: 99 }), 'io /usr/bin/cat /etc/passwd read 0 written 99');
  assert.equal(s({ op: 'rename', syscall: 'renameat2', path: '/a', path2: '/b', ret: 0 }), 'rename /usr/bin/cat /a -> /b');
  assert.equal(s({ op: 'symlink', syscall: 'symlink', path: '/etc/hosts', path2: '/tmp/l', ret: 0 }), 'symlink /usr/bin/cat /tmp/l -> /etc/hosts');
  assert.equal(s({ op: 'chmod', syscall: 'fchmodat', mode: 0o4755, ret: 0 }), 'chmod /usr/bin/cat /etc/passwd 04755');
  assert.equal(s({ op: 'chown', syscall: 'chown', uid: 0, gid: 0xffffffff, ret: 0 }), 'chown /usr/bin/cat /etc/passwd 0:-1');
  assert.equal(s({ op: 'unlink', syscall: 'unlinkat', ret: -13 }), 'unlink /usr/bin/cat /etc/passwd = -1 EACCES');
  assert.equal(s({ op: 'mount', syscall: 'mount', path: 'tmpfs', path2: '/mnt', ret: 0 }), 'mount /usr/bin/cat tmpfs on /mnt');
});

test('hubble observe filters select the flows: --port, --ip, --protocol, --from-pod, --type, --tcp-flags, --traffic-direction, --fqdn', () => {
  const connect = flow(netEvent({ destinationNames: ['api.example.com'] }, client));
  const dnsQ = flow(dnsEvent({}, client));
  const open = flow(fileEvent({}, client));
  const all = [connect, dnsQ, open];
  const which = (white: FlowFilter[]): boolean[] => all.map((f) => match(white, f));
  assert.deepEqual(which([{ destination_port: ['443'] }]), [true, false, false]);
  assert.deepEqual(which([{ source_port: ['443'] }, { destination_port: ['443'] }]), [true, false, false]);
  assert.deepEqual(which([{ destination_port: ['53'] }]), [false, true, false]);
  assert.deepEqual(which([{ protocol: ['tcp'] }]), [true, false, false]);
  assert.deepEqual(which([{ protocol: ['udp'] }]), [false, true, false]);
  assert.deepEqual(which([{ protocol: ['dns'] }]), [false, true, false]);
  assert.deepEqual(which([{ destination_port: ['443'], protocol: ['tcp'] }]), [true, false, false]);
  assert.deepEqual(which([{ destination_ip: ['10.0.0.0/24'] }]), [true, true, false]);
  assert.deepEqual(which([{ source_ip: ['10.0.0.1'] }]), [true, true, false]);
  assert.deepEqual(which([{ source_pod: ['default/client'] }]), [true, true, true]);
  assert.deepEqual(which([{ event_type: [{ type: 7 }] }]), [true, false, false]);
  assert.deepEqual(which([{ event_type: [{ type: 129 }] }]), [false, true, false]);
  assert.deepEqual(which([{ event_type: [{ type: 200, match_sub_type: true, sub_type: 9 }] }]), [false, false, true]);
  assert.deepEqual(which([{ tcp_flags: [{ SYN: true }] }]), [true, false, false]);
  assert.deepEqual(which([{ traffic_direction: [2] }]), [true, true, false]);
  assert.deepEqual(which([{ destination_fqdn: ['*.example.com'] }]), [true, false, false]);
  assert.deepEqual(which([{ reply: [false] }]), [true, true, false]);
  assert.deepEqual(which([{ dns_query: ['^example\\.com\\.$'] }]), [false, true, false]);
  assert.deepEqual(which([{ ip_version: [1] }]), [true, true, false]);
});

test('wire: GetFlowsResponse bytes decode to the flow, with the Tetragon event in extensions; cached per mask', () => {
  const ev = netEvent({ op: 'close', state: 'TCP_FIN_WAIT2', bytesSent: 1, bytesReceived: 2 }, client);
  const bytes = flowResponseBytes(ev, undefined, 'node1');
  assert.equal(ev.wire.get(WIRE_KEY), bytes);
  assert.equal(flowResponseBytes(ev, undefined, 'node1'), bytes, 'encoded once');
  assert.equal(bytes.byteOffset, 0);
  assert.equal(bytes.buffer.byteLength, bytes.byteLength, 'an exact-size copy, not a pooled slice');
  const res = decode(bytes);
  const f = res.flow as Obj;
  assert.equal(f.Type, 'L3_L4');
  assert.equal(f.verdict, 'FORWARDED');
  assert.equal(f.traffic_direction, 'EGRESS');
  assert.equal(f.sock_xlate_point, 'SOCK_XLATE_POINT_PRE_DIRECTION_FWD');
  assert.deepEqual(f.event_type, { type: 7, sub_type: 1 });
  assert.deepEqual(f.IP, { source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 'IPv4' });
  assert.deepEqual(f.l4, { TCP: { source_port: 51234, destination_port: 443, flags: { FIN: true } } });
  assert.deepEqual(f.is_reply, false);
  assert.equal(f.socket_cookie, '8193');
  assert.equal(f.cgroup_id, '777');
  const ext = (f.extensions as Obj).value as Obj;
  const kp = ext.process_kprobe as Obj;
  assert.equal(kp.function_name, 'tcp_close');
  assert.equal((kp.process as Obj).binary, '/usr/bin/curl');
  assert.equal(kp.policy_name, 'tetrahub-net');

  const mask = compileFieldMask(protos().Flow, [...DEFAULT_MASK_1_19])!;
  const masked = decode(flowResponseBytes(ev, mask, 'node1')).flow as Obj;
  assert.equal(masked.extensions, undefined);
  assert.deepEqual(masked.l4, f.l4, 'l4 survives the 1.19 default mask');
  assert.equal(masked.Summary, 'close /usr/bin/curl 10.0.0.2:443 sent 1 received 2');
  assert.equal(masked.socket_cookie, undefined);
});

test('wire: DNS L7 flow and a file runtime flow', () => {
  const r = decode(flowResponseBytes(dnsResponse({}, client), undefined)).flow as Obj;
  assert.equal(r.Type, 'L7');
  assert.deepEqual(r.l7, {
    type: 'RESPONSE',
    latency_ns: '1500000',
    dns: { query: 'example.com.', ips: ['93.184.216.34', '93.184.216.35'], ttl: 30, cnames: ['edge.example.net.'], observation_source: 'tetrahub', qtypes: ['A'], rrtypes: ['CNAME', 'A', 'A'] },
  });
  assert.equal(r.is_reply, true);
  const ext = ((r.extensions as Obj).value as Obj).process_kprobe as Obj;
  assert.equal(ext.function_name, 'dns_response');

  const open = decode(flowResponseBytes(fileEvent({}, client), undefined)).flow as Obj;
  assert.deepEqual(open.IP, {});
  assert.deepEqual(open.event_type, { type: 200, sub_type: 9 });
  const kp = ((open.extensions as Obj).value as Obj).process_kprobe as Obj;
  assert.equal(kp.function_name, 'fd_install');
  assert.deepEqual((kp.args as Obj[])[1], { file_arg: { path: '/etc/passwd' } });
  const tp = ((decode(flowResponseBytes(syscallEvent({}, client), undefined)).flow as Obj).extensions as Obj).value as Obj;
  assert.equal((tp.process_tracepoint as Obj).subsys, 'raw_syscalls');
});

test('extensions hold the same Tetragon JSON the Tetragon API serves', () => {
  const json = extensionOf(fileEvent({ op: 'unlink', syscall: 'unlinkat', ret: 0 }, client));
  assert.equal((json.process_kprobe as Obj).function_name, 'security_path_unlink');
  assert.equal(json.node_name, 'mynode');
});

test('GetNamespaces sees both ends of a connection', () => {
  const ev = netEvent({ destination: { id: 3, identity: 9999, namespace: 'kube-system', podName: 'coredns-1', labels: [] } }, client);
  assert.deepEqual(eventNamespaces(ev), [
    { cluster: '', namespace: 'default' },
    { cluster: '', namespace: 'kube-system' },
  ]);
  assert.deepEqual(eventNamespaces(fileEvent()), []);
});
