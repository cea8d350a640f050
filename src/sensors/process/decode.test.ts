import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';

import {
  decodeBatch,
  decodeErrorCounts,
  decodeErrors,
  decodeProcValue,
  decodeStats,
  encodeProcValue,
  resetDecodeErrors,
  type ExecRecord,
  type ProcessRecord,
} from './decode';
import { encodeClone, encodeExec, encodeExit, encodeStats, frameBatch } from './test-encoder';
import {
  TH_FLAG_CLONE,
  TH_FLAG_EXECVE,
  TH_FLAG_MISS,
  TH_FLAG_PROCFS,
  TH_FLAG_ROOTCWD,
  TH_FLAG_TRUNC_ARGS,
  TH_REC_CLONE,
  TH_REC_EXEC,
  TH_REC_EXIT,
  th_exec,
  th_hdr,
  th_proc,
} from './layout.gen';

beforeEach(() => resetDecodeErrors());

const noErrors = () => assert.deepEqual(decodeErrorCounts, { malformed: 0, unknownType: 0, badVersion: 0, framing: 0 });

function decode(batch: Buffer, count: number): ProcessRecord[] {
  const out: ProcessRecord[] = [];
  decodeBatch(batch, count, out);
  return out;
}

const curlExec = {
  ktime: 13548674321373n,
  pid: 52699,
  parentPid: 52699,
  parentKtime: 13548670883299n,
  uid: 1000,
  gid: 1001,
  euid: 0,
  egid: 1002,
  auid: 4294967295,
  flags: TH_FLAG_EXECVE | TH_FLAG_ROOTCWD,
  cgroupId: 0x1234_5678_9abc_def0n,
  cgroupName: 'cri-containerd-551e161c47d8ff0eb665438a7bcd5b4e3ef5a297282b40a92b7c77d6bd168eb3.scope',
  filename: '/usr/bin/curl',
  argv: ['curl', 'https://ebpf.io/applications/#tetragon', '-H', 'X: a b'],
  cwd: '/',
};

test('exec, clone and exit records decode with every field', () => {
  const batch = frameBatch([
    encodeClone({ ktime: 13548670883299n, pid: 52699, parentPid: 52689, parentKtime: 13548645245839n, flags: TH_FLAG_CLONE }),
    encodeExec(curlExec),
    encodeExit({ ktime: 13549000000000n, procKtime: 13548674321373n, pid: 52699, tid: 52700, code: 3 << 8 }),
  ]);
  const out = decode(batch, 3);
  noErrors();
  assert.deepEqual(out, [
    {
      type: 'clone',
      ktime: 13548670883299n,
      pid: 52699,
      tid: 52699,
      parentPid: 52689,
      parentKtime: 13548645245839n,
      flags: TH_FLAG_CLONE,
    },
    {
      type: 'exec',
      ktime: 13548674321373n,
      pid: 52699,
      tid: 52699,
      parentPid: 52699,
      parentKtime: 13548670883299n,
      uid: 1000,
      gid: 1001,
      euid: 0,
      egid: 1002,
      auid: 4294967295,
      flags: TH_FLAG_EXECVE | TH_FLAG_ROOTCWD,
      cgroupId: 0x1234_5678_9abc_def0n,
      cgroupName: curlExec.cgroupName,
      filename: '/usr/bin/curl',
      args: ['https://ebpf.io/applications/#tetragon', '-H', 'X: a b'],
      cwd: '/',
    },
    { type: 'exit', ktime: 13549000000000n, procKtime: 13548674321373n, pid: 52699, tid: 52700, status: 3, signal: 0 },
  ]);
});

test('exit code: signal and status split like wait(2)', () => {
  const mk = (code: number) => encodeExit({ ktime: 2n, procKtime: 1n, pid: 7, code });
  const out = decode(frameBatch([mk(9), mk(0x8b), mk(0), mk(255 << 8)]), 4);
  assert.deepEqual(
    out.map((r) => (r.type === 'exit' ? [r.status, r.signal] : null)),
    [
      [0, 9],
      [0, 11],
      [0, 0],
      [255, 0],
    ],
  );
});

test('argv: argv[0] dropped, empty args kept, truncated last arg kept', () => {
  const base = { ...curlExec, cgroupName: '' };
  const recs = [
    encodeExec({ ...base, argv: ['/bin/true', 'a', '', 'c d'] }),
    encodeExec({ ...base, argv: ['/bin/true'] }),
    encodeExec({ ...base, argv: [] }),
    // truncated: no NUL after the last (partial) argument
    encodeExec({ ...base, flags: TH_FLAG_EXECVE | TH_FLAG_TRUNC_ARGS, rawArgs: Buffer.from('cat\0file1\0fi', 'latin1') }),
    // argv[0] itself truncated
    encodeExec({ ...base, rawArgs: Buffer.from('xxxxxxxx', 'latin1') }),
  ];
  const out = decode(frameBatch(recs), recs.length) as ExecRecord[];
  noErrors();
  assert.deepEqual(
    out.map((r) => r.args),
    [['a', '', 'c d'], [], [], ['file1', 'fi'], []],
  );
  assert.equal(out[3].flags & TH_FLAG_TRUNC_ARGS, TH_FLAG_TRUNC_ARGS);
  // The fields after args are unaffected by a missing final NUL.
  assert.equal(out[3].cwd, '/');
});

test('odd bytes in names do not throw', () => {
  const rec = encodeExec({ ...curlExec, filename: 'AAAA', cwd: 'BBBB', cgroupName: 'CC', argv: ['x', 'DD'] });
  // Overwrite with invalid UTF-8 and control bytes.
  const fn = th_exec.SIZE;
  rec[fn] = 0xff;
  rec[fn + 1] = 0xc3;
  rec[fn + 2] = 0x0a;
  const out = decode(frameBatch([rec]), 1) as ExecRecord[];
  noErrors();
  assert.equal(out.length, 1);
  assert.equal(out[0].filename.length >= 3, true);
  assert.ok(out[0].filename.includes('\ufffd'));
  assert.equal(out[0].cwd, 'BBBB');
  assert.deepEqual(out[0].args, ['DD']);
});

test('UTF-8 names (multi-byte) decode field by field', () => {
  const recs = [
    encodeExec({ ...curlExec, filename: '/tmp/café', argv: ['x', 'naïve', '日本', ''], cwd: '/tmp/ü', cgroupName: 'cg-é' }),
    encodeExec({ ...curlExec, filename: '/bin/é', rawArgs: Buffer.from('x\0ab\0日', 'utf8'), cwd: '/', cgroupName: '' }),
  ];
  const out = decode(frameBatch(recs), 2) as ExecRecord[];
  noErrors();
  assert.deepEqual(
    out.map((r) => [r.filename, r.args, r.cwd, r.cgroupName]),
    [
      ['/tmp/café', ['naïve', '日本', ''], '/tmp/ü', 'cg-é'],
      ['/bin/é', ['ab', '日'], '/', ''],
    ],
  );
});

test('records from several rings and with extra ring bytes decode', () => {
  // The ring may hand over more bytes than hdr.size: trust hdr.size.
  const ex = encodeExec(curlExec);
  const padded = Buffer.concat([ex, Buffer.alloc(13, 0xee)]);
  const out = decode(Buffer.concat([frameBatch([padded], 1), frameBatch([encodeClone({ ktime: 5n, pid: 2, parentPid: 1, parentKtime: 0n, flags: TH_FLAG_CLONE | TH_FLAG_MISS })], 2)]), 2);
  noErrors();
  assert.equal(out.length, 2);
  assert.equal((out[0] as ExecRecord).cgroupName, curlExec.cgroupName);
  assert.equal(out[1].type, 'clone');
});

test('malformed records are skipped and counted, good ones around them survive', () => {
  const good = encodeExit({ ktime: 2n, procKtime: 1n, pid: 7, code: 0 });
  const short = Buffer.alloc(8); // shorter than the header
  const sizeTooBig = encodeClone({ ktime: 1n, pid: 1, parentPid: 1, parentKtime: 0n, flags: 0 });
  sizeTooBig.writeUInt32LE(4096, th_hdr.size);
  const sizeTooSmall = encodeClone({ ktime: 1n, pid: 1, parentPid: 1, parentKtime: 0n, flags: 0 });
  sizeTooSmall.writeUInt32LE(8, th_hdr.size);
  const cloneTrunc = encodeClone({ ktime: 1n, pid: 1, parentPid: 1, parentKtime: 0n, flags: 0 }).subarray(0, 24);
  cloneTrunc.writeUInt32LE(24, th_hdr.size);
  const execLens = encodeExec(curlExec);
  execLens.writeUInt16LE(60000, th_exec.args_len); // tail lengths overflow the record
  const execShort = encodeExec(curlExec).subarray(0, 40);
  execShort.writeUInt32LE(40, th_hdr.size);
  const unknown = encodeExit({ ktime: 2n, procKtime: 1n, pid: 7, code: 0 });
  unknown.writeUInt8(99, th_hdr.type);
  const badVersion = encodeExit({ ktime: 2n, procKtime: 1n, pid: 7, code: 0 });
  badVersion.writeUInt8(200, th_hdr.version);

  const recs = [good, short, sizeTooBig, sizeTooSmall, cloneTrunc, execLens, execShort, unknown, badVersion, good];
  const out = decode(frameBatch(recs), recs.length);
  assert.equal(out.length, 2);
  assert.ok(out.every((r) => r.type === 'exit' && r.pid === 7));
  assert.deepEqual(decodeErrorCounts, { malformed: 6, unknownType: 1, badVersion: 1, framing: 0 });
  assert.equal(decodeErrors(), 8);
});

test('broken framing stops the batch and counts the rest', () => {
  const good = encodeExit({ ktime: 2n, procKtime: 1n, pid: 7, code: 0 });
  const batch = frameBatch([good, good]);
  // Second frame claims more bytes than the batch holds.
  batch.writeUInt32LE(1 << 20, 48);
  const out = decode(batch, 3);
  assert.equal(out.length, 1);
  assert.equal(decodeErrorCounts.framing, 2);
  // A count larger than what the batch holds.
  resetDecodeErrors();
  const out2 = decode(frameBatch([good]), 5);
  assert.equal(out2.length, 1);
  assert.equal(decodeErrorCounts.framing, 4);
  // Garbage does not throw.
  resetDecodeErrors();
  const junk = Buffer.alloc(4096);
  for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + 13) & 0xff;
  assert.doesNotThrow(() => decode(junk, 100));
});

test('a batch that is a view into a larger buffer decodes', () => {
  const inner = frameBatch([encodeExec(curlExec)]);
  const big = Buffer.alloc(inner.length + 64);
  inner.copy(big, 24);
  const out = decode(big.subarray(24, 24 + inner.length), 1) as ExecRecord[];
  noErrors();
  assert.equal(out[0].filename, '/usr/bin/curl');
});

test('decodeStats sums per-CPU values', () => {
  const buf = encodeStats([
    { emitted: [0, 10, 2, 3], dropped: [0, 1], procsUpdateErr: 1 },
    { emitted: [0, 5, 0, 1], dropped: [0, 2, 0, 4], exitUnknown: 7 },
    {},
  ]);
  const s = decodeStats(buf);
  assert.equal(s.emitted[TH_REC_EXEC], 15);
  assert.equal(s.emitted[TH_REC_CLONE], 2);
  assert.equal(s.emitted[TH_REC_EXIT], 4);
  assert.equal(s.dropped[TH_REC_EXEC], 3);
  assert.equal(s.dropped[TH_REC_EXIT], 4);
  assert.equal(s.emittedTotal, 21);
  assert.equal(s.droppedTotal, 7);
  assert.equal(s.procsUpdateErr, 1);
  assert.equal(s.exitUnknown, 7);
});

test('process map values round-trip', () => {
  const v = { ktime: 123456789012345n, parentPid: 1, parentKtime: 42n, flags: TH_FLAG_PROCFS };
  const b = encodeProcValue(v);
  assert.equal(b.length, th_proc.SIZE);
  assert.deepEqual(decodeProcValue(b), v);
  assert.equal(decodeProcValue(b.subarray(0, 8)), null);
});
