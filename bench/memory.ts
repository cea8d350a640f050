// Memory: RSS of the agent's own data structures holding 50,000 live processes.
//
// 50,000 real processes are not practical on this machine, so a separate
// node process (--expose-gc) builds the structures the agent builds — the
// EventBus, the ProcessCache (capacity 65,536), the Hubble server (history
// 4,095) and the Tetragon server on temporary unix sockets — and feeds 50,000
// synthetic but realistic exec records through the sensor's own path: encoded
// in the kernel record layout, framed like ring batches, decodeBatch →
// cache.apply → bus.publish. It reports RSS and heap after each step (GC
// forced), then after encoding the Hubble history as a `--last 4095` reader
// would (the wire bytes are cached on the events).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AGENT_NODE_FLAGS } from '../src/agent/node-flags';
import type { StatusProvider, StatusSnapshot } from '../src/agent/status';
import {
  type BenchResult,
  type ChildMessage,
  cpuS,
  forkChild,
  int,
  mb,
  nextMessage,
  nowS,
  reap,
  rows,
  section,
  toParent,
  note,
} from './common';

const NAME = 'memory';
const TARGET_MB = 150;

interface Mem {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

interface Step {
  step: string;
  mem: Mem;
}

interface MemoryReport extends ChildMessage {
  type: 'report';
  processes: number;
  steps: Step[];
  peakRss: number;
  cache: { size: number; live: number; capacity: number; evictions: number; misses: number };
  historySize: number;
  published: number;
  feedSeconds: number;
  /** The same feed once the cache is full (each exec evicts). */
  atCapacity: { execs: number; seconds: number; evictions: number };
  addonLoaded: boolean;
  /** Encoded bytes cached on the history's events (GetFlowsResponse + Struct), and the ArrayBuffers they keep alive. */
  encoded: { payload: number; backingBytes: number; backingBuffers: number };
}

export async function run(opts: { processes?: number } = {}): Promise<BenchResult> {
  const processes = opts.processes ?? 50_000;
  section(`memory: agent data structures with ${int(processes)} live processes`);
  const started = nowS();
  const child = forkChild('memory', [String(processes)], ['--expose-gc', ...AGENT_NODE_FLAGS]);
  try {
    const r = await nextMessage<MemoryReport>(child, 'report', 120_000);
    const at = (name: string) => r.steps.find((s) => s.step === name)?.mem;
    const base = at('modules loaded');
    const fed = at(`${processes} execs fed`);
    const enc = at('history encoded');
    rows(
      r.steps.map((s) => [
        s.step,
        `RSS ${mb(s.mem.rss).padStart(9)}   heap used ${mb(s.mem.heapUsed).padStart(9)} of ${mb(s.mem.heapTotal).padStart(9)}   external ${mb(s.mem.external)}`,
      ]),
    );
    const perProc = fed && at('servers started') ? (fed.heapUsed - at('servers started')!.heapUsed) / processes : NaN;
    rows([
      ['process cache', `${int(r.cache.size)} images (${int(r.cache.live)} live) of capacity ${int(r.cache.capacity)}; ${int(r.cache.evictions)} evicted; ${int(r.cache.misses)} parent misses`],
      ['bus / history', `${int(r.published)} events published; Hubble history holds ${int(r.historySize)}`],
      ['heap per process', `${(perProc / 1024).toFixed(2)} KiB (heap growth / ${int(processes)})`],
      [
        'cached wire bytes',
        `${mb(r.encoded.payload)} of encodings on ${int(r.historySize)} history events keep ${int(r.encoded.backingBuffers)} ArrayBuffers = ${mb(r.encoded.backingBytes)} alive (exact-size copies: pooled slices would pin whole slabs)`,
      ],
      ['peak RSS (VmHWM)', `${mb(r.peakRss)} (before the at-capacity throughput check below)`],
      ['decode+cache+bus', `${((r.feedSeconds * 1e6) / processes).toFixed(1)} µs CPU/exec while filling (${int(processes / r.feedSeconds)} execs per CPU second); ${((r.atCapacity.seconds * 1e6) / r.atCapacity.execs).toFixed(1)} µs CPU/exec once the cache is full and each exec evicts (${(r.atCapacity.seconds / r.atCapacity.execs / (r.feedSeconds / processes)).toFixed(1)}×)`],
    ]);
    note(`this is the agent's own data structures in one node process, fed ${int(processes)} synthetic exec records through decodeBatch → ProcessCache.apply → EventBus.publish, not ${int(processes)} real processes; no BPF objects loaded${r.addonLoaded ? ' (the libbpf addon is loaded for the clock)' : ''}`);
    const final = enc ?? fed;
    const met = final ? final.rss <= TARGET_MB * 1024 * 1024 : undefined;
    rows([['target', `RSS ≤ ${TARGET_MB} MB with ${int(processes)} processes cached → ${met ? 'MET' : 'NOT MET'} (${final ? mb(final.rss) : '?'})`]]);
    return {
      name: NAME,
      status: 'ok',
      value: final ? `RSS ${mb(final.rss)}` : 'n/a',
      baseline: base ? `${mb(base.rss)} with modules only` : undefined,
      ratio: final && base ? `+${mb(final.rss - base.rss)} for ${int(processes / 1000)}k procs` : undefined,
      target: `RSS ≤ ${TARGET_MB} MB`,
      met,
      seconds: nowS() - started,
      figures: {
        ...r,
        type: undefined,
        heapBytesPerProcess: perProc,
        usPerExecFilling: (r.feedSeconds * 1e6) / processes,
        usPerExecAtCapacity: (r.atCapacity.seconds * 1e6) / r.atCapacity.execs,
      },
    };
  } catch (e) {
    return { name: NAME, status: 'failed', reason: (e as Error).message, seconds: nowS() - started, figures: {} };
  } finally {
    await reap(child);
  }
}

// ---------------------------------------------------------------- child side

function mem(): Mem {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

function peakRss(): number {
  const s = fs.readFileSync('/proc/self/status', 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(s);
  return m ? Number(m[1]) * 1024 : NaN;
}

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  gc();
  gc();
}

/** Child entry: `node --expose-gc dist/bench/child.js memory N`. */
export async function memoryChild(args: string[]): Promise<void> {
  const processes = Number(args[0] ?? 50_000);
  // Everything the agent loads, loaded before the baseline.
  const { EventBus } = await import('../src/bus/bus');
  const { ProcessCache } = await import('../src/enrich/process/cache');
  const { BootClock } = await import('../src/enrich/process/clock');
  const { startHubbleServer } = await import('../src/api/hubble/server');
  const { flowResponseBytes } = await import('../src/api/hubble/encode');
  const { startTetragonServer } = await import('../src/api/tetragon/server');
  const { decodeBatch } = await import('../src/sensors/process/decode');
  const { ExecSource } = await import('./synth');
  type ProcessRecord = import('../src/sensors/process/decode').ProcessRecord;
  type RuntimeEvent = import('../src/model/event').RuntimeEvent;
  type BusItem = import('../src/model/event').BusItem;

  let sample: () => { boottime: bigint; realtime: bigint };
  let addonLoaded = false;
  try {
    const { loadNative } = await import('../src/kernel/native');
    const native = loadNative();
    sample = () => native.clocks();
    addonLoaded = true;
  } catch {
    const t0 = process.hrtime.bigint();
    const r0 = BigInt(Date.now()) * 1_000_000n;
    sample = () => {
      const b = process.hrtime.bigint();
      return { boottime: b, realtime: r0 + (b - t0) };
    };
  }

  const steps: Step[] = [];
  const mark = (step: string) => {
    collect();
    steps.push({ step, mem: mem() });
  };
  mark('modules loaded');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tetrahub-bench-mem-'));
  const nodeName = 'bench-node';
  const status: StatusProvider = {
    snapshot: (): StatusSnapshot => ({
      version: 'bench',
      nodeName,
      startTime: { sec: 0, nsec: 0 },
      uptimeNs: 0,
      sensors: [],
      features: {},
      notes: [],
      counters: {},
      listeners: {},
    }),
  };
  const bus = new EventBus();
  const clock = new BootClock(sample);
  const cache = new ProcessCache({ nodeName, clock, capacity: 65_536 });
  const hubble = await startHubbleServer({ addresses: [`unix://${dir}/hubble.sock`], bus, status, version: 'v0.0.0-bench', nodeName, historySize: 4095, queueLimit: 10_000 });
  const tetragon = await startTetragonServer({ addresses: [`unix://${dir}/tetragon.sock`], bus, status, version: 'v0.0.0-bench', queueLimit: 10_000 });
  mark('servers started');

  // Feed like the sensor's onBatch: a framed batch → records → events → bus.
  const boot = sample().boottime;
  const src = new ExecSource({ seed: 7, firstPid: 30_000, ktime: boot - BigInt(processes) * 60_000n });
  const records: ProcessRecord[] = [];
  const events: RuntimeEvent[] = [];
  const BATCH = 256;
  /** Feeds n execs; returns the CPU seconds spent in decode + cache + bus (not in making the records). */
  const feed = (count: number): number => {
    let cpu = 0;
    for (let done = 0; done < count; ) {
      const n = Math.min(BATCH, count - done);
      const batch = src.batch(n);
      const c0 = cpuS();
      records.length = 0;
      decodeBatch(batch, n, records);
      events.length = 0;
      cache.apply(records, events);
      bus.publish(events.slice() as BusItem[]);
      cpu += cpuS() - c0;
      done += n;
    }
    return cpu;
  };
  const feedSeconds = feed(processes);
  mark(`${processes} execs fed`);

  // A `hubble observe --last 4095` reader makes the server encode every
  // history entry once; the bytes stay cached on the events.
  const h = hubble.history;
  let payload = 0;
  const backing = new Set<ArrayBufferLike>();
  for (let p = h.oldest; p < h.head; p++) {
    const it = h.at(p);
    if (!it || it.kind === 'lost') continue;
    const bytes = flowResponseBytes(it, undefined, nodeName);
    payload += bytes.byteLength;
    backing.add(bytes.buffer);
  }
  let backingBytes = 0;
  for (const b of backing) backingBytes += b.byteLength;
  mark('history encoded');

  const s = cache.stats();
  const h0 = { size: h.size, published: bus.published, peakRss: peakRss() };

  // Throughput of the same path once the cache is full and every exec evicts
  // the oldest live image (no exits in between), against the figure above.
  const fill = Math.max(0, cache.capacity - cache.stats().size);
  feed(fill);
  const EXTRA = 16_384;
  const atCapacitySeconds = feed(EXTRA);
  const report: MemoryReport = {
    type: 'report',
    processes,
    steps,
    peakRss: h0.peakRss,
    cache: { size: s.size, live: s.live, capacity: s.capacity, evictions: s.evictions, misses: s.misses },
    historySize: h0.size,
    published: h0.published,
    atCapacity: { execs: EXTRA, seconds: atCapacitySeconds, evictions: cache.stats().evictions },
    feedSeconds,
    addonLoaded,
    encoded: { payload, backingBytes, backingBuffers: backing.size },
  };
  await hubble.close();
  await tetragon.close();
  fs.rmSync(dir, { recursive: true, force: true });
  toParent(report);
}
