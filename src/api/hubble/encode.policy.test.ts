// Policy events as Hubble flows: connect-type denials are L3_L4 flows from the
// process to the peer (DROPPED with POLICY_DENIED, AUDIT in monitor mode);
// the rest are runtime flows whose Summary says what the policy did.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { EndpointInfo, PolicyEvent, RuntimeEvent } from '../../model/event';
import { policyEvent } from '../tetragon/sensorkit';
import { makeProcess } from '../tetragon/testkit';
import { eventNamespaces, flowOf, flowResponseBytes, fullFlowOf } from './encode';
import { compileFilterLists } from './filter';
import { protos } from './proto';
import { podProcess, protojson, structToJson } from './testkit';
import type { FlowFilter } from './types';

type Obj = Record<string, unknown>;

const api = makeProcess({ binary: '/usr/bin/python3', arguments: 'app.py', cgroupId: 99n, ...podProcess('prod', 'api-7f9', { app: 'api' }) });
const apiInfo: EndpointInfo = { id: 812, identity: 51234, namespace: 'prod', podName: 'api-7f9', labels: ['k8s:app=api'] };
const dbInfo: EndpointInfo = { id: 901, identity: 48213, namespace: 'prod', podName: 'db-0', labels: ['k8s:app=db'] };

function connectDenied(monitor: boolean): PolicyEvent {
  return policyEvent(
    {
      functionName: 'security_socket_connect',
      hook: 'lsm',
      args: [{ t: 'sockaddr', family: 'AF_INET', addr: '10.0.1.5', port: 5432 }],
      policyName: 'psql-only-to-db',
      action: 'override',
      enforcement: { kind: 'denied', monitor, errno: 1 },
      net: { protocol: 'tcp', family: 4, saddr: '10.0.0.7', sport: 41234, daddr: '10.0.1.5', dport: 5432, source: apiInfo, destination: dbInfo },
    },
    api,
  );
}

function decoded(ev: RuntimeEvent): Obj {
  const T = protos().GetFlowsResponse;
  return protojson(T, T.decode(flowResponseBytes(ev, undefined, 'node1'))).flow as Obj;
}

test('enforced connect denial: DROPPED L3_L4 flow, POLICY_DENIED, denied by the TracingPolicy', () => {
  const ev = connectDenied(false);
  const f = flowOf(ev, 'node1');
  assert.equal(f.verdict, 2, 'DROPPED');
  assert.equal(f.Type, 1, 'L3_L4');
  assert.deepEqual(f.event_type, { type: 1, sub_type: 133 });
  assert.equal(f.drop_reason_desc, 133);
  assert.equal(f.drop_reason, 133);
  assert.deepEqual(f.IP, { source: '10.0.0.7', destination: '10.0.1.5', ipVersion: 1 });
  assert.deepEqual(f.l4, { TCP: { source_port: 41234, destination_port: 5432, flags: { SYN: true } } });
  assert.equal(f.source?.identity, 51234);
  assert.equal(f.source?.pod_name, 'api-7f9');
  assert.equal(f.destination?.identity, 48213);
  assert.equal(f.destination?.pod_name, 'db-0');
  assert.deepEqual(f.destination?.labels, ['k8s:app=db']);
  assert.equal(f.traffic_direction, 2, 'EGRESS');
  assert.deepEqual(f.egress_denied_by, [{ name: 'psql-only-to-db', kind: 'TracingPolicy' }]);
  assert.equal(f.Summary, 'connect denied /usr/bin/python3 → 10.0.1.5:5432 (EPERM) (policy psql-only-to-db)');
  assert.deepEqual(eventNamespaces(ev), [{ cluster: '', namespace: 'prod' }]);
  // On the wire: enum names, the policy, and the process in extensions.
  const w = decoded(ev);
  assert.equal(w.verdict, 'DROPPED');
  assert.equal(w.drop_reason_desc, 'POLICY_DENIED');
  assert.deepEqual(w.egress_denied_by, [{ name: 'psql-only-to-db', kind: 'TracingPolicy' }]);
  const ext = structToJson(protos().Struct.toObject(protos().Struct.decode(fullFlowOf(ev, 'node1').extensions!.value)) as Obj);
  const lsm = ext.process_lsm as Obj;
  assert.equal(lsm.policy_name, 'psql-only-to-db');
  assert.equal(lsm.action, 'KPROBE_ACTION_OVERRIDE');
  assert.equal((lsm.process as Obj).binary, '/usr/bin/python3');
});

test('monitor mode: AUDIT policy-verdict flow that says what would have happened', () => {
  const f = flowOf(connectDenied(true), 'node1');
  assert.equal(f.verdict, 4, 'AUDIT');
  assert.deepEqual(f.event_type, { type: 5, sub_type: 0 });
  assert.equal(f.drop_reason_desc, undefined);
  assert.equal(f.egress_denied_by, undefined);
  assert.equal(f.Summary, 'connect would be denied /usr/bin/python3 → 10.0.1.5:5432 (policy psql-only-to-db, monitor mode)');
  const killed = connectDenied(false);
  killed.enforcement = { kind: 'denied', monitor: false, errno: 1, signal: 9 };
  assert.equal(flowOf(killed, 'node1').Summary, 'connect denied and killed /usr/bin/python3 → 10.0.1.5:5432 (EPERM) (policy psql-only-to-db)');
});

test('Hubble filters find the denials: --verdict DROPPED, --type drop, --to-identity, --pod', () => {
  const f = flowOf(connectDenied(false), 'node1');
  const m = (white: FlowFilter[]): boolean => compileFilterLists(white)(f);
  assert.equal(m([{ verdict: [2] }]), true);
  assert.equal(m([{ verdict: [1] }]), false);
  assert.equal(m([{ event_type: [{ type: 1 }] }]), true);
  assert.equal(m([{ destination_identity: [48213] }]), true);
  assert.equal(m([{ source_pod: ['prod/api'] }]), true);
  assert.equal(m([{ destination_port: ['5432'] }]), true);
});

test('killed, denied and observed events without a peer: runtime flows with clear summaries', () => {
  const sh = makeProcess({ binary: '/tmp/evil', arguments: '' });
  const killed = policyEvent({ functionName: 'sys_execve', args: [{ t: 'string', v: '/tmp/evil' }], policyName: 'no-evil', action: 'sigkill', enforcement: { kind: 'killed', monitor: false, signal: 9 } }, sh);
  let f = flowOf(killed, 'node1');
  assert.equal(f.verdict, 2);
  assert.equal(f.Type, 0);
  assert.deepEqual(f.event_type, { type: 200, sub_type: 9 });
  assert.equal(f.Summary, 'killed /tmp/evil at sys_execve (/tmp/evil) (policy no-evil)');
  f = flowOf(policyEvent({ ...killed, enforcement: { kind: 'killed', monitor: true }, wire: new Map() }), 'node1');
  assert.equal(f.verdict, 4);
  assert.equal(f.Summary, 'would kill /tmp/evil at sys_execve (/tmp/evil) (policy no-evil, monitor mode)');

  const denied = policyEvent({ hook: 'lsm', functionName: 'file_open', args: [{ t: 'file', path: '/etc/shadow' }], policyName: 'protect-shadow', action: 'override', enforcement: { kind: 'denied', monitor: false, errno: 1 } }, makeProcess({ binary: '/usr/bin/cat' }));
  f = flowOf(denied, 'node1');
  assert.equal(f.verdict, 2);
  assert.deepEqual(f.event_type, { type: 200, sub_type: 28 });
  assert.equal(f.Summary, 'denied file_open /usr/bin/cat /etc/shadow: EPERM (policy protect-shadow)');

  const seen = policyEvent({ functionName: 'sys_execve', args: [{ t: 'string', v: '/bin/true' }], policyName: 'process-monitoring' }, makeProcess({ binary: '/bin/sh' }));
  f = flowOf(seen, 'node1');
  assert.equal(f.verdict, 1);
  assert.equal(f.Summary, 'sys_execve /bin/sh /bin/true (policy process-monitoring)');
  const tp = flowOf(policyEvent({ hook: 'tracepoint', subsys: 'syscalls', event: 'sys_enter_openat', args: [] }), 'node1');
  assert.deepEqual(tp.event_type, { type: 200, sub_type: 10 });
  assert.equal(tp.Summary, 'syscalls/sys_enter_openat /bin/sh (policy file-watch)');
});
