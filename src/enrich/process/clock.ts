// BPF stamps events with CLOCK_BOOTTIME ns; clients want wall time. The offset
// (realtime - boottime) is sampled at start and refreshed so clock steps heal.
import type { WallTime } from '../../model/event';

export class BootClock {
  private offsetNs = 0n;

  constructor(private readonly sample: () => { boottime: bigint; realtime: bigint }) {
    this.refresh();
  }

  refresh(): void {
    const { boottime, realtime } = this.sample();
    this.offsetNs = realtime - boottime;
  }

  toWall(ktime: bigint): WallTime {
    const ns = ktime + this.offsetNs;
    return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
  }

  now(): WallTime {
    const { realtime } = this.sample();
    return { sec: Number(realtime / 1_000_000_000n), nsec: Number(realtime % 1_000_000_000n) };
  }
}

/** Reads CLOCK_BOOTTIME without the addon: /proc/uptime is too coarse, so this is only for tests. */
export function wallFromDate(d = Date.now()): WallTime {
  return { sec: Math.floor(d / 1000), nsec: (d % 1000) * 1_000_000 };
}
