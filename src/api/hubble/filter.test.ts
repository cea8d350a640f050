import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { flowOf } from './encode';
import { compileFilterLists, compileRuntimeFilter, FilterError, parseLabelSelector } from './filter';
import { execEvent, exitEvent, podProcess } from './testkit';
import type { Flow, FlowFilter } from './types';

const web = flowOf(execEvent({}, podProcess('default', 'web-1', { app: 'web', tier: 'front' })));
const api = flowOf(execEvent({}, { ...podProcess('prod', 'api-7', { app: 'api' }), endpoint: { id: 9, identity: 12345, namespace: 'prod', podName: 'api-7', labels: ['k8s:app=api', 'reserved:init'] } }));
const host = flowOf(exitEvent({ signal: 'SIGKILL' }));

function sel(white: FlowFilter[], black: FlowFilter[] = []): (f: Flow) => boolean {
  return compileFilterLists(white, black);
}

function throwsWith(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof FilterError && re.test(e.message));
}

test('empty lists match everything', () => {
  assert.ok(sel([])(web) && sel([])(host));
  assert.ok(sel([{}])(host));
});

test('event_type: type 0 = any, sub_type only with match_sub_type', () => {
  assert.ok(sel([{ event_type: [{ type: 200 }] }])(web));
  assert.ok(sel([{ event_type: [{ type: 0 }] }])(host));
  assert.ok(!sel([{ event_type: [{ type: 4 }] }])(web));
  const exits = sel([{ event_type: [{ type: 200, match_sub_type: true, sub_type: 5 }] }]);
  assert.ok(exits(host));
  assert.ok(!exits(web));
  assert.ok(sel([{ event_type: [{ type: 200, sub_type: 5 }] }])(web), 'sub_type ignored without match_sub_type');
});

test('source_pod: ns/prefix, bare name, ns/, /name; empty is an error', () => {
  assert.ok(sel([{ source_pod: ['default/web'] }])(web));
  assert.ok(sel([{ source_pod: ['web-1'] }])(web), 'bare name → default namespace');
  assert.ok(!sel([{ source_pod: ['api'] }])(api), 'bare name is in default, api-7 is in prod');
  assert.ok(sel([{ source_pod: ['prod/'] }])(api));
  assert.ok(sel([{ source_pod: ['/api'] }])(api));
  assert.ok(!sel([{ source_pod: ['/'] }])(host), 'no namespace and no pod never matches');
  throwsWith(() => sel([{ source_pod: ['x', ''] }]), /^whitelist\[0\]\.source_pod\[1\]: invalid empty pod name filter/);
});

test('labels: selector syntax with k8s:/reserved: prefixes', () => {
  assert.ok(sel([{ source_label: ['app=web'] }])(web));
  assert.ok(sel([{ source_label: ['k8s:app=web'] }])(web));
  assert.ok(!sel([{ source_label: ['reserved:app=web'] }])(web));
  assert.ok(sel([{ source_label: ['app in (web, api), tier'] }])(web));
  assert.ok(!sel([{ source_label: ['app in (web, api), tier'] }])(api));
  assert.ok(sel([{ source_label: ['app!=web'] }])(api));
  assert.ok(sel([{ source_label: ['reserved:init'] }])(api));
  assert.ok(sel([{ source_label: ['!tier'] }])(api));
  assert.ok(sel([{ source_label: ['k8s:io.kubernetes.pod.namespace=default'] }])(web));
  assert.ok(!sel([{ source_label: ['app=web'] }])(host));
  throwsWith(() => sel([], [{ source_label: ['app=(x'] }]), /^blacklist\[0\]\.source_label\[0\]: invalid label selector/);
  assert.equal(parseLabelSelector('a notin (x,y),b>3', 'l', false).length, 2);
});

test('identity, verdict, workload, cluster', () => {
  assert.ok(sel([{ source_identity: [12345] }])(api));
  assert.ok(sel([{ source_identity: [0] }])(web), 'no Cilium data = identity 0');
  assert.ok(sel([{ verdict: [1] }])(web));
  assert.ok(!sel([{ verdict: [2] }])(web));
  assert.ok(sel([{ source_workload: [{ name: 'web-1' }] }])(web));
  assert.ok(sel([{ source_workload: [{ kind: 'Deployment' }] }])(web));
  assert.ok(!sel([{ source_workload: [{ kind: 'DaemonSet' }] }])(web));
  assert.ok(sel([{ source_cluster_name: [''] }])(web));
  assert.ok(!sel([{ destination_workload: [{}] }])(web), 'no destination');
});

test('AND within a filter, OR across whitelist, blacklist subtracts', () => {
  assert.ok(!sel([{ source_pod: ['default/'], event_type: [{ type: 200, match_sub_type: true, sub_type: 5 }] }])(web));
  assert.ok(sel([{ source_pod: ['prod/'] }, { source_pod: ['default/'] }])(web));
  assert.ok(!sel([], [{ source_pod: ['default/'] }])(web));
  assert.ok(sel([], [{ source_pod: ['default/'] }])(api));
  assert.ok(!sel([{ source_pod: ['prod/'] }], [{ source_identity: [12345] }])(api));
});

test('IPs and CIDRs; invalid → field and index', () => {
  const f: Flow = { IP: { source: '10.1.2.3', destination: 'fd00::5', ipVersion: 1 } };
  assert.ok(sel([{ source_ip: ['10.0.0.0/8'] }])(f));
  assert.ok(sel([{ source_ip: ['10.1.2.3'] }])(f));
  assert.ok(!sel([{ source_ip: ['10.1.2.4'] }])(f));
  assert.ok(sel([{ destination_ip: ['fd00::/64'] }])(f));
  assert.ok(!sel([{ source_ip: ['10.0.0.0/8'] }])(web), 'runtime flows have no IP');
  throwsWith(() => sel([{ source_ip: ['10.0.0.1', '10.0.0.999'] }]), /^whitelist\[0\]\.source_ip\[1\]: invalid IP or CIDR "10\.0\.0\.999"$/);
  throwsWith(() => sel([{ destination_ip: ['10.0.0.0/33'] }]), /destination_ip\[0\]/);
});

test('protocol and ports: names validated, only L4 flows match', () => {
  const tcp: Flow = { l4: { TCP: { source_port: 40000, destination_port: 443 } } };
  assert.ok(sel([{ protocol: ['TCP'] }])(tcp));
  assert.ok(!sel([{ protocol: ['udp', 'icmp', 'dns', 'http'] }])(tcp));
  assert.ok(!sel([{ protocol: ['tcp'] }])(web));
  throwsWith(() => sel([{ protocol: ['tcp', 'quic'] }]), /^whitelist\[0\]\.protocol\[1\]: unknown protocol "quic"$/);
  assert.ok(sel([{ destination_port: ['443'] }])(tcp));
  assert.ok(!sel([{ source_port: ['443'] }])(tcp));
  assert.ok(!sel([{ destination_port: ['0'] }])(web));
  throwsWith(() => sel([{ source_port: ['65536'] }]), /source_port\[0\]: invalid port "65536"/);
  throwsWith(() => sel([{ source_port: ['http'] }]), /invalid port/);
});

test('node_name globs', () => {
  const n = (name: string): Flow => ({ node_name: name });
  assert.ok(sel([{ node_name: ['node1'] }])(n('node1')));
  assert.ok(sel([{ node_name: ['default/node1'] }])(n('node1')));
  assert.ok(sel([{ node_name: ['node*'] }])(n('node1')));
  assert.ok(!sel([{ node_name: ['node*'] }])(n('node1.example')), '* stays within a label');
  assert.ok(sel([{ node_name: ['**'] }])(n('node1.example')));
  assert.ok(sel([{ node_name: ['c1/*'] }])(n('c1/worker')));
  assert.ok(!sel([{ node_name: ['c2/*'] }])(n('c1/worker')));
  assert.ok(!sel([{ node_name: ['*'] }])(n('')), 'empty node name never matches');
  throwsWith(() => sel([{ node_name: ['Node_1'] }]), /node_name\[0\]: invalid node name pattern/);
});

test('L7 filters: http, dns, regex errors', () => {
  const http: Flow = { l7: { http: { code: 503, method: 'GET', url: 'http://x/api/v1?q=1', headers: [{ key: 'h', value: 'v' }] } } };
  const dns: Flow = { l7: { dns: { query: 'ebpf.io.' } } };
  assert.ok(sel([{ http_status_code: ['5+'] }])(http));
  assert.ok(sel([{ http_status_code: ['503'] }])(http));
  assert.ok(!sel([{ http_status_code: ['40+'] }])(http));
  throwsWith(() => sel([{ http_status_code: ['600'] }]), /http_status_code\[0\]/);
  assert.ok(sel([{ http_method: ['get'] }])(http));
  assert.ok(sel([{ http_path: ['^/api/'] }])(http));
  assert.ok(sel([{ http_url: ['q=1$'] }])(http));
  assert.ok(sel([{ http_header: [{ key: 'h', value: 'v' }] }])(http));
  assert.ok(!sel([{ http_method: ['GET'] }])(web));
  throwsWith(() => sel([{ http_path: ['('] }]), /^whitelist\[0\]\.http_path\[0\]: invalid regular expression/);
  assert.ok(sel([{ dns_query: ['(?i)EBPF'] }])(dns));
  assert.ok(!sel([{ dns_query: ['.*'] }])(web));
  assert.ok(sel([{ protocol: ['dns'] }])(dns));
});

test('fqdn, reply, tcp_flags, ip_version, interface, encrypted, trace ids, uuid', () => {
  const f: Flow = {
    uuid: 'u-1',
    source_names: ['api.example.com'],
    is_reply: { value: true },
    l4: { TCP: { flags: { SYN: true, ACK: true } } },
    IP: { ipVersion: 2, encrypted: true },
    interface: { index: 3, name: 'eth0' },
    trace_context: { parent: { trace_id: 'abc' } },
    ip_trace_id: { trace_id: '18446744073709551615' },
  };
  assert.ok(sel([{ source_fqdn: ['*.example.com'] }])(f));
  assert.ok(!sel([{ source_fqdn: ['example.com'] }])(f));
  throwsWith(() => sel([{ source_fqdn: ['a$b'] }]), /source_fqdn\[0\]/);
  assert.ok(sel([{ reply: [true] }])(f));
  assert.ok(!sel([{ reply: [false] }])(web), 'nil is_reply never matches');
  assert.ok(sel([{ reply: [false] }])({ verdict: 2 }), 'drops count as not-reply');
  assert.ok(sel([{ tcp_flags: [{ SYN: true }] }])(f));
  assert.ok(!sel([{ tcp_flags: [{ FIN: true }] }])(f));
  assert.ok(sel([{ ip_version: [2] }])(f));
  assert.ok(sel([{ ip_version: [0] }])(web));
  assert.ok(sel([{ interface: [{ name: 'eth0' }] }])(f));
  assert.ok(!sel([{ interface: [{ index: 4 }] }])(f));
  assert.ok(sel([{ encrypted: [true] }])(f));
  assert.ok(sel([{ trace_id: ['abc'] }])(f));
  assert.ok(sel([{ ip_trace_id: ['18446744073709551615'] }])(f));
  assert.ok(!sel([{ ip_trace_id: ['1'] }])(web));
  assert.ok(sel([{ uuid: ['u-1'] }])(f));
});

test('cel_expression is rejected with its field path', () => {
  throwsWith(() => sel([{ experimental: { cel_expression: ['true'] } }]), /^whitelist\[0\]\.experimental\.cel_expression: cel_expression is not supported by this server$/);
  assert.ok(sel([{ experimental: { cel_expression: [] } }])(web));
});

test('runtime filter: binary/arguments/parent regex and pid', () => {
  const ev = execEvent({}, { binary: '/usr/bin/curl', pid: 4242, arguments: '-s https://x' });
  assert.ok(compileRuntimeFilter({ binary_regex: ['curl$'] })!(ev));
  assert.ok(!compileRuntimeFilter({ binary_regex: ['wget'] })!(ev));
  assert.ok(compileRuntimeFilter({ pid: [1, 4242] })!(ev));
  assert.ok(!compileRuntimeFilter({ pid: [4242], binary_regex: ['wget'] })!(ev), 'fields AND');
  assert.ok(compileRuntimeFilter({ arguments_regex: ['https://'] })!(ev));
  assert.ok(compileRuntimeFilter({ parent_binary_regex: ['bash'] })!(ev));
  assert.ok(!compileRuntimeFilter({ parent_binary_regex: ['bash'] })!(exitEvent()), 'no parent');
  assert.equal(compileRuntimeFilter({}), undefined);
  throwsWith(() => compileRuntimeFilter({ binary_regex: ['['] }), /^extensions\.binary_regex\[0\]: invalid regular expression/);
});
