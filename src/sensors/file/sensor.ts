// The file sensor: loads bpf/file.bpf.o, configures its exclusions, turns
// ring records into FileEvents, and reports the I/O bytes of open files.
//
// Start it after the process sensor: both open their objects with the same
// pin root so that this object reuses the pinned tetrahub_procs map.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SensorStatus } from '../../agent/status';
import type { BpfLink, BpfMap, BpfObject, RingConsumer } from '../../kernel/types';
import type { BusItem, FileEvent, FileOp, ProcessInfo } from '../../model/event';
import type { ProcessSensorDeps } from '../process/sensor';
import { repoRoot } from '../../kernel/native';
import type { Sensor } from '../sensor';
import { syscallName } from '../syscall/table';
import {
  decodeFdIo,
  decodeFdKey,
  decodeFileBatch,
  decodeFileStats,
  encodeFileConfig,
  fileDecodeErrorTotal,
  normalizePrefixes,
  recordPaths,
  underPrefix,
  type FileRecord,
  type FileSensorStats,
} from './decode';
import {
  TH_FCFG_NO_FAILED,
  TH_FCFG_NO_FAILED_OPENS,
  TH_FCFG_TRACK_IO,
  TH_FF_ERR,
  TH_FF_RESOLVED,
  TH_FILE_EVENTS_DEFAULT_BYTES,
  TH_FILE_FDS_DEFAULT_ENTRIES,
} from './layout.gen';
import { ProcessResolver } from './resolve';

/** th_file_config.flags bit telling the kernel to consult th_file_skip_cg (bpf/file.bpf.c). */
const TH_FCFG_SKIP_CGROUPS = 0x8;

export const DEFAULT_FILE_EXCLUDE: readonly string[] = ['/proc', '/sys', '/dev'];

export interface FileSensorOptions {
  /**
   * Path prefixes never reported: a path equal to one or under it ("/proc"
   * covers "/proc/1/status", not "/procfs"). Compared in the kernel (up to 16
   * prefixes of at most 63 bytes) and again after joining relative paths.
   * Default DEFAULT_FILE_EXCLUDE; [] reports everything.
   */
  excludePrefixes?: readonly string[];
  /** cgroup-v2 ids whose processes are ignored in the kernel (at most 64). */
  excludeCgroupIds?: readonly bigint[];
  /** Drop opens that failed (library search ENOENTs...) in the kernel. Default false. */
  skipFailedOpens?: boolean;
  /** Drop every failed operation in the kernel. Default false. */
  skipFailed?: boolean;
  /** Count bytes read/written per opened file, reported at close. Default true. */
  trackIo?: boolean;
  /** Also report the bytes of files still open every this many ms; 0 = only at close. Default 10000. */
  ioReportIntervalMs?: number;
  /** Ring buffer size in bytes (power of 2, >= 4096). Default 4 MiB. */
  ringBytes?: number;
  /** Open files tracked for I/O at once (th_file_fds entries). Default 65536. */
  fdMapEntries?: number;
  /** How long an event may wait for its process image to reach the cache, ms. Default 500. */
  processWaitMs?: number;
}

export interface FileSensorDeps extends ProcessSensorDeps {
  options?: FileSensorOptions;
}

interface ResolvedFileOptions {
  excludePrefixes: string[];
  excludeCgroupIds: bigint[];
  skipFailedOpens: boolean;
  skipFailed: boolean;
  trackIo: boolean;
  ioReportIntervalMs: number;
  ringBytes: number;
  fdMapEntries: number;
  processWaitMs: number;
}

const OPTION_KEYS = new Set<string>([
  'excludePrefixes', 'excludeCgroupIds', 'skipFailedOpens', 'skipFailed', 'trackIo',
  'ioReportIntervalMs', 'ringBytes', 'fdMapEntries', 'processWaitMs',
]);

/** Validates options and fills defaults; throws an Error that names the bad option. */
export function resolveFileOptions(o: FileSensorOptions = {}): ResolvedFileOptions {
  for (const k of Object.keys(o)) if (!OPTION_KEYS.has(k)) throw new Error(`file sensor: unknown option "${k}"`);
  const bool = (k: keyof FileSensorOptions, d: boolean): boolean => {
    const v = o[k];
    if (v === undefined) return d;
    if (typeof v !== 'boolean') throw new Error(`file sensor: ${k} must be true or false`);
    return v;
  };
  const int = (k: keyof FileSensorOptions, d: number, min: number, max: number): number => {
    const v = o[k];
    if (v === undefined) return d;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Error(`file sensor: ${k} must be an integer in [${min}, ${max}] (got ${String(v)})`);
    return v;
  };
  const ringBytes = int('ringBytes', TH_FILE_EVENTS_DEFAULT_BYTES, 4096, 1 << 30);
  if ((ringBytes & (ringBytes - 1)) !== 0) throw new Error(`file sensor: ringBytes must be a power of 2 (got ${ringBytes})`);
  const cg = o.excludeCgroupIds ?? [];
  if (!Array.isArray(cg) || cg.some((x) => typeof x !== 'bigint' || x <= 0n)) throw new Error('file sensor: excludeCgroupIds must be positive bigints');
  if (cg.length > 64) throw new Error(`file sensor: at most 64 excludeCgroupIds (got ${cg.length})`);
  if (o.excludePrefixes !== undefined && !Array.isArray(o.excludePrefixes)) throw new Error('file sensor: excludePrefixes must be an array of absolute paths');
  return {
    excludePrefixes: normalizePrefixes(o.excludePrefixes ?? DEFAULT_FILE_EXCLUDE),
    excludeCgroupIds: [...cg],
    skipFailedOpens: bool('skipFailedOpens', false),
    skipFailed: bool('skipFailed', false),
    trackIo: bool('trackIo', true),
    ioReportIntervalMs: int('ioReportIntervalMs', 10_000, 0, 86_400_000),
    ringBytes,
    fdMapEntries: int('fdMapEntries', TH_FILE_FDS_DEFAULT_ENTRIES, 1, 1 << 22),
    processWaitMs: int('processWaitMs', 500, 0, 60_000),
  };
}

/** Syscalls hooked at sys_enter + sys_exit (tracepoint names). */
export const FILE_SYSCALLS: readonly string[] = [
  'open', 'openat', 'openat2', 'creat', 'unlink', 'unlinkat', 'rename', 'renameat', 'renameat2',
  'chmod', 'fchmod', 'fchmodat', 'fchmodat2', 'chown', 'fchown', 'lchown', 'fchownat', 'truncate',
  'ftruncate', 'mkdir', 'mkdirat', 'rmdir', 'symlink', 'symlinkat', 'link', 'linkat', 'mount', 'umount',
];
/** Kernels older than these syscalls lack their tracepoints: a failed attach is a note, not an error. */
const OPTIONAL_SYSCALLS = new Set(['fchmodat2', 'openat2']);
const IO_SYSCALLS = ['read', 'readv', 'pread64', 'write', 'writev', 'pwrite64'];
/** A dup of a tracked fd is tracked too (shell redirections dup2 onto stdout). */
const DUP_SYSCALLS = ['dup', 'dup2', 'dup3', 'fcntl'];

/** Periodic reports of files still open use this op (the model has no "io" op yet). */
const IO_REPORT_OP: FileOp = 'open';

const O_CREAT = 0o100;
const O_TMPFILE = 0o20000000; // __O_TMPFILE, part of every O_TMPFILE open

/** nr of the records the I/O sweep makes itself (not from a syscall). */
const NO_SYSCALL = 0xffffffff;

export class FileSensor implements Sensor {
  readonly name = 'file';
  private readonly opts: ResolvedFileOptions;
  private obj?: BpfObject;
  private links: BpfLink[] = [];
  private consumer?: RingConsumer;
  private statsMap?: BpfMap;
  private fdsMap?: BpfMap;
  private state: SensorStatus = { name: 'file', state: 'off', hooks: [] };
  private resolver?: ProcessResolver<FileRecord>;
  private records: FileRecord[] = [];
  private out: BusItem[] = [];
  private timers: NodeJS.Timeout[] = [];
  private kernel?: FileSensorStats;
  private lastDrops = 0;
  /** Path of each tracked open file, by "tgid:fd", for periodic reports. */
  private openPaths = new Map<string, { path: string; openKtime: bigint }>();
  /** Last reported byte total, by "tgid:fd:openKtime". */
  private reported = new Map<string, number>();
  private n = { published: 0, excludedUser: 0, ioReports: 0 };

  constructor(private readonly d: FileSensorDeps) {
    this.opts = resolveFileOptions(d.options);
  }

  async start(): Promise<void> {
    const { native, config, log } = this.d;
    const o = this.opts;
    const objPath = this.d.objectPath ?? path.join(repoRoot(), 'bpf/.output/file.bpf.o');
    const hooks: string[] = [];
    const missing: string[] = [];
    try {
      fs.mkdirSync(config.bpfDir, { recursive: true });
      if (!fs.existsSync(path.join(config.bpfDir, 'tetrahub_procs'))) {
        log.warn(`file sensor: ${config.bpfDir}/tetrahub_procs is not pinned (start the process sensor first); events fall back to the pid's current image`);
      }
      const skip = o.trackIo ? [] : ['enter_close', ...IO_SYSCALLS.map((s) => `io_${s}`), ...DUP_SYSCALLS.map((s) => `dup_${s}`)];
      this.obj = native.openObject(objPath, {
        pinRoot: config.bpfDir,
        mapSizes: { tetrahub_procs: config.processMapEntries, th_file_events: o.ringBytes, th_file_fds: o.fdMapEntries },
        rodata: { agent_tgid: process.pid },
        skipPrograms: skip,
      });
      this.obj.load();
      this.configure(this.obj);

      const bySection = new Map(this.obj.programs().map((p) => [p.section, p.name]));
      const attach = (section: string): void => {
        const prog = bySection.get(section);
        if (!prog) throw new Error(`program for ${section} missing in ${objPath}`);
        this.links.push(this.obj!.attach(prog));
        hooks.push(section);
      };
      // exit before enter: an enter without its exit would only leave stale args.
      for (const sc of FILE_SYSCALLS) {
        const mark = this.links.length;
        try {
          attach(`tracepoint/syscalls/sys_exit_${sc}`);
          attach(`tracepoint/syscalls/sys_enter_${sc}`);
        } catch (e) {
          if (!OPTIONAL_SYSCALLS.has(sc)) throw e;
          for (const l of this.links.splice(mark)) l.destroy();
          hooks.splice(mark);
          missing.push(sc);
        }
      }
      if (o.trackIo) {
        for (const sc of [...IO_SYSCALLS, ...DUP_SYSCALLS]) attach(`tracepoint/syscalls/sys_exit_${sc}`);
        attach('tracepoint/syscalls/sys_enter_close');
      }
      this.statsMap = this.obj.map('th_file_stats');
      this.fdsMap = this.obj.map('th_file_fds');
      this.resolver = new ProcessResolver<FileRecord>(
        this.d.cache,
        this.d.clock,
        (r, proc, parent) => this.build(r, proc, parent),
        o.processWaitMs,
        65536,
        () => this.publish(),
      );
      this.consumer = native.createRingConsumer([this.obj.map('th_file_events')], {
        onBatch: (batch, count) => this.onBatch(batch, count),
      });
      this.consumer.start();
      this.every(1000, () => this.pollStats());
      if (o.trackIo) this.every(o.ioReportIntervalMs || 10_000, () => this.sweepIo(o.ioReportIntervalMs > 0));
      const note = missing.length ? `syscalls without a tracepoint on this kernel: ${missing.join(', ')}` : undefined;
      this.state = { name: 'file', state: 'running', hooks, ...(note ? { note } : {}) };
    } catch (e) {
      const err = e as Error & { verifierLog?: string };
      this.state = { name: 'file', state: 'failed', hooks: [], note: err.message };
      if (err.verifierLog) log.debug(`verifier log:\n${err.verifierLog}`);
      await this.stop();
      throw e;
    }
  }

  /** Writes th_file_config and the cgroup exclusions; before attaching, so no record escapes them. */
  private configure(obj: BpfObject): void {
    const o = this.opts;
    let flags = 0;
    if (o.skipFailedOpens) flags |= TH_FCFG_NO_FAILED_OPENS;
    if (o.skipFailed) flags |= TH_FCFG_NO_FAILED;
    if (o.trackIo) flags |= TH_FCFG_TRACK_IO;
    if (o.excludeCgroupIds.length) {
      const cg = obj.map('th_file_skip_cg');
      const key = Buffer.alloc(8);
      for (const id of o.excludeCgroupIds) {
        key.writeBigUInt64LE(id);
        cg.update(key, Buffer.from([1]));
      }
      flags |= TH_FCFG_SKIP_CGROUPS;
    }
    obj.map('th_file_config').update(Buffer.alloc(4), encodeFileConfig(o.excludePrefixes, flags));
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }

  private onBatch(batch: Buffer, count: number): void {
    this.records.length = 0;
    decodeFileBatch(batch, count, this.records);
    if (this.records.length) this.resolver?.push(this.records);
  }

  private build(r: FileRecord, proc: ProcessInfo, parent: ProcessInfo | undefined): void {
    const { path: p, path2, truncated } = recordPaths(r);
    const filtered = r.op !== 'mount' && r.op !== 'umount' && r.op !== 'symlink' && !truncated;
    if (filtered && this.opts.excludePrefixes.some((x) => underPrefix(p, x))) {
      // '..' or a relative name the kernel could not compare whole
      this.n.excludedUser++;
      return;
    }
    const ev: FileEvent = {
      kind: 'file',
      seq: 0,
      time: this.d.clock.toWall(r.ktime),
      nodeName: this.d.config.nodeName,
      process: proc,
      ...(parent ? { parent } : {}),
      wire: new Map(),
      op: r.op,
      syscall: r.nr === NO_SYSCALL ? '' : syscallName(r.nr),
      path: p,
      ...(path2 !== undefined ? { path2 } : {}),
      truncated,
      flags: r.flags,
      ret: r.ret,
    };
    // open's mode argument means something only when it creates a file
    if (r.nr !== NO_SYSCALL && (r.op === 'chmod' || r.op === 'mkdir' || (r.op === 'open' && r.flags & (O_CREAT | O_TMPFILE)))) {
      ev.mode = r.mode;
    }
    if (r.op === 'chown') {
      ev.uid = r.uid;
      ev.gid = r.gid;
    }
    if (r.op === 'close' || r.nr === NO_SYSCALL) {
      ev.bytesRead = r.bytesRead;
      ev.bytesWritten = r.bytesWritten;
    }
    if (this.opts.trackIo) {
      const key = `${r.pid}:${r.op === 'open' ? r.ret : r.fd}`;
      if (r.op === 'open' && r.ret >= 0 && r.nr !== NO_SYSCALL && this.openPaths.size < this.opts.fdMapEntries) this.openPaths.set(key, { path: p, openKtime: r.ktime });
      else if (r.op === 'close' && r.nr !== NO_SYSCALL) this.openPaths.delete(key);
    }
    this.out.push(ev as unknown as BusItem); // FileEvent joins BusItem when the adapters encode it
  }

  private publish(): void {
    if (!this.out.length) return;
    const items = this.out;
    this.out = [];
    this.n.published += items.length;
    this.d.bus.publish(items);
  }

  /**
   * Reports the bytes of tracked files: periodically for files still open
   * (when periodic), and once as a close for files of processes that exited
   * without closing them; forgets those.
   */
  sweepIo(periodic = true): void {
    const fds = this.fdsMap;
    if (!fds || !this.resolver) return;
    const now = this.d.native.clocks().boottime;
    const seen = new Set<string>();
    const tracked = new Set<string>();
    const reports: FileRecord[] = [];
    for (const k of fds.keys()) {
      const key = decodeFdKey(k);
      const v = fds.lookup(k);
      const io = v ? decodeFdIo(v) : null;
      if (!key || !io) continue;
      tracked.add(`${key.tgid}:${key.fd}`);
      const id = `${key.tgid}:${key.fd}:${io.openKtime}`;
      const total = io.bytesRead + io.bytesWritten;
      const alive = fs.existsSync(`/proc/${key.tgid}`);
      if (!alive) fds.delete(k);
      else seen.add(id);
      if (total === 0 || (alive && (!periodic || this.reported.get(id) === total))) continue;
      this.reported.set(id, total);
      const pk = `${key.tgid}:${key.fd}`;
      const known = this.openPaths.get(pk);
      let p = known && known.openKtime === io.openKtime ? known.path : '';
      if (!p && alive) {
        try {
          p = fs.readlinkSync(`/proc/${key.tgid}/fd/${key.fd}`);
        } catch {
          /* closed meanwhile: its close record reports it */
          continue;
        }
      }
      if (!alive) this.openPaths.delete(pk);
      reports.push({
        ktime: now,
        procKtime: io.procKtime,
        pid: key.tgid,
        tid: key.tgid,
        nr: NO_SYSCALL,
        op: alive ? IO_REPORT_OP : 'close',
        ret: alive ? key.fd : 0,
        rflags: p ? TH_FF_RESOLVED : TH_FF_ERR,
        flags: 0,
        mode: 0,
        uid: 0xffffffff,
        gid: 0xffffffff,
        fd: key.fd,
        bytesRead: io.bytesRead,
        bytesWritten: io.bytesWritten,
        base: '',
        path: p,
        base2: '',
        path2: '',
      });
    }
    for (const id of this.reported.keys()) if (!seen.has(id)) this.reported.delete(id);
    // Files closed without I/O have no close record: forget them here.
    for (const pk of this.openPaths.keys()) if (!tracked.has(pk)) this.openPaths.delete(pk);
    if (reports.length) {
      this.n.ioReports += reports.length;
      this.resolver.push(reports);
    }
  }

  /** Kernel counters; ring drops become loss notices on the bus. */
  private pollStats(): void {
    if (!this.statsMap) return;
    const v = this.statsMap.lookup(Buffer.alloc(4));
    if (!v) return;
    this.kernel = decodeFileStats(v);
    const delta = this.kernel.droppedTotal - this.lastDrops;
    if (delta > 0) {
      this.lastDrops = this.kernel.droppedTotal;
      const now = this.d.clock.now();
      this.d.bus.publish([{ kind: 'lost', seq: 0, time: now, nodeName: this.d.config.nodeName, source: 'kernel_ring', count: delta, wire: new Map() }]);
    }
  }

  /** Current kernel counters (for tests and benchmarks). */
  kernelStats(): FileSensorStats | undefined {
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
    this.statsMap = this.fdsMap = undefined;
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
      file_kernel_records_emitted: k?.emittedTotal ?? 0,
      file_kernel_ring_drops: k?.droppedTotal ?? 0,
      file_kernel_excluded: k?.excluded ?? 0,
      file_kernel_args_full: k?.argsFull ?? 0,
      file_kernel_args_miss: k?.argsMiss ?? 0,
      file_kernel_fds_full: k?.fdsFull ?? 0,
      file_kernel_truncated: k?.truncated ?? 0,
      file_ring_records_consumed: c?.records ?? 0,
      file_ring_batches: c?.batches ?? 0,
      file_decode_errors: fileDecodeErrorTotal(),
      file_excluded_user: this.n.excludedUser,
      file_io_reports: this.n.ioReports,
      file_events_published: this.n.published,
      file_process_exact: r?.exact ?? 0,
      file_process_current: r?.current ?? 0,
      file_process_unknown: r?.unknown ?? 0,
    };
  }
}
