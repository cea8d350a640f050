import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { DEFAULT_MASK_1_19, compileFieldMask } from './fieldmask';
import { encodeStruct, eventSummary, flowOf, flowResponseBytes, lossNoticeBytes, WIRE_KEY } from './encode';
import { protos, STRUCT_TYPE_URL } from './proto';
import { execEvent, exitEvent, lossNotice, podProcess, protojson, structToJson } from './testkit';

type Obj = Record<string, unknown>;

function decodeResponse(bytes: Uint8Array): Obj {
  const T = protos().GetFlowsResponse;
  return T.toObject(T.decode(bytes), { longs: String, enums: String }) as Obj;
}

test('exec event encodes as a runtime flow (§8)', () => {
  const ev = execEvent({}, podProcess('default', 'web-1'));
  const res = decodeResponse(flowResponseBytes(ev, undefined));
  const flow = res.flow as Obj;
  assert.equal(res.node_name, 'node1');
  assert.deepEqual(res.time, { seconds: '1700000100', nanos: 123456789 });
  assert.deepEqual(flow.time, { seconds: '1700000100', nanos: 123456789 });
  assert.equal(flow.verdict, 'FORWARDED');
  assert.equal(flow.node_name, 'node1');
  assert.deepEqual(flow.IP, {}, 'IP must be present (non-nil) even without addresses');
  assert.deepEqual(flow.event_type, { type: 200, sub_type: 1 });
  assert.equal(flow.Summary, 'exec /usr/bin/curl -s https://ebpf.io');
  assert.equal(flow.is_reply, undefined);
  assert.match(String(flow.uuid), /^[0-9a-f-]{36}$/);
  const src = flow.source as Obj;
  assert.equal(src.namespace, 'default');
  assert.equal(src.pod_name, 'web-1');
  assert.equal(src.identity, undefined, 'identity 0 without Cilium data');
  assert.deepEqual(src.labels, ['k8s:app=web-1', 'k8s:io.kubernetes.pod.namespace=default']);
  assert.deepEqual(src.workloads, [{ name: 'web-1', kind: 'Deployment' }]);

  const ext = flow.extensions as { type_url: string; value: Uint8Array };
  assert.equal(ext.type_url, STRUCT_TYPE_URL);
  const S = protos().Struct;
  const json = structToJson(S.toObject(S.decode(ext.value)) as Obj);
  const pe = json.process_exec as Obj;
  assert.equal((pe.process as Obj).exec_id, ev.process.execId);
  assert.equal((pe.process as Obj).binary, '/usr/bin/curl');
  assert.equal((pe.parent as Obj).binary, '/bin/bash');
  assert.equal(json.node_name, 'node1');
});

test('uuids are unique per event and stable per event', () => {
  const a = execEvent();
  const b = execEvent();
  assert.notEqual(flowOf(a).uuid, flowOf(b).uuid);
  assert.equal(flowOf(a).uuid, flowOf(a).uuid);
});

test('exit summaries and sub_type', () => {
  const ok = exitEvent({ status: 0 });
  const killed = exitEvent({ signal: 'SIGKILL' }, { binary: '/usr/bin/sleep' });
  assert.equal(eventSummary(ok), 'exit /usr/bin/curl 0');
  assert.equal(eventSummary(killed), 'exit /usr/bin/sleep SIGKILL');
  assert.deepEqual(flowOf(killed).event_type, { type: 200, sub_type: 5 });
  const res = decodeResponse(flowResponseBytes(killed, undefined));
  const S = protos().Struct;
  const ext = (res.flow as Obj).extensions as { value: Uint8Array };
  const json = structToJson(S.toObject(S.decode(ext.value)) as Obj);
  assert.equal((json.process_exit as Obj).signal, 'SIGKILL');
});

test('host process: empty source endpoint, still printable', () => {
  const flow = flowOf(execEvent());
  assert.deepEqual(flow.source, {});
  assert.deepEqual(flow.IP, { source: '', ipVersion: 0 });
});

test('endpoint data wins for identity, ID and labels', () => {
  const ev = execEvent({}, { ...podProcess('prod', 'api-7'), endpoint: { id: 42, identity: 12345, namespace: 'prod', podName: 'api-7', labels: ['k8s:app=api'] } });
  const src = flowOf(ev).source!;
  assert.equal(src.ID, 42);
  assert.equal(src.identity, 12345);
  assert.deepEqual(src.labels, ['k8s:app=api']);
});

test('encodings are cached per mask and shared', () => {
  const ev = execEvent();
  const a = flowResponseBytes(ev, undefined);
  assert.equal(flowResponseBytes(ev, undefined), a);
  assert.equal(ev.wire.get(WIRE_KEY), a);
  const mask = compileFieldMask(protos().Flow, [...DEFAULT_MASK_1_19])!;
  const m = flowResponseBytes(ev, mask);
  assert.equal(ev.wire.get(`${WIRE_KEY}|${mask.key}`), m);
  assert.ok(m.length < a.length);
  const flow = decodeResponse(m).flow as Obj;
  assert.equal(flow.uuid, undefined);
  assert.equal(flow.extensions, undefined);
  assert.equal(flow.Summary, 'exec /usr/bin/curl -s https://ebpf.io');
});

test('loss notice → lost_events with source, count, cpu', () => {
  const res = decodeResponse(lossNoticeBytes(lossNotice({ first: { sec: 1, nsec: 0 }, last: { sec: 2, nsec: 0 } })));
  assert.deepEqual(res.lost_events, {
    source: 'PERF_EVENT_RING_BUFFER',
    num_events_lost: '7',
    cpu: { value: 3 },
    first: { seconds: '1' },
    last: { seconds: '2' },
  });
  assert.equal(res.node_name, 'node1');
  assert.ok(res.time);
  const q = decodeResponse(lossNoticeBytes(lossNotice({ source: 'subscriber_queue', cpu: undefined })));
  assert.equal((q.lost_events as Obj).source, 'OBSERVER_EVENTS_QUEUE');
  assert.equal((q.lost_events as Obj).cpu, undefined);
});

test('JSON rendering (protojson rules) has IP, Summary and the Struct extension', () => {
  const ev = execEvent({}, podProcess('default', 'web-1'));
  const T = protos().GetFlowsResponse;
  const json = protojson(T, T.decode(flowResponseBytes(ev, undefined)));
  const flow = json.flow as Obj;
  assert.deepEqual(flow.IP, {});
  assert.equal(flow.Summary, 'exec /usr/bin/curl -s https://ebpf.io');
  assert.equal(flow.verdict, 'FORWARDED');
  // UNKNOWN_TYPE is the enum zero value: protojson leaves it out, as it would for the CLI.
  assert.equal(flow.Type, undefined);
  assert.equal((flow.extensions as Obj)['@type'], STRUCT_TYPE_URL);
  assert.ok(((flow.extensions as Obj).value as Obj).process_exec);
  // A network-like flow with a non-zero Type prints it under the `Type` key.
  const F = protos().Flow;
  const net = protojson(F, F.decode(F.encode({ Type: 1, IP: { source: '10.0.0.1', ipVersion: 1 }, Summary: 'x' }).finish()));
  assert.deepEqual(Object.keys(net).sort(), ['IP', 'Summary', 'Type']);
  assert.equal(net.Type, 'L3_L4');
});

test('encodeStruct writes a google.protobuf.Struct that decodes back to the JSON', () => {
  const obj = { s: 'x', n: -1.5, t: true, f: false, z: null, big: 18446744073709551615n, skip: undefined, list: [1, 'a', null, [true], { k: 'v' }], nested: { a: { b: 'c' } }, empty: {}, none: [] };
  const S = protos().Struct;
  const back = structToJson(S.toObject(S.decode(encodeStruct(obj))) as Obj);
  assert.deepEqual(back, { s: 'x', n: -1.5, t: true, f: false, z: null, big: '18446744073709551615', list: [1, 'a', null, [true], { k: 'v' }], nested: { a: { b: 'c' } }, empty: {}, none: [] });
});
