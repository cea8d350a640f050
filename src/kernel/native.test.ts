// Tests of the native addon against the running kernel, with the objects
// built from bpf/selftest.bpf.c and bpf/selftest_bad.bpf.c (make -C bpf).
import { test, type TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { addonPath, batchRecords, loadNative, repoRoot } from './native';
import type { BpfError, BpfMap, BpfObject, NativeBinding, OpenObjectOptions } from './types';

/** What the addon throws: BpfError plus the errno name and libbpf's messages. */
type AddonError = BpfError & { code?: string; libbpfLog?: string };

const OUT = path.join(repoRoot(), 'bpf', '.output');
const SELFTEST = path.join(OUT, 'selftest.bpf.o');
const SELFTEST_BAD = path.join(OUT, 'selftest_bad.bpf.o');
const BPFFS = '/sys/fs/bpf';

// Counter slots of selftest_counters (see bpf/selftest.bpf.c).
const EMITTED = 0;
const RING_DROPS = 1;
const CONNECT_SEEN = 2;
const CONNECT_DENIED = 3;

function mountType(dir: string): string | undefined {
  for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[1] === dir) return f[2];
  }
  return undefined;
}

function cgroup2Root(): string | undefined {
  for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[2] === 'cgroup2') return f[1];
  }
  return undefined;
}

function ensureBpffs(): boolean {
  if (mountType(BPFFS) === 'bpf') return true;
  try {
    execFileSync('mount', ['-t', 'bpf', 'bpf', BPFFS], { stdio: 'ignore' });
  } catch {
    return false;
  }
  return mountType(BPFFS) === 'bpf';
}

/** The addon when this test can use the kernel, else skips with why. */
function kernelOr(t: TestContext, ...objects: string[]): NativeBinding | undefined {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to load BPF programs');
    return undefined;
  }
  for (const o of objects) {
    if (!fs.existsSync(o)) {
      t.skip(`${o} missing: run make -C bpf`);
      return undefined;
    }
  }
  return loadNative();
}

function key32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

/** Sum of a per-CPU u64 counter (one 8-byte slot per possible CPU). */
function perCpuSum(map: BpfMap, slot: number): bigint {
  const v = map.lookup(key32(slot));
  assert.ok(v, `counter ${slot} present`);
  let sum = 0n;
  for (let off = 0; off < v.length; off += 8) sum += v.readBigUInt64LE(off);
  return sum;
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

/** A fresh directory in bpffs, removed with its pins after the test. */
function bpffsDir(t: TestContext): string | undefined {
  if (!ensureBpffs()) {
    t.skip(`${BPFFS} is not bpffs and mounting it failed`);
    return undefined;
  }
  const dir = fs.mkdtempSync(path.join(BPFFS, 'tetrahub-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Opens selftest with its pin-by-name map kept out of the real /sys/fs/bpf. */
function openSelftest(b: NativeBinding, pinRoot: string, opts: OpenObjectOptions = {}): BpfObject {
  return b.openObject(SELFTEST, { pinRoot, ...opts });
}

interface Rec {
  ring: number;
  len: number;
  seq: number;
  tgid: number;
  magic: bigint;
}

test('clocks and libbpf version', () => {
  const b = loadNative();
  const c = b.clocks();
  assert.equal(typeof c.boottime, 'bigint');
  assert.ok(c.boottime > 0n && c.realtime > c.boottime);
  const real = Number(c.realtime / 1_000_000n);
  assert.ok(Math.abs(real - Date.now()) < 5000, 'realtime is wall-clock ns');
  assert.match(b.libbpfVersion(), /^v?\d+\.\d+/);
});

test('open: lists programs and maps, rejects bad options', (t) => {
  const b = kernelOr(t, SELFTEST);
  if (!b) return;
  const dir = bpffsDir(t);
  if (!dir) return;
  const o = openSelftest(b, dir, { mapSizes: { selftest_map: 128 } });
  t.after(() => o.close());
  assert.equal(o.path, SELFTEST);
  const progs = o.programs();
  assert.deepEqual(
    progs.find((p) => p.name === 'selftest_getppid'),
    { name: 'selftest_getppid', section: 'tracepoint/syscalls/sys_enter_getppid', type: 'tracepoint' },
  );
  assert.equal(progs.find((p) => p.name === 'selftest_connect4')?.type, 'cgroup_sock_addr');
  const m = o.maps().find((x) => x.name === 'selftest_map');
  assert.deepEqual(m, { name: 'selftest_map', type: 'hash', keySize: 4, valueSize: 8, maxEntries: 128 });
  assert.throws(() => o.map('selftest_map'), (e: BpfError) => e.errno === 22, 'map() before load');

  const errnoOf = (f: () => unknown): number => {
    try {
      f();
    } catch (e) {
      return (e as BpfError).errno;
    }
    return 0;
  };
  assert.equal(errnoOf(() => b.openObject('/nonexistent.bpf.o')), 2);
  assert.equal(errnoOf(() => openSelftest(b, dir, { rodata: { no_such_var: 1 } })), 2);
  assert.equal(errnoOf(() => openSelftest(b, dir, { skipPrograms: ['nope'] })), 2);
  assert.equal(errnoOf(() => openSelftest(b, dir, { mapSizes: { nope: 1 } })), 2);
  assert.throws(() => openSelftest(b, dir, { rodata: { blocked_port: 70000 } }), RangeError);
});

test('ring consumer: records of a tracepoint arrive in batches', async (t) => {
  const b = kernelOr(t, SELFTEST);
  if (!b) return;
  const dir = bpffsDir(t);
  if (!dir) return;
  const magic = 0x1122334455667788n;
  const o = openSelftest(b, dir, {
    rodata: { target_tgid: process.pid, magic },
    mapSizes: { selftest_rb: 4 << 20 }, // holds every record even if JS is slow
    skipPrograms: ['selftest_connect4'],
  });
  t.after(() => o.close());
  o.load();
  const link = o.attach('selftest_getppid');
  t.after(() => link.destroy());

  const recs: Rec[] = [];
  const batchSizes: number[] = [];
  const consumer = b.createRingConsumer([o.map('selftest_rb')], {
    batchBytes: 64 * 1024,
    flushMs: 10,
    onBatch(batch, records) {
      batchSizes.push(records);
      let n = 0;
      for (const r of batchRecords(batch)) {
        n++;
        recs.push({
          ring: r.ring,
          len: r.data.length,
          seq: r.data.readUInt32LE(0),
          tgid: r.data.readUInt32LE(4),
          magic: BigInt(r.data.readUInt32LE(12)) | (BigInt(r.data.readUInt32LE(16)) << 32n),
        });
      }
      assert.equal(n, records, 'record count matches the batch');
    },
  });
  consumer.start();
  t.after(() => consumer.stop());

  // A few records: one partial batch, handed over after flushMs.
  for (let i = 0; i < 3; i++) void process.ppid; // getppid(2) every time (libuv does not cache it)
  assert.ok(await until(() => recs.length === 3, 2000), `3 records by flushMs (got ${recs.length})`);
  assert.ok(batchSizes.length >= 1 && batchSizes.length <= 3, 'partial batches handed over');

  const N = 20000;
  for (let i = 0; i < N; i++) void process.ppid;
  assert.ok(await until(() => recs.length === N + 3, 5000), `all ${N + 3} records (got ${recs.length})`);
  consumer.stop();
  consumer.stop(); // idempotent

  recs.forEach((r, i) => {
    if (r.seq !== i + 1 || r.tgid !== process.pid || r.len !== 20 || r.ring !== 0 || r.magic !== magic) {
      assert.fail(`record ${i}: ${JSON.stringify({ ...r, magic: r.magic.toString(16) })}`);
    }
  });
  const stats = consumer.stats();
  assert.equal(stats.records, N + 3);
  assert.equal(stats.batches, batchSizes.length);
  assert.equal(stats.bytes, (N + 3) * 32, '8-byte header + 20 bytes padded to 24');
  assert.ok(stats.batches < stats.records / 100, `batched: ${stats.batches} batches for ${stats.records} records`);
  const counters = o.map('selftest_counters');
  assert.equal(perCpuSum(counters, EMITTED), BigInt(N + 3));
  assert.equal(perCpuSum(counters, RING_DROPS), 0n);
});

test('ring consumer: a busy JS thread fills the kernel ring, and BPF counts the drops', async (t) => {
  const b = kernelOr(t, SELFTEST);
  if (!b) return;
  const dir = bpffsDir(t);
  if (!dir) return;
  const o = openSelftest(b, dir, {
    rodata: { target_tgid: process.pid },
    mapSizes: { selftest_rb: 4096 }, // room for 128 records
    skipPrograms: ['selftest_connect4'],
  });
  t.after(() => o.close());
  o.load();
  const link = o.attach('selftest_getppid');
  t.after(() => link.destroy());
  let delivered = 0;
  let lastSeq = 0;
  let ordered = true;
  const consumer = b.createRingConsumer([o.map('selftest_rb')], {
    batchBytes: 1024, // 32 records
    flushMs: 1,
    onBatch(batch) {
      for (const r of batchRecords(batch)) {
        const seq = r.data.readUInt32LE(0);
        if (seq <= lastSeq) ordered = false;
        lastSeq = seq;
        delivered++;
      }
    },
  });
  consumer.start();
  t.after(() => consumer.stop());
  // JS never yields during the loop: the native thread fills both batches,
  // then must wait, and the 4 KiB ring overflows.
  const N = 5000;
  for (let i = 0; i < N; i++) void process.ppid;
  const counters = o.map('selftest_counters');
  const dropped = (): number => Number(perCpuSum(counters, RING_DROPS));
  assert.ok(await until(() => delivered + dropped() === N, 5000), `delivered ${delivered} + dropped ${dropped()} = ${N}`);
  consumer.stop();
  assert.ok(dropped() > 0, 'the ring overflowed');
  assert.ok(delivered >= 2 * 32, `both batches and the ring were used (delivered ${delivered})`);
  assert.ok(ordered, 'records stay in order across batches');
  assert.equal(consumer.stats().records, delivered);
});

test('ring consumer: stop() flushes a pending batch and rejects bad input', (t) => {
  const b = kernelOr(t, SELFTEST);
  if (!b) return;
  const dir = bpffsDir(t);
  if (!dir) return;
  const o = openSelftest(b, dir, { rodata: { target_tgid: process.pid }, skipPrograms: ['selftest_connect4'] });
  t.after(() => o.close());
  o.load();
  const link = o.attach('selftest_getppid');
  t.after(() => link.destroy());
  let got = 0;
  let kept: Buffer | undefined;
  const consumer = b.createRingConsumer([o.map('selftest_rb')], {
    flushMs: 60_000, // only stop() can hand the batch over
    onBatch(batch, records) {
      got += records;
      kept = batch;
    },
  });
  consumer.start();
  for (let i = 0; i < 7; i++) void process.ppid;
  consumer.stop(); // synchronous: the records are delivered before it returns
  assert.equal(got, 7);
  assert.equal(kept?.length, 0, 'a batch kept past onBatch reads as empty');
  assert.throws(() => consumer.start(), (e: BpfError) => e.errno === 22);

  assert.throws(() => b.createRingConsumer([o.map('selftest_map')], { onBatch: () => {} }), /not a ringbuf/);
  assert.throws(() => b.createRingConsumer([], { onBatch: () => {} }), TypeError);
});

test('maps: update, lookup, delete, keys, per-CPU values', (t) => {
  const b = kernelOr(t, SELFTEST);
  if (!b) return;
  const dir = bpffsDir(t);
  if (!dir) return;
  const o = openSelftest(b, dir, { skipPrograms: ['selftest_getppid', 'selftest_connect4'] });
  t.after(() => o.close());
  o.load();
  const m = o.map('selftest_map');
  assert.equal(m.type, 'hash');
  assert.equal(m.keySize, 4);
  assert.ok(m.fd >= 0);
  assert.equal(m.lookup(key32(1)), null);
  m.update(key32(1), u64(11n));
  m.update(key32(2), u64(22n), 1 /* BPF_NOEXIST */);
  assert.equal(m.lookup(key32(1))?.readBigUInt64LE(0), 11n);
  assert.throws(() => m.update(key32(2), u64(0n), 1), (e: AddonError) => e.errno === 17 && e.code === 'EEXIST');
  assert.throws(() => m.update(key32(3), u64(0n), 2 /* BPF_EXIST */), (e: BpfError) => e.errno === 2);
  const keys = m.keys().map((k) => k.readUInt32LE(0)).sort();
  assert.deepEqual(keys, [1, 2]);
  assert.equal(m.delete(key32(1)), true);
  assert.equal(m.delete(key32(1)), false);
  assert.deepEqual(m.keys().map((k) => k.readUInt32LE(0)), [2]);
  assert.throws(() => m.lookup(Buffer.alloc(3)), (e: BpfError) => e.errno === 22 && /3 bytes/.test(e.message));

  const pc = o.map('selftest_counters');
  const cpus = pc.lookup(key32(0))?.length ?? 0;
  assert.ok(cpus >= 8 && cpus % 8 === 0, 'one 8-byte slot per possible CPU');
  const v = Buffer.alloc(cpus);
  v.writeBigUInt64LE(5n, 0);
  v.writeBigUInt64LE(7n, cpus - 8);
  pc.update(key32(3), v);
  assert.equal(perCpuSum(pc, 3), cpus === 8 ? 7n : 12n);

  // The map keeps its own fd: it outlives the object.
  o.close();
  assert.equal(m.lookup(key32(2))?.readBigUInt64LE(0), 22n);
  m.close();
  assert.equal(m.fd, -1);
  assert.throws(() => m.lookup(key32(2)), (e: BpfError) => e.errno === 9);
});

test('pinning: pin, openPinnedMap, reuseMaps, pin-by-name under pinRoot', (t) => {
  const b = kernelOr(t, SELFTEST);
  if (!b) return;
  const dir = bpffsDir(t);
  if (!dir) return;
  const skip = { skipPrograms: ['selftest_getppid', 'selftest_connect4'] };
  const a = openSelftest(b, dir, skip);
  t.after(() => a.close());
  a.load();
  assert.ok(fs.existsSync(path.join(dir, 'selftest_pinned')), 'LIBBPF_PIN_BY_NAME map pinned under pinRoot');
  const pinPath = path.join(dir, 'selftest_map');
  a.map('selftest_map').pin(pinPath);

  const pinned = b.openPinnedMap(pinPath);
  t.after(() => pinned.close());
  assert.deepEqual(
    { name: pinned.name, type: pinned.type, keySize: pinned.keySize, valueSize: pinned.valueSize, maxEntries: pinned.maxEntries },
    { name: 'selftest_map', type: 'hash', keySize: 4, valueSize: 8, maxEntries: 64 },
  );
  pinned.update(key32(9), u64(99n));
  assert.equal(a.map('selftest_map').lookup(key32(9))?.readBigUInt64LE(0), 99n);
  a.map('selftest_pinned').update(key32(1), u64(1234n));

  // A second load shares both maps: one through reuseMaps, one by name.
  const c = openSelftest(b, dir, { ...skip, reuseMaps: { selftest_map: pinPath } });
  t.after(() => c.close());
  c.load();
  assert.equal(c.map('selftest_map').lookup(key32(9))?.readBigUInt64LE(0), 99n);
  assert.equal(c.map('selftest_pinned').lookup(key32(1))?.readBigUInt64LE(0), 1234n);

  assert.throws(
    () => openSelftest(b, dir, { ...skip, reuseMaps: { selftest_pinned: pinPath } }),
    (e: BpfError) => e.errno === 22 && /does not match/.test(e.message),
  );
  assert.throws(
    () => openSelftest(b, dir, { ...skip, reuseMaps: { selftest_map: path.join(dir, 'absent') } }),
    (e: BpfError) => e.errno === 2,
  );
  assert.throws(() => b.openPinnedMap(path.join(dir, 'absent')), (e: BpfError) => e.errno === 2);
});

test('load: a program the verifier rejects throws errno, program and verifier log', (t) => {
  const b = kernelOr(t, SELFTEST_BAD);
  if (!b) return;
  const o = b.openObject(SELFTEST_BAD);
  t.after(() => o.close());
  let err: BpfError | undefined;
  try {
    o.load();
  } catch (e) {
    err = e as BpfError;
  }
  assert.ok(err, 'load() threw');
  assert.ok(err instanceof Error);
  assert.equal(err.errno, 13);
  assert.equal(err.program, 'bad_prog');
  assert.match(err.message, /bad_prog/);
  assert.match(err.message, /Permission denied \(EACCES\)/);
  assert.match(err.message, /invalid mem access/);
  assert.match(err.verifierLog ?? '', /R0 invalid mem access 'map_value_or_null'/);
  assert.throws(() => o.load(), (e: BpfError) => e.errno === 114 /* EALREADY */);
  assert.throws(() => o.attach('bad_prog'), (e: BpfError) => e.errno === 22 && e.program === 'bad_prog');
});

test('probeFeatures: fast, never throws, explains every false', (t) => {
  const b = kernelOr(t);
  if (!b) return;
  const start = process.hrtime.bigint();
  const f = b.probeFeatures();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  t.diagnostic(`probe took ${ms.toFixed(0)} ms: ${JSON.stringify(f)}`);
  // Under full emulation (the qemu VM without KVM) everything is 10-50x slower.
  const emulated = /QEMU TCG/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  assert.ok(ms < (emulated ? 5000 : 1000), `took ${ms} ms`);
  assert.equal(f.btf, fs.existsSync('/sys/kernel/btf/vmlinux'));
  assert.equal(f.ringbuf, true);
  assert.equal(f.attach.tracepoint, true, f.reasons['attach.tracepoint']);
  assert.equal(f.attach.rawTp, true, f.reasons['attach.rawTp']);
  assert.equal(f.progTypes.tracepoint, true);
  assert.equal(typeof f.helpers.bpf_ktime_get_boot_ns, 'boolean');
  const hasKprobePmu = fs.existsSync('/sys/bus/event_source/devices/kprobe');
  if (!hasKprobePmu) assert.equal(f.attach.kprobe, false);
  const falses: string[] = [];
  for (const [group, rec] of [
    ['attach', f.attach],
    ['progTypes', f.progTypes],
    ['helpers', f.helpers],
  ] as const) {
    for (const [k, v] of Object.entries(rec)) if (!v) falses.push(`${group}.${k}`);
  }
  for (const k of ['btf', 'ringbuf', 'lsmActive'] as const) if (!f[k]) falses.push(k);
  for (const k of falses) assert.ok(f.reasons[k], `reason for ${k}`);
  assert.equal(Object.keys(f.reasons).length, falses.length, 'reasons only for falses');
  // On the build host (kernel 6.18 without kprobes), fentry and LSM programs
  // are refused; the VM kernels allow them.
  if (!f.attach.fentry) assert.match(f.reasons['attach.fentry'] ?? '', /^fentry: .*\(E[A-Z]+\)/);
  if (!f.attach.lsm) assert.match(f.reasons['attach.lsm'] ?? '', /^lsm: /);
  if (!f.attach.kprobe) assert.match(f.reasons['attach.kprobe'] ?? '', /^kprobe: /);
});

test('cgroup attach: connect4 program denies a port inside a temporary cgroup', async (t) => {
  const b = kernelOr(t, SELFTEST);
  if (!b) return;
  const root = cgroup2Root();
  if (!root) {
    t.skip('no cgroup2 mount in /proc/mounts');
    return;
  }
  const dir = bpffsDir(t);
  if (!dir) return;
  const cg = fs.mkdtempSync(path.join(root, 'tetrahub-test-'));
  t.after(() => fs.rmdirSync(cg));

  const server = net.createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;

  const o = openSelftest(b, dir, { rodata: { blocked_port: port }, skipPrograms: ['selftest_getppid'] });
  t.after(() => o.close());
  o.load();
  assert.throws(() => o.attach('selftest_connect4'), TypeError, 'cgroup programs need cgroupPath');
  const link = o.attach('selftest_connect4', { cgroupPath: cg });

  // The child moves itself into the cgroup before node starts.
  const connectFromCgroup = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const js = `require('net').connect(${port}, '127.0.0.1')` +
        `.on('connect', function () { console.log('connected'); this.destroy(); })` +
        `.on('error', (e) => console.log(e.code))`;
      const child = spawn('sh', ['-c', `echo $$ > ${cg}/cgroup.procs && exec "$0" -e "$1"`, process.execPath, js]);
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', () => resolve(out.trim()));
    });

  assert.equal(await connectFromCgroup(), 'EPERM');
  const counters = o.map('selftest_counters');
  assert.ok(perCpuSum(counters, CONNECT_SEEN) >= 1n);
  assert.ok(perCpuSum(counters, CONNECT_DENIED) >= 1n);
  // The test process is outside the cgroup: not affected.
  await new Promise<void>((resolve, reject) => {
    net.connect(port, '127.0.0.1').on('connect', function (this: net.Socket) {
      this.destroy();
      resolve();
    }).on('error', reject);
  });
  link.destroy();
  link.destroy(); // idempotent
  assert.equal(await connectFromCgroup(), 'connected');
});

test('ring consumer: a running consumer does not keep the process alive', async (t) => {
  const b = kernelOr(t, SELFTEST);
  if (!b) return;
  const dir = bpffsDir(t);
  if (!dir) return;
  // Never calls stop(): the process must still end when its work is done.
  const script = `
    const b = require(${JSON.stringify(addonPath())});
    const o = b.openObject(${JSON.stringify(SELFTEST)}, {
      pinRoot: ${JSON.stringify(dir)}, rodata: { target_tgid: process.pid }, skipPrograms: ['selftest_connect4'] });
    o.load();
    o.attach('selftest_getppid');
    let n = 0;
    b.createRingConsumer([o.map('selftest_rb')], { flushMs: 1, onBatch: (_, r) => { n += r; } }).start();
    for (let i = 0; i < 10; i++) void process.ppid;
    setTimeout(() => console.log('records ' + n), 100);`;
  const child = spawn(process.execPath, ['-e', script]);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('close', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  assert.equal(code, 0, out);
  assert.equal(out.trim(), 'records 10');
});

test('loadNative: resolves the addon from the repo root', () => {
  const b = loadNative();
  assert.equal(loadNative(), b, 'cached');
  assert.equal(typeof b.probeFeatures, 'function');
  assert.ok(fs.existsSync(path.join(repoRoot(), 'package.json')));
  assert.equal(os.platform(), 'linux');
});
