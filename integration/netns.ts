// Test fixtures of the network and DNS tests: two network namespaces joined by a
// veth pair with private 10.x addresses, helpers to run processes inside them
// (everything made is removed by destroy(), destroyAllNetns() and at process
// exit, even after a failure half-way; traffic stays inside them or on
// loopback), and the sensor rig (process + net + DNS sensors on this kernel).
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Logger } from '../src/agent/log';
import { EventBus } from '../src/bus/bus';
import { defaultConfig, type AgentConfig } from '../src/config/config';
import { DnsNameCache } from '../src/enrich/dns/cache';
import { ProcessCache } from '../src/enrich/process/cache';
import { BootClock } from '../src/enrich/process/clock';
import { loadNative } from '../src/kernel/native';
import type { BusItem, DnsEvent, ExecEvent, NetEvent } from '../src/model/event';
import { DnsSensor, type DnsSensorOptions } from '../src/sensors/dns/sensor';
import { NetKernel } from '../src/sensors/net/kernel';
import { NetSensor, type NetSensorOptions } from '../src/sensors/net/sensor';
import { ProcessSensor } from '../src/sensors/process/sensor';
import { kernelSkipReason, ROOT } from './harness';

/** Why namespaces cannot be built here, or undefined when they can. */
export function netnsSkipReason(): string | undefined {
  if (process.getuid && process.getuid() !== 0) return 'needs root to create network namespaces';
  if (!fs.existsSync('/proc/self/ns/net')) return 'kernel without network namespaces';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'iproute2 (ip) is not installed';
  }
  return undefined;
}

function ip(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`ip ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`);
  }
}

export interface VethPair {
  /** Namespace names (ip netns). */
  nsA: string;
  nsB: string;
  ifA: string;
  ifB: string;
  /** IPv4 addresses of A and B on the veth, one /24. */
  addrA: string;
  addrB: string;
  /** Network namespace inodes (what the sensor reports as netns). */
  inodeA: number;
  inodeB: number;
  /** Starts `cmd args` inside a namespace (ip netns exec, which execs: the child pid is cmd's). */
  spawnIn(ns: string, cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Runs `cmd args` inside a namespace and returns its stdout; throws on failure. */
  execIn(ns: string, cmd: string, args: string[], timeoutMs?: number): string;
  /** A resolv.conf for processes started in `ns` (ip netns exec bind-mounts /etc/netns/<ns>/). */
  setResolver(ns: string, nameserver: string): void;
  destroy(): void;
}

const live = new Set<VethPair>();
let seq = 0;

process.once('exit', () => {
  destroyAllNetns();
  killHostChildren();
});

/** Removes every pair this process built and has not destroyed yet. */
export function destroyAllNetns(): void {
  for (const p of [...live]) p.destroy();
}

/**
 * Builds namespaces `A` and `B` joined by a veth pair, A = 10.<a>.<b>.1 and
 * B = 10.<a>.<b>.2 (/24, derived from the pid so parallel runs do not clash),
 * both with loopback up.
 */
export function createVethPair(): VethPair {
  const n = seq++;
  const tag = `${process.pid % 100000}x${n}`;
  const nsA = `thnet-${tag}-a`;
  const nsB = `thnet-${tag}-b`;
  const ifA = `th${tag}a`.slice(0, 15);
  const ifB = `th${tag}b`.slice(0, 15);
  const net = `10.${200 + (process.pid % 50)}.${(Math.floor(process.pid / 50) + n * 7) % 250}`;
  const addrA = `${net}.1`;
  const addrB = `${net}.2`;
  const children = new Set<ChildProcess>();
  const etcDirs: string[] = [];
  let destroyed = false;

  const pair: VethPair = {
    nsA,
    nsB,
    ifA,
    ifB,
    addrA,
    addrB,
    inodeA: 0,
    inodeB: 0,
    spawnIn(ns, cmd, args, opts = {}) {
      const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
      collectLines(child);
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    execIn(ns, cmd, args, timeoutMs = 20_000) {
      return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
    },
    setResolver(ns, nameserver) {
      const dir = path.join('/etc/netns', ns);
      fs.mkdirSync(dir, { recursive: true });
      etcDirs.push(dir);
      fs.writeFileSync(path.join(dir, 'resolv.conf'), `nameserver ${nameserver}\noptions timeout:2 attempts:1\n`);
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      live.delete(pair);
      for (const c of children) c.kill('SIGKILL');
      for (const ns of [nsA, nsB]) {
        try {
          ip(['netns', 'del', ns]); // takes its end of the veth (and the peer) with it
        } catch {
          /* not created */
        }
      }
      try {
        ip(['link', 'del', ifA]); // only if it never left the host namespace
      } catch {
        /* gone with the namespace */
      }
      for (const d of etcDirs) fs.rmSync(d, { recursive: true, force: true });
    },
  };
  live.add(pair);
  try {
    ip(['netns', 'add', nsA]);
    ip(['netns', 'add', nsB]);
    ip(['link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB]);
    ip(['link', 'set', ifA, 'netns', nsA]);
    ip(['link', 'set', ifB, 'netns', nsB]);
    ip(['-n', nsA, 'addr', 'add', `${addrA}/24`, 'dev', ifA]);
    ip(['-n', nsB, 'addr', 'add', `${addrB}/24`, 'dev', ifB]);
    for (const [ns, dev] of [
      [nsA, ifA],
      [nsB, ifB],
    ]) {
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      ip(['-n', ns, 'link', 'set', dev, 'up']);
    }
    pair.inodeA = fs.statSync(`/run/netns/${nsA}`).ino;
    pair.inodeB = fs.statSync(`/run/netns/${nsB}`).ino;
  } catch (e) {
    pair.destroy();
    throw e;
  }
  return pair;
}

// ---- sensor rig shared by integration/net.test.ts and dns.test.ts ----------


/** Why the net/DNS kernel tests cannot run here, or undefined. */
export function netRigSkipReason(): string | undefined {
  const k = kernelSkipReason() ?? netnsSkipReason();
  if (k) return k;
  if (!fs.existsSync(path.join(ROOT, 'bpf/.output/net.bpf.o'))) return 'bpf/.output/net.bpf.o not built (make -C bpf)';
  if (!fs.existsSync('/proc/mounts') || !fs.readFileSync('/proc/mounts', 'utf8').includes(' cgroup2 ')) return 'no cgroup2 mount for the cgroup socket hooks';
  return undefined;
}

type AnyEvent = BusItem | NetEvent | DnsEvent;

export interface NetRig {
  config: AgentConfig;
  bus: EventBus;
  cache: ProcessCache;
  names: DnsNameCache;
  kernel: NetKernel;
  net: NetSensor;
  dns?: DnsSensor;
  proc: ProcessSensor;
  /** Everything published so far. */
  events: AnyEvent[];
  netEvents(): NetEvent[];
  dnsEvents(): DnsEvent[];
  /** The latest exec of pid (ip netns exec: the command's image, not ip's). */
  execOf(pid: number): ExecEvent | undefined;
  stop(): Promise<void>;
}

/**
 * The agent's sensor wiring on the real kernel, in this process: process
 * sensor (for exec_ids and the pinned process map), then NetSensor and
 * optionally DnsSensor on one shared NetKernel, under a private pin root.
 */
export async function startNetRig(opts: { dns?: DnsSensorOptions; net?: NetSensorOptions } = {}): Promise<NetRig> {
  const native = loadNative();
  const clock = new BootClock(() => native.clocks());
  const pinRoot = `/sys/fs/bpf/tetrahub-netit-${process.pid}-${seq++}`;
  const config: AgentConfig = { ...defaultConfig(), nodeName: 'it-node', bpfDir: pinRoot };
  const log = new Logger('warn');
  const bus = new EventBus();
  const cache = new ProcessCache({ nodeName: config.nodeName, clock });
  const names = new DnsNameCache();
  const events: AnyEvent[] = [];
  const sub = bus.subscribe({
    name: 'netns-rig',
    limit: 1_000_000,
    onReady: () => {
      for (const it of sub.take()) events.push(it);
    },
  });
  const proc = new ProcessSensor({ native, bus, cache, clock, config, log });
  const kernel = new NetKernel({ native, bus, clock, config, log });
  const net = new NetSensor({ native, bus, cache, clock, config, log, kernel, dnsNames: names }, opts.net);
  const dns = opts.dns ? new DnsSensor({ native, bus, cache, clock, config, log, kernel, dnsNames: names }, opts.dns) : undefined;
  const started: { stop(): Promise<void> }[] = [];
  const stop = async (): Promise<void> => {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    sub.close();
    fs.rmSync(pinRoot, { recursive: true, force: true });
  };
  try {
    for (const s of [proc, net, ...(dns ? [dns] : [])]) {
      await s.start();
      started.push(s);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const kindOf = (e: AnyEvent): string => (e as { kind: string }).kind;
  return {
    config,
    bus,
    cache,
    names,
    kernel,
    net,
    dns,
    proc,
    events,
    netEvents: () => events.filter((e): e is NetEvent => kindOf(e) === 'net'),
    dnsEvents: () => events.filter((e): e is DnsEvent => kindOf(e) === 'dns'),
    execOf: (pid) => events.filter((e): e is ExecEvent => kindOf(e) === 'exec' && (e as ExecEvent).process.pid === pid).pop(),
    stop,
  };
}

interface Output {
  lines: string[];
  partial: string;
  err: string;
  exitCode: number | null | undefined;
  wake: Set<() => void>;
}

const outputs = new WeakMap<ChildProcess, Output>();

/** Starts collecting a child's stdout lines (idempotent); call right after spawning. */
export function collectLines(child: ChildProcess): Output {
  let o = outputs.get(child);
  if (o) return o;
  const out: Output = { lines: [], partial: '', err: '', exitCode: undefined, wake: new Set() };
  o = out;
  outputs.set(child, out);
  const notify = (): void => {
    for (const w of [...out.wake]) w();
  };
  child.stdout?.on('data', (d: Buffer) => {
    // Complete lines only: a line may arrive in pieces.
    const parts = (out.partial + d.toString()).split('\n');
    out.partial = parts.pop() ?? '';
    out.lines.push(...parts);
    notify();
  });
  child.stderr?.on('data', (d: Buffer) => (out.err += d.toString()));
  child.once('exit', (code) => {
    if (out.partial) out.lines.push(out.partial);
    out.partial = '';
    out.exitCode = code;
    notify();
  });
  return out;
}

const hostChildren = new Set<ChildProcess>();

/** Spawns a host process with its stdout lines collected; killed at exit if still running. */
export function spawnCollected(cmd: string, args: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  collectLines(child);
  hostChildren.add(child);
  child.once('exit', () => hostChildren.delete(child));
  return child;
}

/** Kills host processes started by spawnCollected that are still running (a failed test leaves servers waiting). */
export function killHostChildren(): void {
  for (const c of hostChildren) c.kill('SIGKILL');
  hostChildren.clear();
}

/** Waits until the child has printed a line matching `re` (at any time since it started); returns it. */
export function waitForLine(child: ChildProcess, re: RegExp, ms = 10_000): Promise<string> {
  const o = collectLines(child);
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const line = o.lines.find((l) => re.test(l));
      if (line !== undefined) done(() => resolve(line));
      else if (o.exitCode !== undefined) done(() => reject(new Error(`exited (${o.exitCode}) before a line matching ${re}; stdout: ${o.lines.join('|')} stderr: ${o.err}`)));
    };
    const t = setTimeout(() => done(() => reject(new Error(`no line matching ${re} within ${ms} ms; stdout: ${o.lines.join('|')} stderr: ${o.err}`))), ms);
    const done = (f: () => void): void => {
      clearTimeout(t);
      o.wake.delete(check);
      f();
    };
    o.wake.add(check);
    check();
  });
}

/** Resolves with the exit code. */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (c) => r(c)));
}
