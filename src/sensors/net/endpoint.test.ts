import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EndpointResolver, type EndpointQuery, type IpcacheState } from './endpoint';
import {
  TH_NET_ID_D_IPCACHE,
  TH_NET_ID_D_LXC,
  TH_NET_ID_MAP_IPCACHE,
  TH_NET_ID_MAP_LXC,
  TH_NET_ID_S_HOST,
  TH_NET_ID_S_IPCACHE,
  TH_NET_ID_S_LXC,
} from './layout.gen';

const HOST_NS = 4026531840;
const POD_NS = 4026532999;
const MAPS = TH_NET_ID_MAP_IPCACHE | TH_NET_ID_MAP_LXC;
const WEB = ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop'];
const DB = ['k8s:app=db', 'k8s:io.kubernetes.pod.namespace=shop'];

function q(over: Partial<EndpointQuery>): EndpointQuery {
  return { tgid: 10, family: 4, saddr: '10.0.1.5', daddr: '10.0.2.9', netns: POD_NS, ...over };
}

function sources() {
  const labels = new Map<number, string[]>([
    [54321, WEB],
    [60000, DB],
  ]);
  const s = {
    calls: 0,
    identityOf(id: number) {
      s.calls++;
      const l = labels.get(id);
      return l ? { labels: Object.freeze([...l]) as string[], namespace: 'shop' } : undefined;
    },
    endpointById(id: number) {
      return id === 1234 ? { identity: 54321, namespace: 'shop', podName: 'web-1' } : id === 1300 ? { identity: 60000, namespace: 'shop', podName: 'db-0' } : undefined;
    },
    endpointByIp(ip: string) {
      return ip === '10.0.1.5' ? { id: 1234, identity: 54321, namespace: 'shop', podName: 'web-1' } : undefined;
    },
  };
  return s;
}

test('kernel identities of both ends become endpoints with labels and pod names', () => {
  const r = new EndpointResolver({ sources: sources(), hostNetns: HOST_NS });
  const e = r.resolve(q({ idFlags: MAPS | TH_NET_ID_S_LXC | TH_NET_ID_D_LXC, sIdentity: 54321, sEndpoint: 1234, dIdentity: 60000, dEndpoint: 1300 }));
  assert.deepEqual(e.source, { id: 1234, identity: 54321, namespace: 'shop', podName: 'web-1', labels: WEB });
  assert.deepEqual(e.destination, { id: 1300, identity: 60000, namespace: 'shop', podName: 'db-0', labels: DB });
  assert.ok(Object.isFrozen(e.source), 'shared between events: frozen');
  // Remote pod on another node: ipcache only, no endpoint id.
  const far = r.resolve(q({ idFlags: MAPS | TH_NET_ID_S_LXC | TH_NET_ID_D_IPCACHE, sIdentity: 54321, sEndpoint: 1234, dIdentity: 60000 }));
  assert.deepEqual(far.destination, { id: 0, identity: 60000, namespace: 'shop', podName: '', labels: DB });
  assert.equal(r.stats().kernel, 4);
});

test('complete EndpointInfo objects are cached; incomplete ones are rebuilt until labels arrive', () => {
  const src = sources();
  let known = false;
  const identityOf = src.identityOf.bind(src);
  src.identityOf = (id) => (id === 777 && !known ? undefined : identityOf(id));
  const r = new EndpointResolver({ sources: src, hostNetns: HOST_NS });
  const rec = q({ idFlags: MAPS | TH_NET_ID_S_LXC | TH_NET_ID_D_IPCACHE, sIdentity: 54321, sEndpoint: 1234, dIdentity: 777 });
  const a = r.resolve(rec);
  const b = r.resolve(rec);
  assert.equal(a.source, b.source, 'same object for a complete endpoint');
  assert.deepEqual(a.destination?.labels, [], 'labels of 777 not fetched yet');
  assert.notEqual(a.destination, b.destination, 'incomplete: not cached');
  known = true;
  assert.deepEqual(r.resolve(rec).destination?.labels, [], 'unknown to the source: still empty');
});

test('no entry: remote world by rule (number or by family), local host in the host netns else unknown', () => {
  const r = new EndpointResolver({ hostNetns: HOST_NS });
  const hostSide = r.resolve(q({ netns: HOST_NS, saddr: '127.0.0.1', daddr: '127.0.0.1' }));
  assert.deepEqual(hostSide.source, { id: 0, identity: 1, namespace: '', podName: '', labels: ['reserved:host'] });
  assert.deepEqual(hostSide.destination, { id: 0, identity: 2, namespace: '', podName: '', labels: ['reserved:world'] });
  const pod = r.resolve(q({ tgid: 0 }));
  assert.equal(pod.source.identity, 0, 'pod netns without any entry: unknown');
  assert.deepEqual(pod.source.labels, []);
  const byFamily = new EndpointResolver({ hostNetns: HOST_NS, worldIdentity: 'by-family' });
  assert.equal(byFamily.resolve(q({ family: 6, daddr: '2001:db8::1' })).destination?.identity, 10);
  assert.equal(byFamily.resolve(q({})).destination?.identity, 9);
  const custom = new EndpointResolver({ worldIdentity: 16777217 });
  assert.equal(custom.resolve(q({ idFlags: MAPS })).destination?.identity, 16777217, 'ipcache attached, no entry');
});

test('unspecified remote address (listener, unconnected UDP): no destination', () => {
  const r = new EndpointResolver({ hostNetns: HOST_NS });
  assert.equal(r.resolve(q({ daddr: '0.0.0.0' })).destination, undefined);
  assert.equal(r.resolve(q({ family: 6, daddr: '::' })).destination, undefined);
});

test('refused ipcache: remote ends are unknown, not world', () => {
  let state: IpcacheState = 'unusable';
  const r = new EndpointResolver({ hostNetns: HOST_NS, ipcacheState: () => state });
  assert.equal(r.resolve(q({})).destination?.identity, 0);
  assert.equal(r.resolve(q({ idFlags: TH_NET_ID_MAP_LXC })).destination?.identity, 0, 'lxc attached but not the ipcache');
  state = 'absent';
  assert.equal(r.resolve(q({})).destination?.identity, 2);
});

test('local end: node IPs are host; an ipcache world match of a local address is not trusted', () => {
  const r = new EndpointResolver({ hostNetns: HOST_NS });
  assert.equal(r.resolve(q({ idFlags: MAPS | TH_NET_ID_S_LXC | TH_NET_ID_S_HOST, sIdentity: 0 })).source.identity, 1);
  const lo = r.resolve(q({ saddr: '127.0.0.1', idFlags: MAPS | TH_NET_ID_S_IPCACHE, sIdentity: 2 }));
  assert.equal(lo.source.identity, 0, 'loopback in a pod netns matched 0.0.0.0/0: unknown, not world');
  const cidr = r.resolve(q({ idFlags: MAPS | TH_NET_ID_S_IPCACHE, sIdentity: 0x01000005 }));
  assert.equal(cidr.source.identity, 0x01000005);
});

test('pod netns → endpoint: learned from a socket with the pod IP, used for wildcard and loopback ends', () => {
  const asked: number[] = [];
  const r = new EndpointResolver({ sources: sources(), hostNetns: HOST_NS, onUnknownNetns: (ns) => asked.push(ns) });
  const listen = q({ saddr: '0.0.0.0', daddr: '0.0.0.0', idFlags: MAPS });
  assert.equal(r.resolve(listen).source.identity, 0);
  assert.deepEqual(asked, [POD_NS], 'unknown pod netns handed to the prober');
  r.resolve(q({ idFlags: MAPS | TH_NET_ID_S_LXC, sIdentity: 54321, sEndpoint: 1234 }));
  assert.deepEqual(r.resolve(listen).source, { id: 1234, identity: 54321, namespace: 'shop', podName: 'web-1', labels: WEB });
  assert.equal(r.resolve(q({ saddr: '127.0.0.1', idFlags: MAPS | TH_NET_ID_S_IPCACHE, sIdentity: 2 })).source.id, 1234);
  assert.equal(r.stats().netns, 2);
  r.learnNetns(HOST_NS, 1, 1);
  assert.equal(r.netnsEndpoint(HOST_NS), undefined, 'the host netns is never a pod');
});

test('maps not attached: local pods from the agent API endpoint list', () => {
  const r = new EndpointResolver({ sources: sources(), hostNetns: HOST_NS });
  const e = r.resolve(q({ daddr: '10.0.1.5', saddr: '10.9.9.9', netns: HOST_NS }));
  assert.deepEqual(e.destination, { id: 1234, identity: 54321, namespace: 'shop', podName: 'web-1', labels: WEB });
  assert.equal(e.source.identity, 1);
  assert.equal(r.stats().api, 1);
  const attached = r.resolve(q({ daddr: '10.0.1.5', idFlags: MAPS }));
  assert.equal(attached.destination?.identity, 2, 'the kernel lookup said no entry: the API list is not consulted');
});
