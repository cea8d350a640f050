// The process cache: turns the kernel's exec/clone/exit records into ProcessInfo
// images with Tetragon's exec_id lineage, and publishes exec/exit events.
//
// Keyed by exec_id; a second index maps pid → its current image. Bounded: exited
// images stay for a grace period so late events still resolve, then go; past the
// capacity the oldest exited (then oldest live) images are evicted and counted.
import type { Credentials, ExecEvent, ExitEvent, ProcessInfo, RuntimeEvent } from '../../model/event';
import type { CloneRecord, ExecRecord, ExitRecord, ProcessRecord } from '../../sensors/process/decode';
import { containerIdFromCgroup, joinArguments, resolveBinary, signalName } from './args';
import type { BootClock } from './clock';
import { execIdOf } from './execId';
import { FLAG, flagString } from './flags';

// Many processes share binaries, working directories and credentials; the
// decoder makes a new string per record, so equal values are shared here
// (bounded tables, reset when full) to keep the per-process cost down.
const INTERN_MAX = 8192;
const strings = new Map<string, string>();
function intern(s: string): string {
  const have = strings.get(s);
  if (have !== undefined) return have;
  if (strings.size >= INTERN_MAX) strings.clear();
  strings.set(s, s);
  return s;
}

const credsTable = new Map<string, Credentials>();
function sharedCreds(uid: number, gid: number, euid: number, egid: number): Credentials {
  const key = `${uid}:${gid}:${euid}:${egid}`;
  let c = credsTable.get(key);
  if (!c) {
    if (credsTable.size >= 1024) credsTable.clear();
    c = Object.freeze({ uid, gid, euid, egid });
    credsTable.set(key, c);
  }
  return c;
}

interface Entry {
  info: ProcessInfo;
  /** Date.now() when it exited or was replaced by an exec; 0 while live. */
  goneAt: number;
}

export interface ProcessCacheOptions {
  nodeName: string;
  clock: BootClock;
  capacity?: number;
  /** How long exited images stay resolvable, in ms. */
  graceMs?: number;
}

export interface ProcessCacheStats {
  size: number;
  live: number;
  capacity: number;
  evictions: number;
  misses: number;
  procfsSeeded: number;
}

export class ProcessCache {
  private byId = new Map<string, Entry>();
  private byPid = new Map<number, string>();
  /** Exited/replaced images in the order they went (so gc and eviction stop early). */
  private gone = new Map<string, number>();
  /**
   * Insertion order of images for evicting live ones: a queue with a moving
   * head, because walking a Map from its start after many deletions is slow.
   * Stale ids (already gone) are skipped when they reach the head.
   */
  private order: string[] = [];
  private orderHead = 0;
  readonly capacity: number;
  private readonly graceMs: number;
  evictions = 0;
  misses = 0;
  procfsSeeded = 0;

  constructor(private readonly opts: ProcessCacheOptions) {
    this.capacity = opts.capacity ?? 65536;
    this.graceMs = opts.graceMs ?? 30_000;
  }

  get nodeName(): string {
    return this.opts.nodeName;
  }

  stats(): ProcessCacheStats {
    return {
      size: this.byId.size,
      live: this.byPid.size,
      capacity: this.capacity,
      evictions: this.evictions,
      misses: this.misses,
      procfsSeeded: this.procfsSeeded,
    };
  }

  execIdOf(ktime: bigint, pid: number): string {
    return execIdOf(this.opts.nodeName, ktime, pid);
  }

  get(execId: string): ProcessInfo | undefined {
    return this.byId.get(execId)?.info;
  }

  /** The current image of a pid, if known. */
  current(pid: number): ProcessInfo | undefined {
    const id = this.byPid.get(pid);
    return id === undefined ? undefined : this.byId.get(id)?.info;
  }

  /** Inserts an image found by the /proc scan at start-up. */
  seed(info: ProcessInfo): void {
    this.insert(info);
    this.procfsSeeded++;
  }

  /** Handles a batch of decoded records; returns the events to publish, in order. */
  apply(records: readonly ProcessRecord[], out: RuntimeEvent[]): void {
    for (const r of records) {
      switch (r.type) {
        case 'exec':
          out.push(this.onExec(r));
          break;
        case 'clone':
          this.onClone(r);
          break;
        case 'exit': {
          const ev = this.onExit(r);
          if (ev) out.push(ev);
          break;
        }
      }
    }
  }

  private lookup(pid: number, ktime: bigint): Entry | undefined {
    return this.byId.get(this.execIdOf(ktime, pid));
  }

  private onClone(r: CloneRecord): void {
    const parent = this.lookup(r.parentPid, r.parentKtime)?.info ?? this.current(r.parentPid);
    const execId = this.execIdOf(r.ktime, r.pid);
    const base: ProcessInfo = parent ?? this.unknown(r.parentPid, r.parentKtime);
    this.insert({
      ...base,
      execId,
      parentExecId: parent ? parent.execId : this.execIdOf(r.parentKtime, r.parentPid),
      pid: r.pid,
      tid: r.tid,
      ktime: r.ktime,
      flags: flagString(flagBits(base.flags) | FLAG.clone),
      startTime: this.opts.clock.toWall(r.ktime),
      refcnt: 1,
    });
  }

  private onExec(r: ExecRecord): ExecEvent {
    let parentEntry = this.lookup(r.parentPid, r.parentKtime);
    if (!parentEntry && r.parentPid !== r.pid) {
      // Unknown image key: fall back to the parent pid's current image.
      const id = this.byPid.get(r.parentPid);
      parentEntry = id === undefined ? undefined : this.byId.get(id);
    }
    if (!parentEntry) this.misses++;
    const cwd = intern(r.cwd);
    let flags = r.flags | FLAG.execve;
    if (cwd === '/') flags |= FLAG.rootcwd;
    const info: ProcessInfo = {
      execId: this.execIdOf(r.ktime, r.pid),
      parentExecId: parentEntry ? parentEntry.info.execId : r.parentKtime > 0n ? this.execIdOf(r.parentKtime, r.parentPid) : '',
      pid: r.pid,
      tid: r.tid,
      ktime: r.ktime,
      creds: sharedCreds(r.uid, r.gid, r.euid, r.egid),
      auid: r.auid,
      cwd,
      binary: intern(resolveBinary(r.filename, cwd)),
      arguments: joinArguments(r.args),
      flags: flagString(flags),
      startTime: this.opts.clock.toWall(r.ktime),
      cgroupId: r.cgroupId,
      docker: containerIdFromCgroup(r.cgroupName),
      refcnt: 1,
    };
    // exec without fork: the previous image of this pid is replaced.
    const prev = this.byPid.get(r.pid);
    if (prev !== undefined) {
      const e = this.byId.get(prev);
      if (e && e.goneAt === 0) this.markGone(prev, e);
    }
    this.insert(info);
    return {
      kind: 'exec',
      seq: 0,
      time: info.startTime,
      nodeName: this.opts.nodeName,
      process: info,
      parent: parentEntry?.info,
      wire: new Map(),
    };
  }

  private onExit(r: ExitRecord): ExitEvent | undefined {
    let entry = this.lookup(r.pid, r.procKtime);
    if (!entry) {
      const id = this.byPid.get(r.pid);
      entry = id === undefined ? undefined : this.byId.get(id);
    }
    if (!entry) this.misses++;
    const info = entry?.info ?? this.unknown(r.pid, r.procKtime);
    if (entry) {
      if (entry.goneAt === 0) this.markGone(info.execId, entry);
      if (this.byPid.get(r.pid) === info.execId) this.byPid.delete(r.pid);
    }
    const parent = info.parentExecId ? this.byId.get(info.parentExecId)?.info : undefined;
    return {
      kind: 'exit',
      seq: 0,
      time: this.opts.clock.toWall(r.ktime),
      nodeName: this.opts.nodeName,
      process: info,
      parent,
      status: r.signal ? 0 : r.status,
      signal: signalName(r.signal),
      wire: new Map(),
    };
  }

  /** A placeholder image for a process we never saw (only pid and start are known). */
  private unknown(pid: number, ktime: bigint): ProcessInfo {
    return {
      execId: this.execIdOf(ktime, pid),
      parentExecId: '',
      pid,
      tid: pid,
      ktime,
      creds: { uid: 0, gid: 0, euid: 0, egid: 0 },
      auid: 0xffffffff,
      cwd: '',
      binary: '',
      args: [],
      arguments: '',
      flags: 'unknown',
      startTime: this.opts.clock.toWall(ktime),
      cgroupId: 0n,
      docker: '',
      refcnt: 0,
    };
  }

  private insert(info: ProcessInfo): void {
    const old = this.byId.get(info.execId);
    if (old) this.gone.delete(info.execId);
    this.byId.set(info.execId, { info, goneAt: 0 });
    this.byPid.set(info.pid, info.execId);
    this.order.push(info.execId);
    if (this.byId.size > this.capacity) this.evict(this.byId.size - this.capacity);
  }

  private markGone(id: string, e: Entry): void {
    e.goneAt = Date.now();
    this.gone.set(id, e.goneAt);
  }

  /** Drops exited images older than the grace period; call periodically. */
  gc(now = Date.now()): number {
    let n = 0;
    for (const [id, at] of this.gone) {
      if (now - at < this.graceMs) break;
      this.gone.delete(id);
      this.byId.delete(id);
      n++;
    }
    this.compactOrder();
    return n;
  }

  /** Evicts the oldest exited images first, then the oldest live ones (Map order = insertion order). */
  private evict(n: number): void {
    for (const id of this.gone.keys()) {
      if (n === 0) return;
      this.gone.delete(id);
      this.byId.delete(id);
      this.evictions++;
      n--;
    }
    while (n > 0 && this.orderHead < this.order.length) {
      const id = this.order[this.orderHead++];
      const e = this.byId.get(id);
      if (!e) continue;
      this.byId.delete(id);
      if (this.byPid.get(e.info.pid) === id) this.byPid.delete(e.info.pid);
      this.evictions++;
      n--;
    }
    this.compactOrder();
  }

  /** Drops the consumed head of the order queue, and ids no longer cached, once it has grown. */
  private compactOrder(): void {
    if (this.orderHead > 4096 && this.orderHead * 2 > this.order.length) {
      this.order = this.order.slice(this.orderHead);
      this.orderHead = 0;
    }
    if (this.order.length > this.capacity * 4) {
      this.order = this.order.filter((id) => this.byId.has(id));
      this.orderHead = 0;
    }
  }
}

function flagBits(flags: string): number {
  let bits = 0;
  for (const name of flags.split(' ')) {
    const b = (FLAG as Record<string, number>)[name];
    if (b) bits |= b;
  }
  return bits & ~FLAG.procFS;
}
