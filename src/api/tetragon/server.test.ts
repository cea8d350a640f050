// Real gRPC over real sockets (a unix socket in a temp dir and 127.0.0.1:0),
// with clients built from the same protos.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { StatusProvider, StatusSnapshot } from '../../agent/status';
import { EventBus } from '../../bus/bus';
import type { LossNotice, RuntimeEvent } from '../../model/event';
import { tetragonTypes, type ProtoObject } from './protos';
import { ApiError, startTetragonServer, tetragonServiceDefinition, writeInfoFile, type PolicyApi, type TetragonServer } from './server';
import { makeExec, makeExecId, makeExit, makeProcess, xwingPod } from './testkit';

const snapshot: StatusSnapshot = {
  version: '0.1.0-test',
  nodeName: 'mynode',
  startTime: { sec: 1, nsec: 0 },
  uptimeNs: 5,
  sensors: [
    { name: 'process', state: 'running', hooks: ['raw_tp/sched_process_exec'] },
    { name: 'kprobes', state: 'off', hooks: [], note: 'no policy' },
  ],
  features: { bpf_lsm: false, ringbuf: true },
  notes: [],
  counters: {},
  listeners: { tetragon: ['127.0.0.1:54321'] },
};
const status: StatusProvider = { snapshot: () => snapshot };

const Client = grpc.makeGenericClientConstructor(tetragonServiceDefinition('client'), 'FineGuidanceSensors');

type Reply = (err: grpc.ServiceError | null, res: ProtoObject) => void;

function call(client: grpc.Client, method: string, req: ProtoObject): Promise<ProtoObject> {
  const fn = (client as unknown as Record<string, (req: ProtoObject, cb: Reply) => grpc.ClientUnaryCall>)[method];
  return new Promise((resolve, reject) => {
    fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

function getEvents(client: grpc.Client, req: ProtoObject): grpc.ClientReadableStream<ProtoObject> {
  const fn = (client as unknown as Record<string, (req: ProtoObject) => grpc.ClientReadableStream<ProtoObject>>).GetEvents;
  return fn.call(client, req);
}

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Collects n responses from a stream. */
function collect(s: grpc.ClientReadableStream<ProtoObject>, n: number, ms = 5000): Promise<ProtoObject[]> {
  const got: ProtoObject[] = [];
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`got ${got.length}/${n} events`)), ms);
    s.on('data', (m: ProtoObject) => {
      got.push(m);
      if (got.length === n) {
        clearTimeout(t);
        resolve(got);
      }
    });
    s.on('error', (e) => {
      clearTimeout(t);
      if (got.length < n) reject(e);
    });
  });
}

function streamError(s: grpc.ClientReadableStream<ProtoObject>): Promise<grpc.ServiceError> {
  return new Promise((resolve, reject) => {
    s.on('data', () => reject(new Error('unexpected data')));
    s.on('error', (e: grpc.ServiceError) => resolve(e));
  });
}

function obj(v: unknown): ProtoObject {
  assert.ok(v && typeof v === 'object', `expected an object, got ${JSON.stringify(v)}`);
  return v as ProtoObject;
}

/** One server under test: its bus and where it listens. */
interface Env {
  bus: EventBus;
  srv: TetragonServer;
  unixAddr: string;
  tcpAddr: string;
}

type Mode = 'direct' | 'grpc-js';
const MODES: Mode[] = ['direct', 'grpc-js'];

let dir: string;
const envs = {} as Record<Mode, Env>;
// The default (direct-write) server, used by most tests.
let bus: EventBus;
let srv: TetragonServer;
let unixAddr: string;
let tcpAddr: string;
const clients: grpc.Client[] = [];

function client(addr: string): grpc.Client {
  const c = new Client(addr, grpc.credentials.createInsecure());
  clients.push(c);
  return c;
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tetragon-api-'));
  for (const mode of MODES) {
    const b = new EventBus();
    const s = await startTetragonServer({
      addresses: [`unix://${path.join(dir, `${mode}.sock`)}`, '127.0.0.1:0'],
      bus: b,
      status,
      version: 'v9.9.9-tetrahub',
      queueLimit: 64,
      directWrites: mode === 'direct',
    });
    envs[mode] = { bus: b, srv: s, unixAddr: s.addresses[0], tcpAddr: s.addresses[1] };
  }
  ({ bus, srv, unixAddr, tcpAddr } = envs.direct);
});

after(async () => {
  for (const c of clients) c.close();
  for (const mode of MODES) await envs[mode].srv.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function openStream(c: grpc.Client, req: ProtoObject, server: TetragonServer = srv): Promise<grpc.ClientReadableStream<ProtoObject>> {
  const before = server.streams();
  const s = getEvents(c, req);
  s.on('error', () => undefined);
  await waitFor(() => server.streams() === before + 1, 'stream to open');
  return s;
}

function sampleEvents(): { exec: RuntimeEvent; exit: RuntimeEvent } {
  const parent = makeProcess({ pid: 4000, ktime: 100n, binary: '/bin/bash', arguments: '-c "curl x"', flags: 'execve rootcwd clone' });
  const proc = makeProcess({
    pid: 4242,
    ktime: 1234567890n,
    parentExecId: parent.execId,
    creds: { uid: 1000, gid: 1000, euid: 0, egid: 0 },
    auid: 1000,
    cwd: '/root',
    binary: '/usr/bin/curl',
    args: ['-s', 'https://x y'],
    arguments: '-s "https://x y"',
    flags: 'execve rootcwd',
    startTime: { sec: 1696629837, nsec: 700327580 },
  });
  return {
    exec: makeExec(proc, parent, 'mynode', { sec: 1696629837, nsec: 700400000 }),
    exit: makeExit(proc, 0, 'SIGKILL', parent, 'mynode', { sec: 1696629840, nsec: 5 }),
  };
}

for (const mode of MODES) for (const which of ['unix', 'tcp'] as const) {
  test(`GetEvents over ${which} (${mode} writes): exec and exit decoded field by field`, async () => {
    const e = envs[mode];
    const c = client(which === 'unix' ? e.unixAddr : e.tcpAddr);
    const s = await openStream(c, { allow_list: [{}] }, e.srv);
    assert.deepEqual(
      e.srv.streamStats().map((x) => x.direct),
      [mode === 'direct'],
      'the direct-write fast path is taken with the installed grpc-js (and only when enabled)',
    );
    const { exec, exit } = sampleEvents();
    const got = collect(s, 2);
    e.bus.publish([exec, exit]);
    const [r1, r2] = await got;
    s.cancel();

    const pe = obj(r1.process_exec);
    const p = obj(pe.process);
    assert.equal(p.exec_id, 'bXlub2RlOjEyMzQ1Njc4OTA6NDI0Mg==');
    assert.equal(Buffer.from(String(p.exec_id), 'base64').toString(), 'mynode:1234567890:4242');
    assert.deepEqual(p.pid, { value: 4242 });
    assert.deepEqual(p.uid, {}, 'effective uid 0 is a set wrapper with the default value');
    assert.deepEqual(p.auid, { value: 1000 });
    assert.deepEqual(p.tid, { value: 4242 });
    assert.equal(p.cwd, '/root');
    assert.equal(p.binary, '/usr/bin/curl');
    assert.equal(p.arguments, '-s "https://x y"');
    assert.equal(p.flags, 'execve rootcwd');
    assert.deepEqual(p.start_time, { seconds: '1696629837', nanos: 700327580 });
    assert.equal(p.parent_exec_id, makeExecId('mynode', 100n, 4000));
    assert.equal(p.pod, undefined, 'no pod for host processes');
    const par = obj(pe.parent);
    assert.equal(par.binary, '/bin/bash');
    assert.equal(par.flags, 'execve rootcwd clone');
    assert.deepEqual(par.pid, { value: 4000 });
    assert.equal(r1.node_name, 'mynode');
    assert.deepEqual(r1.time, { seconds: '1696629837', nanos: 700400000 });

    const px = obj(r2.process_exit);
    assert.equal(obj(px.process).exec_id, p.exec_id);
    assert.equal(obj(px.parent).exec_id, par.exec_id);
    assert.equal(px.signal, 'SIGKILL');
    assert.equal(px.status, undefined);
    assert.deepEqual(px.time, { seconds: '1696629840', nanos: 5 });
    assert.equal(r2.node_name, 'mynode');
    assert.deepEqual(r2.time, { seconds: '1696629840', nanos: 5 });
    assert.ok(exec.wire.has('tetragon'), 'encoding cached on the event');
    await waitFor(() => e.srv.streams() === 0, 'stream to close');
  });
}

test('GetEvents: pod metadata, exit status, loss notices skipped, one shared encoding', async () => {
  const a = await openStream(client(tcpAddr), {});
  const b = await openStream(client(unixAddr), { allow_list: [{}] });
  const proc = makeProcess({ pod: xwingPod(), docker: '551e161c47d8ff0eb665438a7bcd5b4', flags: 'execve inInitTree' });
  const ex = makeExec(proc);
  const lost: LossNotice = { kind: 'lost', seq: 0, time: { sec: 1, nsec: 0 }, nodeName: 'mynode', source: 'kernel_ring', count: 3, wire: new Map() };
  const done = makeExit(proc, 7, '');
  const ga = collect(a, 2);
  const gb = collect(b, 2);
  bus.publish([ex, lost, done]);
  const [ra, rb] = [await ga, await gb];
  a.cancel();
  b.cancel();
  for (const got of [ra, rb]) {
    const p = obj(obj(got[0].process_exec).process);
    const pod = obj(p.pod);
    assert.equal(pod.namespace, 'default');
    assert.equal(pod.name, 'xwing');
    assert.equal(pod.workload, 'xwing');
    assert.deepEqual(pod.pod_labels, { 'app.kubernetes.io/name': 'xwing', class: 'xwing', org: 'alliance' });
    const ctr = obj(pod.container);
    assert.equal(ctr.name, 'spaceship');
    assert.deepEqual(ctr.pid, { value: 49 });
    assert.equal(obj(ctr.image).name, 'docker.io/tgraf/netperf:latest');
    assert.equal(p.docker, '551e161c47d8ff0eb665438a7bcd5b4');
    assert.deepEqual(p.in_init_tree, { value: true });
    assert.equal(obj(got[1].process_exit).status, 7);
  }
  assert.deepEqual([...ex.wire.keys()].sort(), ['tetragon', 'tetragon:grpc'], 'one encoding shared by both streams');
  const framed = ex.wire.get('tetragon:grpc');
  const payload = ex.wire.get('tetragon');
  assert.ok(framed && payload);
  assert.equal(payload.buffer, framed.buffer, 'the plain encoding is a view of the framed one');
  assert.equal(payload.byteOffset, framed.byteOffset + 5);
  assert.equal(lost.wire.size, 0);
  await waitFor(() => srv.streams() === 0, 'streams to close');
});

test('GetEvents filters: tetra-style empty allow Filter with deny, namespace "" and event_set', async () => {
  const c = client(tcpAddr);
  const hostOnlyNoCurl = await openStream(c, { allow_list: [{}], deny_list: [{ binary_regex: ['curl$'] }] });
  const exitsInDefault = await openStream(c, { allow_list: [{ namespace: ['default'], event_set: [5] }] });
  const host = await openStream(c, { allow_list: [{ namespace: [''] }] });
  const podCurl = makeProcess({ binary: '/usr/bin/curl', pod: xwingPod() });
  const hostLs = makeProcess({ binary: '/bin/ls' });
  const g1 = collect(hostOnlyNoCurl, 2);
  const g2 = collect(exitsInDefault, 1);
  const g3 = collect(host, 2);
  bus.publish([makeExec(podCurl), makeExec(hostLs), makeExit(podCurl, 0, ''), makeExit(hostLs, 1, '')]);
  const r1 = await g1;
  assert.deepEqual(
    r1.map((r) => Object.keys(r)[0]),
    ['process_exec', 'process_exit'],
  );
  assert.ok(r1.every((r) => obj(obj(r.process_exec ?? r.process_exit).process).binary === '/bin/ls'));
  const r2 = await g2;
  assert.equal(obj(obj(r2[0].process_exit).process).binary, '/usr/bin/curl');
  const r3 = await g3;
  assert.ok(r3.every((r) => obj(obj(r.process_exec ?? r.process_exit).process).pod === undefined));
  for (const s of [hostOnlyNoCurl, exitsInDefault, host]) s.cancel();
  await waitFor(() => srv.streams() === 0, 'streams to close');
});

test('GetEvents field filters: only the included paths arrive, envelope intact', async () => {
  const s = await openStream(client(unixAddr), { field_filters: [{ fields: { paths: ['process.binary', 'process.pid'] }, action: 0 }] });
  const { exec } = sampleEvents();
  const g = collect(s, 1);
  bus.publish([exec]);
  const [r] = await g;
  s.cancel();
  assert.deepEqual(r.process_exec, { process: { binary: '/usr/bin/curl', pid: { value: 4242 } } });
  assert.equal(r.node_name, 'mynode');
  assert.ok(r.time);
  assert.ok(exec.wire.has('tetragon:fields:[["i",0,[],["process.binary","process.pid"]]]'));
  await waitFor(() => srv.streams() === 0, 'stream to close');
});

test('GetEvents: bad regex and unsupported fields are INVALID_ARGUMENT naming the field', async () => {
  const c = client(tcpAddr);
  const e1 = await streamError(getEvents(c, { allow_list: [{ binary_regex: ['ok', '('] }] }));
  assert.equal(e1.code, grpc.status.INVALID_ARGUMENT);
  assert.match(e1.details, /^allow_list\[0\]\.binary_regex\[1\]: invalid regex "\(": /);
  const e2 = await streamError(getEvents(c, { deny_list: [{ cel_expression: ['process.pid > 1'] }] }));
  assert.equal(e2.code, grpc.status.INVALID_ARGUMENT);
  assert.match(e2.details, /^deny_list\[0\]\.cel_expression: /);
  const e3 = await streamError(getEvents(c, { allow_list: [{ labels: ['app in ('] }] }));
  assert.equal(e3.code, grpc.status.INVALID_ARGUMENT);
  assert.match(e3.details, /^allow_list\[0\]\.labels\[0\]: invalid label selector/);
  assert.equal(srv.streams(), 0);
  assert.equal(bus.subscriberCount, 0);
});

/**
 * A bare HTTP/2 client that opens one GetEvents stream and then never grants
 * flow-control window (no WINDOW_UPDATE) — what a client that stops reading
 * looks like on the wire. It answers SETTINGS and PING so the connection
 * stays healthy.
 */
class StalledClient {
  readonly sock: net.Socket;
  dataBytes = 0;
  private inbuf = Buffer.alloc(0);

  constructor(port: number, host: string, request: Uint8Array) {
    const frame = (type: number, flags: number, stream: number, payload: Buffer): Buffer => {
      const h = Buffer.alloc(9);
      h.writeUIntBE(payload.length, 0, 3);
      h[3] = type;
      h[4] = flags;
      h.writeUInt32BE(stream, 5);
      return Buffer.concat([h, payload]);
    };
    const str = (s: string): Buffer => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);
    const headers = Buffer.concat([
      Buffer.from([0x83, 0x86]), // :method POST, :scheme http
      Buffer.from([0x04]), str('/tetragon.FineGuidanceSensors/GetEvents'), // :path
      Buffer.from([0x01]), str('localhost'), // :authority
      Buffer.from([0x0f, 0x10]), str('application/grpc'), // content-type
      Buffer.from([0x00]), str('te'), str('trailers'),
    ]);
    const msg = Buffer.alloc(5 + request.length);
    msg.writeUInt32BE(request.length, 1);
    Buffer.from(request).copy(msg, 5);
    this.sock = net.connect(port, host, () => {
      this.sock.write(
        Buffer.concat([
          Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
          frame(4, 0, 0, Buffer.alloc(0)),
          frame(1, 0x4, 1, headers),
          frame(0, 0x1, 1, msg),
        ]),
      );
    });
    this.sock.on('error', () => undefined);
    this.sock.on('data', (d: Buffer) => {
      this.inbuf = Buffer.concat([this.inbuf, d]);
      while (this.inbuf.length >= 9) {
        const len = this.inbuf.readUIntBE(0, 3);
        if (this.inbuf.length < 9 + len) break;
        const [type, flags] = [this.inbuf[3], this.inbuf[4]];
        const payload = this.inbuf.subarray(9, 9 + len);
        if (type === 0) this.dataBytes += len;
        if (type === 4 && !(flags & 1)) this.sock.write(frame(4, 1, 0, Buffer.alloc(0)));
        if (type === 6 && !(flags & 1)) this.sock.write(frame(6, 1, 0, Buffer.from(payload)));
        this.inbuf = this.inbuf.subarray(9 + len);
      }
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

function hostPort(addr: string): [string, number] {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
}

for (const mode of MODES) {
test(`a client that never reads (${mode} writes): bounded queue, drops counted, the other stream gets everything`, async () => {
  const { bus, srv, unixAddr, tcpAddr } = envs[mode];
  const limit = 64;
  const [host, port] = hostPort(tcpAddr);
  const slow = new StalledClient(port, host, tetragonTypes().GetEventsRequest.encode({ allow_list: [{}] }).finish());
  await waitFor(() => srv.streams() === 1, 'slow stream');
  const fast = await openStream(client(unixAddr), { allow_list: [{}] }, srv);
  let received = 0;
  fast.on('data', () => received++);
  const dropsBefore = bus.subscriberDrops;
  const total = 5000;
  const batch = 50;
  const big = 'x'.repeat(400); // ~0.7 KB per response: the 64 KiB window fills quickly
  for (let i = 0; i < total; i += batch) {
    const evs: RuntimeEvent[] = [];
    for (let j = 0; j < batch; j++) evs.push(makeExec(makeProcess({ pid: 10000 + i + j, arguments: big })));
    bus.publish(evs);
    await waitFor(() => received === i + batch, `fast stream to catch up at ${i}`);
  }
  assert.equal(received, total, 'the reading client got every event');
  const stats = srv.streamStats();
  const slowStats = stats.find((s) => s.peer.startsWith('127.0.0.1'));
  const fastStats = stats.find((s) => !s.peer.startsWith('127.0.0.1'));
  assert.ok(slowStats && fastStats, JSON.stringify(stats));
  assert.equal(fastStats.dropped, 0);
  assert.equal(fastStats.delivered, total);
  assert.ok(slowStats.dropped > total / 2, `slow stream dropped most events (${slowStats.dropped})`);
  assert.ok(slowStats.queued <= limit, `queue bounded (${slowStats.queued})`);
  // Taken from the queue but not yet read: one 64 KiB window (~90 responses) plus what the
  // write path holds (the HTTP/2 stream's buffer, or up to 256 messages in grpc-js's writable).
  assert.ok(slowStats.delivered < (mode === 'direct' ? 200 : 450), `in-flight writes bounded by flow control (${slowStats.delivered})`);
  assert.ok(slow.dataBytes <= 65535 + 9 * 200, `server respected the flow-control window (${slow.dataBytes} bytes)`);
  assert.equal(slowStats.delivered + slowStats.queued + slowStats.dropped, total, 'every event accounted for');
  assert.equal(bus.subscriberDrops - dropsBefore, slowStats.dropped, 'drops reach the bus counter');
  slow.close();
  fast.cancel();
  await waitFor(() => srv.streams() === 0 && bus.subscriberCount === 0, 'streams to close');
});
}

test('client cancel and an abruptly closed connection both remove the subscription', async () => {
  const s = await openStream(client(unixAddr), {});
  assert.equal(bus.subscriberCount, 1);
  s.cancel();
  await waitFor(() => srv.streams() === 0 && bus.subscriberCount === 0, 'cancel to unsubscribe');

  // Raw HTTP/2 client, then the socket is destroyed mid-stream.
  const session = http2.connect(`http://${tcpAddr}`);
  session.on('error', () => undefined);
  const req = session.request({
    ':method': 'POST',
    ':path': '/tetragon.FineGuidanceSensors/GetEvents',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  req.on('error', () => undefined);
  req.end(Buffer.from([0, 0, 0, 0, 0])); // one empty GetEventsRequest
  await waitFor(() => srv.streams() === 1, 'raw stream to open');
  session.destroy();
  await waitFor(() => srv.streams() === 0 && bus.subscriberCount === 0, 'disconnect to unsubscribe');
});

test('garbage on the TCP port and a garbage request do not hurt the server', async () => {
  const [host, port] = hostPort(tcpAddr);
  for (const junk of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.alloc(65536, 0xa5), Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff')]) {
    const closedByServer = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, host, () => sock.write(junk));
      sock.resume();
      sock.on('error', () => undefined);
      sock.on('close', () => resolve(true));
      setTimeout(() => {
        resolve(false);
        sock.destroy();
      }, 2000);
    });
    assert.ok(closedByServer, 'server drops a connection that speaks garbage');
  }
  // A well-framed call whose protobuf payload is junk.
  const session = http2.connect(`http://${tcpAddr}`);
  session.on('error', () => undefined);
  const req = session.request({ ':method': 'POST', ':path': '/tetragon.FineGuidanceSensors/GetEvents', 'content-type': 'application/grpc', te: 'trailers' });
  // The status comes either in trailers or, for an immediate error, in a trailers-only response.
  const grpcStatus = new Promise<string | undefined>((resolve) => {
    const pick = (h: http2.IncomingHttpHeaders): void => {
      const v = h['grpc-status'];
      if (v !== undefined) resolve(String(v));
    };
    req.on('response', pick);
    req.on('trailers', pick);
    req.on('close', () => resolve(undefined));
  });
  req.on('error', () => undefined);
  req.resume();
  req.end(Buffer.concat([Buffer.from([0, 0, 0, 0, 4]), Buffer.from([0xff, 0xff, 0xff, 0xff])]));
  const code = await grpcStatus;
  assert.ok(code !== undefined && code !== '0', `garbage request rejected with a gRPC status (${String(code)})`);
  session.destroy();

  const res = await call(client(tcpAddr), 'GetHealth', {});
  assert.equal(obj((res.health_status as ProtoObject[])[0]).details, 'running');
  assert.equal(srv.streams(), 0);
});

test('unary RPCs: health, version, info, sensors, debug log level, policies without a backend', async () => {
  const c = client(unixAddr);
  assert.deepEqual(await call(c, 'GetHealth', {}), {
    health_status: [{ event: 'HEALTH_STATUS_TYPE_STATUS', status: 'HEALTH_STATUS_RUNNING', details: 'running' }],
  });
  assert.deepEqual(await call(c, 'GetVersion', {}), { version: 'v9.9.9-tetrahub' });
  const info = await call(c, 'GetInfo', {});
  assert.equal(info.version, 'v9.9.9-tetrahub');
  assert.deepEqual(info.probes, [
    { Name: 'bpf_lsm', Enabled: {} },
    { Name: 'ringbuf', Enabled: { value: true } },
  ]);
  assert.deepEqual(await call(c, 'ListSensors', {}), {
    sensors: [
      { name: 'process', enabled: true, collection: 'process' },
      { name: 'kprobes', collection: 'kprobes' },
    ],
  });
  assert.deepEqual(await call(c, 'GetDebug', { flag: 0 }), { level: 'LOG_LEVEL_INFO' });
  assert.deepEqual(await call(c, 'SetDebug', { flag: 0, level: 5 }), { level: 'LOG_LEVEL_DEBUG' });
  assert.deepEqual(await call(c, 'GetDebug', {}), { level: 'LOG_LEVEL_DEBUG' });
  await assert.rejects(call(c, 'SetDebug', { flag: 0, level: 42 }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);
  await assert.rejects(call(c, 'GetDebug', { flag: 1 }), (e: grpc.ServiceError) => e.code === grpc.status.UNIMPLEMENTED);
  for (const m of ['AddTracingPolicy', 'DeleteTracingPolicy', 'ListTracingPolicies', 'ConfigureTracingPolicy', 'EnableTracingPolicy', 'DisableTracingPolicy']) {
    await assert.rejects(
      call(c, m, { name: 'x' }),
      (e: grpc.ServiceError) => e.code === grpc.status.UNIMPLEMENTED && /tracing policies are not available/.test(e.details),
      m,
    );
  }
  assert.deepEqual(await call(c, 'RuntimeHook', { createContainer: { containerID: 'abc' } }), {});
});

test('tracing-policy RPCs map onto a PolicyApi', async () => {
  const calls: string[] = [];
  const policies: PolicyApi = {
    add: (yaml, o) => {
      if (!yaml.includes('kind: TracingPolicy')) throw new Error('invalid policy: missing kind');
      calls.push(`add ${o.domain}`);
    },
    delete: (name, o) => {
      if (name === 'nope') throw new ApiError(grpc.status.NOT_FOUND, `tracing policy ${name} not found`);
      calls.push(`delete ${name} ${o.namespace}`);
    },
    list: async () => [
      {
        id: 1,
        name: 'file-monitoring',
        state: 'enabled',
        sensors: ['generic_kprobe'],
        kernelMemoryBytes: 3_500_000,
        mode: 'monitor',
        stats: { post: 12, signal: 1 },
      },
    ],
    configure: (name, o) => {
      calls.push(`configure ${name} enable=${String(o.enable)} mode=${String(o.mode)}`);
    },
  };
  const bus2 = new EventBus();
  const srv2 = await startTetragonServer({ addresses: ['127.0.0.1:0'], bus: bus2, status, version: 'v', policies });
  const c = client(srv2.addresses[0]);
  try {
    await call(c, 'AddTracingPolicy', { yaml: 'apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\n' });
    await assert.rejects(
      call(c, 'AddTracingPolicy', { yaml: 'x: 1' }),
      (e: grpc.ServiceError) => e.code === grpc.status.UNKNOWN && e.details === 'invalid policy: missing kind',
    );
    await assert.rejects(call(c, 'DeleteTracingPolicy', { name: 'nope' }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
    await call(c, 'DeleteTracingPolicy', { name: 'p', namespace: 'ns' });
    await call(c, 'EnableTracingPolicy', { name: 'p' });
    await call(c, 'DisableTracingPolicy', { name: 'p' });
    await call(c, 'ConfigureTracingPolicy', { name: 'p', mode: 1 });
    await call(c, 'ConfigureTracingPolicy', { name: 'p', enable: false });
    const list = await call(c, 'ListTracingPolicies', {});
    assert.deepEqual(list, {
      policies: [
        {
          id: '1',
          name: 'file-monitoring',
          sensors: ['generic_kprobe'],
          enabled: true,
          state: 'TP_STATE_ENABLED',
          kernel_memory_bytes: '3500000',
          mode: 'TP_MODE_MONITOR',
          stats: { action_counters: { post: '12', signal: '1' } },
        },
      ],
    });
    assert.deepEqual(await call(c, 'ListDomains', {}), { domains: ['grpc'] });
    assert.deepEqual(calls, [
      'add ',
      'delete p ns',
      'configure p enable=true mode=undefined',
      'configure p enable=false mode=undefined',
      'configure p enable=undefined mode=enforce',
      'configure p enable=false mode=undefined',
    ]);
  } finally {
    await srv2.close();
  }
});

test('close() ends open streams and removes the unix socket', async () => {
  const bus3 = new EventBus();
  const sock = path.join(dir, 'other.sock');
  const srv3 = await startTetragonServer({ addresses: [`unix://${sock}`], bus: bus3, status, version: 'v' });
  const c = client(srv3.addresses[0]);
  const s = getEvents(c, {});
  const ended = new Promise<void>((resolve) => {
    s.on('error', () => resolve());
    s.on('end', () => resolve());
  });
  s.on('data', () => undefined);
  await waitFor(() => srv3.streams() === 1, 'stream');
  await srv3.close();
  await ended;
  assert.equal(bus3.subscriberCount, 0);
  assert.equal(fs.existsSync(sock), false);
});

test('writeInfoFile writes the tetra discovery file', () => {
  const f = path.join(dir, 'run', 'tetragon-info.json');
  writeInfoFile(f, { server_address: 'unix:///var/run/tetragon/tetragon.sock' });
  const parsed = JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, unknown>;
  assert.equal(parsed.server_address, 'unix:///var/run/tetragon/tetragon.sock');
  assert.equal(parsed.pid, process.pid);
});
