// Fan-out: 4 concurrent `GetFlows{follow: true}` subscribers (like
// `hubble observe -f`) of one Hubble server at 50,000 events/s, nothing lost.
//
// Server process (child): EventBus + the real Hubble server (history 4,095,
// per-stream queue 10,000 as the agent's defaults) on a temporary unix socket,
// and a publisher that every ~10 ms makes the events due at 50,000/s through
// the sensor's own path: a framed ring batch of exec records (re-stamped with
// new pids and the current time) → decodeBatch → ProcessCache.apply →
// EventBus.publish. Four subscriber processes (children) are real gRPC
// clients over the socket; each counts flows and lost_events and the delivery
// latency (now − the response's time, which is the publish time).
//
// Each scenario runs twice in the same run: with the server's direct HTTP/2
// writes (src/api/grpc-direct.ts, the default) and with them switched off
// (grpc-js call.write() per message), so the two write paths are compared on
// the same machine state: server CPU per event and per stream write, and what
// each subscriber received / lost.
//
// In the same run, the encoder: flows/s when each event is encoded once and
// the bytes are shared by the 4 streams (what the server does, through
// flowResponseBytes) versus encoded once per subscriber; and bare-server
// baselines of the two write paths (no agent code).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import type { StatusProvider, StatusSnapshot } from '../src/agent/status';
import type { BusItem, RuntimeEvent } from '../src/model/event';
import type { ProcessRecord } from '../src/sensors/process/decode';
import {
  type BenchResult,
  type ChildMessage,
  cpuS,
  forkChild,
  int,
  machineLoad,
  median,
  nextMessage,
  note,
  nowS,
  rate,
  reap,
  rows,
  section,
  sleep,
  toParent,
} from './common';

const NAME = 'fanout';

export interface FanoutOptions {
  subscribers?: number;
  rate?: number;
  seconds?: number;
  batchMs?: number;
  /** Subscribers' HTTP/2 receive window; default TETRAHUB_FANOUT_CLIENT_WINDOW or grpc-js's 64 KiB. */
  clientWindow?: number;
}

export interface ServerConfig {
  rate: number;
  seconds: number;
  batchMs: number;
  subscribers: number;
  /** The Hubble server's directWrites option. */
  directWrites: boolean;
  /** Subscribers' HTTP/2 receive window (grpc-node.flow_control_window); 0: grpc-js default (64 KiB). */
  clientWindow: number;
}

type WritePath = 'direct' | 'grpc-js';

interface SubStat {
  delivered: number;
  dropped: number;
  queued: number;
  /** From the server's streamStats(): write path taken, messages written, transport writes. */
  direct: boolean;
  messages: number;
  writes: number;
}

interface PublishedMsg extends ChildMessage {
  type: 'published';
  published: number;
  wallSeconds: number;
  cpuSeconds: number;
  cpuUser: number;
  cpuSystem: number;
  maxTickLateMs: number;
  p99TickLateMs: number;
  cacheResets: number;
  /** Time in the publisher itself (decode + cache + bus.publish incl. history), s. */
  publishSeconds: number;
  maxPublishMs: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

interface DrainMsg extends ChildMessage {
  type: 'drain';
  subs: SubStat[];
  cpuSecondsTotal: number;
  wallSecondsTotal: number;
  busDrops: number;
}

interface EncoderMsg extends ChildMessage {
  type: 'encoder';
  events: number;
  subscribers: number;
  sharedEventsPerS: number;
  perSubscriberEventsPerS: number;
  usBuildFlow: number;
  usStruct: number;
  usEncodeResponse: number;
  bytesPerFlow: number;
}

interface SubFinal extends ChildMessage {
  type: 'final';
  id: number;
  flows: number;
  lost: number;
  lostMessages: number;
  verified: number;
  badFlows: number;
  firstAt: number;
  lastAt: number;
  latencyMs: { p50: number; p99: number; max: number };
  cpuSeconds: number;
  /** CPU from the stream's start (response headers) to the end: the cost of receiving. */
  cpuSecondsStreaming: number;
  error?: string;
}

interface Progress extends ChildMessage {
  type: 'progress';
  id: number;
  flows: number;
  lost: number;
}

const GOOGLE_PROTOBUF_SKIP =
  'google-protobuf comparison skipped: it needs protoc-generated JS. grpc-tools (node-pre-gyp) and protoc-gen-js download their protoc binaries from outside the npm registry at install time, which this machine cannot reach, and Debian 12 protoc (3.21) no longer ships the JS generator. The encoder split below shows how much of the per-event cost a faster codec could touch.';

export interface Scenario {
  cfg: ServerConfig;
  pub: PublishedMsg;
  drain: DrainMsg;
  finals: SubFinal[];
  enc?: EncoderMsg;
  /** Every subscriber got every event, no loss notice, no error. */
  complete: boolean;
}

/** One server + N subscribers run; optionally the encoder measurement in the same server process. */
export async function scenario(cfg: ServerConfig, withEncoder: boolean): Promise<Scenario> {
  const server = forkChild('fanout-server', [JSON.stringify(cfg)]);
  const subs: ChildProcess[] = [];
  try {
    const ready = await nextMessage<ChildMessage & { address: string }>(server, 'ready', 30_000);
    for (let i = 0; i < cfg.subscribers; i++) subs.push(forkChild('fanout-sub', [ready.address, String(i), String(cfg.clientWindow)]));
    await Promise.all(subs.map((s) => nextMessage(s, 'subscribed', 30_000)));
    const progress = new Map<number, Progress>();
    for (const s of subs) s.on('message', (m: ChildMessage) => m.type === 'progress' && progress.set((m as Progress).id, m as Progress));

    server.send({ type: 'start' });
    const pub = await nextMessage<PublishedMsg>(server, 'published', (cfg.seconds + 60) * 1000);
    // Wait until every subscriber has everything (or stops making progress).
    const deadline = Date.now() + 20_000;
    let lastTotal = -1;
    let stillSince = Date.now();
    for (;;) {
      await sleep(250);
      const ps = [...progress.values()];
      const total = ps.reduce((a, p) => a + p.flows + p.lost, 0);
      if (ps.length === subs.length && ps.every((p) => p.flows + p.lost >= pub.published)) break;
      if (total !== lastTotal) {
        lastTotal = total;
        stillSince = Date.now();
      } else if (Date.now() - stillSince > 2000) break;
      if (Date.now() > deadline) break;
    }
    server.send({ type: 'drain' });
    const drain = await nextMessage<DrainMsg>(server, 'drain', 10_000);
    const finals = await Promise.all(
      subs.map((s) => {
        const p = nextMessage<SubFinal>(s, 'final', 10_000);
        s.send({ type: 'finish' });
        return p;
      }),
    );
    let enc: EncoderMsg | undefined;
    if (withEncoder) {
      server.send({ type: 'encoder' });
      enc = await nextMessage<EncoderMsg>(server, 'encoder', 60_000);
    }
    const complete = finals.every((f) => f.lost === 0 && f.flows >= pub.published && !f.error);
    return { cfg, pub, drain, finals, enc, complete };
  } finally {
    await Promise.all(subs.map((s) => reap(s)));
    if (server.connected) server.send({ type: 'exit' });
    await sleep(100);
    await reap(server);
  }
}

const RAW_DEF: grpc.ServiceDefinition = {
  S: {
    path: '/tetrahub.bench.Raw/S',
    requestStream: false,
    responseStream: true,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
};

/**
 * Same-run baseline of the stream writes: a bare grpc-js server streaming one
 * pre-encoded message of `bytes` bytes, `count` times to each of N client
 * processes over a unix socket. Server CPU per message. 'grpc-js': call.write()
 * until false, wait for 'drain'; 'direct': GrpcStreamWriter rounds of up to
 * 256 KiB (what the Hubble server does), waiting for 'drain' when blocked.
 */
async function rawGrpcBaseline(clients: number, count: number, bytes: number, writePath: WritePath): Promise<{ usCpuPerMessage: number; messagesPerS: number; writes: number }> {
  const { GrpcStreamWriter } = await import('../src/api/grpc-direct');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tetrahub-bench-raw-'));
  const address = `unix://${dir}/raw.sock`;
  const server = new grpc.Server();
  const msg = Buffer.alloc(bytes, 7);
  let started = 0;
  let writes = 0;
  let t0 = 0;
  let c0 = process.cpuUsage();
  const done: Promise<void>[] = [];
  const allStarted = new Promise<void>((resolveAll) => {
    server.addService(RAW_DEF, {
      S: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        done.push(
          (async () => {
            call.sendMetadata(new grpc.Metadata());
            if (++started === clients) resolveAll();
            await allStarted;
            if (writePath === 'grpc-js') {
              for (let i = 0; i < count; i++) if (!call.write(msg)) await new Promise((r) => call.once('drain', r));
              writes += count;
              call.end();
              return;
            }
            let wake: (() => void) | undefined;
            const w = new GrpcStreamWriter(call, { onDrain: () => wake?.() });
            if (!w.direct) throw new Error('direct write path not available');
            for (let i = 0; i < count; ) {
              while (i < count && !w.full) (w.add(msg), i++);
              w.flush();
              while (w.blocked) await new Promise<void>((r) => (wake = r));
            }
            writes += w.writes;
            w.end();
          })(),
        );
      },
    });
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  const kids = Array.from({ length: clients }, () => forkChild('grpc-raw-client', [address, String(count)]));
  try {
    await allStarted;
    t0 = nowS();
    c0 = process.cpuUsage();
    await Promise.all(kids.map((k) => nextMessage(k, 'done', 120_000)));
    const c = process.cpuUsage(c0);
    const wall = nowS() - t0;
    await Promise.all(done);
    return { usCpuPerMessage: (c.user + c.system) / (clients * count), messagesPerS: (clients * count) / wall, writes };
  } finally {
    await Promise.all(kids.map((k) => reap(k)));
    server.forceShutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Child entry: `node dist/bench/child.js grpc-raw-client ADDRESS COUNT`. */
export async function rawClientChild(args: string[]): Promise<void> {
  const [address, countText] = args;
  const count = Number(countText);
  const Client = grpc.makeGenericClientConstructor(RAW_DEF, 'Raw');
  const client = new Client(address, grpc.credentials.createInsecure());
  const call = (client as unknown as { S(req: Buffer): grpc.ClientReadableStream<Buffer> }).S(Buffer.alloc(1));
  let n = 0;
  call.on('data', () => {
    if (++n === count) toParent({ type: 'done', n });
  });
  call.on('error', (e: Error) => toParent({ type: 'error', message: e.message }));
}

function pathOf(cfg: ServerConfig): WritePath {
  return cfg.directWrites ? 'direct' : 'grpc-js';
}

/** Server CPU figures of one scenario; encUs: one encoding (from the encoder measurement). */
interface CpuFigures {
  /** All server CPU from the start of publishing to the end of delivery, per published event. */
  usPerEvent: number;
  /** Same, per delivered flow (stream write). */
  usPerDelivered: number;
  /** What is left per stream write after publishing and one encoding per delivered event (GC included). */
  usPerStreamWrite: number;
  delivered: number;
  messagesPerTransportWrite: number;
  minReceivedFraction: number;
  lost: number;
}

export function cpuFigures(sc: Scenario, encUs: number): CpuFigures {
  const delivered = sc.drain.subs.reduce((a, x) => a + x.delivered, 0);
  // Events encoded at least once: at least the most any one stream delivered.
  const distinct = Math.max(0, ...sc.drain.subs.map((x) => x.delivered));
  const cpu = sc.drain.cpuSecondsTotal;
  const messages = sc.drain.subs.reduce((a, x) => a + x.messages, 0);
  const writes = sc.drain.subs.reduce((a, x) => a + x.writes, 0);
  return {
    usPerEvent: (cpu * 1e6) / sc.pub.published,
    usPerDelivered: (cpu * 1e6) / Math.max(1, delivered),
    usPerStreamWrite: ((cpu - sc.pub.publishSeconds - (distinct * encUs) / 1e6) * 1e6) / Math.max(1, delivered),
    delivered,
    messagesPerTransportWrite: messages / Math.max(1, writes),
    minReceivedFraction: Math.min(...sc.finals.map((f) => f.flows)) / sc.pub.published,
    lost: sc.finals.reduce((a, f) => a + f.lost, 0),
  };
}

export function printScenario(sc: Scenario): void {
  const { cfg, pub, drain, finals } = sc;
  const window = pub.wallSeconds;
  rows([
    ['published', `${int(pub.published)} exec events in ${window.toFixed(2)} s = ${rate(pub.published / window, ' ev/s')} (batches every ${cfg.batchMs} ms; publisher tick late p99 ${pub.p99TickLateMs.toFixed(1)} ms, max ${pub.maxTickLateMs.toFixed(0)} ms)`],
    ['server event loop', `publisher (decode + cache + bus.publish with ${cfg.subscribers} stream subscriptions and the history) ${((pub.publishSeconds * 1e6) / pub.published).toFixed(1)} µs CPU/event = ${((pub.publishSeconds / window) * 100).toFixed(0)} % of a core; event-loop delay p99 ${pub.loopDelayP99Ms.toFixed(0)} ms, max ${pub.loopDelayMaxMs.toFixed(0)} ms`],
    ['machine', machineLoad()],
  ]);
  for (const f of finals) {
    const span = Math.max(1e-3, (f.lastAt - f.firstAt) / 1000);
    rows([
      [
        `subscriber ${f.id + 1}`,
        `received ${int(f.flows)} (${((f.flows / pub.published) * 100).toFixed(2)} %), lost_events ${int(f.lost)} in ${f.lostMessages} notices, ${rate(f.flows / span, ' flows/s')}; latency p50 ${f.latencyMs.p50.toFixed(0)} ms, p99 ${f.latencyMs.p99.toFixed(0)} ms, max ${f.latencyMs.max.toFixed(0)} ms; CPU ${f.cpuSeconds.toFixed(2)} s (${((f.cpuSecondsStreaming * 1e6) / Math.max(1, f.flows + f.lostMessages)).toFixed(1)} µs per message received)${f.badFlows ? `; ${f.badFlows} flows failed the full-decode check` : ''}${f.error ? `; error: ${f.error}` : ''}`,
      ],
    ]);
  }
  const delivered = drain.subs.reduce((a, x) => a + x.delivered, 0);
  rows([
    ['server CPU', `${((pub.cpuSeconds / window) * 100).toFixed(0)} % of one core while publishing (user ${((pub.cpuUser / window) * 100).toFixed(0)} %, sys ${((pub.cpuSystem / window) * 100).toFixed(0)} %); ${drain.cpuSecondsTotal.toFixed(2)} s CPU in all for ${int(pub.published)} events and ${int(delivered)} stream writes`],
    [
      'server streams',
      drain.subs
        .map((x, i) => `#${i + 1} ${x.direct ? 'direct' : 'grpc-js'} delivered ${int(x.delivered)}, dropped ${int(x.dropped)}, ${int(x.writes)} transport writes`)
        .join('; '),
    ],
    ['result', sc.complete ? 'every subscriber received every event, no lost_events' : 'events were LOST (lost_events reported to the clients)'],
  ]);
}

export async function run(opts: FanoutOptions = {}): Promise<BenchResult> {
  const base = {
    rate: opts.rate ?? 50_000,
    seconds: opts.seconds ?? 5,
    batchMs: opts.batchMs ?? 10,
    subscribers: opts.subscribers ?? 4,
    clientWindow: opts.clientWindow ?? Number(process.env.TETRAHUB_FANOUT_CLIENT_WINDOW ?? 0),
  };
  const cfgFor = (p: WritePath, over: Partial<ServerConfig> = {}): ServerConfig => ({ ...base, directWrites: p === 'direct', ...over });
  const low = { rate: Math.round(base.rate / 10), seconds: 3 };
  section(`fanout: ${base.subscribers} GetFlows follow subscribers at ${int(base.rate)} events/s for ${base.seconds} s, direct HTTP/2 writes vs grpc-js writes`);
  note(`subscribers: grpc-js clients, HTTP/2 receive window ${base.clientWindow > 0 ? `${int(base.clientWindow)} bytes` : '64 KiB (grpc-js default; TETRAHUB_FANOUT_CLIENT_WINDOW=bytes changes it)'}`);
  const started = nowS();
  try {
    // grpc-js path first (the same-run baseline), then the default direct path
    // with the encoder measured in the same server process afterwards.
    console.log('  write path grpc-js (directWrites: false: call.write() per message):');
    const viaGrpc = await scenario(cfgFor('grpc-js'), false);
    printScenario(viaGrpc);
    console.log('  write path direct (the default: one HTTP/2 write per stream round):');
    const main = await scenario(cfgFor('direct'), true);
    printScenario(main);
    note(
      'subscribers parse the GetFlowsResponse envelope (flow / lost_events / time) and fully decode 1 flow in 64 to check it; the server side is the agent\'s real code. ' +
        'Event source: exec records through decodeBatch → ProcessCache.apply (the cache is renewed every 50,000 events so that its eviction cost, reported by the memory benchmark, does not distort these figures).',
    );

    const enc = main.enc!;
    const gain = enc.sharedEventsPerS / enc.perSubscriberEventsPerS;
    const encUs = enc.usBuildFlow + enc.usStruct + enc.usEncodeResponse;
    const fig: Record<WritePath, CpuFigures> = { 'grpc-js': cpuFigures(viaGrpc, encUs), direct: cpuFigures(main, encUs) };
    console.log('  encoder (same server process, after the direct-path stream run):');
    rows([
      ['encode once, share', `${rate(enc.sharedEventsPerS, ' events per CPU second')} to ${enc.subscribers} subscribers (${rate(enc.sharedEventsPerS * enc.subscribers, ' flows/s')} delivered)`],
      ['encode per subscriber', `${rate(enc.perSubscriberEventsPerS, ' events per CPU second')} to ${enc.subscribers} subscribers (${rate(enc.perSubscriberEventsPerS * enc.subscribers, ' flows/s')} delivered)`],
      ['gain of sharing', `${gain.toFixed(2)}×`],
      ['one encoding', `${encUs.toFixed(1)} µs = Flow object ${enc.usBuildFlow.toFixed(1)} + Tetragon JSON → Struct ${enc.usStruct.toFixed(1)} + GetFlowsResponse encode ${enc.usEncodeResponse.toFixed(1)} µs (${int(enc.bytesPerFlow)} bytes/flow); ${int(base.rate)} ev/s would need ${((encUs * base.rate) / 1e4).toFixed(0)} % of a core for encoding alone`],
    ]);
    console.log('  write paths compared (server CPU, same run):');
    const line = (p: WritePath, sc: Scenario): [string, string] => {
      const f = fig[p];
      return [
        p,
        `min received ${(f.minReceivedFraction * 100).toFixed(1)} %, ${int(f.lost)} lost; ${int(f.delivered)} stream writes; ${f.usPerEvent.toFixed(0)} µs CPU per published event, ${f.usPerDelivered.toFixed(1)} µs per delivered flow; ` +
          `publish ${((sc.pub.publishSeconds * 1e6) / sc.pub.published).toFixed(1)} µs/event + encode ${encUs.toFixed(1)} µs/encoded event + ≈${f.usPerStreamWrite.toFixed(1)} µs per stream write (residual: the rest, GC included; inherits the encoder figure's noise); ${f.messagesPerTransportWrite.toFixed(1)} messages per transport write`,
      ];
    };
    rows([line('grpc-js', viaGrpc), line('direct', main)]);
    const bare: Partial<Record<WritePath, { usCpuPerMessage: number; messagesPerS: number; writes: number }>> = {};
    for (const p of ['grpc-js', 'direct'] as WritePath[]) {
      try {
        const r = await rawGrpcBaseline(base.subscribers, 25_000, Math.round(enc.bytesPerFlow), p);
        bare[p] = r;
        rows([
          [
            `bare ${p} baseline`,
            `${r.usCpuPerMessage.toFixed(1)} µs server CPU per message, ${rate(r.messagesPerS, ' msg/s')}, ${((base.subscribers * 25_000) / Math.max(1, r.writes)).toFixed(1)} messages per transport write (${base.subscribers} streams of one pre-encoded ${int(enc.bytesPerFlow)}-byte message, no agent code)`,
          ],
        ]);
      } catch (e) {
        note(`bare ${p} baseline failed: ${(e as Error).message}`);
      }
    }
    note(GOOGLE_PROTOBUF_SKIP);

    const lowSc: Partial<Record<WritePath, Scenario>> = {};
    for (const p of ['grpc-js', 'direct'] as WritePath[]) {
      console.log(`  headroom, ${p} writes: the same at ${int(low.rate)} events/s for ${low.seconds} s`);
      try {
        lowSc[p] = await scenario(cfgFor(p, low), false);
        printScenario(lowSc[p]!);
      } catch (e) {
        note(`headroom run (${p}) failed: ${(e as Error).message}`);
      }
    }

    // The cleanest same-run comparison: at the headroom rate both paths deliver
    // every event, so the server did the same work apart from the writes.
    let lowCmp: { usPerEvent: Record<WritePath, number>; usSavedPerStreamWrite: number } | undefined;
    const lg = lowSc['grpc-js'];
    const ld = lowSc.direct;
    if (lg && ld && lg.complete && ld.complete) {
      const per = (sc: Scenario) => (sc.drain.cpuSecondsTotal * 1e6) / sc.pub.published;
      const writes = ld.drain.subs.reduce((a, x) => a + x.delivered, 0);
      lowCmp = {
        usPerEvent: { 'grpc-js': per(lg), direct: per(ld) },
        usSavedPerStreamWrite: ((lg.drain.cpuSecondsTotal - ld.drain.cpuSecondsTotal) * 1e6) / Math.max(1, writes),
      };
      rows([
        [
          `at ${int(low.rate)} ev/s`,
          `everything delivered on both paths: server CPU ${lowCmp.usPerEvent['grpc-js'].toFixed(0)} µs (grpc-js) vs ${lowCmp.usPerEvent.direct.toFixed(0)} µs (direct) per event incl. its ${base.subscribers} stream writes → ${lowCmp.usSavedPerStreamWrite.toFixed(1)} µs saved per stream write; latency p50 ${median(lg.finals.map((f) => f.latencyMs.p50)).toFixed(0)} vs ${median(ld.finals.map((f) => f.latencyMs.p50)).toFixed(0)} ms`,
        ],
      ]);
    }

    const window = main.pub.wallSeconds;
    const met = main.complete && main.pub.published / window >= base.rate * 0.97;
    const lowText = (p: WritePath) => (lowSc[p] ? (lowSc[p]!.complete ? '0 lost' : 'lost') : 'n/a');
    rows([
      [
        'target',
        `${base.subscribers} subscribers at ${int(base.rate)} ev/s, nothing lost → ${met ? 'MET' : 'NOT MET'} (direct writes; grpc-js writes: min ${(fig['grpc-js'].minReceivedFraction * 100).toFixed(1)} % received); at ${int(low.rate)} ev/s: direct ${lowText('direct')}, grpc-js ${lowText('grpc-js')}`,
      ],
    ]);
    return {
      name: NAME,
      status: 'ok',
      value: `min ${(fig.direct.minReceivedFraction * 100).toFixed(1)} % received, ${fig.direct.usPerDelivered.toFixed(0)} µs CPU/flow`,
      baseline: `grpc-js writes: ${(fig['grpc-js'].minReceivedFraction * 100).toFixed(1)} %, ${fig['grpc-js'].usPerDelivered.toFixed(0)} µs CPU/flow`,
      ratio: `${int(fig.direct.lost)} lost; ${low.rate / 1000}k/s: ${lowText('direct')}${lowCmp ? `, −${lowCmp.usSavedPerStreamWrite.toFixed(0)} µs/stream write` : ''}`,
      target: `${base.subscribers} subs @ ${int(base.rate / 1000)}k/s, 0 lost`,
      met,
      seconds: nowS() - started,
      figures: {
        main: { ...main, enc: undefined },
        grpcJsWrites: viaGrpc,
        cpu: fig,
        headroom: lowSc,
        headroomComparison: lowCmp ?? null,
        encoder: enc,
        sharingGain: gain,
        usPerStreamWrite: fig.direct.usPerStreamWrite,
        bare,
        googleProtobuf: GOOGLE_PROTOBUF_SKIP,
      },
    };
  } catch (e) {
    return { name: NAME, status: 'failed', reason: (e as Error).message, seconds: nowS() - started, figures: {} };
  }
}

// ------------------------------------------------------------- server child

function statusStub(nodeName: string): StatusProvider {
  return {
    snapshot: (): StatusSnapshot => ({ version: 'bench', nodeName, startTime: { sec: 0, nsec: 0 }, uptimeNs: 0, sensors: [], features: {}, notes: [], counters: {}, listeners: {} }),
  };
}

/** Child entry: `node dist/bench/child.js fanout-server '{"rate":…}'`. */
export async function serverChild(args: string[]): Promise<void> {
  const cfg = JSON.parse(args[0]) as ServerConfig;
  const { EventBus } = await import('../src/bus/bus');
  const { ProcessCache } = await import('../src/enrich/process/cache');
  const { BootClock } = await import('../src/enrich/process/clock');
  const { startHubbleServer } = await import('../src/api/hubble/server');
  const { flowOf, fullFlowOf, flowResponseBytes } = await import('../src/api/hubble/encode');
  const { decodeBatch } = await import('../src/sensors/process/decode');
  const { ExecSource, ReusableBatch } = await import('./synth');

  const nodeName = 'bench-node';
  // boottime = hrtime, realtime consistent with Date.now(): event times are publish times.
  const t0 = process.hrtime.bigint();
  const r0 = BigInt(Date.now()) * 1_000_000n;
  const clock = new BootClock(() => {
    const b = process.hrtime.bigint();
    return { boottime: b, realtime: r0 + (b - t0) };
  });
  const bus = new EventBus();
  const newCache = () => new ProcessCache({ nodeName, clock, capacity: 65_536 });
  let cache = newCache();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tetrahub-bench-fanout-'));
  const address = `unix://${dir}/hubble.sock`;
  const hubble = await startHubbleServer({
    addresses: [address],
    bus,
    status: statusStub(nodeName),
    version: 'v0.0.0-bench',
    nodeName,
    historySize: 4095,
    queueLimit: 10_000,
    directWrites: cfg.directWrites,
  });

  const BATCH = 512;
  const src = new ExecSource({ seed: 11 });
  const templates = Array.from({ length: 8 }, () => new ReusableBatch(src, BATCH));
  const records: ProcessRecord[] = [];
  const events: RuntimeEvent[] = [];
  let nextPid = 100_000;
  let prevPid = 1;
  let prevKtime = 0n;
  let published = 0;
  let sinceReset = 0;
  let cacheResets = 0;
  let tpl = 0;
  const publish = (n: number) => {
    const b = templates[tpl++ % templates.length];
    const now = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const kt = now + BigInt(i);
      b.stamp(i, nextPid, kt, prevPid, prevKtime);
      prevPid = nextPid++;
      prevKtime = kt;
      if (nextPid > 4_000_000) nextPid = 100_000;
    }
    records.length = 0;
    decodeBatch(b.buf, n, records);
    events.length = 0;
    cache.apply(records, events);
    bus.publish(events.slice() as BusItem[]);
    published += n;
    sinceReset += n;
    if (sinceReset >= 50_000) {
      cache = newCache();
      sinceReset = 0;
      cacheResets++;
    }
  };

  const streams = () => bus.subscribers().filter((s) => s.name === 'hubble-getflows');
  let cpuStart = process.cpuUsage();
  let wallStart = nowS();

  process.on('message', (m: ChildMessage) => {
    void (async () => {
      if (m.type === 'start') {
        const deadline = Date.now() + 10_000;
        while (streams().length < cfg.subscribers && Date.now() < deadline) await sleep(10);
        cpuStart = process.cpuUsage();
        wallStart = nowS();
        const late: number[] = [];
        const loopDelay = monitorEventLoopDelay({ resolution: 10 });
        loopDelay.enable();
        let publishS = 0;
        let maxPublishS = 0;
        await new Promise<void>((resolve) => {
          const end = wallStart + cfg.seconds;
          let due = wallStart;
          const tick = () => {
            const t = nowS();
            late.push((t - due) * 1000);
            const target = Math.floor(Math.min(t - wallStart, cfg.seconds) * cfg.rate);
            const p0 = cpuS();
            while (published < target) publish(Math.min(BATCH, target - published));
            const p1 = cpuS() - p0;
            publishS += p1;
            if (p1 > maxPublishS) maxPublishS = p1;
            if (t >= end) return resolve();
            due += cfg.batchMs / 1000;
            setTimeout(tick, Math.max(0, (due - nowS()) * 1000));
          };
          setTimeout(tick, cfg.batchMs);
          due += cfg.batchMs / 1000;
        });
        const cpu = process.cpuUsage(cpuStart);
        loopDelay.disable();
        const sorted = late.sort((a, b) => a - b);
        const msg: PublishedMsg = {
          type: 'published',
          published,
          wallSeconds: nowS() - wallStart,
          cpuSeconds: (cpu.user + cpu.system) / 1e6,
          cpuUser: cpu.user / 1e6,
          cpuSystem: cpu.system / 1e6,
          maxTickLateMs: sorted[sorted.length - 1] ?? 0,
          p99TickLateMs: sorted[Math.floor(sorted.length * 0.99)] ?? 0,
          cacheResets,
          publishSeconds: publishS,
          maxPublishMs: maxPublishS * 1000,
          loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
          loopDelayMaxMs: loopDelay.max / 1e6,
        };
        toParent(msg);
      } else if (m.type === 'drain') {
        const cpu = process.cpuUsage(cpuStart);
        const msg: DrainMsg = {
          type: 'drain',
          subs: streams().map((s, i) => {
            // Streams are listed in subscription order by both.
            const st = (hubble.streamStats?.() ?? []).filter((x) => x.method === 'GetFlows')[i];
            return { delivered: s.delivered, dropped: s.dropped, queued: s.size, direct: st?.direct ?? false, messages: st?.messages ?? 0, writes: st?.writes ?? 0 };
          }),
          cpuSecondsTotal: (cpu.user + cpu.system) / 1e6,
          wallSecondsTotal: nowS() - wallStart,
          busDrops: bus.subscriberDrops,
        };
        toParent(msg);
      } else if (m.type === 'encoder') {
        await hubble.close();
        toParent(encoderBench(cfg.subscribers));
      } else if (m.type === 'exit') {
        process.exit(0);
      }
    })().catch((e: unknown) => toParent({ type: 'error', message: (e as Error).stack ?? String(e) }));
  });

  /**
   * The encoder, measured the way the server meets events: batches of 512 fresh
   * events (made like the publisher makes them, untimed), each batch encoded
   * right after it was made. "Shared": flowResponseBytes once per event, the
   * bytes reused by every subscriber (what the server does). "Per subscriber":
   * a full encoding for each subscriber (a copy of the event, so nothing cached).
   */
  function encoderBench(nsubs: number): EncoderMsg {
    const BATCHES = 12;
    const src2 = new ExecSource({ seed: 99, firstPid: 5_000_000 });
    const c = newCache();
    const make = (): RuntimeEvent[] => {
      const recs: ProcessRecord[] = [];
      decodeBatch(src2.batch(BATCH), BATCH, recs);
      const out: RuntimeEvent[] = [];
      c.apply(recs, out);
      return out;
    };
    let sink = 0;
    // CPU time, not wall: the machine is shared.
    const timed = (evs: RuntimeEvent[], fn: (ev: RuntimeEvent) => void): number => {
      const a0 = cpuS();
      for (const ev of evs) fn(ev);
      return cpuS() - a0;
    };
    const shared: number[] = [];
    const perSub: number[] = [];
    for (let round = 0; round < 3; round++) {
      let tShared = 0;
      let tPer = 0;
      for (let k = 0; k < BATCHES; k++) {
        tShared += timed(make(), (ev) => {
          const bytes = flowResponseBytes(ev, undefined, nodeName);
          for (let s = 0; s < nsubs; s++) sink += bytes.length;
        });
        tPer += timed(make(), (ev) => {
          for (let s = 0; s < nsubs; s++) sink += flowResponseBytes({ ...ev, wire: new Map() }, undefined, nodeName).length;
        });
      }
      shared.push((BATCHES * BATCH) / tShared);
      perSub.push((BATCHES * BATCH) / tPer);
    }
    // Where one encoding's time goes: per batch, each step with the previous ones cached.
    let tFlow = 0;
    let tStruct = 0;
    let tEncode = 0;
    let bytes = 0;
    for (let k = 0; k < BATCHES; k++) {
      const evs = make();
      tFlow += timed(evs, (ev) => (sink += flowOf(ev, nodeName).Summary?.length ?? 0));
      tStruct += timed(evs, (ev) => (sink += fullFlowOf(ev, nodeName).extensions?.value?.length ?? 0));
      tEncode += timed(evs, (ev) => (bytes += flowResponseBytes(ev, undefined, nodeName).length));
    }
    if (sink === -1) console.log('');
    const n = BATCHES * BATCH;
    return {
      type: 'encoder',
      events: n,
      subscribers: nsubs,
      sharedEventsPerS: median(shared),
      perSubscriberEventsPerS: median(perSub),
      usBuildFlow: (tFlow * 1e6) / n,
      usStruct: (tStruct * 1e6) / n,
      usEncodeResponse: (tEncode * 1e6) / n,
      bytesPerFlow: bytes / n,
    };
  }

  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  toParent({ type: 'ready', address });
}

// --------------------------------------------------------- subscriber child

/** Child entry: `node dist/bench/child.js fanout-sub ADDRESS ID`. */
export async function subscriberChild(args: string[]): Promise<void> {
  const [address, idText, windowText] = args;
  const id = Number(idText);
  const window = Number(windowText ?? 0);
  const { protos } = await import('../src/api/hubble/proto');
  const P = protos();
  const Timestamp = P.root.lookupType('google.protobuf.Timestamp');
  const def: grpc.ServiceDefinition = {
    GetFlows: {
      path: '/observer.Observer/GetFlows',
      requestStream: false,
      responseStream: true,
      requestSerialize: (v: Record<string, unknown>) => Buffer.from(P.GetFlowsRequest.encode(P.GetFlowsRequest.fromObject(v)).finish()),
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  };
  const Client = grpc.makeGenericClientConstructor(def, 'Observer');
  const client = new Client(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    ...(window > 0 ? { 'grpc-node.flow_control_window': window } : {}),
  });
  const call = (client as unknown as { GetFlows(req: object): grpc.ClientReadableStream<Buffer> }).GetFlows({ follow: true });

  let flows = 0;
  let lost = 0;
  let lostMessages = 0;
  let verified = 0;
  let badFlows = 0;
  let firstAt = 0;
  let lastAt = 0;
  let error: string | undefined;
  const lat: number[] = [];
  const num = (v: unknown): number => (typeof v === 'number' ? v : v && typeof (v as { toNumber?: () => number }).toNumber === 'function' ? (v as { toNumber(): number }).toNumber() : Number(v));

  let cpuAtStart = process.cpuUsage();
  call.on('metadata', () => {
    cpuAtStart = process.cpuUsage();
    toParent({ type: 'subscribed', id });
  });
  call.on('data', (buf: Buffer) => {
    const now = Date.now();
    if (!firstAt) firstAt = now;
    lastAt = now;
    const r = protobuf.Reader.create(buf);
    let isFlow = false;
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      if (field === 1) {
        isFlow = true;
        r.skipType(tag & 7);
      } else if (field === 3) {
        const len = r.uint32();
        const le = P.LostEvent.decode(r, len) as unknown as { num_events_lost?: unknown };
        lost += num(le.num_events_lost ?? 0);
        lostMessages++;
      } else if (field === 1001) {
        const len = r.uint32();
        const ts = Timestamp.decode(r, len) as unknown as { seconds?: unknown; nanos?: number };
        lat.push(now - (num(ts.seconds ?? 0) * 1000 + (ts.nanos ?? 0) / 1e6));
      } else r.skipType(tag & 7);
    }
    if (isFlow) {
      flows++;
      if ((flows & 63) === 0) {
        const m = P.GetFlowsResponse.decode(buf) as unknown as { flow?: { Summary?: string } };
        if (m.flow?.Summary?.startsWith('exec ')) verified++;
        else badFlows++;
      }
    }
  });
  call.on('error', (e: grpc.ServiceError) => {
    if (e.code !== grpc.status.CANCELLED) error = e.message;
  });
  const timer = setInterval(() => toParent({ type: 'progress', id, flows, lost }), 200);

  process.on('message', (m: ChildMessage) => {
    if (m.type !== 'finish') return;
    clearInterval(timer);
    const sorted = lat.sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
    const cpu = process.cpuUsage();
    const streaming = process.cpuUsage(cpuAtStart);
    const fin: SubFinal = {
      type: 'final',
      id,
      flows,
      lost,
      lostMessages,
      verified,
      badFlows,
      firstAt,
      lastAt,
      latencyMs: { p50: q(0.5), p99: q(0.99), max: sorted[sorted.length - 1] ?? NaN },
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      cpuSecondsStreaming: (streaming.user + streaming.system) / 1e6,
      error,
    };
    toParent(fin);
    call.cancel();
    client.close();
    setTimeout(() => process.exit(0), 100);
  });
}
