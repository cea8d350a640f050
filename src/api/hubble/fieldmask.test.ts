import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { compileFieldMask, DEFAULT_MASK_1_16_TO_1_18, DEFAULT_MASK_1_19, FieldMaskError } from './fieldmask';
import { fullFlowOf } from './encode';
import { protos } from './proto';
import { execEvent, podProcess } from './testkit';

const Flow = () => protos().Flow;

test('the stock CLI default masks (1.16–1.18 and 1.19) compile', () => {
  for (const paths of [DEFAULT_MASK_1_16_TO_1_18, DEFAULT_MASK_1_19]) {
    const m = compileFieldMask(Flow(), [...paths]);
    assert.ok(m);
    assert.equal(m.paths.length, paths.length);
  }
});

test('every 1.19 Flow field and nested paths are known', () => {
  for (const name of Object.keys(Flow().fields)) assert.ok(compileFieldMask(Flow(), [name]), name);
  for (const p of ['source.identity', 'source.workloads', 'l4.TCP.flags.SYN', 'l7.dns.query', 'ip_trace_id.trace_id', 'tunnel.IP.source', 'is_reply.value', 'extensions.type_url', 'aggregate', 'emitter.version']) {
    assert.ok(compileFieldMask(Flow(), [p]), p);
  }
});

test('unknown or invalid paths fail, naming the path and the request field', () => {
  assert.throws(() => compileFieldMask(Flow(), ['time', 'bogus']), (e: unknown) => e instanceof FieldMaskError && /^field_mask: invalid path "bogus"/.test(e.message));
  assert.throws(() => compileFieldMask(Flow(), ['source.nope'], 'experimental.field_mask'), /experimental\.field_mask: invalid path "source\.nope"/);
  assert.throws(() => compileFieldMask(Flow(), ['Summary.x']), /"Summary" has no subfields/);
  assert.throws(() => compileFieldMask(Flow(), ['source.workloads.name']), /has no subfields/);
  assert.throws(() => compileFieldMask(Flow(), ['ip']), /invalid path "ip"/, 'names are case-sensitive (IP)');
});

test('empty mask = no masking; canonical key ignores order and covered paths', () => {
  assert.equal(compileFieldMask(Flow(), []), undefined);
  assert.equal(compileFieldMask(Flow(), undefined), undefined);
  const a = compileFieldMask(Flow(), ['source', 'time', 'source.identity'])!;
  const b = compileFieldMask(Flow(), ['time', 'source'])!;
  assert.equal(a.key, b.key);
  assert.equal(a.key, 'source,time');
});

test('apply copies only the masked fields', () => {
  const flow = fullFlowOf(execEvent({}, podProcess('default', 'web-1')));
  const m = compileFieldMask(Flow(), [...DEFAULT_MASK_1_19])!;
  const out = m.apply(flow);
  assert.deepEqual(Object.keys(out).sort(), ['IP', 'Summary', 'Type', 'event_type', 'node_name', 'source', 'time', 'verdict'].sort());
  assert.deepEqual(out.source, { namespace: 'default', pod_name: 'web-1' });
  assert.equal(m.has('extensions'), false);
  const sub = compileFieldMask(Flow(), ['source.identity'])!.apply(flow);
  assert.deepEqual(sub, { source: {} }, 'a present sub-message stays present');
  assert.ok(flow.extensions, 'the source flow is not modified');
});
