// Test kit for the file and syscall sensors' kernel tests (integration/*.test.ts)
// and the storm measurement: the real addon, a bus, a process cache fed by the
// real process sensor, and a private pin root under /sys/fs/bpf.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Logger } from '../../agent/log';
import { EventBus } from '../../bus/bus';
import { defaultConfig, type AgentConfig } from '../../config/config';
import { ProcessCache } from '../../enrich/process/cache';
import { BootClock } from '../../enrich/process/clock';
import { loadNative } from '../../kernel/native';
import type { NativeBinding } from '../../kernel/types';
import type { BusItem, FileEvent, SyscallEvent } from '../../model/event';
import { ProcessSensor } from '../process/sensor';
import { repoRoot } from '../../kernel/native';

/** Why kernel tests cannot run here, or undefined when they can. */
export function kernelSkipReason(objects: string[]): string | undefined {
  if (process.getuid && process.getuid() !== 0) return 'needs root to load BPF programs';
  if (!fs.existsSync('/sys/kernel/btf/vmlinux')) return 'kernel has no BTF (/sys/kernel/btf/vmlinux)';
  if (!fs.existsSync('/sys/fs/bpf')) return 'bpffs is not mounted at /sys/fs/bpf';
  const root = repoRoot();
  if (!fs.existsSync(path.join(root, 'native/build/Release/tetrahub_native.node'))) return 'native addon not built (npm run build)';
  for (const o of ['process.bpf.o', ...objects]) {
    if (!fs.existsSync(path.join(root, 'bpf/.output', o))) return `bpf/.output/${o} not built (make -C bpf)`;
  }
  return undefined;
}

/** Items of the bus as the sensors publish them (file/syscall events travel cast to BusItem). */
export type SeenItem = BusItem | FileEvent | SyscallEvent;

export interface Stack {
  native: NativeBinding;
  bus: EventBus;
  cache: ProcessCache;
  clock: BootClock;
  config: AgentConfig;
  log: Logger;
  processSensor: ProcessSensor;
  /** Everything published since start (tests search it). */
  items: SeenItem[];
  fileEvents(): FileEvent[];
  syscallEvents(): SyscallEvent[];
  /** Stops the process sensor and removes the pin root. Stop your own sensor first. */
  close(): Promise<void>;
}

export async function startStack(name: string): Promise<Stack> {
  const native = loadNative();
  const bus = new EventBus();
  const clock = new BootClock(() => native.clocks());
  const config: AgentConfig = { ...defaultConfig(), bpfDir: `/sys/fs/bpf/tetrahub-${name}-${process.pid}`, nodeName: 'test-node' };
  const log = new Logger(process.env.TETRAHUB_TEST_LOG === 'debug' ? 'debug' : 'warn');
  const cache = new ProcessCache({ nodeName: config.nodeName, clock, capacity: 1 << 17 });
  const items: SeenItem[] = [];
  const sub = bus.subscribe({
    name: 'test',
    limit: 1 << 22,
    onReady: () => {
      for (const it of sub.take()) items.push(it);
    },
  });
  const processSensor = new ProcessSensor({ native, bus, cache, clock, config, log });
  await processSensor.start();
  return {
    native,
    bus,
    cache,
    clock,
    config,
    log,
    processSensor,
    items,
    fileEvents: () => items.filter((i): i is FileEvent => i.kind === 'file'),
    syscallEvents: () => items.filter((i): i is SyscallEvent => i.kind === 'syscall'),
    close: async () => {
      sub.close();
      await processSensor.stop();
      fs.rmSync(config.bpfDir, { recursive: true, force: true });
    },
  };
}

/** Polls fn until it returns a value or the timeout passes. */
export async function waitFor<T>(fn: () => T | undefined, ms = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
