// Which process a socket record belongs to: the exact image (tgid + the image
// ktime the kernel carried), else the pid's current image, else a placeholder
// that at least keeps the pid (the event is still worth publishing).
import type { ProcessCache } from '../../enrich/process/cache';
import type { BootClock } from '../../enrich/process/clock';
import type { ProcessInfo } from '../../model/event';

export interface ResolvedProcess {
  process: ProcessInfo;
  parent?: ProcessInfo;
  /** True when only a placeholder could be built. */
  unknown: boolean;
}

/**
 * resolveProcess with a memo of each pid's last resolved image: sockets of one
 * process come in runs, and building an exec_id (base64) per record is the
 * costly part. Only exact (tgid, image ktime) hits are reused; images are
 * immutable, so a memo entry can be stale only in being kept alive longer.
 */
export class ProcessResolver {
  private memo = new Map<number, { ktime: bigint; r: ResolvedProcess }>();

  constructor(
    private readonly cache: ProcessCache,
    private readonly clock: BootClock,
    private readonly capacity = 4096,
  ) {}

  resolve(tgid: number, procKtime: bigint): ResolvedProcess {
    const m = procKtime > 0n ? this.memo.get(tgid) : undefined;
    if (m && m.ktime === procKtime) return m.r;
    const r = resolveProcess(this.cache, this.clock, tgid, procKtime);
    if (!r.unknown && procKtime > 0n && r.process.ktime === procKtime) {
      if (this.memo.size >= this.capacity) this.memo.clear();
      this.memo.set(tgid, { ktime: procKtime, r });
    }
    return r;
  }
}

export function resolveProcess(cache: ProcessCache, clock: BootClock, tgid: number, procKtime: bigint): ResolvedProcess {
  let info: ProcessInfo | undefined;
  if (tgid > 0) {
    if (procKtime > 0n) info = cache.get(cache.execIdOf(procKtime, tgid));
    info ??= cache.current(tgid);
  }
  if (!info) return { process: placeholder(cache, clock, tgid, procKtime), unknown: true };
  const parent = info.parentExecId ? cache.get(info.parentExecId) : undefined;
  return { process: info, parent, unknown: false };
}

function placeholder(cache: ProcessCache, clock: BootClock, pid: number, ktime: bigint): ProcessInfo {
  return {
    execId: pid > 0 && ktime > 0n ? cache.execIdOf(ktime, pid) : '',
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
    startTime: clock.toWall(ktime),
    cgroupId: 0n,
    docker: '',
    refcnt: 0,
  };
}
