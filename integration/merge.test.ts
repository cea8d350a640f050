// One Hubble stream with Cilium's Hubble (issue 4, item 5), end to end:
// the agent's Hubble server with the Cilium Hubble follower (upstream/)
// against the STAND-IN Hubble server on a real unix socket, our process and
// network sensors on this kernel, real processes making real TCP connections.
//
//  - a Cilium trace flow with the 5-tuple of a real loopback connection comes
//    out enriched with the connecting process (extensions, Summary); our own
//    connection flows are left out with dedupe on and kept with it off
//  - an unmatched Cilium flow is served byte for byte as Cilium sent it
//  - Cilium flows and runtime events come out in time order, even when
//    Cilium's arrive after a later runtime event
//  - the stand-in going away: node_status NODE_UNAVAILABLE, runtime events
//    continue; back on the same path: NODE_CONNECTED, the flows sent during
//    the outage replayed once, nothing doubled
//  - garbage from the stand-in: counted, the agent keeps serving
//  - the full agent: --cilium-hubble-address wires it (status counters, GetNodes)
//  - DNS events carry identities of both ends
// Kernel-free parts (a peer that speaks no gRPC, a peer that hangs) run
// everywhere; the rest needs root, BTF and the built objects, and skips
// otherwise with the reason.
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Logger } from '../src/agent/log';
import type { StatusProvider } from '../src/agent/status';
import { EventBus } from '../src/bus/bus';
import { defaultConfig, type AgentConfig } from '../src/config/config';
import { DnsNameCache } from '../src/enrich/dns/cache';
import { ProcessCache } from '../src/enrich/process/cache';
import { BootClock } from '../src/enrich/process/clock';
import { loadNative } from '../src/kernel/native';
import { extensionJson } from '../src/api/hubble/client';
import { flowOf } from '../src/api/hubble/encode';
import { protos } from '../src/api/hubble/proto';
import { startHubbleServer, type HubbleServer } from '../src/api/hubble/server';
import { CiliumHubble } from '../src/api/hubble/upstream';
import type { BusItem, DnsEvent, ExecEvent } from '../src/model/event';
import { DnsSensor } from '../src/sensors/dns/sensor';
import { startCiliumIdentity, type CiliumIdentity } from '../src/sensors/net/identity';
import { NetKernel } from '../src/sensors/net/kernel';
import { ProcessSensor } from '../src/sensors/process/sensor';
import { unary, hubbleClient, type Plain } from './clients';
import { startAgent, waitFor } from './harness';
import { killHostChildren, netRigSkipReason, spawnCollected, startNetRig, waitForLine, type NetRig } from './netns';
import { HubbleServerStandin, traceFlow, type EndpointSpec } from './standins/hubble-server';

const skip = netRigSkipReason();
if (skip) console.log(`# merge integration tests (kernel part) skipped: ${skip}`);

const status: StatusProvider = {
  snapshot: () => ({
    version: '0.1.0',
    nodeName: 'it-node',
    startTime: { sec: Math.floor(Date.now() / 1000), nsec: 0 },
    uptimeNs: 1e9,
    sensors: [],
    features: {},
    notes: [],
    counters: {},
    listeners: {},
  }),
};

const DECODE = { longs: String, enums: String, defaults: false } as const;

/** A GetFlows follow stream keeping each response's raw bytes and its decoding. */
function rawFollow(address: string, req: Plain = { follow: true }) {
  const P = protos();
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const body = Buffer.from(P.GetFlowsRequest.encode(P.GetFlowsRequest.fromObject(req)).finish());
  const call = client.makeServerStreamRequest('/observer.Observer/GetFlows', (b: Buffer) => b, (b: Buffer) => b, body, new grpc.Metadata(), {});
  const got: { raw: Buffer; msg: Plain }[] = [];
  let error: Error | undefined;
  call.on('data', (b: Buffer) => got.push({ raw: b, msg: P.GetFlowsResponse.toObject(P.GetFlowsResponse.decode(b), DECODE) as Plain }));
  call.on('error', (e: grpc.ServiceError) => {
    if (e.code !== grpc.status.CANCELLED) error = e;
  });
  return {
    got,
    get error() {
      return error;
    },
    flows: (): Plain[] => got.filter((g) => g.msg.flow).map((g) => g.msg.flow as Plain),
    find: (pred: (f: Plain) => boolean) => got.find((g) => g.msg.flow && pred(g.msg.flow as Plain)),
    wait: (pred: (f: Plain) => boolean, what: string, ms = 10_000) => waitFor(() => got.find((g) => g.msg.flow && pred(g.msg.flow as Plain)), ms, what),
    waitStatus: (state: string, from = 0, ms = 15_000) =>
      waitFor(() => got.slice(from).find((g) => g.msg.node_status?.state_change === state), ms, `node_status ${state}`),
    close(): void {
      call.cancel();
      client.close();
    },
  };
}

const CLIENT = `
import socket, sys, time
c = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
print('connected', c.getsockname()[1], flush=True)
time.sleep(float(sys.argv[2]))
c.close()
print('closed', flush=True)
`;

const SERVER = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', 0))
s.listen()
print('ready', s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    while c.recv(65536):
        pass
    c.close()
`;

const LOCAL: EndpointSpec = { ip: '127.0.0.1', identity: 1, labels: ['reserved:host'], id: 0 };

function timeOf(f: Plain): bigint {
  return BigInt(f.time.seconds) * 1_000_000_000n + BigInt(f.time.nanos ?? 0);
}

function wallToDate(sec: number, nsec: number, deltaMs: number): Date {
  return new Date(sec * 1000 + Math.floor(nsec / 1e6) + deltaMs);
}

// ------------------------------------------------------------- kernel-free

describe('Cilium Hubble follower against broken peers (no kernel needed)', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tetrahub-merge-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function brokenPeer(sock: string, onConn: (c: net.Socket) => void): Promise<net.Server> {
    const srv = net.createServer(onConn);
    await new Promise<void>((r) => srv.listen(sock, () => r()));
    return srv;
  }

  /** Runtime items still pass the merged feed while the follower fails. */
  async function feedStillFlows(ch: CiliumHubble, bus: EventBus): Promise<void> {
    const seen: string[] = [];
    const sub = ch.feed.subscribe({ name: 't', onReady: () => seen.push(...sub.take().map((i) => i.kind)) });
    bus.publish([{ kind: 'lost', seq: 0, time: { sec: 1, nsec: 0 }, nodeName: 'n', source: 'kernel_ring', count: 1, wire: new Map() }]);
    await waitFor(() => (seen.includes('lost') ? true : undefined), 2000, 'a runtime item through the feed');
    sub.close();
  }

  test('a peer that speaks no gRPC costs counted errors and reconnects with backoff, never a stall', async () => {
    const sock = path.join(dir, 'junk.sock');
    const srv = await brokenPeer(sock, (c) => {
      c.on('error', () => undefined);
      c.end('this is not HTTP/2\r\n\r\n');
    });
    const bus = new EventBus();
    const ch = new CiliumHubble({ address: `unix://${sock}`, bus, nodeName: 'n', follower: { backoffInitialMs: 50, backoffMaxMs: 200, probeTimeoutMs: 1000 } });
    try {
      ch.start();
      await waitFor(() => (ch.follower.c.errors >= 3 ? true : undefined), 10_000, 'three counted errors');
      assert.equal(ch.connected, false);
      assert.equal(ch.counters().cilium_hubble_connected, 0);
      assert.ok(ch.follower.state.lastError.includes('ServerStatus'), ch.follower.state.lastError);
      await feedStillFlows(ch, bus);
    } finally {
      ch.close();
      srv.close();
    }
  });

  test('a peer that accepts and never answers: the connect probe times out (counted), the agent keeps serving', async () => {
    const sock = path.join(dir, 'hang.sock');
    const held: net.Socket[] = [];
    const srv = await brokenPeer(sock, (c) => {
      c.on('error', () => undefined);
      held.push(c); // read nothing, write nothing
    });
    const bus = new EventBus();
    const ch = new CiliumHubble({ address: sock, bus, nodeName: 'n', follower: { backoffInitialMs: 50, backoffMaxMs: 100, probeTimeoutMs: 300 } });
    try {
      ch.start();
      await waitFor(() => (ch.follower.c.errors >= 2 ? true : undefined), 10_000, 'two timed-out probes');
      assert.match(ch.follower.state.lastError, /Deadline|deadline|DEADLINE/);
      await feedStillFlows(ch, bus);
    } finally {
      ch.close();
      for (const c of held) c.destroy();
      srv.close();
    }
  });

  test('garbage messages on a healthy stream are counted and skipped; valid flows still come through', async () => {
    const standin = await HubbleServerStandin.start({ socketPath: path.join(dir, 'garbage.sock') });
    const bus = new EventBus();
    const ch = new CiliumHubble({ address: standin.address, bus, nodeName: 'n', windowMs: 50, follower: { backoffInitialMs: 50 } });
    const seen: BusItem['kind'][] = [];
    const sub = ch.feed.subscribe({ name: 't', onReady: () => seen.push(...(sub.take().map((i) => i.kind) as BusItem['kind'][])) });
    try {
      ch.start();
      await waitFor(() => (standin.streams > 0 ? true : undefined), 5000, 'the follower stream');
      assert.equal(standin.emitRaw(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])), 1);
      await waitFor(() => (ch.follower.c.garbage >= 1 ? true : undefined), 5000, 'garbage counted');
      standin.emit(traceFlow({ source: { ip: '10.1.0.1', identity: 2 }, destination: { ip: '10.1.0.2', identity: 2 }, l4: { protocol: 'TCP', sourcePort: 1, destinationPort: 2, flags: ['SYN'] } }));
      await waitFor(() => ((seen as string[]).includes('cilium') ? true : undefined), 5000, 'the valid flow after the garbage');
      assert.equal(ch.connected, true, 'one bad message does not drop the stream');
      assert.ok(ch.counters().cilium_hubble_errors >= 1);
    } finally {
      sub.close();
      ch.close();
      await standin.dispose();
    }
  });
});

// ------------------------------------------------------------- kernel

describe('one Hubble stream: Cilium flows merged with runtime events', { skip }, () => {
  let rig: NetRig;
  let standin: HubbleServerStandin;
  let dir: string;
  /** dedupe on (default) and off, both following the same stand-in. */
  let on: { ch: CiliumHubble; server: HubbleServer; address: string };
  let off: { ch: CiliumHubble; server: HubbleServer; address: string };
  let tcpPort = 0;

  async function serve(dedupe: boolean, name: string) {
    const ch = new CiliumHubble({ address: standin.address, bus: rig.bus, nodeName: 'it-node', dedupe, windowMs: 400, follower: { backoffInitialMs: 100, backoffMaxMs: 500, probeTimeoutMs: 2000 } });
    const address = `unix://${dir}/${name}.sock`;
    const server = await startHubbleServer({ addresses: [address], bus: rig.bus, status, version: '0.1.0', nodeName: 'it-node', upstream: { feed: ch.feed, node: () => ch.node() } });
    ch.start();
    return { ch, server, address };
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tetrahub-merge-'));
    standin = await HubbleServerStandin.start({ socketPath: path.join(dir, 'cilium', 'hubble.sock'), nodeName: 'kind-worker' });
    rig = await startNetRig();
    on = await serve(true, 'on');
    off = await serve(false, 'off');
    await waitFor(() => (on.ch.connected && off.ch.connected && standin.streams === 2 ? true : undefined), 10_000, 'both followers connected');
    const srv = spawnCollected('python3', ['-c', SERVER]);
    tcpPort = Number((await waitForLine(srv, /^ready/)).split(' ')[1]);
  });
  after(async () => {
    killHostChildren();
    for (const s of [on, off]) {
      await s?.server.close();
      s?.ch.close();
    }
    await rig?.stop();
    await standin?.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a Cilium trace flow of a real connection comes out enriched with the process; our duplicate left out (kept with dedupe off)', async () => {
    const a = rawFollow(on.address);
    const b = rawFollow(off.address);
    try {
      await new Promise((r) => setTimeout(r, 200));
      const client = spawnCollected('python3', ['-c', CLIENT, String(tcpPort), '0.5']);
      const sport = Number((await waitForLine(client, /^connected/)).split(' ')[1]);
      const sent = standin.emit(
        traceFlow({ source: LOCAL, destination: LOCAL, l4: { protocol: 'TCP', sourcePort: sport, destinationPort: tcpPort, flags: ['SYN'] }, obsPoint: 'to-stack', direction: 'EGRESS', isReply: false }),
      );
      const uuid = (protos().GetFlowsResponse.decode(sent) as unknown as { flow: { uuid: string } }).flow.uuid;
      await waitForLine(client, /^closed/);
      const exec = await waitFor(() => rig.execOf(client.pid!), 5000, 'the client exec');

      for (const s of [a, b]) {
        const got = await s.wait((f) => f.uuid === uuid, 'the Cilium flow');
        const f = got.msg.flow as Plain;
        assert.equal(f.event_type.type, 4, 'Cilium trace, as Cilium sent it');
        assert.equal(f.node_name, 'kind-worker');
        assert.equal(got.msg.node_name, 'kind-worker');
        assert.deepEqual(f.l4, { TCP: { source_port: sport, destination_port: tcpPort, flags: { SYN: true } } });
        assert.equal(f.Summary, `TCP Flags: SYN; Process: ${exec.process.binary} (pid ${client.pid})`);
        const ext = extensionJson(f.extensions) as Plain;
        assert.ok(ext, 'extensions: a Struct');
        const proc = ext.process_kprobe.process;
        assert.equal(proc.pid, client.pid);
        assert.equal(proc.binary, exec.process.binary);
        assert.equal(proc.exec_id, exec.process.execId);
        assert.match(proc.binary, /python3/);
      }
      // Our own flows of the connection (trace-sock 7): connect, accept, closes.
      const ours = (f: Plain) => f.event_type?.type === 7 && f.l4?.TCP && [f.l4.TCP.source_port, f.l4.TCP.destination_port].includes(sport);
      await b.wait((f) => ours(f) && f.Summary.startsWith('connect '), 'our connect flow with dedupe off');
      await waitFor(() => (rig.netEvents().some((e) => e.op === 'close' && e.sport === sport) ? true : undefined), 5000, 'our close event');
      await new Promise((r) => setTimeout(r, 1000)); // past the merge window
      assert.deepEqual(a.flows().filter(ours).map((f) => f.Summary), [], 'dedupe on: Cilium already reported the connection');
      assert.ok(on.ch.counters().cilium_hubble_own_flows_deduped >= 2, 'connect and accept deduped at least');
      assert.ok(b.flows().filter(ours).length >= 2, 'dedupe off: ours kept too');
      assert.ok(on.ch.counters().cilium_hubble_flows_enriched >= 1);
      assert.equal(a.error, undefined);
    } finally {
      a.close();
      b.close();
    }
  });

  test('an unmatched Cilium flow is served byte for byte as Cilium sent it; --last shows both kinds', async () => {
    const a = rawFollow(on.address);
    try {
      await new Promise((r) => setTimeout(r, 200));
      const sent = standin.emit(
        traceFlow({
          source: { ip: '10.99.0.1', id: 7, identity: 54321, namespace: 'shop', podName: 'web-1', labels: ['k8s:app=web'] },
          destination: { ip: '10.99.0.2', identity: 2, labels: ['reserved:world'] },
          l4: { protocol: 'TCP', sourcePort: 40000, destinationPort: 80, flags: ['SYN'] },
          direction: 'EGRESS',
        }),
      );
      const uuid = (protos().GetFlowsResponse.decode(sent) as unknown as { flow: { uuid: string } }).flow.uuid;
      const got = await a.wait((f) => f.uuid === uuid, 'the unmatched flow');
      assert.ok(got.raw.equals(Buffer.from(sent)), 'same bytes as the stand-in sent');
      assert.equal((got.msg.flow as Plain).extensions, undefined);
      assert.ok(on.ch.counters().cilium_hubble_flows_unmatched >= 1);

      const last = await new Promise<Plain[]>((resolve, reject) => {
        const c = hubbleClient(on.address);
        const call = c.GetFlows({ number: 200 });
        const out: Plain[] = [];
        call.on('data', (r: Plain) => out.push(r));
        call.on('error', reject);
        call.on('end', () => {
          c.close();
          resolve(out);
        });
      });
      const flows = last.filter((r) => r.flow).map((r) => r.flow);
      assert.ok(flows.some((f) => f.uuid === uuid), '--last: the Cilium flow');
      assert.ok(flows.some((f) => f.event_type?.type === 200), '--last: our runtime flows');
      const ns = await unary(hubbleClient(on.address), 'GetNamespaces', {});
      assert.ok((ns.namespaces ?? []).some((n: Plain) => n.namespace === 'shop'), 'Cilium flows count for GetNamespaces');
      const nodes = await unary(hubbleClient(on.address), 'GetNodes', {});
      assert.deepEqual(
        nodes.nodes.map((n: Plain) => [n.name, n.state]),
        [
          ['it-node', 'NODE_CONNECTED'],
          ['kind-worker', 'NODE_CONNECTED'],
        ],
      );
    } finally {
      a.close();
    }
  });

  test('Cilium flows and runtime events come out in time order, also when Cilium is behind', async () => {
    const a = rawFollow(on.address);
    try {
      await new Promise((r) => setTimeout(r, 200));
      const mark = `merge-order-${process.pid}-${Date.now()}`;
      const from = rig.events.length;
      const echo = spawnCollected('/bin/echo', [mark]);
      // Our exec event reached the bus: the merge holds it (Cilium connected, nothing from it yet).
      const ev = await waitFor(() => rig.events.slice(from).find((e): e is ExecEvent => e.kind === 'exec' && e.process.arguments.includes(mark)), 5000, 'the echo exec');
      const t = ev.time;
      const flow = (sport: number, deltaMs: number) =>
        standin.emit(
          traceFlow({ time: wallToDate(t.sec, t.nsec, deltaMs), source: { ip: '10.98.0.1', identity: 2 }, destination: { ip: '10.98.0.2', identity: 2 }, l4: { protocol: 'TCP', sourcePort: sport, destinationPort: 443, flags: ['SYN'] } }),
        );
      // Cilium's flows arrive after our exec, two of them older than it.
      flow(50001, -30);
      flow(50002, -10);
      flow(50003, +5);
      void echo;
      const sportOf = (f: Plain) => f.l4?.TCP?.source_port;
      await a.wait((f) => sportOf(f) === 50003, 'the last Cilium flow');
      const seq = a.flows().filter((f) => [50001, 50002, 50003].includes(sportOf(f)) || (f.event_type?.type === 200 && f.Summary.includes(mark) && f.Summary.startsWith('exec')));
      assert.deepEqual(
        seq.map((f) => sportOf(f) ?? 'exec'),
        [50001, 50002, 'exec', 50003],
      );
      for (let i = 1; i < seq.length; i++) assert.ok(timeOf(seq[i - 1]) <= timeOf(seq[i]), 'times never go back');
    } finally {
      a.close();
    }
  });

  test('Cilium going away: NODE_UNAVAILABLE, runtime events continue; back on the same path: NODE_CONNECTED, the outage replayed once', async () => {
    const a = rawFollow(on.address);
    try {
      await new Promise((r) => setTimeout(r, 200));
      const before = standin.emit(traceFlow({ source: { ip: '10.97.0.1', identity: 2 }, destination: { ip: '10.97.0.2', identity: 2 }, l4: { protocol: 'UDP', sourcePort: 1111, destinationPort: 53 } }));
      const beforeUuid = (protos().GetFlowsResponse.decode(before) as unknown as { flow: { uuid: string } }).flow.uuid;
      await a.wait((f) => f.uuid === beforeUuid, 'a flow before the outage');
      const reconnects = on.ch.follower.c.reconnects;

      await standin.close();
      const down = await a.waitStatus('NODE_UNAVAILABLE');
      assert.deepEqual(down.msg.node_status.node_names, ['kind-worker']);
      assert.match(down.msg.node_status.message, /runtime events continue/);
      assert.equal(down.msg.node_name, 'it-node');
      assert.equal(on.ch.counters().cilium_hubble_connected, 0);

      // Runtime events keep flowing during the outage.
      const mark = `merge-outage-${process.pid}-${Date.now()}`;
      spawnCollected('/bin/echo', [mark]);
      await a.wait((f) => f.event_type?.type === 200 && f.Summary.startsWith('exec') && f.Summary.includes(mark), 'an exec during the outage');

      // A flow Cilium records while we are not connected (its ring survives this restart).
      const during = standin.emit(traceFlow({ source: { ip: '10.97.0.3', identity: 2 }, destination: { ip: '10.97.0.4', identity: 2 }, l4: { protocol: 'UDP', sourcePort: 2222, destinationPort: 53 } }));
      const duringUuid = (protos().GetFlowsResponse.decode(during) as unknown as { flow: { uuid: string } }).flow.uuid;
      const mark2 = a.got.length;
      await standin.restart({ keepHistory: true });
      await a.waitStatus('NODE_CONNECTED', mark2);
      await a.wait((f) => f.uuid === duringUuid, 'the flow sent during the outage');
      const after = standin.emit(traceFlow({ source: { ip: '10.97.0.5', identity: 2 }, destination: { ip: '10.97.0.6', identity: 2 }, l4: { protocol: 'UDP', sourcePort: 3333, destinationPort: 53 } }));
      const afterUuid = (protos().GetFlowsResponse.decode(after) as unknown as { flow: { uuid: string } }).flow.uuid;
      await a.wait((f) => f.uuid === afterUuid, 'a flow after the reconnect');
      // The reconnect asked from the last flow seen: nothing lost, nothing twice.
      const last = standin.requests[standin.requests.length - 1] as Plain;
      assert.equal(last.follow, true);
      assert.ok(last.since, 'since set on reconnect');
      for (const u of [beforeUuid, duringUuid, afterUuid]) assert.equal(a.flows().filter((f) => f.uuid === u).length, 1, `flow ${u} exactly once`);
      assert.ok(on.ch.follower.c.reconnects > reconnects);
      assert.ok(on.ch.counters().cilium_hubble_flows_replayed >= 1, 'the replayed flow at `since` dropped');
      assert.equal(a.error, undefined);
      await waitFor(() => (off.ch.connected ? true : undefined), 10_000, 'the other follower back too');
    } finally {
      a.close();
    }
  });

  test('the agent: --cilium-hubble-address merges the stand-in into its stream and reports it', async () => {
    const agent = await startAgent(['--cilium-hubble-address', standin.address, '--disable-sensor', 'file']);
    try {
      await waitFor(async () => ((await agent.status()).counters.cilium_hubble_connected === 1 ? true : undefined), 15_000, 'agent connected to the stand-in');
      const a = rawFollow(agent.hubble);
      try {
        await new Promise((r) => setTimeout(r, 300));
        const sent = standin.emit(traceFlow({ source: { ip: '10.96.0.1', identity: 2 }, destination: { ip: '10.96.0.2', identity: 2 }, l4: { protocol: 'TCP', sourcePort: 4444, destinationPort: 80, flags: ['SYN'] } }));
        const uuid = (protos().GetFlowsResponse.decode(sent) as unknown as { flow: { uuid: string } }).flow.uuid;
        await a.wait((f) => f.uuid === uuid, 'the Cilium flow through the agent');
      } finally {
        a.close();
      }
      const c = (await agent.status()).counters;
      assert.ok(c.cilium_hubble_flows_received >= 1);
      assert.ok(c.cilium_hubble_flows_unmatched >= 1);
      assert.match(agent.logs(), /following Cilium Hubble at unix:/);
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  });
});

// ------------------------------------------------------------- DNS identities

describe('DNS flows carry the identities of both ends', { skip }, () => {
  test('a query over loopback: client host (1), server world (2) by rule; on the DnsEvent and its Hubble flow', async () => {
    const native = loadNative();
    const clock = new BootClock(() => native.clocks());
    const pinRoot = `/sys/fs/bpf/tetrahub-mergeit-${process.pid}`;
    const emptyCilium = fs.mkdtempSync(path.join(os.tmpdir(), 'tetrahub-nocilium-'));
    const config: AgentConfig = { ...defaultConfig(), nodeName: 'it-node', bpfDir: pinRoot };
    const log = new Logger('warn');
    const bus = new EventBus();
    const cache = new ProcessCache({ nodeName: config.nodeName, clock });
    const events: BusItem[] = [];
    const sub = bus.subscribe({ name: 't', limit: 1_000_000, onReady: () => events.push(...sub.take()) });
    const identity: CiliumIdentity = startCiliumIdentity({ native, log, bpfDir: emptyCilium, apiSocket: '', probeNetns: false });
    const proc = new ProcessSensor({ native, bus, cache, clock, config, log });
    const kernel = new NetKernel({ native, bus, clock, config, log, identity });
    const port = 10153;
    const dns = new DnsSensor({ native, bus, cache, clock, config, log, kernel, dnsNames: new DnsNameCache() }, { ports: [port] });
    const started: { stop(): Promise<void> }[] = [];
    try {
      for (const s of [proc, dns]) {
        await s.start();
        started.push(s);
      }
      // A query for tetrahub.test A (id 0x4242) to a port nobody answers on: the query is enough.
      const q = Buffer.concat([Buffer.from([0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from('\x08tetrahub\x04test\x00', 'latin1'), Buffer.from([0, 1, 0, 1])]);
      // From a child: the agent's own traffic is filtered out in the kernel.
      const py = spawnCollected('python3', ['-c', `import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(bytes.fromhex(sys.argv[1]), ('127.0.0.1', ${port})); print('sent', flush=True)`, q.toString('hex')]);
      await waitForLine(py, /^sent/);
      const ev = await waitFor(() => events.find((e): e is DnsEvent => e.kind === 'dns' && e.query.startsWith('tetrahub.test')), 5000, 'the DNS event');
      assert.equal(ev.source?.identity, 1, 'the querying process on the host: host');
      assert.deepEqual(ev.source?.labels, ['reserved:host']);
      assert.equal(ev.destination?.identity, 2, 'a server outside every ipcache entry: world');
      const f = flowOf(ev, 'it-node');
      assert.equal(f.source?.identity, 1);
      assert.equal(f.destination?.identity, 2);
      assert.deepEqual(f.destination?.labels, ['reserved:world']);
    } finally {
      for (const s of started.reverse()) await s.stop().catch(() => undefined);
      sub.close();
      identity.close();
      fs.rmSync(pinRoot, { recursive: true, force: true });
      fs.rmSync(emptyCilium, { recursive: true, force: true });
    }
  });
});
