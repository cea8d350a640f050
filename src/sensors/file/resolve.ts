// Gives each file/syscall record its process image from the process cache.
//
// These records come through their own ring and consumer, so a record can be
// decoded before the exec (or clone) record of its process reached the cache.
// Records therefore wait in a FIFO until their exact image (pid + image ktime
// from tetrahub_procs) is in the cache, at most waitMs; then they fall back to
// the pid's current image, or to a placeholder. FIFO order keeps each
// process's events in the order the kernel emitted them.
import type { ProcessCache } from '../../enrich/process/cache';
import type { BootClock } from '../../enrich/process/clock';
import type { ProcessInfo } from '../../model/event';

export interface ProcessKeyed {
  pid: number;
  /** ktime of the process image, 0n when the kernel did not know it. */
  procKtime: bigint;
}

export interface ResolverCounters {
  /** Records matched without falling back: their exact image (exec_id), or the pid's current image when the kernel had no image key. */
  exact: number;
  /** Records that fell back to the pid's current image. */
  current: number;
  /** Records whose process was unknown (placeholder image). */
  unknown: number;
}

interface Pending<R> {
  r: R;
  deadline: number;
}

export class ProcessResolver<R extends ProcessKeyed> {
  private queue: Array<Pending<R>> = [];
  private head = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  readonly counters: ResolverCounters = { exact: 0, current: 0, unknown: 0 };

  constructor(
    private readonly cache: ProcessCache,
    private readonly clock: BootClock,
    /** Receives each record with its image, in order. */
    private readonly sink: (r: R, proc: ProcessInfo, parent: ProcessInfo | undefined) => void,
    private readonly waitMs = 500,
    private readonly maxQueued = 65536,
    /** Called after a drain that handed records to sink (e.g. to publish a batch). */
    private readonly flush: () => void = () => undefined,
  ) {}

  get queued(): number {
    return this.queue.length - this.head;
  }

  push(records: readonly R[]): void {
    const deadline = Date.now() + this.waitMs;
    for (const r of records) this.queue.push({ r, deadline });
    this.drain(false);
  }

  /** Hands over every record that is resolvable or out of time; force: all. */
  drain(force: boolean): void {
    const now = Date.now();
    let n = 0;
    while (this.head < this.queue.length) {
      const p = this.queue[this.head];
      const exact = this.exact(p.r);
      if (exact) {
        this.counters.exact++;
        this.deliver(p.r, exact);
      } else if (force || now >= p.deadline || this.queued > this.maxQueued) {
        this.deliver(p.r, this.fallback(p.r));
      } else {
        break;
      }
      this.head++;
      n++;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    } else if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    if (n) this.flush();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.drain(true);
  }

  private schedule(): void {
    if (this.stopped || this.timer || this.queued === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drain(false);
    }, 25);
    this.timer.unref();
  }

  private exact(r: R): ProcessInfo | undefined {
    if (r.procKtime !== 0n) return this.cache.get(this.cache.execIdOf(r.procKtime, r.pid));
    // No image key from the kernel: the pid's current image is the best there is.
    return this.cache.current(r.pid);
  }

  private fallback(r: R): ProcessInfo {
    const cur = this.cache.current(r.pid);
    if (cur) {
      this.counters.current++;
      return cur;
    }
    this.counters.unknown++;
    return placeholder(this.cache, this.clock, r.pid, r.procKtime);
  }

  private deliver(r: R, proc: ProcessInfo): void {
    const parent = proc.parentExecId ? this.cache.get(proc.parentExecId) : undefined;
    this.sink(r, proc, parent);
  }
}

/** An image for a process the cache never saw: only pid and image ktime are known. */
export function placeholder(cache: ProcessCache, clock: BootClock, pid: number, ktime: bigint): ProcessInfo {
  return {
    execId: ktime ? cache.execIdOf(ktime, pid) : '',
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
