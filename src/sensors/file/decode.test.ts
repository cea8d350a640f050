// Decoder of the file sensor: records built here with the generated offsets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TH_LAYOUT_VERSION } from '../process/layout.gen';
import {
  decodeFdIo,
  decodeFdKey,
  decodeFileBatch,
  decodeFileStats,
  encodeFdKey,
  encodeFileConfig,
  fileDecodeErrors,
  joinPath,
  normalizePath,
  normalizePrefixes,
  recordPaths,
  resetFileDecodeErrors,
  underPrefix,
  type FileRecord,
} from './decode';
import {
  TH_FF_ERR,
  TH_FF_RESOLVED,
  TH_FF_TRUNC,
  TH_FOP_CLOSE,
  TH_FOP_MAX,
  TH_FOP_MOUNT,
  TH_FOP_OPEN,
  TH_FOP_RENAME,
  TH_FOP_SYMLINK,
  TH_REC_FILE,
  th_file,
  th_file_config,
  th_file_io,
  th_file_prefix,
  th_file_stats,
} from './layout.gen';
import { resolveFileOptions } from './sensor';

interface Rec {
  op: number;
  nr?: number;
  ret?: bigint;
  rflags?: number;
  flags?: number;
  mode?: number;
  fd?: number;
  pid?: number;
  bytesRead?: bigint;
  bytesWritten?: bigint;
  base?: Buffer | string;
  path?: Buffer | string;
  base2?: Buffer | string;
  path2?: Buffer | string;
  type?: number;
  version?: number;
  /** Override hdr.size. */
  size?: number;
}

const buf = (s: Buffer | string | undefined): Buffer => (s === undefined ? Buffer.alloc(0) : typeof s === 'string' ? Buffer.from(s) : s);

function record(r: Rec): Buffer {
  const parts = [r.base, r.path, r.base2, r.path2].map(buf);
  const total = th_file.SIZE + parts.reduce((a, b) => a + b.length, 0);
  const b = Buffer.alloc(total);
  b.writeUInt8(r.type ?? TH_REC_FILE, th_file.hdr_type);
  b.writeUInt8(r.version ?? TH_LAYOUT_VERSION, th_file.hdr_version);
  b.writeUInt32LE(r.size ?? total, th_file.hdr_size);
  b.writeBigUInt64LE(123456789n, th_file.hdr_ktime);
  b.writeBigUInt64LE(1000n, th_file.proc_ktime);
  b.writeBigInt64LE(r.ret ?? 0n, th_file.ret);
  b.writeBigUInt64LE(r.bytesRead ?? 0n, th_file.bytes_read);
  b.writeBigUInt64LE(r.bytesWritten ?? 0n, th_file.bytes_written);
  b.writeUInt32LE(r.pid ?? 42, th_file.pid);
  b.writeUInt32LE(r.pid ?? 42, th_file.tid);
  b.writeUInt32LE(r.nr ?? 257, th_file.nr);
  b.writeUInt32LE(r.rflags ?? 0, th_file.rflags);
  b.writeUInt32LE(r.flags ?? 0, th_file.flags);
  b.writeUInt32LE(r.mode ?? 0, th_file.mode);
  b.writeUInt32LE(0xffffffff, th_file.uid);
  b.writeUInt32LE(0xffffffff, th_file.gid);
  b.writeInt32LE(r.fd ?? -100, th_file.fd);
  b.writeUInt16LE(r.op, th_file.op);
  b.writeUInt16LE(parts[0].length, th_file.base_len);
  b.writeUInt16LE(parts[1].length, th_file.path_len);
  b.writeUInt16LE(parts[2].length, th_file.base2_len);
  b.writeUInt16LE(parts[3].length, th_file.path2_len);
  Buffer.concat(parts).copy(b, th_file.SIZE);
  return b;
}

/** Frames records as the native consumer does: [u32 len][u32 ring][bytes][pad to 8]. */
function batch(...recs: Buffer[]): Buffer {
  const out: Buffer[] = [];
  for (const r of recs) {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(r.length, 0);
    out.push(h, r, Buffer.alloc(((r.length + 7) & ~7) - r.length));
  }
  return Buffer.concat(out);
}

function decode(b: Buffer, count: number): FileRecord[] {
  const out: FileRecord[] = [];
  decodeFileBatch(b, count, out);
  return out;
}

test('decodes an open resolved by the kernel', () => {
  resetFileDecodeErrors();
  const [r] = decode(batch(record({ op: TH_FOP_OPEN, ret: 3n, rflags: TH_FF_RESOLVED, flags: 0o101, mode: 0o644, path: '/tmp/x/a' })), 1);
  assert.equal(r.op, 'open');
  assert.equal(r.ret, 3);
  assert.equal(r.pid, 42);
  assert.equal(r.nr, 257);
  assert.equal(r.ktime, 123456789n);
  assert.equal(r.procKtime, 1000n);
  assert.equal(r.flags, 0o101);
  assert.equal(r.mode, 0o644);
  assert.equal(r.fd, -100);
  assert.equal(r.uid, 0xffffffff);
  assert.deepEqual(recordPaths(r), { path: '/tmp/x/a', path2: undefined, truncated: false });
  assert.equal(fileDecodeErrors.malformed, 0);
});

test('joins a relative name with its base and normalises it', () => {
  const [r] = decode(batch(record({ op: TH_FOP_RENAME, base: '/tmp/x/', path: './a', base2: '/tmp/x/', path2: '../y//b/.' })), 1);
  assert.deepEqual(recordPaths(r), { path: '/tmp/x/a', path2: '/tmp/y/b', truncated: false });
});

test('several records in one batch, with padding, and negative returns', () => {
  const recs = decode(
    batch(
      record({ op: TH_FOP_OPEN, ret: -2n, path: '/nope' }),
      record({ op: TH_FOP_CLOSE, rflags: TH_FF_RESOLVED, path: '/tmp/f', bytesRead: 7n, bytesWritten: 12345n, fd: 5 }),
    ),
    2,
  );
  assert.equal(recs.length, 2);
  assert.equal(recs[0].ret, -2);
  assert.equal(recs[1].op, 'close');
  assert.equal(recs[1].bytesRead, 7);
  assert.equal(recs[1].bytesWritten, 12345);
  assert.equal(recs[1].fd, 5);
});

test('symlink targets are relative to the link; mount sources stay verbatim', () => {
  const [s, m, a] = decode(
    batch(
      record({ op: TH_FOP_SYMLINK, path: '../t', base2: '/srv/d/', path2: 'link' }),
      record({ op: TH_FOP_MOUNT, path: 'tmpfs', base2: '/', path2: 'mnt/x' }),
      record({ op: TH_FOP_SYMLINK, path: '/abs/t', path2: '/srv/l' }),
    ),
    3,
  );
  assert.deepEqual(recordPaths(s), { path: '/srv/t', path2: '/srv/d/link', truncated: false });
  assert.deepEqual(recordPaths(m), { path: 'tmpfs', path2: '/mnt/x', truncated: false });
  assert.deepEqual(recordPaths(a), { path: '/abs/t', path2: '/srv/l', truncated: false });
});

test('truncated and unresolved paths are flagged', () => {
  const [t, e] = decode(batch(record({ op: TH_FOP_OPEN, rflags: TH_FF_RESOLVED | TH_FF_TRUNC, path: '/deep/tail' }), record({ op: TH_FOP_OPEN, rflags: TH_FF_ERR })), 2);
  assert.equal(recordPaths(t).truncated, true);
  assert.equal(recordPaths(t).path, '/deep/tail');
  assert.equal(recordPaths(e).truncated, true);
  assert.equal(recordPaths(e).path, '');
});

test('odd bytes in names never throw', () => {
  const bad = Buffer.from([0x2f, 0x74, 0xff, 0xfe, 0xc3, 0x28, 0x00, 0x2f, 0x80]);
  const [r] = decode(batch(record({ op: TH_FOP_OPEN, rflags: TH_FF_RESOLVED, path: bad })), 1);
  assert.equal(typeof r.path, 'string');
  assert.ok(r.path.startsWith('/t'));
  assert.ok(r.path.includes('\ufffd'));
  assert.equal(Buffer.byteLength(r.path) >= 2, true);
});

test('malformed records are skipped and counted, the rest decoded', () => {
  resetFileDecodeErrors();
  const good = record({ op: TH_FOP_OPEN, path: '/ok' });
  const lengthsOverflow = record({ op: TH_FOP_OPEN, path: '/x' });
  lengthsOverflow.writeUInt16LE(500, th_file.path_len);
  const recs = decode(
    batch(
      Buffer.alloc(8), // shorter than a header
      record({ op: TH_FOP_OPEN, size: 40 }), // size below the struct
      lengthsOverflow,
      record({ op: 99 }), // unknown op
      record({ op: TH_FOP_OPEN, version: 9 }),
      record({ op: TH_FOP_OPEN, type: 3 }),
      good,
    ),
    7,
  );
  assert.deepEqual(recs.map((r) => r.path), ['/ok']);
  assert.deepEqual({ ...fileDecodeErrors }, { malformed: 4, unknownType: 1, badVersion: 1, framing: 0 });
});

test('broken framing drops the rest of the batch and counts it', () => {
  resetFileDecodeErrors();
  const b = batch(record({ op: TH_FOP_OPEN, path: '/a' }), record({ op: TH_FOP_OPEN, path: '/b' }));
  const cut = b.subarray(0, b.length - 20);
  assert.deepEqual(decode(cut, 2).map((r) => r.path), ['/a']);
  assert.equal(fileDecodeErrors.framing, 1);
  assert.deepEqual(decode(Buffer.alloc(4), 3), []);
  assert.equal(fileDecodeErrors.framing, 4);
});

test('normalizePath and joinPath', () => {
  assert.equal(normalizePath('/a/./b//c/'), '/a/b/c');
  assert.equal(normalizePath('/../..'), '/');
  assert.equal(normalizePath('/a/b/../../c'), '/c');
  assert.equal(normalizePath('/'), '/');
  assert.equal(joinPath('/tmp/', ''), '/tmp');
  assert.equal(joinPath('', 'rel'), 'rel');
  assert.equal(joinPath('', '/x/../y'), '/y');
});

test('prefix rules: equal or continued by "/"', () => {
  assert.ok(underPrefix('/proc', '/proc'));
  assert.ok(underPrefix('/proc/1/status', '/proc'));
  assert.ok(!underPrefix('/procfs', '/proc'));
  assert.ok(!underPrefix('/pro', '/proc'));
  assert.deepEqual(normalizePrefixes(['/proc/', '/sys', '/proc']), ['/proc', '/sys']);
  assert.throws(() => normalizePrefixes(['proc']), /"proc" is not an absolute path/);
  assert.throws(() => normalizePrefixes(['/']), /exclude every path/);
  assert.throws(() => normalizePrefixes(['/' + 'x'.repeat(63)]), /longer than 63 bytes/);
  assert.throws(() => normalizePrefixes(Array.from({ length: 17 }, (_, i) => `/p${i}`)), /at most 16/);
});

test('th_file_config encodes words and masks', () => {
  const b = encodeFileConfig(['/proc', '/0123456789abc'], 5);
  assert.equal(b.length, th_file_config.SIZE);
  assert.equal(b.readUInt32LE(th_file_config.nprefixes), 2);
  assert.equal(b.readUInt32LE(th_file_config.flags), 5);
  const p0 = th_file_config.prefix;
  assert.equal(b.toString('utf8', p0 + th_file_prefix.word, p0 + th_file_prefix.word + 5), '/proc');
  assert.equal(b.readBigUInt64LE(p0 + th_file_prefix.mask), 0xffffffffffn);
  assert.equal(b.readBigUInt64LE(p0 + th_file_prefix.mask + 8), 0n);
  assert.equal(b.readUInt32LE(p0 + th_file_prefix.len), 5);
  const p1 = p0 + th_file_prefix.SIZE;
  assert.equal(b.readBigUInt64LE(p1 + th_file_prefix.mask), 0xffffffffffffffffn);
  assert.equal(b.readBigUInt64LE(p1 + th_file_prefix.mask + 8), 0xffffffffffffn);
  assert.equal(b.readUInt32LE(p1 + th_file_prefix.len), 14);
});

test('stats are summed over CPUs', () => {
  const stride = th_file_stats.SIZE;
  const b = Buffer.alloc(stride * 2);
  for (let c = 0; c < 2; c++) {
    b.writeBigUInt64LE(3n, c * stride + th_file_stats.emitted + 8 * TH_FOP_OPEN);
    b.writeBigUInt64LE(1n, c * stride + th_file_stats.dropped + 8 * TH_FOP_CLOSE);
    b.writeBigUInt64LE(10n, c * stride + th_file_stats.excluded);
    b.writeBigUInt64LE(2n, c * stride + th_file_stats.truncated);
  }
  const s = decodeFileStats(b);
  assert.equal(s.emitted.length, TH_FOP_MAX);
  assert.equal(s.emitted[TH_FOP_OPEN], 6);
  assert.equal(s.emittedTotal, 6);
  assert.equal(s.droppedTotal, 2);
  assert.equal(s.excluded, 20);
  assert.equal(s.truncated, 4);
});

test('fd keys and I/O values', () => {
  assert.deepEqual(decodeFdKey(encodeFdKey({ tgid: 77, fd: -1 })), { tgid: 77, fd: -1 });
  const v = Buffer.alloc(th_file_io.SIZE);
  v.writeBigUInt64LE(5n, th_file_io.bytes_read);
  v.writeBigUInt64LE(12345n, th_file_io.bytes_written);
  v.writeBigUInt64LE(9n, th_file_io.open_ktime);
  assert.deepEqual(decodeFdIo(v), { bytesRead: 5, bytesWritten: 12345, openKtime: 9n, procKtime: 0n });
  assert.equal(decodeFdIo(Buffer.alloc(3)), null);
});

test('file sensor options are validated with clear errors', () => {
  const d = resolveFileOptions();
  assert.deepEqual(d.excludePrefixes, ['/proc', '/sys', '/dev']);
  assert.equal(d.trackIo, true);
  assert.equal(d.ioReportIntervalMs, 10000);
  assert.deepEqual(resolveFileOptions({ excludePrefixes: [] }).excludePrefixes, []);
  assert.throws(() => resolveFileOptions({ excludePrefix: ['/x'] } as never), /unknown option "excludePrefix"/);
  assert.throws(() => resolveFileOptions({ ringBytes: 5000 }), /power of 2/);
  assert.throws(() => resolveFileOptions({ trackIo: 'yes' } as never), /trackIo must be true or false/);
  assert.throws(() => resolveFileOptions({ ioReportIntervalMs: -1 }), /ioReportIntervalMs must be an integer/);
  assert.throws(() => resolveFileOptions({ excludeCgroupIds: [5] } as never), /positive bigints/);
});
