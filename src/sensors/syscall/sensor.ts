// The syscall sensor (opt-in): loads bpf/syscall.bpf.o with the syscall set
// and process filters the user asked for, turns records into SyscallEvents,
// and reports the per-process counts periodically.
//
// Start it after the process sensor (same pin root: tetrahub_procs is shared).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SensorStatus } from '../../agent/status';
import type { BpfLink, BpfMap, BpfObject, RingConsumer } from '../../kernel/types';
import type { BusItem, ProcessInfo, SyscallEvent } from '../../model/event';
import { ProcessResolver } from '../file/resolve';
import type { ProcessSensorDeps } from '../process/sensor';
import { repoRoot } from '../../kernel/native';
import type { Sensor } from '../sensor';
import {
  decodeCount,
  decodeCountKey,
  decodeSyscallBatch,
  decodeSyscallStats,
  encodeBinaryKey,
  encodeSysConfig,
  syscallDecodeErrorTotal,
  type SyscallRecord,
  type SyscallSensorStats,
} from './decode';
import {
  TH_SCFG_BINARIES,
  TH_SCFG_CGROUPS,
  TH_SCFG_TGIDS,
  TH_SYS_BINARIES_ENTRIES,
  TH_SYS_BINARY_LEN,
  TH_SYS_CGROUPS_ENTRIES,
  TH_SYS_EVENTS_DEFAULT_BYTES,
  TH_SYS_NR_MAX,
  TH_SYS_SEL_AT_ENTER,
  TH_SYS_SEL_COUNT,
  TH_SYS_SEL_EVENT,
  TH_SYS_TGIDS_ENTRIES,
} from './layout.gen';
import { syscallName, syscallNumber } from './table';

export interface SyscallSensorOptions {
  /** Syscalls reported as one event per call: names ("getppid") or x86_64 numbers. */
  events?: ReadonlyArray<string | number>;
  /** Syscalls counted per process image, reported every countIntervalMs as SyscallEvents with `count`. */
  counts?: ReadonlyArray<string | number>;
  /**
   * Process filters; a process is watched when it is in ANY set given.
   * None given: every process (still only the selected syscalls).
   */
  pids?: readonly number[];
  /** cgroup-v2 ids. */
  cgroupIds?: readonly bigint[];
  /** Absolute paths of binaries, matched at exec (their realpath is matched too); children follow until they exec. */
  binaries?: readonly string[];
  /** Period of the count reports, ms. Default 10000. */
  countIntervalMs?: number;
  /** Ring buffer size in bytes (power of 2). Default 1 MiB. */
  ringBytes?: number;
  /** How long an event may wait for its process image to reach the cache, ms. Default 500. */
  processWaitMs?: number;
}

export interface SyscallSensorDeps extends ProcessSensorDeps {
  options: SyscallSensorOptions;
}

interface ResolvedSyscallOptions {
  /** TH_SYS_SEL_* bits by syscall number. */
  select: Map<number, number>;
  pids: number[];
  cgroupIds: bigint[];
  /** Paths to insert in th_sys_binaries (configured + realpaths). */
  binaryKeys: string[];
  binaries: string[];
  countIntervalMs: number;
  ringBytes: number;
  processWaitMs: number;
}

const OPTION_KEYS = new Set<string>(['events', 'counts', 'pids', 'cgroupIds', 'binaries', 'countIntervalMs', 'ringBytes', 'processWaitMs']);
/** Calls that never return to sys_exit: reported at sys_enter, without ret. */
const NO_RETURN = new Set(['exit', 'exit_group']);

function syscallOf(v: string | number, list: string): number {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v >= TH_SYS_NR_MAX) throw new Error(`syscall sensor: syscall number ${v} in ${list} is out of range [0, ${TH_SYS_NR_MAX})`);
    return v;
  }
  if (typeof v !== 'string') throw new Error(`syscall sensor: ${list} must hold syscall names or numbers`);
  const nr = syscallNumber(v.trim());
  if (nr === undefined) throw new Error(`syscall sensor: unknown syscall "${v}" in ${list} (x86_64 names, e.g. "openat")`);
  return nr;
}

/** Validates options; throws an Error naming the bad option or syscall. */
export function resolveSyscallOptions(o: SyscallSensorOptions): ResolvedSyscallOptions {
  if (typeof o !== 'object' || o === null) throw new Error('syscall sensor: options are required (events and/or counts)');
  for (const k of Object.keys(o)) if (!OPTION_KEYS.has(k)) throw new Error(`syscall sensor: unknown option "${k}"`);
  const select = new Map<number, number>();
  for (const [list, bit] of [['events', TH_SYS_SEL_EVENT], ['counts', TH_SYS_SEL_COUNT]] as const) {
    const v = o[list];
    if (v === undefined) continue;
    if (!Array.isArray(v)) throw new Error(`syscall sensor: ${list} must be an array of syscall names`);
    for (const s of v) {
      const nr = syscallOf(s, list);
      let bits = (select.get(nr) ?? 0) | bit;
      if (bit === TH_SYS_SEL_EVENT && NO_RETURN.has(syscallName(nr))) bits |= TH_SYS_SEL_AT_ENTER;
      select.set(nr, bits);
    }
  }
  if (select.size === 0) throw new Error('syscall sensor: name at least one syscall in events or counts (it never reports every syscall)');
  const int = (k: 'countIntervalMs' | 'ringBytes' | 'processWaitMs', d: number, min: number, max: number): number => {
    const v = o[k];
    if (v === undefined) return d;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Error(`syscall sensor: ${k} must be an integer in [${min}, ${max}] (got ${String(v)})`);
    return v;
  };
  const ringBytes = int('ringBytes', TH_SYS_EVENTS_DEFAULT_BYTES, 4096, 1 << 30);
  if ((ringBytes & (ringBytes - 1)) !== 0) throw new Error(`syscall sensor: ringBytes must be a power of 2 (got ${ringBytes})`);
  const pids = [...(o.pids ?? [])];
  if (pids.some((p) => !Number.isInteger(p) || p <= 0)) throw new Error('syscall sensor: pids must be positive integers');
  if (pids.length > TH_SYS_TGIDS_ENTRIES) throw new Error(`syscall sensor: at most ${TH_SYS_TGIDS_ENTRIES} pids`);
  const cgroupIds = [...(o.cgroupIds ?? [])];
  if (cgroupIds.some((c) => typeof c !== 'bigint' || c <= 0n)) throw new Error('syscall sensor: cgroupIds must be positive bigints');
  if (cgroupIds.length > TH_SYS_CGROUPS_ENTRIES) throw new Error(`syscall sensor: at most ${TH_SYS_CGROUPS_ENTRIES} cgroupIds`);
  const binaries = [...(o.binaries ?? [])];
  const binaryKeys = new Set<string>();
  for (const b of binaries) {
    if (typeof b !== 'string' || !b.startsWith('/')) throw new Error(`syscall sensor: binary ${JSON.stringify(b)} is not an absolute path`);
    binaryKeys.add(b);
    try {
      binaryKeys.add(fs.realpathSync(b));
    } catch {
      /* not there (yet): matched by the name given */
    }
  }
  for (const k of binaryKeys) {
    if (Buffer.byteLength(k) >= TH_SYS_BINARY_LEN) throw new Error(`syscall sensor: binary path ${JSON.stringify(k)} is longer than ${TH_SYS_BINARY_LEN - 1} bytes`);
  }
  if (binaryKeys.size > TH_SYS_BINARIES_ENTRIES) throw new Error(`syscall sensor: at most ${TH_SYS_BINARIES_ENTRIES} binary paths (with realpaths)`);
  return {
    select,
    pids,
    cgroupIds,
    binaries,
    binaryKeys: [...binaryKeys],
    countIntervalMs: int('countIntervalMs', 10_000, 100, 86_400_000),
    ringBytes,
    processWaitMs: int('processWaitMs', 500, 0, 60_000),
  };
}

const BIN_PROGRAMS = ['raw_tp/sched_process_exec', 'raw_tp/sched_process_fork', 'raw_tp/sched_process_exit'];

/** A count report on its way through the process resolver. */
interface CountReport {
  pid: number;
  procKtime: bigint;
  nr: number;
  count: number;
  ktime: bigint;
}
type Item = { rec: SyscallRecord; pid: number; procKtime: bigint } | { report: CountReport; pid: number; procKtime: bigint };

export class SyscallSensor implements Sensor {
  readonly name = 'syscall';
  private readonly opts: ResolvedSyscallOptions;
  private obj?: BpfObject;
  private links: BpfLink[] = [];
  private consumer?: RingConsumer;
  private statsMap?: BpfMap;
  private countsMap?: BpfMap;
  private tgidsMap?: BpfMap;
  private state: SensorStatus = { name: 'syscall', state: 'off', hooks: [] };
  private resolver?: ProcessResolver<Item>;
  private records: SyscallRecord[] = [];
  private out: BusItem[] = [];
  private timers: NodeJS.Timeout[] = [];
  private kernel?: SyscallSensorStats;
  private lastDrops = 0;
  /** Last count seen per th_sys_counts key (hex). */
  private lastCounts = new Map<string, number>();
  private n = { published: 0, countReports: 0, seededBinaries: 0 };

  constructor(private readonly d: SyscallSensorDeps) {
    this.opts = resolveSyscallOptions(d.options);
  }

  async start(): Promise<void> {
    const { native, config, log } = this.d;
    const o = this.opts;
    const objPath = this.d.objectPath ?? path.join(repoRoot(), 'bpf/.output/syscall.bpf.o');
    const hooks: string[] = [];
    try {
      fs.mkdirSync(config.bpfDir, { recursive: true });
      if (!fs.existsSync(path.join(config.bpfDir, 'tetrahub_procs'))) {
        log.warn(`syscall sensor: ${config.bpfDir}/tetrahub_procs is not pinned (start the process sensor first); events fall back to the pid's current image`);
      }
      const useBinaries = o.binaryKeys.length > 0;
      this.obj = native.openObject(objPath, {
        pinRoot: config.bpfDir,
        mapSizes: { tetrahub_procs: config.processMapEntries, th_sys_events: o.ringBytes },
        rodata: { agent_tgid: process.pid },
        skipPrograms: useBinaries ? [] : ['sys_bin_exec', 'sys_bin_fork', 'sys_bin_exit'],
      });
      this.obj.load();
      const obj = this.obj;
      const bySection = new Map(obj.programs().map((p) => [p.section, p.name]));
      const attach = (section: string): void => {
        const prog = bySection.get(section);
        if (!prog) throw new Error(`program for ${section} missing in ${objPath}`);
        this.links.push(obj.attach(prog));
        hooks.push(section);
      };

      const sel = obj.map('th_sys_select');
      const key = Buffer.alloc(4);
      const val = Buffer.alloc(4);
      for (const [nr, bits] of o.select) {
        key.writeUInt32LE(nr);
        val.writeUInt32LE(bits);
        sel.update(key, val);
      }
      let flags = 0;
      this.tgidsMap = obj.map('th_sys_tgids');
      if (o.pids.length) {
        flags |= TH_SCFG_TGIDS;
        for (const p of o.pids) this.addPid(p);
      }
      if (o.cgroupIds.length) {
        flags |= TH_SCFG_CGROUPS;
        const m = obj.map('th_sys_cgroups');
        const k = Buffer.alloc(8);
        for (const c of o.cgroupIds) {
          k.writeBigUInt64LE(c);
          m.update(k, Buffer.from([1]));
        }
      }
      if (useBinaries) {
        flags |= TH_SCFG_BINARIES;
        const m = obj.map('th_sys_binaries');
        for (const b of o.binaryKeys) m.update(encodeBinaryKey(b)!, Buffer.from([1]));
        // Hooks first, then the /proc scan: an exec between the two is seen by the hook.
        for (const s of BIN_PROGRAMS) attach(s);
        this.seedBinaries(obj.map('th_sys_bin_tgids'), new Set(o.binaryKeys));
      }
      obj.map('th_sys_config').update(Buffer.alloc(4), encodeSysConfig(flags));

      attach('raw_tp/sys_exit');
      attach('raw_tp/sys_enter');
      this.statsMap = obj.map('th_sys_stats');
      this.countsMap = obj.map('th_sys_counts');
      this.resolver = new ProcessResolver<Item>(
        this.d.cache,
        this.d.clock,
        (it, proc, parent) => this.build(it, proc, parent),
        o.processWaitMs,
        65536,
        () => this.publish(),
      );
      this.consumer = native.createRingConsumer([obj.map('th_sys_events')], {
        onBatch: (batch, count) => this.onBatch(batch, count),
      });
      this.consumer.start();
      this.every(1000, () => this.pollStats());
      if ([...o.select.values()].some((b) => b & TH_SYS_SEL_COUNT)) this.every(o.countIntervalMs, () => this.sweepCounts());
      const names = [...o.select.keys()].map(syscallName).join(', ');
      this.state = { name: 'syscall', state: 'running', hooks, note: `syscalls: ${names}` };
      log.info(`syscall sensor: watching ${names}${flags ? ' for the selected processes' : ''}`);
    } catch (e) {
      const err = e as Error & { verifierLog?: string };
      this.state = { name: 'syscall', state: 'failed', hooks: [], note: err.message };
      if (err.verifierLog) log.debug(`verifier log:\n${err.verifierLog}`);
      await this.stop();
      throw e;
    }
  }

  /** Adds a process to the pids filter (only when the sensor was started with `pids`). */
  addPid(pid: number): void {
    if (!this.tgidsMap) throw new Error('syscall sensor: not started');
    if (!this.opts.pids.length) throw new Error('syscall sensor: started without a pids filter');
    const k = Buffer.alloc(4);
    k.writeUInt32LE(pid >>> 0);
    this.tgidsMap.update(k, Buffer.from([1]));
  }

  removePid(pid: number): void {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(pid >>> 0);
    this.tgidsMap?.delete(k);
  }

  /** Processes already running a selected binary (their /proc/<pid>/exe is the realpath). */
  private seedBinaries(m: BpfMap, keys: Set<string>): void {
    const k = Buffer.alloc(4);
    for (const ent of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(ent)) continue;
      let exe: string;
      try {
        exe = fs.readlinkSync(`/proc/${ent}/exe`);
      } catch {
        continue; // kernel thread, or gone
      }
      if (!keys.has(exe)) continue;
      k.writeUInt32LE(Number(ent));
      try {
        m.update(k, Buffer.from([1]));
        this.n.seededBinaries++;
      } catch {
        /* full: counted as the kernel would */
      }
    }
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }

  private onBatch(batch: Buffer, count: number): void {
    this.records.length = 0;
    decodeSyscallBatch(batch, count, this.records);
    if (!this.records.length) return;
    this.resolver?.push(this.records.map((rec) => ({ rec, pid: rec.pid, procKtime: rec.procKtime })));
  }

  private build(it: Item, proc: ProcessInfo, parent: ProcessInfo | undefined): void {
    const base = {
      kind: 'syscall' as const,
      seq: 0,
      nodeName: this.d.config.nodeName,
      process: proc,
      ...(parent ? { parent } : {}),
      wire: new Map<string, Uint8Array>(),
    };
    let ev: SyscallEvent;
    if ('rec' in it) {
      const r = it.rec;
      ev = { ...base, time: this.d.clock.toWall(r.ktime), id: r.nr, name: syscallName(r.nr), args: r.args, ...(r.ret !== undefined ? { ret: r.ret } : {}) };
    } else {
      const c = it.report;
      ev = { ...base, time: this.d.clock.toWall(c.ktime), id: c.nr, name: syscallName(c.nr), args: [], count: c.count };
    }
    this.out.push(ev as unknown as BusItem); // SyscallEvent joins BusItem when the adapters encode it
  }

  private publish(): void {
    if (!this.out.length) return;
    const items = this.out;
    this.out = [];
    this.n.published += items.length;
    this.d.bus.publish(items);
  }

  /**
   * Reports the calls counted since the last report, per process image and
   * syscall; forgets the entries of processes that exited.
   */
  sweepCounts(): void {
    const m = this.countsMap;
    if (!m || !this.resolver) return;
    const now = this.d.native.clocks().boottime;
    const reports: Item[] = [];
    const seen = new Set<string>();
    for (const k of m.keys()) {
      const key = decodeCountKey(k);
      const v = m.lookup(k);
      const count = v ? decodeCount(v) : null;
      if (!key || count === null) continue;
      const id = k.toString('hex');
      const delta = count - (this.lastCounts.get(id) ?? 0);
      if (!fs.existsSync(`/proc/${key.tgid}`)) {
        m.delete(k);
        this.lastCounts.delete(id);
      } else {
        seen.add(id);
        this.lastCounts.set(id, count);
      }
      if (delta > 0) reports.push({ report: { pid: key.tgid, procKtime: key.procKtime, nr: key.nr, count: delta, ktime: now }, pid: key.tgid, procKtime: key.procKtime });
    }
    for (const id of this.lastCounts.keys()) if (!seen.has(id)) this.lastCounts.delete(id);
    if (reports.length) {
      this.n.countReports += reports.length;
      this.resolver.push(reports);
    }
  }

  private pollStats(): void {
    if (!this.statsMap) return;
    const v = this.statsMap.lookup(Buffer.alloc(4));
    if (!v) return;
    this.kernel = decodeSyscallStats(v);
    const delta = this.kernel.dropped - this.lastDrops;
    if (delta > 0) {
      this.lastDrops = this.kernel.dropped;
      this.d.bus.publish([{ kind: 'lost', seq: 0, time: this.d.clock.now(), nodeName: this.d.config.nodeName, source: 'kernel_ring', count: delta, wire: new Map() }]);
    }
  }

  kernelStats(): SyscallSensorStats | undefined {
    this.pollStats();
    return this.kernel;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.consumer?.stop();
    this.consumer = undefined;
    this.resolver?.stop();
    for (const l of this.links) l.destroy();
    this.links = [];
    this.obj?.close();
    this.obj = undefined;
    this.statsMap = this.countsMap = this.tgidsMap = undefined;
    if (this.state.state === 'running') this.state = { ...this.state, state: 'off', note: 'stopped' };
  }

  status(): SensorStatus {
    return this.state;
  }

  counters(): Record<string, number> {
    this.pollStats();
    const k = this.kernel;
    const c = this.consumer?.stats();
    const r = this.resolver?.counters;
    return {
      syscall_kernel_records_emitted: k?.emitted ?? 0,
      syscall_kernel_ring_drops: k?.dropped ?? 0,
      syscall_kernel_args_full: k?.argsFull ?? 0,
      syscall_kernel_counts_full: k?.countsFull ?? 0,
      syscall_kernel_bin_tgids_full: k?.binTgidsFull ?? 0,
      syscall_ring_records_consumed: c?.records ?? 0,
      syscall_decode_errors: syscallDecodeErrorTotal(),
      syscall_count_reports: this.n.countReports,
      syscall_events_published: this.n.published,
      syscall_binaries_seeded: this.n.seededBinaries,
      syscall_process_exact: r?.exact ?? 0,
      syscall_process_current: r?.current ?? 0,
      syscall_process_unknown: r?.unknown ?? 0,
    };
  }
}
