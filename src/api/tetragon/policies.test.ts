// The Sensors gRPC methods through a real grpc-js client over a real unix
// socket, backed by a PolicyManager (with a fake loader: no kernel here).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { StatusProvider, StatusSnapshot } from '../../agent/status';
import { EventBus } from '../../bus/bus';
import { PolicyManager } from '../../policy/manager';
import { FakeLoader, policyYaml } from '../../policy/manager/testkit';
import { policyApiOf } from './policies';
import type { ProtoObject } from './protos';
import { startTetragonServer, tetragonServiceDefinition, type TetragonServer } from './server';

const snapshot: StatusSnapshot = {
  version: 'v', nodeName: 'n', startTime: { sec: 1, nsec: 0 }, uptimeNs: 1,
  sensors: [{ name: 'process', state: 'running', hooks: [] }], features: {}, notes: [], counters: {}, listeners: {},
};
const status: StatusProvider = { snapshot: () => snapshot };
const Client = grpc.makeGenericClientConstructor(tetragonServiceDefinition('client'), 'FineGuidanceSensors');
type Reply = (err: grpc.ServiceError | null, res: ProtoObject) => void;

let dir: string;
let srv: TetragonServer;
let client: grpc.Client;
let loader: FakeLoader;
let manager: PolicyManager;

function call(method: string, req: ProtoObject): Promise<ProtoObject> {
  const fn = (client as unknown as Record<string, (req: ProtoObject, cb: Reply) => void>)[method];
  return new Promise((resolve, reject) => fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res))));
}

async function fails(p: Promise<unknown>, code: grpc.status, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: grpc.ServiceError) => {
    assert.equal(e.code, code, `${grpc.status[e.code]}: ${e.details}`);
    assert.match(e.details, re);
    return true;
  });
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-tpgrpc-'));
  loader = new FakeLoader();
  manager = new PolicyManager({ loader });
  srv = await startTetragonServer({ addresses: [`unix://${dir}/t.sock`], bus: new EventBus(), status, version: 'v', policies: policyApiOf(manager) });
  client = new Client(`unix://${dir}/t.sock`, grpc.credentials.createInsecure());
});

after(async () => {
  client.close();
  await srv.close();
  await manager.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('Add → List with every TracingPolicyStatus field we fill', async () => {
  await call('AddTracingPolicy', { yaml: policyYaml('seed', { sigkill: true, mode: 'monitor' }) });
  const res = await call('ListTracingPolicies', {});
  const [p] = res.policies as ProtoObject[];
  assert.deepEqual(
    { ...p, stats: undefined, hook_statuses: undefined },
    {
      id: '1', name: 'seed', sensors: ['generic_kprobe'], enabled: true, state: 'TP_STATE_ENABLED', kernel_memory_bytes: '4096', mode: 'TP_MODE_MONITOR', domain: 'grpc',
      stats: undefined, hook_statuses: undefined,
    },
  );
  assert.deepEqual((p.stats as ProtoObject).action_counters, { post: '3' });
  assert.deepEqual(p.hook_statuses, [{ section: 'kprobes[0]', state: 'STATUS_LOADED', hook_description: 'sys_execve → tracepoint syscalls/sys_enter_execve' }]);
});

test('errors: INVALID_ARGUMENT naming the problem, ALREADY_EXISTS, NOT_FOUND; nothing changes', async () => {
  await fails(call('AddTracingPolicy', { yaml: policyYaml('x').replace('type: string', 'type: strng') }), grpc.status.INVALID_ARGUMENT, /spec\.kprobes\[0\]\.args\[0\]\.type: unknown arg type "strng"/);
  await fails(call('AddTracingPolicy', { yaml: 'apiVersion: [' }), grpc.status.INVALID_ARGUMENT, /YAML syntax error/);
  await fails(call('AddTracingPolicy', { yaml: '' }), grpc.status.INVALID_ARGUMENT, /empty policy/);
  await fails(call('AddTracingPolicy', { yaml: policyYaml('seed') }), grpc.status.ALREADY_EXISTS, /"seed" already exists/);
  await fails(call('DeleteTracingPolicy', { name: 'nope' }), grpc.status.NOT_FOUND, /"nope" not found/);
  await fails(call('ConfigureTracingPolicy', { name: 'nope', enable: true }), grpc.status.NOT_FOUND, /"nope" not found/);
  await fails(call('ConfigureTracingPolicy', { name: 'seed', mode: 7 }), grpc.status.INVALID_ARGUMENT, /unsupported tracing policy mode/);
  const res = await call('ListTracingPolicies', {});
  assert.deepEqual((res.policies as ProtoObject[]).map((p) => p.name), ['seed']);
});

test('Enable/Disable (v1.3 clients), Configure enable and mode (v1.4+)', async () => {
  const state = async (): Promise<ProtoObject> => ((await call('ListTracingPolicies', {})).policies as ProtoObject[])[0];
  await call('DisableTracingPolicy', { name: 'seed' });
  assert.equal((await state()).state, 'TP_STATE_DISABLED');
  assert.equal((await state()).enabled, undefined);
  await fails(call('DisableTracingPolicy', { name: 'seed' }), grpc.status.FAILED_PRECONDITION, /already disabled/);
  await call('EnableTracingPolicy', { name: 'seed' });
  assert.equal((await state()).state, 'TP_STATE_ENABLED');
  await call('ConfigureTracingPolicy', { name: 'seed', enable: false });
  assert.equal((await state()).state, 'TP_STATE_DISABLED');
  await call('ConfigureTracingPolicy', { name: 'seed', enable: true, mode: 1 });
  const s = await state();
  assert.equal(s.state, 'TP_STATE_ENABLED');
  assert.equal(s.mode, 'TP_MODE_ENFORCE');
  assert.equal(loader.live()[0].mode, 'enforce');
});

test('ListSensors: our sensors plus one per policy hook kind', async () => {
  const res = await call('ListSensors', {});
  assert.deepEqual(res.sensors, [
    { name: 'process', enabled: true, collection: 'process' },
    { name: 'generic_kprobe', enabled: true, collection: 'seed' },
  ]);
});

test('load errors are listed with the reason; Delete removes', async () => {
  loader.failing.add('broken');
  await fails(call('AddTracingPolicy', { yaml: policyYaml('broken') }), grpc.status.FAILED_PRECONDITION, /"broken" failed to load: verifier/);
  const list = (await call('ListTracingPolicies', {})).policies as ProtoObject[];
  const b = list.find((p) => p.name === 'broken')!;
  assert.equal(b.state, 'TP_STATE_LOAD_ERROR');
  assert.match(String(b.error), /verifier: R1 invalid mem access/);
  await call('DeleteTracingPolicy', { name: 'broken' });
  await call('DeleteTracingPolicy', { name: 'seed' });
  assert.deepEqual((await call('ListTracingPolicies', {})).policies ?? [], []);
  assert.equal(loader.live().length, 0);
});
