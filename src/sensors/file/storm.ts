// Measurement (not a test): an open+close storm on a file in /tmp, without and
// with the file sensor attached, in the same run; then paced storms to find
// the highest open rate the sensor follows without a ring drop.
//
//   npx tsc -p tsconfig.json && node dist/src/sensors/file/storm.js [count] [producers]
//
// Needs root, gcc, and the built objects/addon. Prints one JSON document.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileSensor } from './sensor';
import { startStack, type Stack } from './testkit';

const C_SOURCE = `
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
  long n = atol(argv[2]); double rate = argc > 3 ? atof(argv[3]) : 0;
  double t0 = now();
  for (long i = 0; i < n; i++) {
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    close(fd);
    if (rate > 0 && (i & 255) == 255) {
      double ahead = (i + 1) / rate - (now() - t0);
      if (ahead > 0) { struct timespec s = { (time_t)ahead, (long)((ahead - (long)ahead) * 1e9) }; nanosleep(&s, 0); }
    }
  }
  printf("%.6f\\n", now() - t0);
  return 0;
}
`;

function build(dir: string): string {
  const src = path.join(dir, 'storm.c');
  const bin = path.join(dir, 'storm');
  fs.writeFileSync(src, C_SOURCE);
  execFileSync('gcc', ['-O2', '-o', bin, src]);
  return bin;
}

/** Runs the storm; returns its wall time in seconds (measured inside the child). */
function storm(bin: string, file: string, n: number, rate = 0): number {
  const r = spawnSync(bin, [file, String(n), String(rate)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`storm failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function settle(sensor: FileSensor): Promise<void> {
  let last = -1;
  for (let i = 0; i < 200; i++) {
    const n = sensor.counters().file_events_published;
    if (n === last) return;
    last = n;
    await sleep(100);
  }
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 200_000);
  const producers = Number(process.argv[3] ?? 1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-storm-'));
  const file = path.join(dir, 'target');
  fs.writeFileSync(file, 'x');
  const bin = build(dir);
  const rate = (s: number): number => Math.round(n / s);

  storm(bin, file, 20_000); // warm the dentry cache
  const off1 = storm(bin, file, n);

  const st: Stack = await startStack('storm');
  const sensor = new FileSensor({ ...st, options: { ioReportIntervalMs: 0 } });
  await sensor.start();
  // First drop: poll the kernel counters while the storm runs in another process.
  const t0 = process.hrtime.bigint();
  let firstDrop: { ms: number; emitted: number; consumed: number } | undefined;
  const poll = setInterval(() => {
    const k = sensor.kernelStats();
    if (!firstDrop && k && k.droppedTotal > 0) {
      firstDrop = { ms: Number(process.hrtime.bigint() - t0) / 1e6, emitted: k.emittedTotal, consumed: sensor.counters().file_ring_records_consumed };
    }
  }, 5);
  // The storm must not block this event loop (the consumer publishes on it).
  const runs = Array.from({ length: producers }, () => new Promise<number>((resolve, reject) => {
    const c = spawn(bin, [file, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`storm exited ${code}`))));
  }));
  const on = Math.max(...(await Promise.all(runs)));
  const stormMs = Number(process.hrtime.bigint() - t0) / 1e6;
  clearInterval(poll);
  await settle(sensor);
  const k = sensor.kernelStats()!;
  const c = sensor.counters();
  const unpaced = {
    producers,
    seconds: on,
    opensPerSec: Math.round((n * producers) / on),
    kernelEmitted: k.emittedTotal,
    kernelDropped: k.droppedTotal,
    published: c.file_events_published,
    firstDrop: firstDrop ? { ...firstDrop, eventsPerSecBeforeDrop: Math.round(firstDrop.emitted / (firstDrop.ms / 1000)) } : null,
    stormWallMs: Math.round(stormMs),
  };

  // Paced storms: the highest rate without a drop (2 s each).
  const paced: Array<{ target: number; achieved: number; dropped: number; published: number }> = [];
  for (const target of [10_000, 25_000, 50_000, 100_000, 150_000, 200_000]) {
    const before = sensor.kernelStats()!;
    const pub0 = sensor.counters().file_events_published;
    const count = target * 2;
    const secs = await new Promise<number>((resolve, reject) => {
      const ch = spawn(bin, [file, String(count), String(target)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      ch.stdout.on('data', (d: Buffer) => (out += d.toString()));
      ch.on('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`storm exited ${code}`))));
    });
    await settle(sensor);
    const after = sensor.kernelStats()!;
    paced.push({ target, achieved: Math.round(count / secs), dropped: after.droppedTotal - before.droppedTotal, published: sensor.counters().file_events_published - pub0 });
  }

  await sensor.stop();
  await st.close();
  const off2 = storm(bin, file, n);
  const offAvg = (off1 + off2) / 2;
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(
    JSON.stringify(
      {
        opens: n,
        cpus: os.cpus().length,
        withoutSensor: { seconds: [off1, off2], opensPerSec: rate(offAvg) },
        withSensor: unpaced,
        slowdown: producers === 1 ? Number((on / offAvg).toFixed(2)) : undefined,
        paced,
      },
      null,
      2,
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
