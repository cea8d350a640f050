// `filestorm`: an open+close storm on one file with the file sensor attached
// versus without it, in the same run (src/sensors/file/storm.ts does the
// work in a child process and prints JSON), plus paced storms that find the
// highest event rate the sensor follows before the first ring drop.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type BenchResult, kernelSkipReason, nowS, ROOT, rows, section, skipped } from './common';

const NAME = 'filestorm';

interface StormDoc {
  opens: number;
  withoutSensor: { opensPerSec: number };
  withSensor: { opensPerSec: number; kernelEmitted: number; kernelDropped: number; published: number; firstDrop: { eventsPerSecBeforeDrop: number } | null };
  slowdown?: number;
  paced: { target: number; achieved: number; dropped: number; published: number }[];
}

export async function run(opens = 200_000): Promise<BenchResult> {
  section('filestorm: open+close storm, file sensor on vs off');
  const script = path.join(ROOT, 'dist/src/sensors/file/storm.js');
  const why = kernelSkipReason() ?? (!fs.existsSync(path.join(ROOT, 'bpf/.output/file.bpf.o')) ? 'bpf/.output/file.bpf.o not built (make -C bpf)' : undefined);
  if (why) {
    console.log(`  skipped: ${why}`);
    return skipped(NAME, why);
  }
  const t0 = nowS();
  const r = spawnSync(process.execPath, [script, String(opens), '1'], { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) return { name: NAME, status: 'failed', reason: (r.stderr || `exit ${r.status}`).trim().split('\n').slice(-3).join(' '), seconds: nowS() - t0, figures: {} };
  const doc = JSON.parse(r.stdout) as StormDoc;
  const off = doc.withoutSensor.opensPerSec;
  const on = doc.withSensor.opensPerSec;
  const slower = (1 - on / off) * 100;
  const clean = doc.paced.filter((p) => p.dropped === 0);
  const maxClean = clean.length ? Math.max(...clean.map((p) => p.achieved)) : 0;
  rows([
    ['without sensor', `${off.toLocaleString('en-US')} open+close/s`],
    ['with sensor', `${on.toLocaleString('en-US')} open+close/s (${slower.toFixed(1)} % slower)`],
    ['kernel records', `${doc.withSensor.kernelEmitted.toLocaleString('en-US')} emitted, ${doc.withSensor.kernelDropped.toLocaleString('en-US')} dropped (counted)`],
    ['first drop', doc.withSensor.firstDrop ? `at ≈${doc.withSensor.firstDrop.eventsPerSecBeforeDrop.toLocaleString('en-US')} events/s` : 'none'],
    ['paced, no drop', `up to ${maxClean.toLocaleString('en-US')} opens/s (${doc.paced.map((p) => `${p.target / 1000}k→${p.dropped ? `${p.dropped} dropped` : 'ok'}`).join(', ')})`],
  ]);
  return {
    name: NAME,
    status: 'ok',
    value: `${on.toLocaleString('en-US')} opens/s with sensor`,
    baseline: `${off.toLocaleString('en-US')} opens/s without`,
    ratio: `${slower.toFixed(1)} % slower`,
    target: '≤ 10 % slower',
    met: slower <= 10,
    seconds: nowS() - t0,
    figures: doc as unknown as Record<string, unknown>,
  };
}
