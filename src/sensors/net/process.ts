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
