// The GetFlows write path (../grpc-direct.ts): the direct HTTP/2 path is taken
// for follow and history with the installed grpc-js; many small flows arrive
// intact and in order through real grpc-js clients, on both write paths; a
// client that stops reading costs bounded memory and gets lost_events; cancel
// mid-stream frees the subscription at once.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { StatusProvider } from '../../agent/status';
import { EventBus } from '../../bus/bus';
import type { RuntimeEvent } from '../../model/event';
import { flowOf } from './encode';
import { protos } from './proto';
import { startHubbleServer, type HubbleServer, type HubbleServerOptions } from './server';
import { collect, connect, execEvent, openStream, until, wall, type Clients } from './testkit';

type Obj = Record<string, unknown>;

const status: StatusProvider = {
  snapshot: () => ({ version: '0.1.0', nodeName: 'node1', startTime: wall(1700000000), uptimeNs: 1, sensors: [], features: {}, notes: [], counters: {}, listeners: {} }),
};

interface Env {
  bus: EventBus;
  server: HubbleServer;
  clients: Clients;
  tcpAddress: string;
  done(): Promise<void>;
}

async function setup(extra: Partial<HubbleServerOptions> = {}): Promise<Env> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubble-direct-test-'));
  const bus = new EventBus();
  const server = await startHubbleServer({ addresses: [`unix://${dir}/hubble.sock`, '127.0.0.1:0'], bus, status, version: '0.1.0', nodeName: 'node1', ...extra });
  const clients = connect(server.addresses[0]);
  return {
    bus,
    server,
    clients,
    tcpAddress: server.addresses[1],
    done: async () => {
      await server.close();
      clients.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const MODES = [
  ['direct', true],
  ['grpc-js', false],
] as const;

function uuid(ev: RuntimeEvent): string {
  return flowOf(ev).uuid!;
}

/** Publishes `total` events in batches of `batch`, yielding to the event loop between batches. */
async function publishPaced(bus: EventBus, total: number, batch: number, make: () => RuntimeEvent = () => execEvent(), gapMs = 0): Promise<RuntimeEvent[]> {
  const all: RuntimeEvent[] = [];
  while (all.length < total) {
    const evs = Array.from({ length: Math.min(batch, total - all.length) }, make);
    all.push(...evs);
    bus.publish(evs);
    await new Promise((r) => (gapMs > 0 ? setTimeout(r, gapMs) : setImmediate(r)));
  }
  return all;
}

/** Reads a follow stream until `n` flows (or lost_events making up the difference) arrived. */
function readFlows(s: grpc.ClientReadableStream<Obj>, n: number, timeoutMs = 20_000): Promise<{ uuids: string[]; lost: number; msgs: Obj[] }> {
  return new Promise((resolve, reject) => {
    const uuids: string[] = [];
    const msgs: Obj[] = [];
    let lost = 0;
    const t = setTimeout(() => reject(new Error(`timeout: ${uuids.length} flows + ${lost} lost of ${n}`)), timeoutMs);
    s.on('data', (m: Obj) => {
      msgs.push(m);
      if (m.flow) uuids.push((m.flow as Obj).uuid as string);
      if (m.lost_events) lost += Number((m.lost_events as Obj).num_events_lost);
      if (uuids.length + lost >= n) {
        clearTimeout(t);
        resolve({ uuids, lost, msgs });
      }
    });
    s.on('error', (e: grpc.ServiceError) => {
      if (e.code !== grpc.status.CANCELLED) reject(e);
    });
  });
}

for (const [mode, directWrites] of MODES) {
  test(`${mode}: GetFlows follow streams many small flows intact and in order (one write per round on the direct path)`, async () => {
    const env = await setup({ directWrites, queueLimit: 100_000, historySize: 255 });
    try {
      // field mask "uuid": ~45-byte messages, the worst case for per-message costs.
      const small = openStream(env.clients.observer, 'GetFlows', { follow: true, field_mask: { paths: ['uuid', 'Summary'] } });
      const full = openStream(env.clients.observer, 'GetFlows', { follow: true });
      await until(() => env.server.streams() === 2 && env.bus.subscriberCount === 3);
      const N = 20_000;
      const readSmall = readFlows(small, N);
      const readFull = readFlows(full, N);
      const evs = await publishPaced(env.bus, N, 500);
      const stats = env.server.streamStats();
      assert.deepEqual(
        stats.map((s) => [s.method, s.direct]),
        [
          ['GetFlows', directWrites],
          ['GetFlows', directWrites],
        ],
        'the direct-write fast path is taken with the installed grpc-js (and only when enabled)',
      );
      const want = evs.map(uuid);
      for (const r of [await readSmall, await readFull]) {
        assert.equal(r.lost, 0);
        assert.equal(r.uuids.length, N);
        assert.ok(
          r.uuids.every((u, i) => u === want[i]),
          'in order',
        );
      }
      // Full flows decode completely (Summary, extensions) on every message.
      for (const m of (await readFull).msgs.slice(0, 50)) assert.equal((m.flow as Obj).Summary, 'exec /usr/bin/curl -s https://ebpf.io');
      for (const m of (await readSmall).msgs.slice(0, 50)) assert.deepEqual(Object.keys(m.flow as Obj).sort(), ['Summary', 'uuid']);
      const after = env.server.streamStats();
      for (const s of after) {
        assert.ok(s.messages >= N);
        if (directWrites) assert.ok(s.writes * 10 < s.messages, `coalesced: ${s.writes} writes for ${s.messages} messages`);
        else assert.equal(s.writes, s.messages);
      }
      small.cancel();
      full.cancel();
      await until(() => env.server.streams() === 0 && env.bus.subscriberCount === 1);
    } finally {
      await env.done();
    }
  });

  test(`${mode}: history replay (4,000 flows, then end) arrives intact, in order, status OK`, async () => {
    const env = await setup({ directWrites, historySize: 4095 });
    try {
      const evs = Array.from({ length: 4000 }, () => execEvent());
      env.bus.publish(evs);
      const statusP = new Promise<grpc.StatusObject>((resolve) => {
        const s = openStream(env.clients.observer, 'GetFlows', { number: 4000, field_mask: { paths: ['uuid'] } });
        s.on('data', () => undefined);
        s.on('status', resolve);
      });
      const r = await collect(env.clients.observer, 'GetFlows', { number: 4000 });
      assert.equal(r.error, undefined);
      assert.deepEqual(
        r.msgs.map((m) => (m.flow as Obj).uuid),
        evs.map(uuid),
      );
      assert.equal((await statusP).code, grpc.status.OK);
    } finally {
      await env.done();
    }
  });
}

/** A raw HTTP/2 GetFlows call with a small window that reads nothing until resumed. */
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

function decodeFrames(data: Buffer): Obj[] {
  const out: Obj[] = [];
  const T = protos().GetFlowsResponse;
  for (let off = 0; off + 5 <= data.length; ) {
    const len = data.readUInt32BE(off + 1);
    if (off + 5 + len > data.length) break; // partial frame: not arrived yet
    out.push(T.toObject(T.decode(data.subarray(off + 5, off + 5 + len)), { longs: String }) as Obj);
    off += 5 + len;
  }
  return out;
}

test('direct path for a history replay stalled on flow control', async () => {
  const env = await setup({ historySize: 255, maxWriteBytes: 8192 });
  try {
    env.bus.publish(Array.from({ length: 200 }, () => execEvent()));
    const { session, stream } = rawGetFlows(env.tcpAddress, { number: 200 }, { initialWindowSize: 1024 });
    stream.pause();
    await until(() => env.server.streams() === 1 && env.server.streamStats()[0].messages > 0);
    const [st] = env.server.streamStats();
    assert.equal(st.method, 'GetFlows');
    assert.equal(st.direct, true, 'history replay takes the direct-write path');
    assert.ok(st.messages < 200 && st.buffered <= 2 * 8192 + 4096, `stalled with bounded buffering: ${JSON.stringify(st)}`);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    const trailers = new Promise<http2.IncomingHttpHeaders>((r) => stream.on('trailers', r));
    stream.resume();
    assert.equal((await trailers)['grpc-status'], '0');
    assert.equal(decodeFrames(Buffer.concat(chunks)).length, 200);
    session.close();
  } finally {
    await env.done();
  }
});

test('a follower that stops reading: bounded server memory, lost_events, then the rest in order', async () => {
  const LIMIT = 300;
  const BUDGET = 16 * 1024;
  const env = await setup({ queueLimit: LIMIT, maxWriteBytes: BUDGET });
  try {
    const { session, stream } = rawGetFlows(env.tcpAddress, { follow: true }, { initialWindowSize: 4096 });
    stream.pause();
    await until(() => env.server.streams() === 1 && env.bus.subscriberCount === 2);
    let maxBuffered = 0;
    let maxQueued = 0;
    const evs = await publishPaced(env.bus, 5000, 100, () => {
      const [st] = env.server.streamStats();
      maxBuffered = Math.max(maxBuffered, st.buffered);
      maxQueued = Math.max(maxQueued, st.queued ?? 0);
      return execEvent();
    });
    const [st] = env.server.streamStats();
    assert.equal(st.direct, true);
    assert.ok(maxQueued <= LIMIT, `queue bounded (${maxQueued})`);
    // Bound: a round starts below maxBufferedBytes (= budget) and adds at most budget + one message.
    assert.ok(maxBuffered <= 2 * BUDGET + 4096, `HTTP/2 buffer bounded (${maxBuffered} bytes)`);
    assert.ok(st.dropped! > 4000, `the stalled stream dropped (${st.dropped})`);
    assert.ok(st.messages < 1000, `few messages left the server (${st.messages})`);

    // Resume: every event is either delivered (in order) or counted in lost_events.
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.resume();
    const flowsAndLost = () => {
      const msgs = decodeFrames(Buffer.concat(chunks));
      const uuids = msgs.filter((m) => m.flow).map((m) => (m.flow as Obj).uuid as string);
      const lost = msgs.filter((m) => m.lost_events).map((m) => m.lost_events as Obj);
      return { uuids, lost };
    };
    await until(() => {
      const { uuids, lost } = flowsAndLost();
      return uuids.length + lost.reduce((a, l) => a + Number(l.num_events_lost), 0) >= evs.length;
    }, 10_000);
    const { uuids, lost } = flowsAndLost();
    assert.ok(lost.length > 0 && lost.every((l) => l.source === 2), 'OBSERVER_EVENTS_QUEUE');
    assert.equal(uuids.length + lost.reduce((a, l) => a + Number(l.num_events_lost), 0), evs.length);
    const pos = new Map(evs.map((e, i) => [uuid(e), i]));
    const idx = uuids.map((u) => pos.get(u)!);
    assert.ok(
      idx.every((v, i) => v !== undefined && (i === 0 || v > idx[i - 1])),
      'delivered flows are in publish order',
    );
    session.close();
  } finally {
    await env.done();
  }
});

test('cancel mid-stream (data in flight) frees the subscription at once; other streams go on', async () => {
  const env = await setup({ queueLimit: 100_000 });
  try {
    const a = openStream(env.clients.observer, 'GetFlows', { follow: true });
    const b = openStream(env.clients.observer, 'GetFlows', { follow: true });
    a.on('error', () => undefined);
    await until(() => env.server.streams() === 2 && env.bus.subscriberCount === 3);
    let gotA = 0;
    const cancelled = new Promise<void>((resolve) =>
      a.on('data', () => {
        if (++gotA === 1000) {
          a.cancel();
          resolve();
        }
      }),
    );
    const readB = readFlows(b, 6000);
    // Paced over ~100 ms so the cancel lands while flows are still being published and written.
    const pub = publishPaced(env.bus, 6000, 200, undefined, 3);
    await cancelled;
    await until(() => env.bus.subscriberCount === 2 && env.server.streams() === 1, 2000);
    const evs = await pub;
    const r = await readB;
    assert.equal(r.lost, 0);
    assert.deepEqual(r.uuids, evs.map(uuid));
    b.cancel();
    b.on('error', () => undefined);
    await until(() => env.bus.subscriberCount === 1 && env.server.streams() === 0);
  } finally {
    await env.done();
  }
});

test('close() with data in flight: the follower gets every flow written, then status OK', async () => {
  const env = await setup({ queueLimit: 100_000 });
  const s = openStream(env.clients.observer, 'GetFlows', { follow: true });
  const uuids: string[] = [];
  const end = new Promise<grpc.StatusObject>((resolve) => {
    s.on('data', (m: Obj) => uuids.push((m.flow as Obj).uuid as string));
    s.on('status', resolve);
    s.on('error', () => undefined);
  });
  await until(() => env.server.streams() === 1);
  const evs = Array.from({ length: 3000 }, () => execEvent());
  env.bus.publish(evs);
  await until(() => env.server.streamStats()[0]?.messages > 0);
  const written = env.server.streamStats()[0].messages;
  await env.done();
  const st = await end;
  assert.equal(st.code, grpc.status.OK);
  assert.ok(uuids.length >= written, `${uuids.length} received, ${written} written before close`);
  assert.deepEqual(uuids, evs.slice(0, uuids.length).map(uuid));
});
