// Decoder, syscall table and option checks of the syscall sensor.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { TH_LAYOUT_VERSION } from '../process/layout.gen';
import {
  decodeCount,
  decodeCountKey,
  decodeSyscallBatch,
  decodeSyscallStats,
  encodeBinaryKey,
  encodeCountKey,
  resetSyscallDecodeErrors,
  syscallDecodeErrors,
  type SyscallRecord,
} from './decode';
import { buildTable, outputPath, render, UNISTD_64 } from './gen-table';
import { TH_REC_SYSCALL, TH_SF_AT_ENTER, TH_SYS_SEL_AT_ENTER, TH_SYS_SEL_COUNT, TH_SYS_SEL_EVENT, th_sys_stats, th_syscall } from './layout.gen';
import { resolveSyscallOptions } from './sensor';
import { syscallName, syscallNames, syscallNumber } from './table';
import { repoRoot } from '../file/layoutcheck';

function record(o: { nr: number; args?: bigint[]; ret?: bigint; rflags?: number; type?: number; version?: number; size?: number }): Buffer {
  const b = Buffer.alloc(th_syscall.SIZE);
  b.writeUInt8(o.type ?? TH_REC_SYSCALL, th_syscall.hdr_type);
  b.writeUInt8(o.version ?? TH_LAYOUT_VERSION, th_syscall.hdr_version);
  b.writeUInt32LE(o.size ?? th_syscall.SIZE, th_syscall.hdr_size);
  b.writeBigUInt64LE(555n, th_syscall.hdr_ktime);
  b.writeBigUInt64LE(444n, th_syscall.proc_ktime);
  (o.args ?? []).forEach((a, i) => b.writeBigUInt64LE(a, th_syscall.args + 8 * i));
  b.writeBigInt64LE(o.ret ?? 0n, th_syscall.ret);
  b.writeUInt32LE(7, th_syscall.pid);
  b.writeUInt32LE(8, th_syscall.tid);
  b.writeUInt32LE(o.nr, th_syscall.nr);
  b.writeUInt32LE(o.rflags ?? 0, th_syscall.rflags);
  return b;
}

function batch(...recs: Buffer[]): Buffer {
  const out: Buffer[] = [];
  for (const r of recs) {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(r.length, 0);
    out.push(h, r, Buffer.alloc(((r.length + 7) & ~7) - r.length));
  }
  return Buffer.concat(out);
}

test('decodes calls with args and return values', () => {
  resetSyscallDecodeErrors();
  const out: SyscallRecord[] = [];
  decodeSyscallBatch(
    batch(
      record({ nr: 95, args: [0o27n, 0xffffffffffffffffn], ret: 18n }),
      record({ nr: 231, args: [3n], rflags: TH_SF_AT_ENTER }),
      record({ nr: 39, ret: -3n }),
    ),
    3,
    out,
  );
  assert.equal(out.length, 3);
  assert.deepEqual(out[0], { ktime: 555n, procKtime: 444n, pid: 7, tid: 8, nr: 95, args: [0o27n, 0xffffffffffffffffn, 0n, 0n, 0n, 0n], ret: 18 });
  assert.equal(out[1].ret, undefined);
  assert.equal(out[2].ret, -3);
});

test('malformed syscall records are skipped and counted', () => {
  resetSyscallDecodeErrors();
  const out: SyscallRecord[] = [];
  decodeSyscallBatch(
    batch(Buffer.alloc(12), record({ nr: 1, size: 50 }), record({ nr: 1, version: 2 }), record({ nr: 1, type: 32 }), record({ nr: 110 })),
    5,
    out,
  );
  assert.deepEqual(out.map((r) => r.nr), [110]);
  assert.deepEqual({ ...syscallDecodeErrors }, { malformed: 2, unknownType: 1, badVersion: 1, framing: 0 });
  decodeSyscallBatch(batch(record({ nr: 1 })).subarray(0, 50), 1, out);
  assert.equal(syscallDecodeErrors.framing, 1);
});

test('map values: counts, keys, stats, binaries', () => {
  const k = encodeCountKey({ tgid: 10, nr: 110, procKtime: 99n });
  assert.deepEqual(decodeCountKey(k), { tgid: 10, nr: 110, procKtime: 99n });
  const c = Buffer.alloc(8);
  c.writeBigUInt64LE(12n);
  assert.equal(decodeCount(c), 12);
  const s = Buffer.alloc(th_sys_stats.SIZE * 3);
  for (let i = 0; i < 3; i++) {
    s.writeBigUInt64LE(4n, i * th_sys_stats.SIZE + th_sys_stats.emitted);
    s.writeBigUInt64LE(1n, i * th_sys_stats.SIZE + th_sys_stats.dropped);
  }
  assert.deepEqual(decodeSyscallStats(s), { emitted: 12, dropped: 3, argsFull: 0, countsFull: 0, binTgidsFull: 0 });
  const bk = encodeBinaryKey('/usr/bin/python3')!;
  assert.equal(bk.length, 256);
  assert.equal(bk.toString('utf8', 0, 16), '/usr/bin/python3');
  assert.equal(bk[16], 0);
  assert.equal(encodeBinaryKey('/' + 'a'.repeat(300)), null);
});

test('x86_64 syscall table', () => {
  assert.equal(syscallName(0), 'read');
  assert.equal(syscallName(257), 'openat');
  assert.equal(syscallName(110), 'getppid');
  assert.equal(syscallName(24), 'sched_yield');
  assert.equal(syscallName(452), 'fchmodat2');
  assert.equal(syscallName(999), 'syscall_999');
  assert.equal(syscallNumber('renameat2'), 316);
  assert.equal(syscallNumber('newfstat'), 5);
  assert.equal(syscallNumber('umount'), 166);
  assert.equal(syscallNumber('nope'), undefined);
  assert.ok(syscallNames().length > 370);
});

test('committed syscall table matches <asm/unistd_64.h>', (t) => {
  if (!fs.existsSync(UNISTD_64)) {
    t.skip(`${UNISTD_64} not installed (linux-libc-dev)`);
    return;
  }
  const want = render(buildTable(fs.readFileSync(UNISTD_64, 'utf8')));
  assert.equal(fs.readFileSync(outputPath(repoRoot()), 'utf8'), want, 'stale syscalls_x86_64.gen.ts: node dist/src/sensors/syscall/gen-table.js');
});

test('syscall sensor options: selection bits and clear errors', () => {
  const o = resolveSyscallOptions({ events: ['getppid', 'exit_group', 24], counts: ['getppid'] });
  assert.equal(o.select.get(110), TH_SYS_SEL_EVENT | TH_SYS_SEL_COUNT);
  assert.equal(o.select.get(231), TH_SYS_SEL_EVENT | TH_SYS_SEL_AT_ENTER);
  assert.equal(o.select.get(24), TH_SYS_SEL_EVENT);
  assert.equal(o.countIntervalMs, 10000);
  assert.throws(() => resolveSyscallOptions({ events: ['getppid', 'frobnicate'] }), /unknown syscall "frobnicate" in events/);
  assert.throws(() => resolveSyscallOptions({ counts: [5000] }), /5000 in counts is out of range/);
  assert.throws(() => resolveSyscallOptions({}), /at least one syscall/);
  assert.throws(() => resolveSyscallOptions({ events: [] }), /at least one syscall/);
  assert.throws(() => resolveSyscallOptions({ events: ['read'], sycalls: [] } as never), /unknown option "sycalls"/);
  assert.throws(() => resolveSyscallOptions({ events: ['read'], binaries: ['python3'] }), /"python3" is not an absolute path/);
  assert.throws(() => resolveSyscallOptions({ events: ['read'], pids: [0] }), /pids must be positive/);
  assert.throws(() => resolveSyscallOptions({ events: ['read'], countIntervalMs: 5 }), /countIntervalMs/);
  const b = resolveSyscallOptions({ events: ['read'], binaries: ['/usr/bin/python3'] });
  assert.ok(b.binaryKeys.includes('/usr/bin/python3'));
  if (fs.existsSync('/usr/bin/python3')) assert.ok(b.binaryKeys.includes(fs.realpathSync('/usr/bin/python3')));
});
