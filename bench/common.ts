// Shared helpers of the benchmarks: result type, skip reasons, formatting,
// per-thread CPU accounting, child processes.
//
// Every figure is printed beside a baseline measured in the same run (the
// machine is shared: other engineers compile while benchmarks run), so ratios
// are the figures to compare across runs, not absolute timings.
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Repository root (holds package.json); works from bench/ and dist/bench/. */
export const ROOT = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = up;
  }
  return dir;
})();

/** Where compiled bench helpers and results go (never into the repository). */
export const OUT_DIR = path.join(ROOT, 'dist', 'bench');

export type BenchStatus = 'ok' | 'skipped' | 'failed';

/** What each benchmark returns; run.ts prints the table and writes the JSON. */
export interface BenchResult {
  name: string;
  status: BenchStatus;
  /** Why it was skipped or failed. */
  reason?: string;
  /** Headline figure, e.g. "1.52 M rec/s". */
  value?: string;
  /** Same-run baseline, e.g. "C libbpf 4.40 M rec/s". */
  baseline?: string;
  /** value against baseline, e.g. "35 % of C". */
  ratio?: string;
  target?: string;
  /** Whether the target was met (undefined: no target or not measurable). */
  met?: boolean;
  /** Wall time of the benchmark itself, s. */
  seconds: number;
  /** Every number measured, machine-readable. */
  figures: Record<string, unknown>;
  notes?: string[];
}

export function skipped(name: string, reason: string): BenchResult {
  return { name, status: 'skipped', reason, seconds: 0, figures: {} };
}

/** Why kernel benchmarks cannot run here, or undefined. */
export function kernelSkipReason(): string | undefined {
  if (process.getuid && process.getuid() !== 0) return 'needs root to load BPF programs';
  if (!fs.existsSync('/sys/kernel/btf/vmlinux')) return 'kernel has no BTF (/sys/kernel/btf/vmlinux)';
  if (!fs.existsSync(path.join(ROOT, 'native/build/Release/tetrahub_native.node'))) return 'native addon not built (native/build/Release/tetrahub_native.node missing; npm run build)';
  return undefined;
}

// ------------------------------------------------------------------ output

export function section(title: string): void {
  const line = '─'.repeat(Math.max(8, 76 - title.length));
  console.log(`\n── ${title} ${line}`);
}

/** Prints aligned "label  value" rows. */
export function rows(list: [string, string][]): void {
  const w = Math.max(...list.map(([k]) => k.length));
  for (const [k, v] of list) console.log(`  ${k.padEnd(w)}  ${v}`);
}

export function note(text: string): void {
  console.log(`  note: ${text}`);
}

/** 1234567 → "1,234,567". */
export function int(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** A rate with a unit: 1.23 M/s, 456 k/s. */
export function rate(n: number, unit = '/s'): string {
  if (!Number.isFinite(n)) return 'n/a';
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M${unit}`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)} k${unit}`;
  return `${n.toFixed(0)}${unit}`;
}

export function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

export function pct(x: number, digits = 1): string {
  return `${(x * 100).toFixed(digits)} %`;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function nowS(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

/**
 * CPU seconds (user + system) this process has used so far, all its threads.
 * Micro-measurements use it instead of wall time: on a shared machine the
 * wall clock also counts the time other processes held the CPU.
 */
export function cpuS(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// --------------------------------------------------------------- CPU time

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const v = Number(r.stdout?.trim());
    clkTck = Number.isFinite(v) && v > 0 ? v : 100;
  }
  return clkTck;
}

/** utime+stime of one /proc stat file, in seconds; undefined when gone. */
function statCpu(file: string): { comm: string; user: number; sys: number } | undefined {
  let s: string;
  try {
    s = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const close = s.lastIndexOf(')');
  const comm = s.slice(s.indexOf('(') + 1, close);
  const f = s.slice(close + 2).split(' ');
  // After "pid (comm) ": state=0 … utime=11, stime=12 (fields 14 and 15 of stat).
  const hz = ticksPerSecond();
  return { comm, user: Number(f[11]) / hz, sys: Number(f[12]) / hz };
}

export interface ThreadCpu {
  tid: number;
  comm: string;
  user: number;
  sys: number;
}

/** CPU seconds of every thread of a process (from /proc/PID/task/TID/stat). */
export function threadCpu(pid = process.pid): ThreadCpu[] {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: ThreadCpu[] = [];
  for (const t of tids) {
    const c = statCpu(`/proc/${pid}/task/${t}/stat`);
    if (c) out.push({ tid: Number(t), ...c });
  }
  return out;
}

/** CPU seconds (user+sys, all threads, children not included) of a process. */
export function processCpu(pid: number): number | undefined {
  const c = statCpu(`/proc/${pid}/stat`);
  return c ? c.user + c.sys : undefined;
}

/** Per-thread CPU seconds used between two threadCpu() snapshots, busiest first. */
export function threadDelta(a: ThreadCpu[], b: ThreadCpu[]): ThreadCpu[] {
  const before = new Map(a.map((t) => [t.tid, t]));
  return b
    .map((t) => {
      const p = before.get(t.tid);
      return { tid: t.tid, comm: t.comm, user: t.user - (p?.user ?? 0), sys: t.sys - (p?.sys ?? 0) };
    })
    .filter((t) => t.user + t.sys > 0)
    .sort((x, y) => y.user + y.sys - (x.user + x.sys));
}

/** Other tetrahub agents running on this machine (they add hooks to every exec). */
export function otherAgents(exclude: number[] = []): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (pid === process.pid || exclude.includes(pid)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.endsWith('tetrahub.js') || a.endsWith('/tetrahub')) && cmd.includes('agent')) out.push(pid);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Load average (1 min) and the number of CPUs, to print beside timings. */
export function machineLoad(): string {
  try {
    const l = fs.readFileSync('/proc/loadavg', 'utf8').split(' ');
    return `load average ${l[0]} ${l[1]} ${l[2]} on ${require('node:os').cpus().length} CPUs`;
  } catch {
    return '';
  }
}

// ---------------------------------------------------------- child processes

/**
 * Starts `node dist/bench/child.js ROLE` with an IPC channel. For profiling,
 * TETRAHUB_BENCH_CHILD_FLAGS adds node flags to every child, e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof".
 */
export function forkChild(role: string, args: string[] = [], execArgv: string[] = []): ChildProcess {
  const extra = (process.env.TETRAHUB_BENCH_CHILD_FLAGS ?? '').split(' ').filter(Boolean);
  return fork(path.join(__dirname, 'child.js'), [role, ...args], { execArgv: [...execArgv, ...extra], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

export interface ChildMessage {
  type: string;
  [k: string]: unknown;
}

/** Resolves with the next IPC message of `type` (rejects on exit or timeout). */
export function nextMessage<T extends ChildMessage = ChildMessage>(child: ChildProcess, type: string, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: unknown) => {
      const msg = m as ChildMessage;
      if (msg && msg.type === 'error') {
        done();
        reject(new Error(String(msg.message)));
      } else if (msg && msg.type === type) {
        done();
        resolve(msg as T);
      }
    };
    const onExit = (code: number | null, sig: string | null) => {
      done();
      reject(new Error(`child exited (${code ?? sig}) before sending ${type}`));
    };
    const t = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${type} from the child`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(t);
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    child.on('message', onMsg);
    child.on('exit', onExit);
  });
}

/** Sends a message to the parent (child side). */
export function toParent(msg: ChildMessage): void {
  process.send?.(msg);
}

/** Kills a child we started (by its own pid) and waits for it to go. */
export async function reap(child: ChildProcess, timeoutMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await gone;
  clearTimeout(t);
}

/** Compiles a C helper of bench/ into dist/bench/ when missing or stale; returns its path or an error. */
export function buildCHelper(source: string, out: string, extra: string[] = []): { path?: string; error?: string } {
  const src = path.join(ROOT, 'bench', source);
  const bin = path.join(OUT_DIR, out);
  try {
    if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs >= fs.statSync(src).mtimeMs) return { path: bin };
    fs.mkdirSync(OUT_DIR, { recursive: true });
    const r = spawnSync('cc', ['-O2', '-Wall', '-o', bin, src, ...extra], { encoding: 'utf8' });
    if (r.status !== 0) return { error: `cc ${source} failed: ${(r.stderr || r.error?.message || '').trim()}` };
    return { path: bin };
  } catch (e) {
    return { error: (e as Error).message };
  }
}
