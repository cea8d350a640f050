// Cost of a loaded TracingPolicy on execve: fork+exec+wait of /bin/true by
// bench/spawn-loop.c with (a) no policy, (b) the seed policy shape with
// matchBinaries naming the loop (every execve matches and posts a record),
// (c) the same with matchBinaries naming another binary (filtered in the
// kernel), alternating, medians. CPU µs per exec of the loop and its
// children is the figure that shows in-kernel cost.
//
//   node dist/bench/run.js policy-exec   (or node dist/bench/policy-exec.js [rounds=3] [execsPerLoop=3000])
import { spawnSync } from 'node:child_process';
import { createPolicyLoader } from '../src/policy/engine';
import { parsePolicy } from '../src/policy/parse';
import { startStack } from '../src/sensors/file/testkit';
import { type BenchResult, buildCHelper, kernelSkipReason, median, nowS, section, skipped } from './common';

interface Loop {
  rate: number;
  cpuUsPerExec: number;
}

function loop(bin: string, n: number): Loop {
  const r = spawnSync(bin, [String(n), '/bin/true'], { encoding: 'utf8' });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  const j = JSON.parse(line) as { rate: number; cpuUsPerExec: number };
  return { rate: j.rate, cpuUsPerExec: j.cpuUsPerExec };
}

function policy(name: string, binary: string): string {
  return `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "${name}"}
spec:
  kprobes:
  - call: "sys_execve"
    syscall: true
    args: [{index: 0, type: "string"}, {index: 1, type: "string"}, {index: 2, type: "string"}]
    selectors:
    - matchBinaries: [{operator: In, values: ["${binary}"]}]
`;
}

export async function run(rounds = 3, n = 3000): Promise<BenchResult> {
  section('policy-exec: execve with the seed policy matching / filtered in the kernel / absent');
  const skip = kernelSkipReason();
  if (skip) {
    console.log(`  skipped: ${skip}`);
    return skipped('policy-exec', skip);
  }
  const t0 = nowS();
  const built = buildCHelper('spawn-loop.c', 'spawn-loop');
  if (!built.path) throw new Error(built.error ?? 'cannot build spawn-loop');
  const bin = built.path;
  const st = await startStack('pol-bench');
  const loader = createPolicyLoader({ native: st.native, bus: st.bus, cache: st.cache, clock: st.clock, config: st.config, log: st.log, features: st.native.probeFeatures() });
  const res: Record<string, Loop[]> = { none: [], matching: [], filtered: [] };
  try {
    for (let i = 0; i < rounds; i++) {
      res.none.push(loop(bin, n));
      for (const [k, target] of [['matching', bin], ['filtered', '/usr/bin/nothing-runs-this']] as const) {
        const lp = await loader.load(parsePolicy(policy(`bench-${k}`, target)).policy!, { mode: 'enforce', strict: false });
        res[k].push(loop(bin, n));
        await lp.close();
      }
    }
  } finally {
    await st.close();
  }
  const base = median(res.none.map((x) => x.cpuUsPerExec));
  const cpuOf = (k: string): number => median(res[k].map((x) => x.cpuUsPerExec));
  for (const [k, xs] of Object.entries(res)) {
    const cpu = cpuOf(k);
    console.log(`  ${k.padEnd(9)} ${median(xs.map((x) => x.rate)).toFixed(0).padStart(6)} exec/s  ${cpu.toFixed(1).padStart(7)} CPU µs/exec  (${k === 'none' ? 'baseline' : `${cpu - base >= 0 ? '+' : ''}${(cpu - base).toFixed(1)} µs`})`);
  }
  const m = cpuOf('matching');
  return {
    name: 'policy-exec',
    status: 'ok',
    value: `${m.toFixed(1)} CPU µs/exec with the seed policy matching`,
    baseline: `${base.toFixed(1)} µs without a policy; filtered ${cpuOf('filtered').toFixed(1)} µs`,
    ratio: `${(((m - base) / base) * 100).toFixed(1)} %`,
    seconds: nowS() - t0,
    figures: { none: res.none, matching: res.matching, filtered: res.filtered },
  };
}

if (require.main === module) {
  run(Number(process.argv[2] ?? 3), Number(process.argv[3] ?? 3000)).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
