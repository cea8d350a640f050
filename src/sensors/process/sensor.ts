// The process sensor: loads bpf/process.bpf.o, seeds the kernel process map and
// the cache from /proc, then turns ring batches into exec/exit events.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SensorStatus } from '../../agent/status';
import type { Logger } from '../../agent/log';
import type { EventBus } from '../../bus/bus';
import type { AgentConfig } from '../../config/config';
import type { ProcessCache } from '../../enrich/process/cache';
import type { BootClock } from '../../enrich/process/clock';
import { scanProc } from '../../enrich/process/procfs';
import { repoRoot } from '../../kernel/native';
import type { BpfLink, BpfMap, BpfObject, NativeBinding, RingConsumer } from '../../kernel/types';
import type { BusItem, RuntimeEvent } from '../../model/event';
import type { Sensor } from '../sensor';
import { decodeBatch, decodeStats, decodeErrors, encodeProcValue, type ProcessRecord } from './decode';
import { TH_FLAG_PROCFS, TH_REC_EXEC, TH_REC_EXIT } from './layout.gen';

export interface ProcessSensorDeps {
  native: NativeBinding;
  bus: EventBus;
  cache: ProcessCache;
  clock: BootClock;
  config: AgentConfig;
  log: Logger;
  /** Path of the compiled object; default bpf/.output/process.bpf.o in the package. */
  objectPath?: string;
}

const PROGRAMS = ['raw_tp/sched_process_exec', 'raw_tp/sched_process_fork', 'raw_tp/sched_process_exit'];

export class ProcessSensor implements Sensor {
  readonly name = 'process';
  private obj?: BpfObject;
  private links: BpfLink[] = [];
  private consumer?: RingConsumer;
  private statsMap?: BpfMap;
  private state: SensorStatus = { name: 'process', state: 'off', hooks: [] };
  private records: ProcessRecord[] = [];
  private events: RuntimeEvent[] = [];
  private lastDrops = 0;
  private dropTimer?: NodeJS.Timeout;
  private kernel = { emitted: 0, emittedExec: 0, dropped: 0, droppedExec: 0, droppedExit: 0, procsUpdateErrors: 0, exitUnknown: 0 };
  private seeded = 0;

  constructor(private readonly d: ProcessSensorDeps) {}

  async start(): Promise<void> {
    const { native, config, log } = this.d;
    const objPath = this.d.objectPath ?? path.join(repoRoot(), 'bpf/.output/process.bpf.o');
    try {
      const pinDir = config.bpfDir;
      fs.mkdirSync(pinDir, { recursive: true });
      // A stale pinned process map from an earlier run would carry dead images: start clean.
      fs.rmSync(path.join(pinDir, 'tetrahub_procs'), { force: true });
      this.obj = native.openObject(objPath, {
        pinRoot: pinDir,
        mapSizes: { tetrahub_procs: config.processMapEntries, tetrahub_events: config.ringBufferBytes },
        rodata: { agent_tgid: process.pid },
      });
      this.obj.load();
      const progs = this.obj.programs();
      for (const sec of PROGRAMS) {
        const p = progs.find((x) => x.section === sec);
        if (!p) throw new Error(`program for ${sec} missing in ${objPath}`);
        this.links.push(this.obj.attach(p.name));
      }
      this.statsMap = this.obj.map('tetrahub_stats');
      // Seed after attaching, so no fork/exec between the scan and the hooks is lost;
      // records queue in the ring until the consumer starts below.
      this.seed(this.obj.map('tetrahub_procs'));
      this.consumer = native.createRingConsumer([this.obj.map('tetrahub_events')], {
        onBatch: (batch, count) => this.onBatch(batch, count),
      });
      this.consumer.start();
      this.dropTimer = setInterval(() => this.pollDrops(), 1000);
      this.dropTimer.unref();
      this.state = { name: 'process', state: 'running', hooks: [...PROGRAMS] };
    } catch (e) {
      const err = e as Error & { verifierLog?: string };
      this.state = { name: 'process', state: 'failed', hooks: [], note: err.message };
      if (err.verifierLog) log.debug(`verifier log:\n${err.verifierLog}`);
      await this.stop();
      throw e;
    }
  }

  private seed(procs: BpfMap): void {
    const { cache, config, clock, log } = this.d;
    const scan = scanProc({ nodeName: config.nodeName, clock });
    for (const n of scan.notes) log.warn(n);
    const key = Buffer.alloc(4);
    const ktimeOf = new Map<number, bigint>();
    for (const p of scan.processes) ktimeOf.set(p.pid, p.ktime);
    for (const p of scan.processes) {
      cache.seed(p);
      const ppid = scan.ppid.get(p.pid) ?? 0;
      key.writeUInt32LE(p.pid);
      try {
        // NOEXIST: an exec or fork seen by the hooks since attaching is newer than /proc.
        procs.update(key, encodeProcValue({ ktime: p.ktime, parentKtime: ktimeOf.get(ppid) ?? 0n, parentPid: ppid, flags: TH_FLAG_PROCFS }), 1);
        this.seeded++;
      } catch {
        /* already there (newer) or map full (counted by the kernel side) */
      }
    }
    log.info(`process sensor: ${scan.processes.length} running processes found in /proc (${this.seeded} seeded into the kernel map)`);
  }

  private onBatch(batch: Buffer, count: number): void {
    this.records.length = 0;
    decodeBatch(batch, count, this.records);
    this.events.length = 0;
    this.d.cache.apply(this.records, this.events);
    if (this.events.length) this.d.bus.publish(this.events.slice() as BusItem[]);
  }

  /** Kernel-side drops become loss notices on the bus (Hubble lost_events) and counters. */
  private pollDrops(): void {
    if (!this.statsMap) return;
    const v = this.statsMap.lookup(Buffer.alloc(4));
    if (!v) return;
    const s = decodeStats(v);
    this.kernel = {
      emitted: s.emittedTotal,
      emittedExec: s.emitted[TH_REC_EXEC],
      dropped: s.droppedTotal,
      droppedExec: s.dropped[TH_REC_EXEC],
      droppedExit: s.dropped[TH_REC_EXIT],
      procsUpdateErrors: s.procsUpdateErr,
      exitUnknown: s.exitUnknown,
    };
    const delta = this.kernel.dropped - this.lastDrops;
    if (delta > 0) {
      this.lastDrops = this.kernel.dropped;
      const now = this.d.clock.now();
      this.d.bus.publish([{ kind: 'lost', seq: 0, time: now, nodeName: this.d.config.nodeName, source: 'kernel_ring', count: delta, wire: new Map() }]);
    }
  }

  async stop(): Promise<void> {
    if (this.dropTimer) clearInterval(this.dropTimer);
    this.consumer?.stop();
    this.consumer = undefined;
    for (const l of this.links) l.destroy();
    this.links = [];
    this.obj?.close();
    this.obj = undefined;
    if (this.state.state === 'running') this.state = { ...this.state, state: 'off', note: 'stopped' };
  }

  status(): SensorStatus {
    return this.state;
  }

  counters(): Record<string, number> {
    this.pollDrops();
    const c = this.consumer?.stats();
    return {
      kernel_records_emitted: this.kernel.emitted,
      kernel_records_emitted_exec: this.kernel.emittedExec,
      kernel_ring_drops: this.kernel.dropped,
      kernel_ring_drops_exec: this.kernel.droppedExec,
      kernel_ring_drops_exit: this.kernel.droppedExit,
      kernel_procs_map_update_errors: this.kernel.procsUpdateErrors,
      kernel_exit_unknown: this.kernel.exitUnknown,
      ring_records_consumed: c?.records ?? 0,
      ring_batches: c?.batches ?? 0,
      decode_errors: decodeErrors(),
      procs_seeded_kernel: this.seeded,
    };
  }
}
