// Pipeline: kernel ring → native consumer thread → one JS call per batch →
// decodeBatch → ExecRecord objects, in records/s, beside the plain C libbpf
// consumer (bench/c-consumer/th-consumer) of the same BPF object in the same run.
//
// Producer: bpf/bench.bpf.c writes `records_per_trigger` EXEC records into
// bench_events each time a thread of `target_tgid` calls getppid(2). Here the
// trigger is a worker thread of this process reading `process.ppid` (a getter
// that calls getppid every time; checked below with the kernel's own count),
// paced through a SharedArrayBuffer so that triggered×K − decoded stays under
// the ring's capacity: the ring never overflows and the consumer, not the
// producer's pacing, sets the rate.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadNative } from '../src/kernel/native';
import type { BpfLink, BpfObject, RingConsumer } from '../src/kernel/types';
import { decodeBatch, decodeStats, type ProcessRecord } from '../src/sensors/process/decode';
import { th_exec, TH_REC_EXEC } from '../src/sensors/process/layout.gen';
import {
  type BenchResult,
  int,
  kernelSkipReason,
  machineLoad,
  note,
  nowS,
  rate,
  ROOT,
  rows,
  section,
  skipped,
  sleep,
  threadCpu,
  threadDelta,
} from './common';

const NAME = 'pipeline';
/** Bytes the bench record takes in the ring: struct bench_rec (th_exec + 144-byte tail) + 8-byte ring header. */
const RING_SLOT = (th_exec.SIZE + 144 + 8 + 7) & ~7;

export interface PipelineOptions {
  seconds?: number;
  perTrigger?: number;
  warmupSeconds?: number;
}

// The trigger thread. Plain JS (eval'd): it only reads counters and calls getppid.
const TRIGGER = `
const { workerData, parentPort } = require('node:worker_threads');
parentPort.postMessage({ tid: Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()) });
const ctl = new Int32Array(workerData.sab, 0, 4);      // [0] stop, [1] batch seq (notified), [2] paused
const cnt = new BigInt64Array(workerData.sab, 16, 4);  // [0] decoded, [1] triggers, [2] ns in getppid
const K = BigInt(workerData.perTrigger), CAP = BigInt(workerData.capacity);
let triggers = 0n, ns = 0n, sink = 0;
while (Atomics.load(ctl, 0) === 0) {
  const seq = Atomics.load(ctl, 1);
  if (Atomics.load(ctl, 2) === 0 && triggers * K - Atomics.load(cnt, 0) + K <= CAP) {
    const t0 = process.hrtime.bigint();
    sink += process.ppid;              // getppid(2): the BPF program writes K records here
    ns += process.hrtime.bigint() - t0;
    triggers++;
    Atomics.store(cnt, 1, triggers);
    Atomics.store(cnt, 2, ns);
  } else {
    Atomics.wait(ctl, 1, seq, 2);      // until the consumer decoded another batch
  }
}
parentPort.postMessage({ triggers: Number(triggers), sink });
`;

interface CResult {
  records: number;
  seconds: number;
  rate: number;
  producerRate: number;
  emitted: number;
  drops: number;
  triggers: number;
}

function buildConsumer(): { path?: string; error?: string } {
  const dir = path.join(ROOT, 'bench/c-consumer');
  const r = spawnSync('make', ['-s', '-C', dir, 'th-consumer'], { encoding: 'utf8' });
  const bin = path.join(dir, 'th-consumer');
  if (r.status !== 0 || !fs.existsSync(bin)) return { error: `make -C bench/c-consumer failed: ${(r.stderr || r.stdout || r.error?.message || '').trim().slice(0, 400)}` };
  return { path: bin };
}

/**
 * Runs th-consumer for `seconds`; samples its threads' CPU between 0.3 s and
 * seconds − 0.2 s so that the consumer thread's (the main thread's) CPU share is known.
 */
async function runC(bin: string, seconds: number, perTrigger: number): Promise<{ result?: CResult; error?: string; consumerUtil?: number }> {
  const child = spawn(bin, ['--seconds', String(seconds), '--per-trigger', String(perTrigger)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const pid = child.pid ?? 0;
  const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
  let consumerUtil: number | undefined;
  try {
    await sleep(300);
    const a = { t: nowS(), cpu: threadCpu(pid) };
    await sleep(Math.max(200, (seconds - 0.5) * 1000));
    const b = { t: nowS(), cpu: threadCpu(pid) };
    const main = threadDelta(a.cpu, b.cpu).find((t) => t.tid === pid);
    if (main) consumerUtil = (main.user + main.sys) / (b.t - a.t);
  } catch {
    /* sampling is best effort */
  }
  const code = await exited;
  clearTimeout(killer);
  if (code !== 0) return { error: `th-consumer exited ${code}: ${err.trim().slice(0, 400)}` };
  const line = out.trim().split('\n').pop() ?? '';
  try {
    return { result: JSON.parse(line) as CResult, consumerUtil };
  } catch {
    return { error: `th-consumer printed no JSON: ${line.slice(0, 200)}` };
  }
}

export async function run(opts: PipelineOptions = {}): Promise<BenchResult> {
  const seconds = opts.seconds ?? 3.5;
  const K = opts.perTrigger ?? 1024;
  const warmup = opts.warmupSeconds ?? 0.8;
  section('pipeline: kernel ring → decoded TypeScript ExecRecords (vs plain C libbpf)');
  const why = kernelSkipReason();
  const objPath = path.join(ROOT, 'bpf/.output/bench.bpf.o');
  if (why) return skip(why);
  if (!fs.existsSync(objPath)) return skip('bpf/.output/bench.bpf.o not built (make -C bpf)');
  const started = nowS();

  const native = loadNative();
  let obj: BpfObject | undefined;
  let link: BpfLink | undefined;
  let consumer: RingConsumer | undefined;
  let worker: Worker | undefined;
  const sab = new SharedArrayBuffer(64);
  const ctl = new Int32Array(sab, 0, 4);
  const cnt = new BigInt64Array(sab, 16, 4);
  try {
    obj = native.openObject(objPath, { rodata: { target_tgid: process.pid, records_per_trigger: K } });
    obj.load();
    link = obj.attach('bench_trigger');
    const ring = obj.map('bench_events');
    const statsMap = obj.map('bench_stats');
    const capacity = Math.floor(ring.maxEntries / RING_SLOT);

    // ---- consumer: exactly what the process sensor does per batch, minus the cache.
    const out: ProcessRecord[] = [];
    let decoded = 0;
    let jsNs = 0n;
    let touch = 0;
    let captured: { batch: Buffer; count: number } | undefined;
    let biggest = 0;
    consumer = native.createRingConsumer([ring], {
      onBatch: (batch, count) => {
        const t0 = process.hrtime.bigint();
        out.length = 0;
        decodeBatch(batch, count, out);
        for (let i = 0; i < out.length; i++) {
          const r = out[i];
          if (r.type === 'exec') touch += r.args.length + r.filename.length;
        }
        decoded += out.length;
        jsNs += process.hrtime.bigint() - t0;
        Atomics.store(cnt, 0, BigInt(decoded));
        Atomics.add(ctl, 1, 1);
        Atomics.notify(ctl, 1);
        // Keep one full batch for the decode-only loop (the buffer is reused after the call).
        if (count > biggest && decoded > 20_000) {
          biggest = count;
          captured = { batch: Buffer.from(batch), count };
        }
      },
    });
    consumer.start();
    worker = new Worker(TRIGGER, { eval: true, workerData: { sab, perTrigger: K, capacity } });
    let triggerTid = -1;
    const workerDone = new Promise<{ triggers: number }>((resolve, reject) => {
      worker!.on('message', (m: { tid?: number; triggers?: number }) => {
        if (m.tid !== undefined) triggerTid = m.tid;
        else resolve(m as { triggers: number });
      });
      worker!.once('error', reject);
    });

    await sleep(warmup * 1000);
    const s0 = { t: nowS(), decoded, jsNs, batches: consumer.stats().batches, cpu: threadCpu(), usage: process.cpuUsage() };
    await sleep(seconds * 1000);
    const s1 = { t: nowS(), decoded, jsNs, batches: consumer.stats().batches, cpu: threadCpu(), usage: process.cpuUsage(s0.usage) };

    Atomics.store(ctl, 0, 1);
    Atomics.notify(ctl, 1);
    const { triggers } = await workerDone;
    worker = undefined;
    // Drain what is still in the ring or in a partial batch (flushMs = 20 ms).
    const kernel = () => decodeStats(statsMap.lookup(Buffer.alloc(4)) ?? Buffer.alloc(0));
    const deadline = Date.now() + 3000;
    while (decoded < kernel().emitted[TH_REC_EXEC] && Date.now() < deadline) await sleep(20);
    consumer.stop();
    const cstats = consumer.stats();
    consumer = undefined;
    const st = kernel();
    link.destroy();
    link = undefined;
    obj.close();
    obj = undefined;

    const dt = s1.t - s0.t;
    const nodeRecords = s1.decoded - s0.decoded;
    const nodeRate = nodeRecords / dt;
    const batches = s1.batches - s0.batches;
    const jsNsPerRec = Number(s1.jsNs - s0.jsNs) / nodeRecords;
    const threads = threadDelta(s0.cpu, s1.cpu);
    const mainCpu = threads.find((t) => t.tid === process.pid);
    const mainUtil = mainCpu ? (mainCpu.user + mainCpu.sys) / dt : NaN;
    const trig = threads.find((t) => t.tid === triggerTid);
    // The native ring thread: the busiest thread that is neither the JS thread nor the trigger.
    const ringThread = threads.find((t) => t.tid !== process.pid && t.tid !== triggerTid);
    const cpuNs = (t: { user: number; sys: number } | undefined) => (t ? ((t.user + t.sys) * 1e9) / nodeRecords : NaN);
    const jsCpuNs = cpuNs(mainCpu);
    const ringCpuNs = cpuNs(ringThread);
    const oneCore = 1e9 / jsCpuNs;
    const procCpu = (s1.usage.user + s1.usage.system) / 1e6 / dt;
    const emitted = st.emitted[TH_REC_EXEC];
    const drops = st.dropped[TH_REC_EXEC];
    const getppidOk = emitted + drops === triggers * K;

    // ---- decode only: the same decodeBatch over one captured batch, in a loop.
    let decodeOnly = NaN;
    let decodeNs = NaN;
    let decodeCpuNs = NaN;
    if (captured) {
      const { batch, count } = captured;
      const o: ProcessRecord[] = [];
      let n = 0;
      const cpu0 = threadCpu().find((t) => t.tid === process.pid);
      const t0 = nowS();
      let t = t0;
      while (t - t0 < 1.0) {
        for (let k = 0; k < 10; k++) {
          o.length = 0;
          decodeBatch(batch, count, o);
          for (let i = 0; i < o.length; i++) {
            const r = o[i];
            if (r.type === 'exec') touch += r.args.length + r.filename.length;
          }
          n += o.length;
        }
        t = nowS();
      }
      const cpu1 = threadCpu().find((t) => t.tid === process.pid);
      decodeOnly = n / (t - t0);
      decodeNs = ((t - t0) * 1e9) / n;
      if (cpu0 && cpu1) decodeCpuNs = ((cpu1.user + cpu1.sys - cpu0.user - cpu0.sys) * 1e9) / n;
    }

    rows([
      ['records per trigger', `${K} (EXEC records of ${th_exec.SIZE + 140} bytes, ring ${int(ring.maxEntries / 1024)} KiB ≈ ${int(capacity)} records)`],
      ['measured window', `${dt.toFixed(2)} s after ${warmup} s warm-up; ${machineLoad()}`],
      ['decoded records', `${int(nodeRecords)} in ${int(batches)} batches (${int(nodeRecords / Math.max(1, batches))} records/batch)`],
      ['Node pipeline rate', `${rate(nodeRate, ' rec/s')}  (${(1e9 / nodeRate).toFixed(0)} ns/record wall)`],
      ['JS time in onBatch', `${jsNsPerRec.toFixed(0)} ns/record (decode + touch), ${((Number(s1.jsNs - s0.jsNs) / 1e9 / dt) * 100).toFixed(0)} % of the window`],
      ['JS main thread CPU', `${(mainUtil * 100).toFixed(0)} % of one core (whole process ${(procCpu * 100).toFixed(0)} %, incl. trigger thread = BPF producer, ring thread)`],
      [
        'CPU per record',
        `JS thread ${jsCpuNs.toFixed(0)} ns, native ring thread ${ringCpuNs.toFixed(0)} ns (copy into batches), trigger thread ${cpuNs(trig).toFixed(0)} ns (getppid = the BPF producer writing the records)`,
      ],
      ['one JS core would do', `${rate(oneCore, ' rec/s')} (records / JS-thread CPU time: the consumer's capacity, independent of what else the machine runs)`],
      ['kernel (bench_stats)', `emitted ${int(emitted)}, dropped ${int(drops)}; consumer total ${int(cstats.records)} records, ${int(cstats.dropped)} dropped in native`],
      ['trigger check', `${int(triggers)} getppid calls × ${K} = ${int(triggers * K)} ${getppidOk ? '= emitted + dropped (process.ppid calls getppid every time)' : '≠ emitted + dropped: process.ppid did NOT call getppid each time'}`],
      ['decode only', `${rate(decodeOnly, ' rec/s')}  (${decodeNs.toFixed(0)} ns/record wall, ${decodeCpuNs.toFixed(0)} ns CPU: decodeBatch over one captured ${captured ? int(captured.count) : '?'}-record batch in a loop)`],
    ]);
    if (touch === -1) console.log(''); // keep `touch` observable

    // ---- the C baseline, same duration, same object and K.
    const built = buildConsumer();
    let c: CResult | undefined;
    let cError: string | undefined;
    let cUtil: number | undefined;
    if (built.path) {
      const r = await runC(built.path, seconds, K);
      c = r.result;
      cError = r.error;
      cUtil = r.consumerUtil;
    } else cError = built.error;
    const cCpuNs = c && cUtil !== undefined ? (cUtil * 1e9) / c.rate : NaN;
    const ratio = c ? nodeRate / c.rate : NaN;
    if (c) {
      rows([
        ['C libbpf consumer', `${rate(c.rate, ' rec/s')}  (${int(c.records)} records in ${c.seconds.toFixed(2)} s, kernel drops ${int(c.drops)})`],
        ['C producer alone', `${rate(c.producerRate, ' rec/s')} (BPF emission speed: the C figure is bounded by it)`],
        ['C consumer thread', `${cUtil !== undefined ? `${(cUtil * 100).toFixed(0)} % busy, ${cCpuNs.toFixed(0)} ns CPU/record (ring_buffer__poll + callback touching the header)` : 'CPU not sampled'}`],
        ['Node / C', `${(ratio * 100).toFixed(1)} % (records/s, same run); CPU per record: Node JS + ring thread ${(jsCpuNs + ringCpuNs).toFixed(0)} ns vs C ${cCpuNs.toFixed(0)} ns`],
      ]);
    } else note(`C baseline not run: ${cError}`);
    const met = nodeRate >= 1e6 || (c ? ratio >= 0.4 : false);
    rows([
      ['target', `≥ 1,000,000 rec/s or ≥ 40 % of C → ${met ? 'MET' : 'NOT MET'}`],
      [
        'where time goes',
        `per record: JS thread ${jsCpuNs.toFixed(0)} ns CPU, of which decodeBatch ≈ ${decodeCpuNs.toFixed(0)} ns (decode-only loop) and the rest batch hand-over, touch, GC; native ring thread ${ringCpuNs.toFixed(0)} ns. The JS thread was busy ${(mainUtil * 100).toFixed(0)} % of the window: the rest is waiting for batches or being preempted by other work on this 2-CPU machine`,
      ],
    ]);
    if (drops > 0) note(`the kernel dropped ${int(drops)} records: the pacing should prevent that; the rate is still records actually decoded`);

    return {
      name: NAME,
      status: 'ok',
      value: rate(nodeRate, ' rec/s'),
      baseline: c ? `C libbpf ${rate(c.rate, ' rec/s')}` : `C baseline: ${cError}`,
      ratio: c ? `${(ratio * 100).toFixed(1)} % of C` : undefined,
      target: '≥ 1 M rec/s or ≥ 40 % of C',
      met,
      seconds: nowS() - started,
      figures: {
        perTrigger: K,
        windowSeconds: dt,
        nodeRecords,
        nodeRate,
        batches,
        recordsPerBatch: nodeRecords / Math.max(1, batches),
        jsNsPerRecord: jsNsPerRec,
        wallNsPerRecord: 1e9 / nodeRate,
        jsThreadUtilization: mainUtil,
        processCpuUtilization: procCpu,
        kernelEmitted: emitted,
        kernelDrops: drops,
        nativeDropped: cstats.dropped,
        triggers,
        getppidPerProcessPpid: getppidOk,
        jsCpuNsPerRecord: jsCpuNs,
        ringThreadCpuNsPerRecord: ringCpuNs,
        oneJsCoreRate: oneCore,
        cConsumerUtilization: cUtil ?? null,
        cCpuNsPerRecord: cCpuNs,
        decodeOnlyRate: decodeOnly,
        decodeOnlyNsPerRecord: decodeNs,
        decodeOnlyCpuNsPerRecord: decodeCpuNs,
        c: c ?? null,
        cError: cError ?? null,
        ratioToC: c ? ratio : null,
      },
    };
  } catch (e) {
    return { name: NAME, status: 'failed', reason: (e as Error).message, seconds: nowS() - started, figures: {} };
  } finally {
    Atomics.store(ctl, 0, 1);
    Atomics.notify(ctl, 1);
    if (worker) await worker.terminate().catch(() => undefined);
    try {
      consumer?.stop();
      link?.destroy();
      obj?.close();
    } catch {
      /* best effort */
    }
  }
}

function skip(reason: string): BenchResult {
  console.log(`  skipped: ${reason}`);
  return skipped(NAME, reason);
}
