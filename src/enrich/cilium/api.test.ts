// The Cilium agent API client against the STAND-IN agent API
// (integration/standins/cilium-api.ts) on a unix socket. No root needed.
import { test, type TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CiliumApiStandin } from '../../../integration/standins/cilium-api';
import { CiliumApiClient, socketPathOf, type CiliumApiOptions } from './api';

const WEB = ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop', 'k8s:io.cilium.k8s.policy.cluster=default'];
const DB = ['k8s:app=db', 'k8s:io.kubernetes.pod.namespace=shop'];

/** A manual clock for expiry and back-off. */
class Clock {
  t = 1_000_000;
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

async function setup(t: TestContext, opts: CiliumApiOptions = {}): Promise<{ api: CiliumApiStandin; client: CiliumApiClient; clock: Clock }> {
  const api = await CiliumApiStandin.start();
  api.setIdentity(54321, WEB);
  api.setIdentity(60000, DB);
  const clock = new Clock();
  const client = new CiliumApiClient({ socket: api.address, now: clock.now, timeoutMs: 300, ...opts });
  t.after(async () => {
    client.close();
    await api.dispose();
  });
  return { api, client, clock };
}

test('socket addresses', () => {
  assert.equal(socketPathOf('unix:///var/run/cilium/cilium.sock'), '/var/run/cilium/cilium.sock');
  assert.equal(socketPathOf('unix:/run/x.sock'), '/run/x.sock');
  assert.equal(socketPathOf('/run/x.sock'), '/run/x.sock');
  const saved = process.env.CILIUM_SOCK;
  process.env.CILIUM_SOCK = '/tmp/elsewhere.sock';
  try {
    assert.equal(new CiliumApiClient().socketPath, '/tmp/elsewhere.sock');
    delete process.env.CILIUM_SOCK;
    assert.equal(new CiliumApiClient().socketPath, '/var/run/cilium/cilium.sock');
  } finally {
    if (saved === undefined) delete process.env.CILIUM_SOCK;
    else process.env.CILIUM_SOCK = saved;
  }
});

test('reserved identities resolve locally, without a request', async (t) => {
  const { api, client } = await setup(t);
  assert.deepEqual(client.labelsOf(1), ['reserved:host']);
  assert.deepEqual(client.labelsOf(2), ['reserved:world']);
  assert.deepEqual(client.labelsOf(6), ['reserved:remote-node']);
  assert.deepEqual(client.labelsOf(7), ['reserved:kube-apiserver', 'reserved:remote-node']);
  assert.deepEqual(client.labelsOf(9), ['reserved:world-ipv4']);
  assert.equal(client.labelsOf(0), undefined);
  assert.equal(client.labelsOf(-1), undefined);
  assert.equal(client.labelsOf(Number.NaN), undefined);
  await client.idle();
  assert.equal(api.count(), 0);
});

test('labels: miss starts a background fetch, then served from the cache', async (t) => {
  const { api, client } = await setup(t);
  assert.equal(client.labelsOf(54321), undefined, 'not known yet');
  assert.equal(client.labelsOf(54321), undefined, 'still in flight');
  await client.idle();
  assert.deepEqual(client.labelsOf(54321), WEB);
  assert.deepEqual(client.identityOf(54321), { id: 54321, labels: WEB, namespace: 'shop' });
  assert.equal(api.count('/v1/identity/54321'), 1, 'one request for the concurrent misses');
  const s = client.stats();
  assert.equal(s.ok, 1);
  assert.equal(s.misses, 2);
  assert.equal(s.cacheHits, 2);
  assert.equal(s.errorsTotal, 0);
  // Local-scope (CIDR) identities come from the same call.
  api.setIdentity(0x01000001, ['cidr:10.0.0.0/8', 'reserved:world']);
  assert.deepEqual(await client.fetchIdentity(0x01000001), { id: 0x01000001, labels: ['cidr:10.0.0.0/8', 'reserved:world'], namespace: '' });
});

test('expired labels are served stale while a refresh runs', async (t) => {
  const { api, client, clock } = await setup(t, { ttlMs: 60_000 });
  await client.fetchIdentity(54321);
  api.setIdentity(54321, ['k8s:app=web2']);
  clock.advance(59_000);
  assert.deepEqual(client.labelsOf(54321), WEB);
  assert.equal(api.count('/v1/identity/'), 1);
  clock.advance(2_000);
  assert.deepEqual(client.labelsOf(54321), WEB, 'stale, refresh started');
  await client.idle();
  assert.deepEqual(client.labelsOf(54321), ['k8s:app=web2']);
  assert.equal(client.stats().staleHits, 1);
});

test('404 is cached (negative caching) for negativeTtlMs', async (t) => {
  const { api, client, clock } = await setup(t, { negativeTtlMs: 10_000 });
  assert.equal(await client.fetchIdentity(77777), undefined);
  for (let i = 0; i < 5; i++) assert.equal(client.labelsOf(77777), undefined);
  await client.idle();
  assert.equal(api.count('/v1/identity/77777'), 1);
  assert.equal(client.stats().negativeHits, 5);
  assert.equal(client.stats().notFound, 1);
  assert.equal(client.stats().errorsTotal, 0, '404 is an answer, not an error');
  api.setIdentity(77777, ['k8s:app=late']);
  clock.advance(10_001);
  assert.equal(client.labelsOf(77777), undefined);
  await client.idle();
  assert.deepEqual(client.labelsOf(77777), ['k8s:app=late']);
});

test('errors back off exponentially; recovery resets the back-off', async (t) => {
  const { api, client, clock } = await setup(t, { backoffBaseMs: 1000, backoffMaxMs: 4000 });
  api.misbehave({ mode: 'status', status: 500 });
  assert.equal(await client.fetchIdentity(54321), undefined);
  assert.equal(client.stats().errors.http, 1);
  assert.equal(client.stats().backoffMs, 1000);
  // While backing off, lookups do not hit the API at all.
  for (let i = 0; i < 10; i++) assert.equal(client.labelsOf(60000 + i), undefined);
  await client.idle();
  assert.equal(api.count('/v1/identity/'), 1);
  assert.equal(client.stats().backoffSkips, 10);
  clock.advance(1000);
  client.labelsOf(60000);
  await client.idle();
  assert.equal(client.stats().backoffMs, 2000, 'second failure doubles');
  clock.advance(2000);
  await client.fetchIdentity(60000);
  assert.equal(client.stats().backoffMs, 4000);
  clock.advance(4000);
  await client.fetchIdentity(60000);
  assert.equal(client.stats().backoffMs, 4000, 'capped at backoffMaxMs');
  assert.equal(client.stats().errors.http, 4);
  api.behave();
  clock.advance(4000);
  client.labelsOf(60000);
  await client.idle();
  assert.deepEqual(client.labelsOf(60000), DB);
  assert.equal(client.stats().backoffMs, 0);
});

/** Runs one misbehaving fetch; asserts it is quick, counted, and lookups stayed synchronous. */
async function misbehaves(t: TestContext, how: Parameters<CiliumApiStandin['misbehave']>[0], kind: keyof ReturnType<CiliumApiClient['stats']>['errors'], opts: CiliumApiOptions = {}): Promise<void> {
  const { api, client, clock } = await setup(t, opts);
  api.misbehave(how, { times: 1 });
  const t0 = process.hrtime.bigint();
  assert.equal(client.labelsOf(54321), undefined);
  const syncMs = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(syncMs < 20, `labelsOf took ${syncMs} ms`);
  await client.idle();
  const totalMs = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(totalMs < 2000, `failed fetch took ${totalMs} ms`);
  const s = client.stats();
  assert.equal(s.errors[kind], 1, JSON.stringify(s.errors));
  assert.equal(s.errorsTotal, 1);
  assert.equal(client.labelsOf(54321), undefined);
  // And the client recovers once the API behaves again.
  clock.advance(s.backoffMs);
  client.labelsOf(54321);
  await client.idle();
  assert.deepEqual(client.labelsOf(54321), WEB);
}

test('garbage JSON costs a counted parse error', (t) => misbehaves(t, { mode: 'garbage' }, 'parse'));
test('a hanging API costs a counted timeout, not a stall', (t) => misbehaves(t, { mode: 'hang' }, 'timeout', { timeoutMs: 200 }));
test('a slow-but-too-slow API is a timeout too', (t) => misbehaves(t, { mode: 'slow', delayMs: 1000 }, 'timeout', { timeoutMs: 200 }));
test('a connection closed mid-response costs a counted error', (t) => misbehaves(t, { mode: 'close-mid-response' }, 'closed'));
test('an oversized response is cut at maxResponseBytes', (t) => misbehaves(t, { mode: 'oversize', bytes: 4 << 20 }, 'too-large', { maxResponseBytes: 64 * 1024 }));

test('a wrong-shaped answer is a counted shape error', async (t) => {
  const { api, client } = await setup(t);
  // 200 with an error object instead of an Identity.
  api.misbehave({ mode: 'status', status: 200 }, { times: 1 });
  assert.equal(await client.fetchIdentity(60000), undefined);
  assert.equal(client.stats().errors.shape, 1);
  assert.equal(client.stats().errorsTotal, 1);
});

test('an unreachable socket is a counted connect error', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tetrahub-nosock-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const client = new CiliumApiClient({ socket: `unix://${dir}/cilium.sock` });
  t.after(() => client.close());
  assert.equal(client.labelsOf(54321), undefined);
  assert.equal(client.endpointByIp('10.0.1.5'), undefined);
  await client.idle();
  const s = client.stats();
  assert.equal(s.errors.connect, 2, JSON.stringify(s));
  assert.ok(s.backoffMs > 0);
});

test('the API going away and coming back (agent restart)', async (t) => {
  const { api, client, clock } = await setup(t);
  await client.fetchIdentity(54321);
  await api.close();
  // Cached labels keep being served while the agent is down.
  clock.advance(11 * 60_000);
  assert.deepEqual(client.labelsOf(54321), WEB);
  await client.idle();
  assert.equal(client.stats().errors.connect, 1);
  await api.restart();
  clock.advance(client.stats().backoffMs);
  client.labelsOf(54321);
  await client.idle();
  assert.equal(client.stats().ok, 2);
});

test('the cache is bounded (LRU) and evictions are counted', async (t) => {
  const { api, client } = await setup(t, { maxEntries: 3 });
  for (let id = 1000; id < 1005; id++) api.setIdentity(id, [`k8s:app=a${id}`]);
  for (let id = 1000; id < 1003; id++) await client.fetchIdentity(id);
  client.labelsOf(1000); // most recently used now; 1001 is the oldest
  await client.fetchIdentity(1003);
  await client.fetchIdentity(1004);
  const s = client.stats();
  assert.equal(s.cacheSize, 3);
  assert.equal(s.evictions, 2);
  assert.deepEqual(client.labelsOf(1000), ['k8s:app=a1000']);
  assert.equal(client.labelsOf(1001), undefined, 'evicted');
  assert.equal(client.labelsOf(1002), undefined, 'evicted');
});

test('at most maxInflight background fetches', async (t) => {
  const { api, client } = await setup(t, { maxInflight: 2 });
  api.misbehave({ mode: 'slow', delayMs: 50 });
  for (let id = 2000; id < 2010; id++) client.labelsOf(id);
  assert.equal(client.stats().inflightSkips, 8);
  await client.idle();
  assert.equal(api.count('/v1/identity/'), 2);
});

test('endpoints: pod names by IP, identity labels learned from the list', async (t) => {
  const { api, client, clock } = await setup(t, { endpointsTtlMs: 30_000 });
  api.addEndpoint({ id: 1234, identity: 54321, ipv4: '10.0.1.5', ipv6: 'fd00:0:0::5', namespace: 'shop', podName: 'web-1', containerId: 'abc123', interfaceIndex: 17, mac: '0a:58:0a:00:01:05' });
  api.addEndpoint({ id: 99, identity: 1, ipv4: '192.168.0.10', podName: '' });
  assert.equal(client.endpointByIp('10.0.1.5'), undefined, 'list not fetched yet');
  await client.idle();
  const ep = client.endpointByIp('10.0.1.5');
  assert.deepEqual(ep, {
    id: 1234,
    identity: 54321,
    labels: WEB,
    ipv4: ['10.0.1.5'],
    ipv6: ['fd00::5'],
    namespace: 'shop',
    podName: 'web-1',
    containerId: 'abc123',
    interfaceName: 'lxc1234',
    interfaceIndex: 17,
    mac: '0a:58:0a:00:01:05',
    state: 'ready',
  });
  assert.equal(client.endpointByIp('fd00::5')?.id, 1234);
  assert.equal(client.endpointByIp('::ffff:10.0.1.5')?.id, 1234);
  assert.equal(client.endpointById(99)?.identity, 1);
  // The endpoint's identity labels are cached without a /v1/identity call.
  assert.deepEqual(client.labelsOf(54321), WEB);
  assert.equal(api.count('/v1/identity/'), 0);
  assert.equal(api.count('/v1/endpoint'), 1);
  // Refreshed in the background once stale.
  api.addEndpoint({ id: 1300, identity: 60000, ipv4: '10.0.1.9', namespace: 'shop', podName: 'db-0' });
  clock.advance(30_000);
  assert.equal(client.endpointByIp('10.0.1.9'), undefined);
  await client.idle();
  assert.equal(client.endpointByIp('10.0.1.9')?.podName, 'db-0');
  // A failing refresh keeps the last good list.
  api.misbehave({ mode: 'garbage' }, { times: 1 });
  clock.advance(30_000);
  client.endpoints();
  await client.idle();
  assert.equal(client.stats().errors.parse, 1);
  assert.equal(client.endpointByIp('10.0.1.9')?.podName, 'db-0');
});

test('close() aborts what is in flight without throwing', async (t) => {
  const { api, client } = await setup(t, { timeoutMs: 5000 });
  api.misbehave({ mode: 'hang' });
  client.labelsOf(54321);
  const t0 = Date.now();
  client.close();
  await client.idle();
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(client.labelsOf(60000), undefined);
});
