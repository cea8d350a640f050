// End-to-end tests of the Hubble API over real sockets (unix + TCP), with
// clients that send what the hubble CLI sends (hubble-api.md §6).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { StatusProvider } from '../../agent/status';
import { EventBus } from '../../bus/bus';
import type { RuntimeEvent } from '../../model/event';
import { flowOf } from './encode';
import { DEFAULT_MASK_1_16_TO_1_18, DEFAULT_MASK_1_19 } from './fieldmask';
import { extensionJson, packRuntimeFilter } from './client';
import { protos } from './proto';
import { startHubbleServer, type HubbleServer } from './server';
import { collect, connect, execEvent, exitEvent, lossNotice, openStream, podProcess, take, unaryCall, until, wall, type Clients } from './testkit';

type Obj = Record<string, unknown>;

const status: StatusProvider = {
  snapshot: () => ({
    version: '0.1.0',
    nodeName: 'node1',
    startTime: wall(1700000000),
    uptimeNs: 5_000_000_000,
    sensors: [],
    features: {},
    notes: [],
    counters: {},
    listeners: {},
  }),
};

interface Env {
  bus: EventBus;
  server: HubbleServer;
  unix: Clients;
  tcp: Clients;
  tcpAddress: string;
  done(): Promise<void>;
}

async function setup(extra: { historySize?: number; queueLimit?: number; maxWriteBytes?: number; directWrites?: boolean } = {}): Promise<Env> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubble-test-'));
  const bus = new EventBus();
  const server = await startHubbleServer({
    addresses: [`unix://${dir}/hubble.sock`, '127.0.0.1:0'],
    bus,
    status,
    version: '0.1.0',
    nodeName: 'node1',
    ...extra,
  });
  const tcpAddress = server.addresses[1];
  const unix = connect(server.addresses[0]);
  const tcp = connect(tcpAddress);
  return {
    bus,
    server,
    unix,
    tcp,
    tcpAddress,
    done: async () => {
      await server.close();
      unix.close();
      tcp.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function flows(msgs: Obj[]): Obj[] {
  return msgs.filter((m) => m.flow).map((m) => m.flow as Obj);
}

function uuids(evs: RuntimeEvent[]): string[] {
  return evs.map((e) => flowOf(e).uuid!);
}

function errorOf(r: { error?: grpc.ServiceError }): grpc.ServiceError {
  assert.ok(r.error, 'expected an error');
  return r.error;
}

test('hubble observe: last 20 by default, oldest first, node_name and time on every response', async () => {
  const env = await setup();
  try {
    const evs = Array.from({ length: 30 }, (_, i) => execEvent({ time: wall(1700000000 + i) }));
    env.bus.publish(evs);
    const r = await collect(env.unix.observer, 'GetFlows', { number: 20 });
    assert.equal(r.error, undefined);
    assert.equal(r.msgs.length, 20);
    assert.deepEqual(
      flows(r.msgs).map((f) => f.uuid),
      uuids(evs.slice(10)),
    );
    for (const m of r.msgs) {
      assert.equal(m.node_name, 'node1');
      assert.ok(m.time);
    }
    assert.deepEqual(r.headers?.get('hubble-server-version'), ['0.1.0']);
    const f = flows(r.msgs)[0];
    assert.ok(f.IP, 'IP non-nil');
    assert.deepEqual(f.event_type, { type: 200, sub_type: 1 });
    assert.equal(f.verdict, 1);
    assert.equal(f.Summary, 'exec /usr/bin/curl -s https://ebpf.io');
    const tj = extensionJson(f.extensions as { type_url: string; value: Uint8Array });
    assert.equal(((tj?.process_exec as Obj).process as Obj).exec_id, evs[10].process.execId);
  } finally {
    await env.done();
  }
});

test('--last, --first, --all and number 0 over TCP', async () => {
  const env = await setup();
  try {
    const evs = Array.from({ length: 30 }, () => execEvent());
    env.bus.publish(evs);
    const last = await collect(env.tcp.observer, 'GetFlows', { number: 5 });
    assert.deepEqual(flows(last.msgs).map((f) => f.uuid), uuids(evs.slice(25)));
    const first = await collect(env.tcp.observer, 'GetFlows', { number: 3, first: true });
    assert.deepEqual(flows(first.msgs).map((f) => f.uuid), uuids(evs.slice(0, 3)));
    const all = await collect(env.tcp.observer, 'GetFlows', { number: '18446744073709551615' });
    assert.equal(flows(all.msgs).length, 30);
    const none = await collect(env.tcp.observer, 'GetFlows', { number: 0 });
    assert.equal(flows(none.msgs).length, 30);
  } finally {
    await env.done();
  }
});

test('--since / --until', async () => {
  const env = await setup();
  try {
    const evs = Array.from({ length: 10 }, (_, i) => execEvent({ time: wall(1700000000 + i * 10) }));
    env.bus.publish(evs);
    const since = await collect(env.unix.observer, 'GetFlows', { since: { seconds: 1700000050 } });
    assert.deepEqual(flows(since.msgs).map((f) => f.uuid), uuids(evs.slice(5)));
    const until = await collect(env.unix.observer, 'GetFlows', { until: { seconds: 1700000020 } });
    assert.deepEqual(flows(until.msgs).map((f) => f.uuid), uuids(evs.slice(0, 3)));
    const both = await collect(env.unix.observer, 'GetFlows', { since: { seconds: 1700000015 }, until: { seconds: 1700000035 }, number: 0 });
    assert.deepEqual(flows(both.msgs).map((f) => f.uuid), uuids(evs.slice(2, 4)));
    const sinceFirst = await collect(env.unix.observer, 'GetFlows', { since: { seconds: 1700000070 }, first: true, number: 2 });
    assert.deepEqual(flows(sinceFirst.msgs).map((f) => f.uuid), uuids(evs.slice(7, 9)));
  } finally {
    await env.done();
  }
});

test('--follow: no history without --last, then live; with --last N: N then live', async () => {
  const env = await setup();
  try {
    const old = Array.from({ length: 5 }, () => execEvent());
    env.bus.publish(old);
    const s = openStream(env.tcp.observer, 'GetFlows', { follow: true });
    const s2 = openStream(env.unix.observer, 'GetFlows', { follow: true, number: 2 });
    const hist = await take(s2, 2);
    assert.deepEqual(flows(hist).map((f) => f.uuid), uuids(old.slice(3)));
    await until(() => env.server.streams() === 2 && env.bus.subscriberCount === 3);
    const live = [execEvent(), exitEvent()];
    env.bus.publish(live);
    assert.deepEqual(flows(await take(s, 2)).map((f) => f.uuid), uuids(live));
    assert.deepEqual(flows(await take(s2, 2)).map((f) => f.uuid), uuids(live));
    s.cancel();
    s2.cancel();
    s.on('error', () => undefined);
    s2.on('error', () => undefined);
    await until(() => env.server.streams() === 0 && env.bus.subscriberCount === 1);
  } finally {
    await env.done();
  }
});

test('first + follow → INVALID_ARGUMENT', async () => {
  const env = await setup();
  try {
    const e = errorOf(await collect(env.unix.observer, 'GetFlows', { first: true, follow: true }));
    assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(e.details, 'first cannot be specified with follow');
    const a = errorOf(await collect(env.unix.observer, 'GetAgentEvents', { first: true, follow: true }));
    assert.equal(a.code, grpc.status.INVALID_ARGUMENT);
  } finally {
    await env.done();
  }
});

test('field masks: 1.19 default mask (field 10) and 1.18 (experimental 999.1)', async () => {
  const env = await setup();
  try {
    env.bus.publish([execEvent({}, podProcess('default', 'web-1'))]);
    const allowed = new Set(['time', 'verdict', 'ethernet', 'IP', 'l4', 'source', 'destination', 'Type', 'node_name', 'l7', 'event_type', 'source_service', 'destination_service', 'is_reply', 'Summary', 'ip_trace_id']);
    for (const req of [{ field_mask: { paths: [...DEFAULT_MASK_1_19] } }, { experimental: { field_mask: { paths: [...DEFAULT_MASK_1_16_TO_1_18] } } }]) {
      const r = await collect(env.tcp.observer, 'GetFlows', { number: 20, ...req });
      assert.equal(r.error, undefined, r.error?.details);
      const [f] = flows(r.msgs);
      for (const k of Object.keys(f)) assert.ok(allowed.has(k), `unexpected field ${k}`);
      assert.equal(f.uuid, undefined);
      assert.equal(f.extensions, undefined);
      assert.deepEqual(f.source, { namespace: 'default', pod_name: 'web-1' });
      assert.equal(f.Summary, 'exec /usr/bin/curl -s https://ebpf.io');
      assert.ok(f.IP);
    }
    // Field 10 wins over 999.1.
    const both = await collect(env.tcp.observer, 'GetFlows', { field_mask: { paths: ['uuid'] }, experimental: { field_mask: { paths: ['Summary'] } } });
    assert.deepEqual(Object.keys(flows(both.msgs)[0]), ['uuid']);
    const bad = errorOf(await collect(env.tcp.observer, 'GetFlows', { field_mask: { paths: ['time', 'source.bogus'] } }));
    assert.equal(bad.code, grpc.status.INVALID_ARGUMENT);
    assert.match(bad.details, /field_mask: invalid path "source\.bogus"/);
  } finally {
    await env.done();
  }
});

test('filters over the wire: --type 200:5, --pod, --label, --identity, --verdict, --not', async () => {
  const env = await setup();
  try {
    const web = execEvent({}, podProcess('default', 'web-1', { app: 'web' }));
    const api = execEvent({}, { ...podProcess('prod', 'api-7', { app: 'api' }), endpoint: { id: 3, identity: 12345, namespace: 'prod', podName: 'api-7', labels: ['k8s:app=api'] } });
    const ex = exitEvent({ signal: 'SIGKILL' }, podProcess('default', 'web-1', { app: 'web' }));
    env.bus.publish([web, api, ex]);
    const q = async (req: Obj) => flows((await collect(env.unix.observer, 'GetFlows', { number: 20, ...req })).msgs).map((f) => f.uuid);
    assert.deepEqual(await q({ whitelist: [{ event_type: [{ type: 200, match_sub_type: true, sub_type: 5 }] }] }), uuids([ex]));
    // `--pod default/web` = two filters (source / destination), ORed.
    assert.deepEqual(await q({ whitelist: [{ source_pod: ['default/web'] }, { destination_pod: ['default/web'] }] }), uuids([web, ex]));
    assert.deepEqual(await q({ whitelist: [{ source_label: ['app=api'] }] }), uuids([api]));
    assert.deepEqual(await q({ whitelist: [{ source_identity: [12345] }] }), uuids([api]));
    assert.deepEqual(await q({ whitelist: [{ verdict: [2] }] }), []);
    assert.deepEqual(await q({ whitelist: [{ verdict: [1] }], blacklist: [{ source_pod: ['prod/'] }] }), uuids([web, ex]));
    // Rewinding counts matches only: the last 1 exec is api, not the exit after it.
    assert.deepEqual(await q({ number: 1, whitelist: [{ event_type: [{ type: 200, match_sub_type: true, sub_type: 1 }] }] }), uuids([api]));
  } finally {
    await env.done();
  }
});

test('invalid filters → INVALID_ARGUMENT naming field and index', async () => {
  const env = await setup();
  try {
    const cases: [Obj, RegExp][] = [
      [{ whitelist: [{ source_ip: ['10.0.0.1', '10.0.0.999'] }] }, /^whitelist\[0\]\.source_ip\[1\]: invalid IP or CIDR "10\.0\.0\.999"$/],
      [{ blacklist: [{}, { protocol: ['quic'] }] }, /^blacklist\[1\]\.protocol\[0\]: unknown protocol "quic"$/],
      [{ whitelist: [{ source_port: ['99999'] }] }, /source_port\[0\]: invalid port/],
      [{ whitelist: [{ source_pod: [''] }] }, /source_pod\[0\]/],
      [{ whitelist: [{ http_path: ['('] }] }, /http_path\[0\]: invalid regular expression/],
      [{ whitelist: [{ experimental: { cel_expression: ['_flow.verdict == 1'] } }] }, /cel_expression is not supported by this server/],
      [{ extensions: { type_url: 'type.googleapis.com/foo.Bar', value: Buffer.alloc(0) } }, /extensions: unsupported type/],
    ];
    for (const [req, re] of cases) {
      const e = errorOf(await collect(env.unix.observer, 'GetFlows', req));
      assert.equal(e.code, grpc.status.INVALID_ARGUMENT, JSON.stringify(req));
      assert.match(e.details, re);
    }
  } finally {
    await env.done();
  }
});

test('private RuntimeFilter in extensions (binary_regex, pid), ANDed with FlowFilters', async () => {
  const env = await setup();
  try {
    const curl = execEvent({}, { binary: '/usr/bin/curl', pid: 501 });
    const wget = execEvent({}, { binary: '/usr/bin/wget', pid: 502 });
    const wgetExit = exitEvent({}, { binary: '/usr/bin/wget', pid: 502 });
    env.bus.publish([curl, wget, wgetExit]);
    const ext = packRuntimeFilter;
    const q = async (req: Obj) => flows((await collect(env.tcp.observer, 'GetFlows', { number: 20, ...req })).msgs).map((f) => f.uuid);
    assert.deepEqual(await q({ extensions: ext({ binary_regex: ['wget$'] }) }), uuids([wget, wgetExit]));
    assert.deepEqual(await q({ extensions: ext({ pid: [501] }) }), uuids([curl]));
    assert.deepEqual(await q({ extensions: ext({ pid: [502] }), whitelist: [{ event_type: [{ type: 200, match_sub_type: true, sub_type: 5 }] }] }), uuids([wgetExit]));
    const bad = errorOf(await collect(env.tcp.observer, 'GetFlows', { extensions: ext({ binary_regex: ['['] }) }));
    assert.equal(bad.code, grpc.status.INVALID_ARGUMENT);
    assert.match(bad.details, /extensions\.binary_regex\[0\]/);
  } finally {
    await env.done();
  }
});

test('lost events bypass filters and do not count towards number', async () => {
  const env = await setup();
  try {
    const a = execEvent();
    const b = execEvent();
    env.bus.publish([a, lossNotice({ count: 9 }), b]);
    const r = await collect(env.unix.observer, 'GetFlows', { number: 2, whitelist: [{ event_type: [{ type: 200 }] }] });
    assert.equal(r.msgs.length, 3);
    assert.deepEqual(r.msgs[1].lost_events, { source: 1, num_events_lost: '9', cpu: { value: 3 } });
    assert.equal(r.msgs[1].node_name, 'node1');
    const none = await collect(env.unix.observer, 'GetFlows', { number: 20, whitelist: [{ verdict: [2] }] });
    assert.equal(none.msgs.length, 1);
    assert.ok(none.msgs[0].lost_events);
  } finally {
    await env.done();
  }
});

test('a follower whose queue overflows gets lost_events (OBSERVER_EVENTS_QUEUE)', async () => {
  const env = await setup({ queueLimit: 10 });
  try {
    const s = openStream(env.tcp.observer, 'GetFlows', { follow: true });
    await until(() => env.bus.subscriberCount === 2);
    // One synchronous batch: the stream's queue keeps 10 and drops 90.
    env.bus.publish(Array.from({ length: 100 }, () => execEvent()));
    const got = await take(s, 11);
    assert.equal(flows(got).length, 10);
    const lost = got[10].lost_events as Obj;
    assert.equal(lost.source, 2);
    assert.equal(lost.num_events_lost, '90');
    assert.ok(lost.first && lost.last);
    s.cancel();
    s.on('error', () => undefined);
  } finally {
    await env.done();
  }
});

/** A raw HTTP/2 gRPC call, for clients grpc-js cannot imitate (tiny windows, abrupt exits). */
function rawGetFlows(address: string, req: Obj, settings: http2.Settings = {}): { session: http2.ClientHttp2Session; stream: http2.ClientHttp2Stream } {
  const body = protos().GetFlowsRequest.encode(protos().GetFlowsRequest.fromObject(req)).finish();
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  Buffer.from(body).copy(frame, 5);
  const session = http2.connect(`http://${address}`, { settings });
  session.on('error', () => undefined);
  const stream = session.request({ ':method': 'POST', ':path': '/observer.Observer/GetFlows', 'content-type': 'application/grpc', te: 'trailers' });
  stream.on('error', () => undefined);
  stream.end(frame);
  return { session, stream };
}

/** Splits gRPC length-prefixed frames and decodes GetFlowsResponses. */
function decodeFrames(data: Buffer): Obj[] {
  const out: Obj[] = [];
  const T = protos().GetFlowsResponse;
  for (let off = 0; off + 5 <= data.length; ) {
    const len = data.readUInt32BE(off + 1);
    out.push(T.toObject(T.decode(data.subarray(off + 5, off + 5 + len)), { longs: String }) as Obj);
    off += 5 + len;
  }
  return out;
}

test('a stalled reader whose history was overwritten gets lost_events (HUBBLE_RING_BUFFER)', async () => {
  // 4 KiB per write round (a few flows), so the server cannot buffer the whole history.
  const env = await setup({ historySize: 63, maxWriteBytes: 4096 });
  try {
    env.bus.publish(Array.from({ length: 63 }, () => execEvent()));
    // A 1 KiB window and no reading: the server stalls on backpressure mid-history.
    const { session, stream } = rawGetFlows(env.tcpAddress, { number: 0 }, { initialWindowSize: 1024 });
    stream.pause();
    await new Promise((r) => setTimeout(r, 200));
    env.bus.publish(Array.from({ length: 63 }, () => execEvent()));
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    await new Promise<void>((resolve) => {
      stream.on('end', () => resolve());
      stream.resume();
    });
    session.close();
    const msgs = decodeFrames(Buffer.concat(chunks));
    const lost = msgs.filter((m) => m.lost_events).map((m) => m.lost_events as Obj);
    assert.equal(lost.length, 1, `got ${msgs.length} messages`);
    assert.equal(lost[0].source, 3);
    const n = Number(lost[0].num_events_lost);
    assert.ok(n > 0);
    assert.equal(flows(msgs).length + n, 63, 'every position is either delivered or reported lost');
  } finally {
    await env.done();
  }
});

test('hubble status: health check, then ServerStatus', async () => {
  const env = await setup();
  try {
    env.bus.publish(Array.from({ length: 12 }, () => execEvent()));
    for (const service of ['hubble.server.Observer', '']) {
      assert.deepEqual(await unaryCall(env.unix.health, 'Check', { service }), { status: 1 });
    }
    await assert.rejects(unaryCall(env.unix.health, 'Check', { service: 'other' }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
    const st = await unaryCall(env.unix.observer, 'ServerStatus');
    assert.equal(st.num_flows, '12');
    assert.equal(st.max_flows, '4095');
    assert.equal(st.seen_flows, '12');
    assert.equal(st.uptime_ns, '5000000000');
    assert.equal(st.version, '0.1.0');
    assert.ok((st.flows_rate as number) > 0);
    assert.equal(st.num_connected_nodes, undefined, 'single node leaves it unset');
    assert.equal(st.num_unavailable_nodes, undefined);
    const w = openStream(env.unix.health, 'Watch', { service: 'hubble.server.Observer' });
    assert.deepEqual(await take(w, 1), [{ status: 1 }]);
    w.cancel();
    w.on('error', () => undefined);
  } finally {
    await env.done();
  }
});

test('hubble list nodes / namespaces, peer Notify, agent and debug events', async () => {
  const env = await setup();
  try {
    env.bus.publish([execEvent({}, podProcess('prod', 'a')), execEvent({}, podProcess('default', 'b'))]);
    const nodes = await unaryCall(env.tcp.observer, 'GetNodes');
    assert.deepEqual(nodes.nodes, [
      { name: 'node1', version: '0.1.0', address: env.tcpAddress, state: 1, tls: {}, uptime_ns: '5000000000', num_flows: '2', max_flows: '4095', seen_flows: '2' },
    ]);
    const ns = await unaryCall(env.tcp.observer, 'GetNamespaces');
    assert.deepEqual(ns.namespaces, [{ namespace: 'default' }, { namespace: 'prod' }]);

    const peers = openStream(env.unix.peer, 'Notify', {});
    assert.deepEqual(await take(peers, 1), [{ name: 'node1', address: env.tcpAddress, type: 1 }]);
    assert.equal(env.server.streams(), 1, 'Notify stays open');
    peers.cancel();
    peers.on('error', () => undefined);

    const agent = await collect(env.unix.observer, 'GetAgentEvents', { number: 20 });
    assert.equal(agent.error, undefined);
    assert.equal(agent.msgs.length, 1);
    const ae = agent.msgs[0].agent_event as Obj;
    assert.equal(ae.type, 2);
    assert.ok((ae.agent_start as Obj).time);
    assert.equal(agent.msgs[0].node_name, 'node1');
    const debug = await collect(env.unix.observer, 'GetDebugEvents', { number: 20 });
    assert.deepEqual(debug, { msgs: [], headers: debug.headers });
  } finally {
    await env.done();
  }
});

test('garbage bytes on the TCP port do not hurt the server', async () => {
  const env = await setup();
  try {
    await new Promise<void>((resolve) => {
      const [host, port] = [env.tcpAddress.slice(0, env.tcpAddress.lastIndexOf(':')), Number(env.tcpAddress.slice(env.tcpAddress.lastIndexOf(':') + 1))];
      const sock = net.connect(port, host, () => sock.write(Buffer.from('GET / HTTP/1.1\r\n\r\n\x00\xff\x13garbage'.repeat(100), 'binary')));
      sock.on('error', () => resolve());
      sock.on('close', () => resolve());
      setTimeout(() => sock.destroy(), 500);
    });
    const st = await unaryCall(env.tcp.observer, 'ServerStatus');
    assert.equal(st.version, '0.1.0');
  } finally {
    await env.done();
  }
});

test('a client that vanishes mid-stream frees its subscription', async () => {
  const env = await setup();
  try {
    const { session } = rawGetFlows(env.tcpAddress, { follow: true });
    await until(() => env.server.streams() === 1 && env.bus.subscriberCount === 2);
    session.destroy(); // no RST_STREAM, no GOAWAY: the socket just goes away
    await until(() => env.server.streams() === 0 && env.bus.subscriberCount === 1);
    // Publishing afterwards must not touch the dead stream.
    env.bus.publish([execEvent()]);
  } finally {
    await env.done();
  }
});

test('cancel frees the subscription at once', async () => {
  const env = await setup();
  try {
    const s = openStream(env.unix.observer, 'GetFlows', { follow: true });
    s.on('error', () => undefined);
    await until(() => env.bus.subscriberCount === 2);
    s.cancel();
    await until(() => env.bus.subscriberCount === 1 && env.server.streams() === 0);
  } finally {
    await env.done();
  }
});

test('close() ends open follow streams promptly', async () => {
  const env = await setup();
  const s = openStream(env.tcp.observer, 'GetFlows', { follow: true });
  const end = new Promise<string>((resolve) => {
    s.on('data', () => undefined); // 'end' needs a flowing stream
    s.on('end', () => resolve('end'));
    s.on('error', (e: grpc.ServiceError) => resolve(`error ${e.code}`));
  });
  await until(() => env.server.streams() === 1);
  const t0 = Date.now();
  await env.done();
  assert.ok(Date.now() - t0 < 1500, 'no forced-shutdown wait');
  assert.equal(await end, 'end');
  assert.equal(env.bus.subscriberCount, 0);
});
