// Exec overhead: fork+exec+wait rate of /bin/true (bench/spawn-loop.c) with the
// agent running versus without, in the same run, alternating:
//   without → start agent → with → stop agent, three times; medians.
// The agent is the real one (bin/tetrahub.js agent, started by
// integration/harness startAgent() with private sockets and pin directory).
//
// Besides the wall-clock rate (what the target is about, but inflated by
// whatever else the machine runs), the loop reports its own CPU time per
// exec (user + sys of the loop and its children): the BPF programs on the
// fork/exec/exit hooks run in those processes, so this shows their in-kernel
// cost with less noise. The agent's own CPU per exec (decode, cache, bus) is
// read from /proc/<agent>/stat.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startAgent, type RunningAgent } from '../integration/harness';
import {
  type BenchResult,
  buildCHelper,
  int,
  kernelSkipReason,
  machineLoad,
  median,
  note,
  nowS,
  otherAgents,
  processCpu,
  ROOT,
  rows,
  section,
  skipped,
  sleep,
  threadCpu,
  threadDelta,
} from './common';

const NAME = 'exec';

export interface ExecOptions {
  rounds?: number;
  /** Target wall time of one measured loop, s (the iteration count is calibrated to it). */
  loopSeconds?: number;
}

interface LoopResult {
  n: number;
  seconds: number;
  rate: number;
  usPerExec: number;
  cpuUsPerExec: number;
  failures: number;
}

function loop(bin: string, n: number): LoopResult {
  const r = spawnSync(bin, [String(n)], { encoding: 'utf8', timeout: 120_000 });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  let res: LoopResult;
  try {
    res = JSON.parse(line) as LoopResult;
  } catch {
    throw new Error(`spawn-loop failed (${r.status ?? r.signal}): ${(r.stderr || line).trim().slice(0, 300)}`);
  }
  if (res.failures > 0) throw new Error(`spawn-loop: ${res.failures} of ${n} children failed`);
  return res;
}

interface ProgStat {
  id: number;
  name: string;
  loadedAt: number;
  runNs: number;
  runCnt: number;
}

/** Every loaded BPF program (bpftool -j prog show); run_time_ns/run_cnt count only while kernel.bpf_stats_enabled=1. */
function progStats(): ProgStat[] {
  const r = spawnSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return [];
  try {
    const list = JSON.parse(r.stdout) as { id: number; name?: string; loaded_at?: number; run_time_ns?: number; run_cnt?: number }[];
    return list.map((p) => ({ id: p.id, name: p.name ?? '', loadedAt: p.loaded_at ?? 0, runNs: p.run_time_ns ?? 0, runCnt: p.run_cnt ?? 0 }));
  } catch {
    return [];
  }
}

const STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

/**
 * Run time of the agent's BPF programs (those loaded while it started, in
 * [from, to] epoch seconds) over a short extra loop of n execs with
 * kernel.bpf_stats_enabled switched on (and restored): per program name, the
 * average ns per invocation and the invocations per exec.
 */
function hookCost(bin: string, n: number, from: number, to: number): Record<string, { ns: number; runs: number }> | undefined {
  let prev: string;
  try {
    prev = fs.readFileSync(STATS_SYSCTL, 'utf8').trim();
  } catch {
    return undefined;
  }
  const mine = (l: ProgStat[]) => l.filter((p) => p.loadedAt >= from && p.loadedAt <= to);
  const before = new Map(mine(progStats()).map((p) => [p.id, p]));
  if (before.size === 0) return undefined;
  try {
    fs.writeFileSync(STATS_SYSCTL, '1');
    loop(bin, n);
  } finally {
    fs.writeFileSync(STATS_SYSCTL, prev || '0');
  }
  const out: Record<string, { ns: number; runs: number }> = {};
  for (const p of mine(progStats())) {
    const b = before.get(p.id);
    if (!b) continue;
    const runs = p.runCnt - b.runCnt;
    if (runs <= 0) continue;
    const o = (out[p.name] ??= { ns: 0, runs: 0 });
    o.ns = (o.ns * o.runs + (p.runNs - b.runNs)) / (o.runs + runs);
    o.runs += runs;
  }
  for (const o of Object.values(out)) o.runs /= n;
  return out;
}

function counter(s: { counters: Record<string, number> }, name: string): number {
  return s.counters[name] ?? 0;
}

export async function run(opts: ExecOptions = {}): Promise<BenchResult> {
  const rounds = opts.rounds ?? 3;
  const loopSeconds = opts.loopSeconds ?? 2;
  section('exec: fork+exec rate with vs without the agent');
  const why =
    kernelSkipReason() ??
    (!fs.existsSync(path.join(ROOT, 'bpf/.output/process.bpf.o')) ? 'bpf/.output/process.bpf.o not built (make -C bpf)' : undefined) ??
    (!fs.existsSync(path.join(ROOT, 'dist/src/cli/main.js')) ? 'agent not built (dist/src/cli/main.js missing; npm run build)' : undefined);
  if (why) return skip(why);
  const built = buildCHelper('spawn-loop.c', 'spawn-loop');
  if (!built.path) return skip(built.error ?? 'cannot build bench/spawn-loop.c');
  const bin = built.path;
  const started = nowS();
  let agent: RunningAgent | undefined;
  try {
    // Calibrate: page cache warm, and an iteration count for ~loopSeconds per loop.
    const warm = loop(bin, 200);
    const n = Math.max(300, Math.min(4000, Math.round((loopSeconds * 1e6) / warm.usPerExec)));
    const others = otherAgents();
    rows([
      ['loop', `fork + execve(/bin/true) + waitpid × ${int(n)} (calibrated: ${warm.usPerExec.toFixed(0)} µs/exec in a 200-exec warm-up)`],
      ['machine', machineLoad()],
    ]);
    if (others.length) note(`other tetrahub agents are running (pids ${others.join(', ')}): their hooks slow every exec in both phases`);

    const without: LoopResult[] = [];
    const withAgent: LoopResult[] = [];
    const agentUs: number[] = [];
    const seen: number[] = [];
    const startS: number[] = [];
    const hooks: Record<string, { ns: number; runs: number }>[] = [];
    const agentSplit: { mainUser: number; mainSys: number; otherUser: number; otherSys: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      without.push(loop(bin, n));
      const t0 = nowS();
      const loadedSince = Math.floor(Date.now() / 1000) - 1;
      agent = await startAgent(['--log-level', 'warn']);
      const loadedUntil = Math.ceil(Date.now() / 1000) + 1;
      const bpfDir = `/sys/fs/bpf/tetrahub-it-${process.pid}-${path.basename(agent.dir)}`;
      startS.push(nowS() - t0);
      await sleep(300);
      loop(bin, 100); // the agent's first execs (JIT, cache growth) are not the steady state
      await sleep(100);
      const pid = agent.proc.pid ?? 0;
      const s0 = await agent.status();
      const c0 = processCpu(pid) ?? NaN;
      const th0 = threadCpu(pid);
      const w = loop(bin, n);
      await sleep(150); // let the agent drain the last batch (flush 20 ms)
      const c1 = processCpu(pid) ?? NaN;
      const td = threadDelta(th0, threadCpu(pid));
      const main = td.find((t) => t.tid === pid);
      const rest = td.filter((t) => t.tid !== pid);
      agentSplit.push({
        mainUser: ((main?.user ?? 0) * 1e6) / n,
        mainSys: ((main?.sys ?? 0) * 1e6) / n,
        otherUser: (rest.reduce((a, t) => a + t.user, 0) * 1e6) / n,
        otherSys: (rest.reduce((a, t) => a + t.sys, 0) * 1e6) / n,
      });
      const s1 = await agent.status();
      withAgent.push(w);
      agentUs.push(((c1 - c0) * 1e6) / n);
      seen.push(counter(s1, 'events_published') - counter(s0, 'events_published'));
      const h = hookCost(bin, 300, loadedSince, loadedUntil);
      if (h) hooks.push(h);
      const line = (x: LoopResult) => `${x.rate.toFixed(0)}/s (${x.usPerExec.toFixed(0)} µs wall, ${x.cpuUsPerExec.toFixed(0)} µs CPU)`;
      rows([[`round ${r + 1}`, `without ${line(without[r])}  │  with ${line(w)}  │  agent ${agentUs[r].toFixed(0)} µs CPU/exec, ${int(seen[r])} events published`]]);
      await agent.stop();
      agent = undefined;
      // The harness leaves the agent's pin directory behind; remove ours.
      fs.rmSync(bpfDir, { recursive: true, force: true });
    }

    const rateWithout = median(without.map((x) => x.rate));
    const rateWith = median(withAgent.map((x) => x.rate));
    const slowdown = rateWithout / rateWith - 1;
    const paired = median(without.map((x, i) => withAgent[i].usPerExec / x.usPerExec - 1));
    const cpuWithout = median(without.map((x) => x.cpuUsPerExec));
    const cpuWith = median(withAgent.map((x) => x.cpuUsPerExec));
    const cpuSlowdown = cpuWith / cpuWithout - 1;
    const agentPerExec = median(agentUs);
    const sawAll = seen.every((s) => s >= n);
    // Rounds are pairs measured back to back: their median ratio is the headline.
    // When the baseline itself moves by more than 10 % between rounds, the
    // machine is too busy for a 3 % verdict; the CPU-per-exec figure still holds.
    const spread = Math.max(...without.map((x) => x.usPerExec)) / Math.min(...without.map((x) => x.usPerExec)) - 1;
    const noisy = spread > 0.1;
    const met = noisy ? undefined : paired <= 0.03;
    // Per program: median over rounds of ns/run and runs/exec; total = Σ ns × runs per exec.
    const hookNs: Record<string, { ns: number; perExec: number }> = {};
    for (const name of new Set(hooks.flatMap((h) => Object.keys(h)))) {
      const v = hooks.map((h) => h[name]).filter((x): x is { ns: number; runs: number } => x !== undefined);
      hookNs[name] = { ns: median(v.map((x) => x.ns)), perExec: median(v.map((x) => x.runs)) };
    }
    const hookSum = Object.values(hookNs).reduce((a, b) => a + b.ns * b.perExec, 0);
    rows([
      ['median rate without', `${rateWithout.toFixed(0)} exec/s`],
      ['median rate with', `${rateWith.toFixed(0)} exec/s`],
      ['slowdown (wall)', `${(paired * 100).toFixed(1)} % (median of the per-round with/without pairs; ratio of the medians ${(slowdown * 100).toFixed(1)} %)`],
      ['baseline spread', `the without-agent runs differ by ${(spread * 100).toFixed(0)} %${noisy ? ': too noisy for a verdict on 3 %, see the CPU figures' : ''}`],
      ['loop CPU per exec', `${cpuWithout.toFixed(0)} → ${cpuWith.toFixed(0)} µs (${cpuSlowdown >= 0 ? '+' : ''}${(cpuSlowdown * 100).toFixed(1)} %: in-kernel hook cost, load-independent)`],
      [
        'BPF hook run time',
        Object.keys(hookNs).length
          ? `${(hookSum / 1000).toFixed(1)} µs per fork+exec+exit: ${Object.entries(hookNs)
              .filter(([, v]) => v.perExec >= 0.05)
              .sort((x, y) => y[1].ns * y[1].perExec - x[1].ns * x[1].perExec)
              .map(([k, v]) => `${k} ${(v.ns / 1000).toFixed(1)} µs × ${v.perExec.toFixed(1)}`)
              .join(', ')} per exec (kernel.bpf_stats_enabled during a 300-exec loop)`
          : 'not measured (bpftool or kernel.bpf_stats_enabled unavailable)',
      ],
      ['hooks vs baseline', hookSum ? `BPF run time alone is ${((hookSum / 1000 / cpuWithout) * 100).toFixed(1)} % of the CPU a fork+exec+exit of /bin/true takes without the agent: a floor for the slowdown that does not depend on the machine's load` : 'n/a'],
      [
        'other agent programs',
        Object.entries(hookNs)
          .filter(([, v]) => v.perExec < 0.05)
          .map(([k, v]) => `${k} ${(v.ns / 1000).toFixed(1)} µs/run`)
          .join(', ') || 'none ran',
      ],
      ['agent CPU per exec', `${agentPerExec.toFixed(0)} µs (user space: ring consumer, decode, process cache, bus; ≈ ${((agentPerExec * rateWith) / 1e4).toFixed(1)} % of a core at this rate)`],
      [
        'agent CPU split',
        `JS main thread ${median(agentSplit.map((a) => a.mainUser)).toFixed(0)} µs user + ${median(agentSplit.map((a) => a.mainSys)).toFixed(0)} µs sys; other threads (ring consumer, libuv, GC) ${median(agentSplit.map((a) => a.otherUser)).toFixed(0)} µs user + ${median(agentSplit.map((a) => a.otherSys)).toFixed(0)} µs sys (per exec, 10 ms tick resolution)`,
      ],
      ['agent saw the execs', `${sawAll ? 'yes' : 'NO'}: events published per measured loop ${seen.map(int).join(', ')} for ${int(n)} execs (exec + exit each, plus other processes)`],
      ['agent start time', `${startS.map((s) => s.toFixed(1)).join(', ')} s`],
      ['target', `slowdown ≤ 3 % → ${met === undefined ? 'NOT JUDGED (machine too busy)' : met ? 'MET' : 'NOT MET'}`],
    ]);
    note('wall-clock and loop-CPU figures move with whatever else runs on this 2-CPU machine; the BPF run time and the agent CPU per exec are the agent\'s own costs');
    return {
      name: NAME,
      status: 'ok',
      value: `${rateWith.toFixed(0)} exec/s with agent`,
      baseline: `${rateWithout.toFixed(0)} exec/s without`,
      ratio: `${(paired * 100).toFixed(1)} % slower${noisy ? ' (noisy)' : ''}; CPU/exec ${cpuSlowdown >= 0 ? '+' : ''}${(cpuSlowdown * 100).toFixed(1)} %`,
      target: 'slowdown ≤ 3 %',
      met,
      seconds: nowS() - started,
      figures: {
        iterations: n,
        rounds,
        without,
        with: withAgent,
        rateWithout,
        rateWith,
        slowdownOfMedians: slowdown,
        pairedSlowdown: paired,
        baselineSpread: spread,
        noisy,
        cpuUsPerExecWithout: cpuWithout,
        cpuUsPerExecWith: cpuWith,
        cpuSlowdown,
        agentCpuUsPerExec: agentUs,
        agentCpuSplitUsPerExec: agentSplit,
        eventsPublished: seen,
        agentStartSeconds: startS,
        bpfPrograms: hookNs,
        bpfNsPerExec: hookSum,
        bpfShareOfBaselineCpu: hookSum / 1000 / cpuWithout,
        otherAgents: others,
      },
    };
  } catch (e) {
    return { name: NAME, status: 'failed', reason: (e as Error).message, seconds: nowS() - started, figures: {} };
  } finally {
    if (agent) await agent.stop().catch(() => undefined);
  }
}

function skip(reason: string): BenchResult {
  console.log(`  skipped: ${reason}`);
  return skipped(NAME, reason);
}
