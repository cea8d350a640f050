// Decoder of the file sensor's ring records (bpf/include/th_file.h); offsets
// come from layout.gen.ts, generated from that header.
//
// Input: one batch from the native ring consumer: records back to back, each
// [u32 length][u32 ring index][length bytes][pad to 8]. Path bytes are decoded
// as UTF-8 (invalid bytes become U+FFFD: a name never makes the decoder throw).
import type { FileOp } from '../../model/event';
import { TH_LAYOUT_VERSION, th_hdr } from '../process/layout.gen';
import {
  TH_FF_ERR,
  TH_FF_ERR2,
  TH_FF_RESOLVED,
  TH_FF_TRUNC,
  TH_FF_TRUNC2,
  TH_FOP_CHMOD,
  TH_FOP_CHOWN,
  TH_FOP_CLOSE,
  TH_FOP_LINK,
  TH_FOP_MAX,
  TH_FOP_MKDIR,
  TH_FOP_MOUNT,
  TH_FOP_OPEN,
  TH_FOP_RENAME,
  TH_FOP_RMDIR,
  TH_FOP_SYMLINK,
  TH_FOP_TRUNCATE,
  TH_FOP_UMOUNT,
  TH_FOP_UNLINK,
  TH_FILE_PREFIXES,
  TH_FILE_PREFIX_LEN_MAX,
  TH_REC_FILE,
  th_file,
  th_file_config,
  th_file_fdkey,
  th_file_io,
  th_file_prefix,
  th_file_stats,
} from './layout.gen';

/** th_file.op → FileOp (index = TH_FOP_*). */
export const FILE_OPS: ReadonlyArray<FileOp | undefined> = (() => {
  const a: Array<FileOp | undefined> = new Array(TH_FOP_MAX).fill(undefined);
  a[TH_FOP_OPEN] = 'open';
  a[TH_FOP_CLOSE] = 'close';
  a[TH_FOP_UNLINK] = 'unlink';
  a[TH_FOP_RENAME] = 'rename';
  a[TH_FOP_CHMOD] = 'chmod';
  a[TH_FOP_CHOWN] = 'chown';
  a[TH_FOP_TRUNCATE] = 'truncate';
  a[TH_FOP_MKDIR] = 'mkdir';
  a[TH_FOP_RMDIR] = 'rmdir';
  a[TH_FOP_SYMLINK] = 'symlink';
  a[TH_FOP_LINK] = 'link';
  a[TH_FOP_MOUNT] = 'mount';
  a[TH_FOP_UMOUNT] = 'umount';
  return a;
})();

/** One TH_REC_FILE record, as the kernel wrote it (paths not joined yet). */
export interface FileRecord {
  /** ns since boot at the emit (sys_exit, or sys_enter for close). */
  ktime: bigint;
  /** ktime of the process image (exec_id), 0n when the kernel did not know it. */
  procKtime: bigint;
  pid: number;
  tid: number;
  /** x86_64 syscall number. */
  nr: number;
  op: FileOp;
  ret: number;
  /** TH_FF_* bits. */
  rflags: number;
  flags: number;
  mode: number;
  uid: number;
  gid: number;
  fd: number;
  bytesRead: number;
  bytesWritten: number;
  /** Directory (ending in '/') a relative `path` is relative to; "" when none. */
  base: string;
  path: string;
  base2: string;
  path2: string;
}

/** Records the decoder skipped since start, by reason. */
export const fileDecodeErrors = {
  malformed: 0,
  unknownType: 0,
  badVersion: 0,
  framing: 0,
};

export function fileDecodeErrorTotal(): number {
  const c = fileDecodeErrors;
  return c.malformed + c.unknownType + c.badVersion + c.framing;
}

export function resetFileDecodeErrors(): void {
  fileDecodeErrors.malformed = 0;
  fileDecodeErrors.unknownType = 0;
  fileDecodeErrors.badVersion = 0;
  fileDecodeErrors.framing = 0;
}

const FRAME_HEADER = 8;

/**
 * Decodes `count` framed records of `batch` into `out`. Strings are copied:
 * the batch may be reused after the call.
 */
export function decodeFileBatch(batch: Buffer, count: number, out: FileRecord[]): void {
  const dv = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const blen = batch.byteLength;
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + FRAME_HEADER > blen) {
      fileDecodeErrors.framing += count - i;
      return;
    }
    const len = dv.getUint32(p, true);
    const rec = p + FRAME_HEADER;
    if (len > blen - rec) {
      fileDecodeErrors.framing += count - i;
      return;
    }
    p = rec + ((len + 7) & ~7);
    if (len < th_hdr.SIZE) {
      fileDecodeErrors.malformed++;
      continue;
    }
    if (dv.getUint8(rec + th_file.hdr_version) !== TH_LAYOUT_VERSION) {
      fileDecodeErrors.badVersion++;
      continue;
    }
    if (dv.getUint8(rec + th_file.hdr_type) !== TH_REC_FILE) {
      fileDecodeErrors.unknownType++;
      continue;
    }
    const r = decodeFileRecord(batch, dv, rec, len);
    if (r) out.push(r);
    else fileDecodeErrors.malformed++;
  }
}

function decodeFileRecord(b: Buffer, dv: DataView, rec: number, len: number): FileRecord | null {
  const size = dv.getUint32(rec + th_file.hdr_size, true);
  if (size < th_file.SIZE || size > len) return null;
  const op = FILE_OPS[dv.getUint16(rec + th_file.op, true)];
  if (!op) return null;
  const bl = dv.getUint16(rec + th_file.base_len, true);
  const pl = dv.getUint16(rec + th_file.path_len, true);
  const b2l = dv.getUint16(rec + th_file.base2_len, true);
  const p2l = dv.getUint16(rec + th_file.path2_len, true);
  const t0 = rec + th_file.SIZE;
  const t1 = t0 + bl;
  const t2 = t1 + pl;
  const t3 = t2 + b2l;
  const t4 = t3 + p2l;
  if (t4 > rec + size) return null;
  return {
    ktime: dv.getBigUint64(rec + th_file.hdr_ktime, true),
    procKtime: dv.getBigUint64(rec + th_file.proc_ktime, true),
    pid: dv.getUint32(rec + th_file.pid, true),
    tid: dv.getUint32(rec + th_file.tid, true),
    nr: dv.getUint32(rec + th_file.nr, true),
    op,
    ret: Number(dv.getBigInt64(rec + th_file.ret, true)),
    rflags: dv.getUint32(rec + th_file.rflags, true),
    flags: dv.getUint32(rec + th_file.flags, true),
    mode: dv.getUint32(rec + th_file.mode, true),
    uid: dv.getUint32(rec + th_file.uid, true),
    gid: dv.getUint32(rec + th_file.gid, true),
    fd: dv.getInt32(rec + th_file.fd, true),
    bytesRead: Number(dv.getBigUint64(rec + th_file.bytes_read, true)),
    bytesWritten: Number(dv.getBigUint64(rec + th_file.bytes_written, true)),
    base: bl ? b.toString('utf8', t0, t1) : '',
    path: pl ? b.toString('utf8', t1, t2) : '',
    base2: b2l ? b.toString('utf8', t2, t3) : '',
    path2: p2l ? b.toString('utf8', t3, t4) : '',
  };
}

/**
 * Lexical normalisation of an absolute path: collapses '//' and '.', applies
 * '..' (never above '/'), drops a trailing '/'. The kernel resolved the base;
 * only the part the process passed is normalised here, so a '..' after a
 * symlink in that part is taken lexically.
 */
export function normalizePath(p: string): string {
  const abs = p.startsWith('/');
  const parts: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (parts.length && parts[parts.length - 1] !== '..') parts.pop();
      else if (!abs) parts.push('..');
      continue;
    }
    parts.push(c);
  }
  const s = parts.join('/');
  return abs ? '/' + s : s || '.';
}

/** The absolute path of one base + path pair of a record. */
export function joinPath(base: string, p: string): string {
  if (!base) return p.startsWith('/') ? normalizePath(p) : p;
  return normalizePath(base + p);
}

/** Resolved first and second paths of a record, as FileEvent carries them. */
export function recordPaths(r: FileRecord): { path: string; path2?: string; truncated: boolean } {
  const truncated = (r.rflags & (TH_FF_TRUNC | TH_FF_TRUNC2 | TH_FF_ERR | TH_FF_ERR2)) !== 0;
  let path: string;
  let path2: string | undefined;
  if (r.rflags & TH_FF_RESOLVED) path = r.path; // the kernel's own path of the file
  else path = joinPath(r.base, r.path);
  if (r.op === 'rename' || r.op === 'link' || r.op === 'symlink' || r.op === 'mount') path2 = joinPath(r.base2, r.path2);
  if (r.op === 'symlink' && !r.path.startsWith('/') && path2 !== undefined) {
    // A relative target is relative to the link's directory.
    const dir = path2.slice(0, path2.lastIndexOf('/') + 1) || '/';
    path = normalizePath(dir + r.path);
  }
  return { path, path2, truncated };
}

// ---- maps ----

/** Counters of th_file_stats summed over CPUs. */
export interface FileSensorStats {
  /** By TH_FOP_* (index). */
  emitted: number[];
  dropped: number[];
  emittedTotal: number;
  droppedTotal: number;
  excluded: number;
  argsFull: number;
  argsMiss: number;
  fdsFull: number;
  truncated: number;
}

/** Sums a per-CPU lookup of th_file_stats (values of all CPUs, 8-byte aligned each). */
export function decodeFileStats(buf: Uint8Array): FileSensorStats {
  const stride = (th_file_stats.SIZE + 7) & ~7;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const ncpu = Math.floor(buf.byteLength / stride);
  const emitted = new Array<number>(TH_FOP_MAX).fill(0);
  const dropped = new Array<number>(TH_FOP_MAX).fill(0);
  const s = { excluded: 0, argsFull: 0, argsMiss: 0, fdsFull: 0, truncated: 0 };
  const u = (o: number): number => Number(dv.getBigUint64(o, true));
  for (let c = 0; c < ncpu; c++) {
    const base = c * stride;
    for (let t = 0; t < TH_FOP_MAX; t++) {
      emitted[t] += u(base + th_file_stats.emitted + 8 * t);
      dropped[t] += u(base + th_file_stats.dropped + 8 * t);
    }
    s.excluded += u(base + th_file_stats.excluded);
    s.argsFull += u(base + th_file_stats.args_full);
    s.argsMiss += u(base + th_file_stats.args_miss);
    s.fdsFull += u(base + th_file_stats.fds_full);
    s.truncated += u(base + th_file_stats.truncated);
  }
  return {
    emitted,
    dropped,
    emittedTotal: emitted.reduce((a, b) => a + b, 0),
    droppedTotal: dropped.reduce((a, b) => a + b, 0),
    ...s,
  };
}

/**
 * Checks and normalises exclusion prefixes: absolute, no trailing '/', at
 * most TH_FILE_PREFIX_LEN_MAX bytes, not "/" itself, at most TH_FILE_PREFIXES.
 * Throws an Error naming the offending prefix.
 */
export function normalizePrefixes(prefixes: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of prefixes) {
    if (typeof raw !== 'string' || !raw.startsWith('/')) throw new Error(`file sensor: exclusion prefix ${JSON.stringify(raw)} is not an absolute path`);
    const p = normalizePath(raw);
    if (p === '/') throw new Error('file sensor: exclusion prefix "/" would exclude every path');
    if (Buffer.byteLength(p) > TH_FILE_PREFIX_LEN_MAX) throw new Error(`file sensor: exclusion prefix ${JSON.stringify(raw)} is longer than ${TH_FILE_PREFIX_LEN_MAX} bytes`);
    if (!out.includes(p)) out.push(p);
  }
  if (out.length > TH_FILE_PREFIXES) throw new Error(`file sensor: at most ${TH_FILE_PREFIXES} exclusion prefixes (got ${out.length})`);
  return out;
}

/** True when path equals prefix or continues it with '/' (the kernel's rule). */
export function underPrefix(path: string, prefix: string): boolean {
  return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47);
}

/** Encodes th_file_config: the prefixes as little-endian words with byte masks. */
export function encodeFileConfig(prefixes: readonly string[], flags: number): Buffer {
  const b = Buffer.alloc(th_file_config.SIZE);
  b.writeUInt32LE(prefixes.length, th_file_config.nprefixes);
  b.writeUInt32LE(flags >>> 0, th_file_config.flags);
  prefixes.forEach((p, i) => {
    const base = th_file_config.prefix + i * th_file_prefix.SIZE;
    const bytes = Buffer.from(p, 'utf8');
    bytes.copy(b, base + th_file_prefix.word);
    for (let k = 0; k < bytes.length; k++) b[base + th_file_prefix.mask + k] = 0xff;
    b.writeUInt32LE(bytes.length, base + th_file_prefix.len);
  });
  return b;
}

export interface FdKey {
  tgid: number;
  fd: number;
}

export function encodeFdKey(k: FdKey): Buffer {
  const b = Buffer.alloc(th_file_fdkey.SIZE);
  b.writeUInt32LE(k.tgid >>> 0, th_file_fdkey.tgid);
  b.writeInt32LE(k.fd | 0, th_file_fdkey.fd);
  return b;
}

export function decodeFdKey(b: Uint8Array): FdKey | null {
  if (b.byteLength < th_file_fdkey.SIZE) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { tgid: dv.getUint32(th_file_fdkey.tgid, true), fd: dv.getInt32(th_file_fdkey.fd, true) };
}

export interface FdIo {
  bytesRead: number;
  bytesWritten: number;
  openKtime: bigint;
  procKtime: bigint;
}

export function decodeFdIo(b: Uint8Array): FdIo | null {
  if (b.byteLength < th_file_io.SIZE) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    bytesRead: Number(dv.getBigUint64(th_file_io.bytes_read, true)),
    bytesWritten: Number(dv.getBigUint64(th_file_io.bytes_written, true)),
    openKtime: dv.getBigUint64(th_file_io.open_ktime, true),
    procKtime: dv.getBigUint64(th_file_io.proc_ktime, true),
  };
}
