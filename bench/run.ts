// `npm run bench` entry: runs the benchmarks (all, or those named on the
// command line), prints one block of figures per benchmark with its same-run
// baseline, then a summary table, and writes dist/bench-results.json.
//
//   node dist/bench/run.js                 # all
//   node dist/bench/run.js pipeline fanout # some
//
// Benchmarks skip themselves with a printed reason when they cannot run here
// (not root, addon or BPF objects not built, ...). Timings are never asserted:
// the machine is shared, so compare the ratios, not the absolute figures.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type BenchResult, machineLoad, nowS, ROOT } from './common';
import * as connectPolicy from './connect-policy';
import * as exec from './exec';
import * as fanout from './fanout';
import * as filestorm from './filestorm';
import * as identity from './identity';
import * as memory from './memory';
import * as merge from './merge';
import * as pipeline from './pipeline';
import * as policyExec from './policy-exec';

const BENCHMARKS: { name: string; what: string; run: () => Promise<BenchResult> }[] = [
  { name: 'pipeline', what: 'ring → decoded records/s vs plain C libbpf', run: () => pipeline.run() },
  { name: 'exec', what: 'fork+exec rate with vs without the agent', run: () => exec.run() },
  { name: 'memory', what: 'agent data structures with 50,000 live processes', run: () => memory.run() },
  { name: 'fanout', what: '4 GetFlows follow subscribers at 50,000 events/s', run: () => fanout.run() },
  { name: 'filestorm', what: 'open+close storm with the file sensor vs without', run: () => filestorm.run() },
  { name: 'identity', what: 'connect storm: no sensor / net sensor / net sensor + Cilium identity lookup', run: () => identity.run() },
  { name: 'connect-policy', what: 'connect storm with a 5-selector connect policy (identity lookup per connect) vs none', run: () => connectPolicy.run() },
  { name: 'policy-exec', what: 'execve cost with the seed TracingPolicy matching / filtered in the kernel / absent', run: () => policyExec.run() },
  { name: 'merge', what: 'Cilium flows/s the Hubble merge decodes and enriches on one core, vs pass-through', run: () => merge.run() },
];

export const RESULTS_FILE = path.join(ROOT, 'dist', 'bench-results.json');

function table(results: BenchResult[]): void {
  const head = ['benchmark', 'result', 'same-run baseline', 'ratio', 'target', 'met'];
  const body = results.map((r) => [
    r.name,
    r.status === 'ok' ? r.value ?? '' : `${r.status.toUpperCase()}: ${r.reason ?? ''}`,
    r.baseline ?? '',
    r.ratio ?? '',
    r.target ?? '',
    r.status !== 'ok' ? '-' : r.met === undefined ? (r.target ? '?' : '') : r.met ? 'yes' : 'NO',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join(' │ ');
  console.log(`\n${'═'.repeat(Math.min(160, w.reduce((a, b) => a + b + 3, 0)))}`);
  console.log(line(head));
  console.log(w.map((n) => '─'.repeat(n)).join('─┼─'));
  for (const b of body) console.log(line(b));
}

async function main(argv: string[]): Promise<number> {
  const wanted = argv.filter((a) => !a.startsWith('-'));
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log('usage: node dist/bench/run.js [benchmark...]\n');
    for (const b of BENCHMARKS) console.log(`  ${b.name.padEnd(9)} ${b.what}`);
    return 0;
  }
  const unknown = wanted.filter((w) => !BENCHMARKS.some((b) => b.name === w));
  if (unknown.length) {
    console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHMARKS.map((b) => b.name).join(', ')}`);
    return 2;
  }
  const selected = wanted.length ? BENCHMARKS.filter((b) => wanted.includes(b.name)) : BENCHMARKS;
  const t0 = nowS();
  console.log(`tetrahub benchmarks: ${selected.map((b) => b.name).join(', ')}`);
  console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, kernel ${os.release()}; ${machineLoad()}`);
  console.log('Figures are printed beside a baseline measured in the same run; compare ratios across runs.');

  const results: BenchResult[] = [];
  for (const b of selected) {
    let r: BenchResult;
    try {
      r = await b.run();
    } catch (e) {
      r = { name: b.name, status: 'failed', reason: (e as Error).message, seconds: 0, figures: {} };
      console.log(`  FAILED: ${(e as Error).stack ?? e}`);
    }
    if (r.status === 'failed') console.log(`  FAILED: ${r.reason}`);
    results.push(r);
  }

  table(results);
  const doc = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    kernel: os.release(),
    load: fs.readFileSync('/proc/loadavg', 'utf8').trim(),
    seconds: nowS() - t0,
    results,
  };
  try {
    fs.mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
    fs.writeFileSync(RESULTS_FILE, JSON.stringify(doc, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
    console.log(`\nwrote ${path.relative(process.cwd(), RESULTS_FILE) || RESULTS_FILE} (${(nowS() - t0).toFixed(0)} s)`);
  } catch (e) {
    console.log(`\ncould not write ${RESULTS_FILE}: ${(e as Error).message}`);
  }
  return results.some((r) => r.status === 'failed') ? 1 : 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
