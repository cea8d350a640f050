// Runs inside the Debian 6.1 and 6.12 kernels (scripts/test-vm.sh boots them,
// one boot per kernel): the hooks this host refuses (kprobe, fentry, BPF-LSM)
// are probed there, and the process sensor must load on those older verifiers.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { EventBus } from '../src/bus/bus';
import { defaultConfig } from '../src/config/config';
import { ProcessCache } from '../src/enrich/process/cache';
import { BootClock } from '../src/enrich/process/clock';
import { Logger } from '../src/agent/log';
import { loadNative } from '../src/kernel/native';
import type { BusItem } from '../src/model/event';
import { ProcessSensor } from '../src/sensors/process/sensor';
import { kernelSkipReason, waitFor } from './harness';

const inVm = process.env.TETRAHUB_IN_VM;
const skip = !inVm ? 'runs only inside the VM kernels (scripts/test-vm.sh, part of npm test)' : kernelSkipReason();

test(`feature probe sees kprobe, fentry and BPF-LSM on kernel ${inVm ?? '(vm)'}`, { skip }, () => {
  const f = loadNative().probeFeatures();
  assert.equal(f.attach.kprobe, true, f.reasons['attach.kprobe']);
  assert.equal(f.attach.fentry, true, f.reasons['attach.fentry']);
  assert.equal(f.attach.lsm, true, f.reasons['attach.lsm']);
  assert.equal(f.lsmActive, true);
  assert.equal(f.attach.rawTp, true);
});

test(`process sensor loads and reports exec/exit on kernel ${inVm ?? '(vm)'}`, { skip }, async () => {
  const native = loadNative();
  const clock = new BootClock(() => native.clocks());
  const cfg = { ...defaultConfig(), nodeName: 'vm', bpfDir: fs.mkdtempSync('/sys/fs/bpf/th-vm-') };
  const bus = new EventBus();
  const cache = new ProcessCache({ nodeName: 'vm', clock });
  const seen: BusItem[] = [];
  const sub = bus.subscribe({ name: 'test', onReady: () => seen.push(...sub.take()) });
  const sensor = new ProcessSensor({ native, bus, cache, clock, config: cfg, log: new Logger('warn') });
  await sensor.start();
  try {
    const child = spawn('/bin/sh', ['-c', 'exit 5'], { cwd: '/tmp', stdio: 'ignore' });
    const exit = await waitFor(() => seen.find((e) => e.kind === 'exit' && e.process.pid === child.pid), 60_000, 'exit event');
    assert.ok(exit.kind === 'exit' && exit.status === 5);
    const exec = seen.find((e) => e.kind === 'exec' && e.process.pid === child.pid);
    assert.equal(exec?.kind === 'exec' ? exec.process.cwd : undefined, '/tmp');
  } finally {
    await sensor.stop();
    fs.rmSync(cfg.bpfDir, { recursive: true, force: true });
  }
});
