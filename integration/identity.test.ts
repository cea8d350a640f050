// Cilium identities in the kernel, end to end on this kernel: the STAND-IN
// Cilium maps (CiliumMapsFixture, 1.17 and 1.18 layouts) on a private bpffs,
// the STAND-IN Cilium agent API for labels, two "pods" (network namespaces
// joined by a veth pair) whose IPs are in the fixture's ipcache and lxc, and
// the process + network sensors with the in-kernel identity lookup.
//
// Checks: a TCP connection pod A → pod B carries both identities, endpoint
// ids, labels and pod names on both ends' events; an address outside every
// entry is world (2); the maps re-created with other identities while running
// are followed without restarting anything; maps going away empty the slots;
// an unknown layout is refused (identities unknown, no crash). Needs root,
// BTF, cgroup2, iproute2, clang and the built addon/objects; skips otherwise.
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { Logger } from '../src/agent/log';
import { EventBus } from '../src/bus/bus';
import { defaultConfig, type AgentConfig } from '../src/config/config';
import { DnsNameCache } from '../src/enrich/dns/cache';
import { ProcessCache } from '../src/enrich/process/cache';
import { BootClock } from '../src/enrich/process/clock';
import { loadNative } from '../src/kernel/native';
import type { BusItem, EndpointInfo, NetEvent } from '../src/model/event';
import { startCiliumIdentity, type CiliumIdentity } from '../src/sensors/net/identity';
import { NetKernel } from '../src/sensors/net/kernel';
import { NetSensor } from '../src/sensors/net/sensor';
import { ProcessSensor } from '../src/sensors/process/sensor';
import { waitFor } from './harness';
import { createVethPair, exited, killHostChildren, netRigSkipReason, waitForLine, type VethPair } from './netns';
import { CiliumApiStandin } from './standins/cilium-api';
import { CiliumMapsFixture, fixtureUnavailable, type FixtureGeneration } from './standins/cilium-maps';

const skip = netRigSkipReason() ?? fixtureUnavailable();
if (skip) console.log(`# identity integration tests skipped: ${skip}`);

// Accepts one connection, reads to EOF, closes.
const TCP_SERVER = `
import socket, sys
s = socket.socket(socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
print('ready', flush=True)
c, _ = s.accept()
while c.recv(65536):
    pass
c.close()
s.close()
print('served', flush=True)
`;

const TCP_CLIENT = `
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
c.sendall(b'hello')
c.close()
print('done', flush=True)
`;

// Receives N datagrams.
const UDP_SERVER = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print('ready', flush=True)
for i in range(int(sys.argv[3])):
    s.recvfrom(2048)
print('served', flush=True)
`;

// Sends N datagrams (unconnected), slowly enough for a periodic count in between.
const UDP_CLIENT = `
import socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    u.sendto(b'x' * 10, (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.1)
print('done', flush=True)
time.sleep(1)
`;

// Server and client in one process (same netns): a loopback connection.
const LOOPBACK = `
import socket
s = socket.socket(socket.AF_INET)
s.bind(('127.0.0.1', 0))
s.listen()
c = socket.create_connection(s.getsockname())
a, _ = s.accept()
c.close(); a.close(); s.close()
print('done', flush=True)
`;

interface Rig {
  kernel: NetKernel;
  net: NetSensor;
  events: (BusItem | NetEvent)[];
  netEvents(): NetEvent[];
  stop(): Promise<void>;
}

let rigSeq = 0;

/** The agent's process + network sensor wiring with an identity source, under a private pin root. */
async function startRig(identity: CiliumIdentity): Promise<Rig> {
  const native = loadNative();
  const clock = new BootClock(() => native.clocks());
  const pinRoot = `/sys/fs/bpf/tetrahub-idit-${process.pid}-${rigSeq++}`;
  const config: AgentConfig = { ...defaultConfig(), nodeName: 'it-node', bpfDir: pinRoot };
  const log = new Logger('warn');
  const bus = new EventBus();
  const cache = new ProcessCache({ nodeName: config.nodeName, clock });
  const events: (BusItem | NetEvent)[] = [];
  const sub = bus.subscribe({ name: 'identity-rig', limit: 1_000_000, onReady: () => events.push(...sub.take()) });
  const proc = new ProcessSensor({ native, bus, cache, clock, config, log });
  const kernel = new NetKernel({ native, bus, clock, config, log, identity });
  const net = new NetSensor({ native, bus, cache, clock, config, log, kernel, dnsNames: new DnsNameCache() }, { udpReportMs: 300 });
  const started: { stop(): Promise<void> }[] = [];
  const stop = async (): Promise<void> => {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    sub.close();
    fs.rmSync(pinRoot, { recursive: true, force: true });
  };
  try {
    for (const s of [proc, net]) {
      await s.start();
      started.push(s);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const isNet = (e: BusItem | NetEvent): e is NetEvent => (e as { kind: string }).kind === 'net';
  return { kernel, net, events, netEvents: () => events.filter(isNet), stop };
}

const LABELS = {
  web: ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop'],
  db: ['k8s:app=db', 'k8s:io.kubernetes.pod.namespace=shop'],
  web2: ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop', 'k8s:version=2'],
  db2: ['k8s:app=db', 'k8s:io.kubernetes.pod.namespace=shop', 'k8s:version=2'],
};

function ep(id: number, identity: number, podName: string, labels: string[]): EndpointInfo {
  return { id, identity, namespace: 'shop', podName, labels };
}

/** Plain copy (events share frozen EndpointInfo objects). */
const plain = (e: EndpointInfo | undefined): EndpointInfo | undefined => (e ? { ...e, labels: [...e.labels] } : undefined);

for (const generation of ['1.17', '1.18'] as FixtureGeneration[]) {
  describe(`Cilium ${generation} identities in the kernel`, { skip }, () => {
    let fixture: CiliumMapsFixture;
    let api: CiliumApiStandin;
    let veth: VethPair;
    let identity: CiliumIdentity;
    let rig: Rig;
    let addrC = '';
    let port = 19000 + (process.pid % 500) * 2 + (generation === '1.18' ? 1000 : 0);
    const ipcacheMap = generation === '1.18' ? 'cilium_ipcache_v2' : 'cilium_ipcache';
    const ipcacheSlot = generation === '1.18' ? 'th_cil_ipc_v2' : 'th_cil_ipc_v1';

    /** Pod IPs into the fixture maps and the API stand-in. */
    const model = (a: { identity: number; id: number; labels: string[] }, b: { identity: number; id: number; labels: string[] }): void => {
      fixture.addIpcache(`${veth.addrA}/32`, { identity: a.identity });
      fixture.addIpcache(`${veth.addrB}/32`, { identity: b.identity });
      fixture.addEndpoint(veth.addrA, { id: a.id, identity: a.identity, ifindex: 100 + a.id });
      fixture.addEndpoint(veth.addrB, { id: b.id, identity: b.identity, ifindex: 100 + b.id });
      api.setIdentity(a.identity, a.labels);
      api.setIdentity(b.identity, b.labels);
      api.addEndpoint({ id: a.id, identity: a.identity, ipv4: veth.addrA, namespace: 'shop', podName: 'web-1' });
      api.addEndpoint({ id: b.id, identity: b.identity, ipv4: veth.addrB, namespace: 'shop', podName: 'db-0' });
    };

    before(async () => {
      fixture = CiliumMapsFixture.create({ generation });
      api = await CiliumApiStandin.start();
      veth = createVethPair();
      // A second address of pod B that no ipcache entry covers.
      addrC = veth.addrB.replace(/\.2$/, '.3');
      execFileSync('ip', ['-n', veth.nsB, 'addr', 'add', `${addrC}/24`, 'dev', veth.ifB]);
      model({ identity: 54321, id: 101, labels: LABELS.web }, { identity: 60000, id: 102, labels: LABELS.db });
      identity = startCiliumIdentity({ native: loadNative(), log: new Logger('warn'), bpfDir: fixture.dir, apiSocket: api.address, recheckMs: 200, probeNetns: false });
      await identity.warm([54321, 60000]);
      rig = await startRig(identity);
    });
    after(async () => {
      killHostChildren();
      await rig?.stop();
      identity?.close();
      veth?.destroy();
      await api?.dispose();
      fixture?.close();
    });

    /** Server in nsB on `addr`, client in nsA; returns both pids once done. */
    async function connectAtoB(addr: string): Promise<{ client: number; server: number }> {
      const p = String(port++);
      const server = veth.spawnIn(veth.nsB, 'python3', ['-c', TCP_SERVER, addr, p]);
      await waitForLine(server, /^ready/);
      const client = veth.spawnIn(veth.nsA, 'python3', ['-c', TCP_CLIENT, addr, p]);
      await waitForLine(client, /^done/);
      await waitForLine(server, /^served/);
      await Promise.all([exited(client), exited(server)]);
      return { client: client.pid ?? 0, server: server.pid ?? 0 };
    }

    const event = (pid: number, op: NetEvent['op'], what: string): Promise<NetEvent> =>
      waitFor(() => rig.netEvents().find((e) => e.process.pid === pid && e.op === op), 10_000, `${what}: ${op} of pid ${pid}`);

    test('the kernel slots hold the fixture maps; status says so', () => {
      const st = identity.status();
      assert.equal(st.kernelBound, true);
      assert.equal(st.slots[ipcacheSlot]?.id, fixture.mapId(ipcacheMap));
      assert.equal(st.slots.th_cil_lxc?.id, fixture.mapId('cilium_lxc'));
      // What the kernel itself holds: an ARRAY_OF_MAPS lookup from user space returns the inner map id.
      assert.equal(rig.kernel.map(ipcacheSlot).lookup(Buffer.alloc(4))?.readUInt32LE(0), fixture.mapId(ipcacheMap));
      assert.match(rig.net.status().note ?? '', new RegExp(`in-kernel lookup in ${ipcacheMap} \\(map id \\d+\\) and cilium_lxc`));
    });

    test('TCP pod A → pod B: both events carry both identities, endpoints and labels', async () => {
      const { client, server } = await connectAtoB(veth.addrB);
      const A = ep(101, 54321, 'web-1', LABELS.web);
      const B = ep(102, 60000, 'db-0', LABELS.db);
      const conn = await event(client, 'connect', 'client connect');
      assert.equal(conn.daddr, veth.addrB);
      assert.deepEqual(plain(conn.source), A);
      assert.deepEqual(plain(conn.destination), B);
      const acc = await event(server, 'accept', 'server accept');
      assert.equal(acc.process.pid, server);
      assert.deepEqual(plain(acc.source), B);
      assert.deepEqual(plain(acc.destination), A);
      // Softirq-side records (close) are looked up too.
      const closeA = await event(client, 'close', 'client close');
      assert.deepEqual([closeA.source?.identity, closeA.destination?.identity], [54321, 60000]);
      const closeB = await event(server, 'close', 'server close');
      assert.deepEqual([closeB.source?.identity, closeB.destination?.identity], [60000, 54321]);
      const listen = await event(server, 'listen', 'listen');
      assert.equal(listen.source?.identity, 60000, 'listener bound to the pod IP');
      assert.equal(listen.destination, undefined, 'a listener has no remote end');
    });

    test('an address outside every ipcache entry is world (2); loopback too', async () => {
      const { client, server } = await connectAtoB(addrC);
      const conn = await event(client, 'connect', 'connect to addrC');
      assert.deepEqual(plain(conn.destination), { id: 0, identity: 2, namespace: '', podName: '', labels: ['reserved:world'] });
      assert.equal(conn.source?.identity, 54321);
      const acc = await event(server, 'accept', 'accept on addrC');
      assert.deepEqual([acc.source?.id, acc.source?.identity], [102, 60000], 'local end on a secondary address: pod B through its netns');
      assert.equal(acc.destination?.identity, 54321);

      const lo = veth.spawnIn(veth.nsA, 'python3', ['-c', LOOPBACK]);
      await waitForLine(lo, /^done/);
      const loConn = await event(lo.pid ?? 0, 'connect', 'loopback connect');
      assert.equal(loConn.destination?.identity, 2);
      assert.deepEqual([loConn.source?.id, loConn.source?.identity], [101, 54321], 'loopback in pod A: pod A through its netns');
    });

    test('UDP pod A → pod B: the first datagram and the periodic counts carry both endpoints', async () => {
      const p = String(port++);
      const server = veth.spawnIn(veth.nsB, 'python3', ['-c', UDP_SERVER, veth.addrB, p, '8']);
      await waitForLine(server, /^ready/);
      const client = veth.spawnIn(veth.nsA, 'python3', ['-c', UDP_CLIENT, veth.addrB, p, '8']);
      await waitForLine(server, /^served/);
      const sends = await waitFor(() => {
        const l = rig.netEvents().filter((e) => e.process.pid === client.pid && e.op === 'send');
        return l.length >= 2 ? l : undefined;
      }, 10_000, 'first send + a periodic count');
      for (const e of sends) {
        assert.deepEqual([e.source?.id, e.source?.identity, e.destination?.id, e.destination?.identity], [101, 54321, 102, 60000], `send event (packets ${e.packets})`);
        assert.deepEqual(e.destination?.labels, LABELS.db);
      }
      const recv = await waitFor(() => rig.netEvents().find((e) => e.process.pid === server.pid && e.op === 'receive'), 10_000, 'receive');
      assert.deepEqual([recv.source?.identity, recv.destination?.identity], [60000, 54321]);
      await exited(client);
    });

    test('maps re-created with other identities are followed without a restart', async () => {
      const before = { ipcache: fixture.mapId(ipcacheMap), lxc: fixture.mapId('cilium_lxc') };
      fixture.replaceAll({ keepEntries: false });
      model({ identity: 70001, id: 201, labels: LABELS.web2 }, { identity: 70002, id: 202, labels: LABELS.db2 });
      await identity.warm([70001, 70002]);
      // CiliumMaps re-checks every 200 ms here (5 s by default, plus fs events).
      await waitFor(() => (identity.status().slots[ipcacheSlot]?.id === fixture.mapId(ipcacheMap) && identity.status().slots.th_cil_lxc?.id === fixture.mapId('cilium_lxc') ? true : undefined), 10_000, 'slots switched');
      assert.notEqual(fixture.mapId(ipcacheMap), before.ipcache);
      assert.notEqual(fixture.mapId('cilium_lxc'), before.lxc);
      assert.equal(rig.kernel.map(ipcacheSlot).lookup(Buffer.alloc(4))?.readUInt32LE(0), fixture.mapId(ipcacheMap));
      const { client, server } = await connectAtoB(veth.addrB);
      const conn = await event(client, 'connect', 'connect after replace');
      assert.deepEqual(plain(conn.source), ep(201, 70001, 'web-1', LABELS.web2));
      assert.deepEqual(plain(conn.destination), ep(202, 70002, 'db-0', LABELS.db2));
      const acc = await event(server, 'accept', 'accept after replace');
      assert.deepEqual([acc.source?.identity, acc.destination?.identity], [70002, 70001]);
      assert.match(rig.net.status().state, /^(running|fallback)$/, 'still up (fallback: kernels without sock_*_length)');
    });

    test('maps removed: slots emptied, remote ends outside the API list are world', async () => {
      fixture.dropMap(ipcacheMap);
      fixture.dropMap('cilium_lxc');
      await waitFor(() => (identity.status().slots[ipcacheSlot] === undefined && identity.status().slots.th_cil_lxc === undefined ? true : undefined), 10_000, 'slots emptied');
      assert.equal(rig.kernel.map(ipcacheSlot).lookup(Buffer.alloc(4)), null);
      assert.equal(identity.ipcacheState(), 'absent');
      const { client } = await connectAtoB(addrC);
      const conn = await event(client, 'connect', 'connect without maps');
      assert.equal(conn.destination?.identity, 2);
      assert.equal(conn.source?.identity, 70001, 'pod A from the agent API endpoint list (maps gone, API still up)');
    });
  });
}

describe('unknown Cilium map layouts', { skip }, () => {
  let veth: VethPair;
  let port = 21000 + (process.pid % 500) * 2;
  after(() => {
    killHostChildren();
    veth?.destroy();
  });
  before(() => {
    veth = createVethPair();
  });

  async function connect(rig: Rig): Promise<NetEvent> {
    const p = String(port++);
    const server = veth.spawnIn(veth.nsB, 'python3', ['-c', TCP_SERVER, veth.addrB, p]);
    await waitForLine(server, /^ready/);
    const client = veth.spawnIn(veth.nsA, 'python3', ['-c', TCP_CLIENT, veth.addrB, p]);
    await waitForLine(client, /^done/);
    return waitFor(() => rig.netEvents().find((e) => e.process.pid === client.pid && e.op === 'connect'), 10_000, 'connect event');
  }

  test('value size no Cilium release has: refused, identities unknown (0), the sensor keeps running', async (t) => {
    const fixture = CiliumMapsFixture.createUnknownLayout('value-size');
    t.after(() => fixture.close());
    fixture.addIpcache(`${veth.addrA}/32`, { identity: 54321 });
    fixture.addIpcache(`${veth.addrB}/32`, { identity: 60000 });
    const identity = startCiliumIdentity({ native: loadNative(), log: new Logger('error'), bpfDir: fixture.dir, apiSocket: '', probeNetns: false });
    t.after(() => identity.close());
    const rig = await startRig(identity);
    t.after(() => rig.stop());
    const st = identity.status();
    assert.equal(st.slots.th_cil_ipc_v1, undefined, 'never put into a slot');
    assert.equal(st.ipcache, 'unusable');
    assert.ok(st.problems.some((p) => /unknown layout of cilium_ipcache: found lpm_trie key 24 B value 16 B/.test(p)), st.problems.join(' | '));
    assert.match(rig.net.status().note ?? '', /refusing .*cilium_ipcache.*unknown layout/);
    const conn = await connect(rig);
    assert.deepEqual(plain(conn.destination), { id: 0, identity: 0, namespace: '', podName: '', labels: [] });
    assert.equal(conn.source?.identity, 0);
    assert.match(rig.net.status().state, /^(running|fallback)$/, 'still up (fallback: kernels without sock_*_length)');
    assert.ok(identity.counters().net_identity_unknown >= 2);
  });

  test('BTF offsets no Cilium release has (needs bpftool): cilium_lxc refused, the ipcache still used', async (t) => {
    try {
      execFileSync('bpftool', ['version'], { stdio: 'ignore' });
    } catch {
      t.skip('bpftool not installed: the BTF check cannot see this layout');
      return;
    }
    const fixture = CiliumMapsFixture.createUnknownLayout('btf-offsets');
    t.after(() => fixture.close());
    fixture.addIpcache(`${veth.addrA}/32`, { identity: 54321 });
    fixture.addIpcache(`${veth.addrB}/32`, { identity: 60000 });
    const identity = startCiliumIdentity({ native: loadNative(), log: new Logger('error'), bpfDir: fixture.dir, apiSocket: '', probeNetns: false });
    t.after(() => identity.close());
    const rig = await startRig(identity);
    t.after(() => rig.stop());
    const st = identity.status();
    assert.equal(st.slots.th_cil_lxc, undefined);
    assert.equal(st.slots.th_cil_lxc_pa, undefined);
    assert.ok(st.slots.th_cil_ipc_v2);
    assert.ok(st.problems.some((p) => /BTF of cilium_lxc does not match/.test(p)), st.problems.join(' | '));
    const conn = await connect(rig);
    assert.deepEqual([conn.source?.identity, conn.source?.id, conn.destination?.identity, conn.destination?.id], [54321, 0, 60000, 0]);
  });
});
