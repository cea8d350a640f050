// Cilium stand-ins end to end:
//  - the STAND-IN Hubble server streams Cilium-shaped flows that a real gRPC
//    client decodes with our protos (GetFlows number / first / follow, socket
//    going away and coming back);
//  - the agent-side readers (maps + agent API) against the STAND-IN maps and
//    agent API produce the same Endpoint that Cilium's Hubble puts in a flow.
import { test, type TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { hubbleClient, healthClient, unary, type Plain } from './clients';
import { dnsFlow, dropFlow, HubbleServerStandin, policyVerdictFlow, traceFlow, type EndpointSpec } from './standins/hubble-server';
import { CiliumApiStandin } from './standins/cilium-api';
import { CiliumMapsFixture, fixtureUnavailable } from './standins/cilium-maps';
import { CiliumApiClient } from '../src/enrich/cilium/api';
import { CiliumMaps } from '../src/enrich/cilium/maps';
import { CiliumEnricher } from '../src/enrich/cilium/enrich';

const WEB_LABELS = ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop'];
const DNS_LABELS = ['k8s:io.kubernetes.pod.namespace=kube-system', 'k8s:k8s-app=kube-dns'];
const WEB: EndpointSpec = { ip: '10.0.1.5', id: 1234, identity: 54321, namespace: 'shop', podName: 'web-1', labels: WEB_LABELS, workloads: [{ name: 'web', kind: 'Deployment' }] };
const DB: EndpointSpec = { ip: '10.0.2.9', id: 1300, identity: 60000, namespace: 'shop', podName: 'db-0', labels: ['k8s:app=db', 'k8s:io.kubernetes.pod.namespace=shop'] };
const KUBE_DNS: EndpointSpec = { ip: '10.0.0.10', id: 88, identity: 102, namespace: 'kube-system', podName: 'coredns-5d78c9869d-abcde', labels: DNS_LABELS };
const WORLD: EndpointSpec = { ip: '93.184.216.34', identity: 2, labels: ['reserved:world'] };

async function hubble(t: TestContext): Promise<HubbleServerStandin> {
  const s = await HubbleServerStandin.start({ nodeName: 'kind-worker' });
  t.after(() => s.dispose());
  return s;
}

/** One GetFlows call to its end. */
function getFlows(address: string, req: Plain): Promise<Plain[]> {
  const client = hubbleClient(address);
  const call = client.GetFlows(req) as grpc.ClientReadableStream<Plain>;
  const out: Plain[] = [];
  return new Promise((resolve, reject) => {
    call.on('data', (r: Plain) => out.push(r));
    call.on('error', (e) => {
      client.close();
      reject(e);
    });
    call.on('end', () => {
      client.close();
      resolve(out);
    });
  });
}

/** A follow stream collecting responses; next(n) waits for n in total. */
function follow(address: string, req: Plain = { follow: true }) {
  const client = hubbleClient(address);
  const call = client.GetFlows(req) as grpc.ClientReadableStream<Plain>;
  const got: Plain[] = [];
  let error: grpc.ServiceError | undefined;
  let wake: (() => void) | undefined;
  call.on('data', (r: Plain) => {
    got.push(r);
    wake?.();
  });
  call.on('error', (e: grpc.ServiceError) => {
    error = e;
    wake?.();
  });
  return {
    got,
    get error() {
      return error;
    },
    async until(pred: () => boolean, ms = 5000): Promise<void> {
      const deadline = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timed out; got ${got.length}, error ${error?.message}`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
      }
    },
    close(): void {
      call.cancel();
      client.close();
    },
  };
}

test('stand-in Hubble server: Cilium-shaped flows decode with our protos', async (t) => {
  const s = await hubble(t);
  s.emit(traceFlow({ source: WEB, destination: DB, l4: { protocol: 'TCP', sourcePort: 45678, destinationPort: 5432, flags: ['SYN'] }, obsPoint: 'to-endpoint', direction: 'INGRESS', isReply: false }));
  s.emit(traceFlow({ source: DB, destination: WEB, l4: { protocol: 'TCP', sourcePort: 5432, destinationPort: 45678, flags: ['SYN', 'ACK'] }, obsPoint: 'to-stack', direction: 'INGRESS', isReply: true }));
  s.emit(dropFlow({ source: WORLD, destination: WEB, l4: { protocol: 'TCP', sourcePort: 51000, destinationPort: 22, flags: ['SYN'] }, direction: 'INGRESS' }));
  s.emit(policyVerdictFlow({ source: WEB, destination: DB, l4: { protocol: 'TCP', sourcePort: 45678, destinationPort: 5432, flags: ['SYN'] }, allowed: true, direction: 'EGRESS', matchType: 2 }));
  s.emit(dnsFlow({ source: WEB, destination: KUBE_DNS, query: 'example.com.', qtypes: ['A'] }));
  s.emit(dnsFlow({ source: KUBE_DNS, destination: WEB, query: 'example.com.', qtypes: ['A'], ips: ['93.184.216.34'], ttl: 30, rrtypes: ['A'] }));

  const res = await getFlows(s.address, { number: 20 });
  assert.equal(res.length, 6);
  for (const r of res) {
    assert.equal(r.node_name, 'kind-worker');
    assert.ok(Number(r.time.seconds) > 0);
    assert.ok(r.flow, 'oneof is a flow');
  }
  const [syn, synack, drop, pv, q, a] = res.map((r) => r.flow as Plain);

  assert.equal(syn.Type, 'L3_L4');
  assert.deepEqual(syn.event_type, { type: 4 }); // sub_type 0 = to-endpoint (proto3 default, not on the wire)
  assert.equal(syn.trace_observation_point, 'TO_ENDPOINT');
  assert.equal(syn.verdict, 'FORWARDED');
  assert.equal(syn.traffic_direction, 'INGRESS');
  assert.deepEqual(syn.is_reply, {}, 'is_reply present and false');
  assert.deepEqual(syn.IP, { source: '10.0.1.5', destination: '10.0.2.9', ipVersion: 'IPv4' });
  assert.deepEqual(syn.l4, { TCP: { source_port: 45678, destination_port: 5432, flags: { SYN: true } } });
  assert.deepEqual(syn.source, { ID: 1234, identity: 54321, namespace: 'shop', labels: WEB_LABELS, pod_name: 'web-1', workloads: [{ name: 'web', kind: 'Deployment' }] });
  assert.equal(syn.destination.pod_name, 'db-0');
  assert.equal(syn.Summary, 'TCP Flags: SYN');
  assert.match(syn.uuid, /^[0-9a-f-]{36}$/);

  assert.deepEqual(synack.event_type, { type: 4, sub_type: 3 });
  assert.equal(synack.trace_observation_point, 'TO_STACK');
  assert.deepEqual(synack.is_reply, { value: true });
  assert.equal(synack.trace_reason, 'REPLY');

  assert.deepEqual(drop.event_type, { type: 1, sub_type: 133 });
  assert.equal(drop.verdict, 'DROPPED');
  assert.equal(drop.drop_reason_desc, 'POLICY_DENIED');
  assert.equal(drop.drop_reason, 133);
  assert.equal(drop.source.identity, 2);
  assert.equal(drop.is_reply, undefined, 'unknown direction of a drop: nil');

  assert.deepEqual(pv.event_type, { type: 5 });
  assert.equal(pv.policy_match_type, 2);
  assert.equal(pv.traffic_direction, 'EGRESS');

  assert.equal(q.Type, 'L7');
  assert.deepEqual(q.event_type, { type: 129 });
  assert.equal(q.l7.type, 'REQUEST');
  assert.deepEqual(q.l7.dns, { query: 'example.com.', observation_source: 'proxy', qtypes: ['A'] });
  assert.deepEqual(q.l4, { UDP: { source_port: 40000, destination_port: 53 } });

  assert.equal(a.l7.type, 'RESPONSE');
  assert.deepEqual(a.l7.dns, { query: 'example.com.', ips: ['93.184.216.34'], ttl: 30, observation_source: 'proxy', qtypes: ['A'], rrtypes: ['A'] });
  assert.deepEqual(a.is_reply, { value: true });
  assert.equal(a.source.pod_name, 'coredns-5d78c9869d-abcde');
  assert.equal(a.Summary, 'DNS Answer "93.184.216.34" TTL: 30 (Proxy example.com. A)');

  // Health and ServerStatus answer like a node.
  assert.deepEqual(await unary(healthClient(s.address), 'Check', { service: 'hubble.server.Observer' }), { status: 'SERVING' });
  const st = await unary(hubbleClient(s.address), 'ServerStatus', {});
  assert.equal(st.num_flows, '6');
  assert.equal(st.max_flows, '4095');
});

test('stand-in Hubble server: number / first / follow semantics', async (t) => {
  const s = await hubble(t);
  for (let i = 0; i < 5; i++) s.emit(traceFlow({ source: WEB, destination: DB, l4: { protocol: 'UDP', sourcePort: 1000 + i, destinationPort: 53 } }));
  const ports = (rs: Plain[]): number[] => rs.map((r) => r.flow.l4.UDP.source_port as number);
  assert.deepEqual(ports(await getFlows(s.address, { number: 2 })), [1003, 1004], 'last N, oldest first');
  assert.deepEqual(ports(await getFlows(s.address, { number: 2, first: true })), [1000, 1001]);
  assert.deepEqual(ports(await getFlows(s.address, {})), [1000, 1001, 1002, 1003, 1004], 'number 0 = no limit');
  assert.deepEqual(ports(await getFlows(s.address, { number: '18446744073709551615' })).length, 5, '--all');
  await assert.rejects(getFlows(s.address, { first: true, follow: true }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /first cannot be specified with follow/.test(e.details));
  await assert.rejects(getFlows(s.address, { whitelist: [{ source_pod: ['shop/'] }] }), (e: grpc.ServiceError) => e.code === grpc.status.UNIMPLEMENTED);

  // follow without number: no history, then live flows.
  const live = follow(s.address, { follow: true });
  t.after(() => live.close());
  await live.until(() => s.streams === 1);
  s.emit(traceFlow({ source: WEB, destination: DB, l4: { protocol: 'UDP', sourcePort: 2000, destinationPort: 53 } }));
  await live.until(() => live.got.length === 1);
  assert.deepEqual(ports(live.got), [2000]);

  // follow with number: the last N, then live.
  const tail = follow(s.address, { follow: true, number: 2 });
  t.after(() => tail.close());
  await tail.until(() => tail.got.length === 2);
  s.emit(traceFlow({ source: WEB, destination: DB, l4: { protocol: 'UDP', sourcePort: 2001, destinationPort: 53 } }));
  await tail.until(() => tail.got.length === 3);
  assert.deepEqual(ports(tail.got), [1004, 2000, 2001]);
  await live.until(() => live.got.length === 2);
  assert.equal(s.requests.length, 8);
});

test('stand-in Hubble server: socket goes away and comes back on the same path', async (t) => {
  const s = await hubble(t);
  const live = follow(s.address);
  t.after(() => live.close());
  await live.until(() => s.streams === 1);
  s.emit(traceFlow({ source: WEB, destination: DB, l4: { protocol: 'TCP', sourcePort: 1, destinationPort: 2, flags: ['SYN'] } }));
  await live.until(() => live.got.length === 1);
  await s.close();
  await live.until(() => live.error !== undefined);
  assert.ok([grpc.status.UNAVAILABLE, grpc.status.CANCELLED, grpc.status.INTERNAL].includes(live.error?.code as grpc.status), String(live.error));
  await assert.rejects(getFlows(s.address, { number: 1 }), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);

  await s.restart();
  const again = follow(s.address);
  t.after(() => again.close());
  await again.until(() => s.streams === 1);
  s.emit(dnsFlow({ source: WEB, destination: KUBE_DNS, query: 'cilium.io.' }));
  await again.until(() => again.got.length === 1);
  assert.equal(again.got[0].flow.l7.dns.query, 'cilium.io.');
  assert.equal((await getFlows(s.address, {})).length, 1, "Cilium's ring does not survive a restart");
});

test('stand-in Hubble server refuses flows with field names Hubble does not have', async (t) => {
  const s = await hubble(t);
  assert.throws(() => s.emit({ ...traceFlow({ source: WEB, destination: DB, l4: { protocol: 'TCP', sourcePort: 1, destinationPort: 2 } }), Verdict: 'FORWARDED' }), /Verdict is not a field of \.flow\.Flow/);
  assert.throws(() => s.emit({ l7: { dns: { query: 'x.', qtype: ['A'] } } }), /l7\.dns\.qtype is not a field/);
});

test('readers vs stand-ins: our Endpoint for an IP equals the one Cilium puts in its flows', async (t) => {
  const why = fixtureUnavailable();
  if (why) return t.skip(why);
  const fx = CiliumMapsFixture.create({ generation: '1.18' });
  const api = await CiliumApiStandin.start();
  const maps = new CiliumMaps({ dir: fx.dir, recheckMs: 0, watch: false });
  const client = new CiliumApiClient({ socket: api.address, timeoutMs: 500 });
  const hub = await HubbleServerStandin.start();
  t.after(async () => {
    maps.close();
    client.close();
    fx.close();
    await api.dispose();
    await hub.dispose();
  });

  // One model, three Cilium surfaces: maps, agent API, Hubble.
  fx.addIpcache('0.0.0.0/0', { identity: 2 });
  for (const ep of [WEB, DB, KUBE_DNS]) {
    fx.addIpcache(`${ep.ip}/32`, { identity: ep.identity });
    fx.addEndpoint(ep.ip, { id: ep.id ?? 0, identity: ep.identity, ifindex: 10 + (ep.id ?? 0) });
    api.setIdentity(ep.identity, ep.labels ?? []);
    api.addEndpoint({ id: ep.id ?? 0, identity: ep.identity, ipv4: ep.ip, namespace: ep.namespace, podName: ep.podName });
  }
  maps.start();
  const enricher = new CiliumEnricher({ maps, api: client });

  // First sight: identities from the maps at once, labels/pod names after the background fetch.
  const early = enricher.endpointOf(WEB.ip);
  assert.equal(early?.id, 1234);
  assert.equal(early?.identity, 54321);
  await client.idle();

  hub.emit(traceFlow({ source: WEB, destination: DB, l4: { protocol: 'TCP', sourcePort: 45678, destinationPort: 5432, flags: ['SYN'] } }));
  hub.emit(dropFlow({ source: WORLD, destination: KUBE_DNS, l4: { protocol: 'UDP', sourcePort: 5353, destinationPort: 53 } }));
  const flows = (await getFlows(hub.address, {})).map((r) => r.flow as Plain);
  const asHubble = (ip: string): Plain => {
    const e = enricher.endpointOf(ip);
    assert.ok(e);
    return { ID: e.id, identity: e.identity, namespace: e.namespace, labels: e.labels, pod_name: e.podName };
  };
  const strip = (ep: Plain): Plain => ({ ID: ep.ID ?? 0, identity: ep.identity ?? 0, namespace: ep.namespace ?? '', labels: ep.labels ?? [], pod_name: ep.pod_name ?? '' });
  assert.deepEqual(asHubble(WEB.ip), strip(flows[0].source));
  assert.deepEqual(asHubble(DB.ip), strip(flows[0].destination));
  assert.deepEqual(asHubble(WORLD.ip), strip(flows[1].source));
  assert.deepEqual(asHubble(KUBE_DNS.ip), strip(flows[1].destination));
  assert.equal(client.stats().errorsTotal, 0);
});
