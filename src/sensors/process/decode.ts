// Decoder of the process sensor's ring records (bpf/include/tetrahub_events.h).
// Offsets come from layout.gen.ts (generated from the header); never hand-written.
//
// Input: one batch from the native ring consumer (src/kernel/types.ts):
// records back to back, each [u32 length][u32 ring index][length bytes][pad to 8].
// ktime values are ns since boot (CLOCK_BOOTTIME); the process cache converts them.

import {
  TH_LAYOUT_VERSION,
  TH_REC_CLONE,
  TH_REC_EXEC,
  TH_REC_EXIT,
  TH_REC_MAX,
  th_clone,
  th_exec,
  th_exit,
  th_hdr,
  th_proc,
  th_stats,
} from './layout.gen';

export interface ExecRecord {
  type: 'exec';
  /** Exec time = this image's ktime (ns since boot). */
  ktime: bigint;
  pid: number;
  tid: number;
  /** Parent image: same pid (previous image) or, with the miss flag, the real parent. */
  parentPid: number;
  /** 0 when the parent image is unknown. */
  parentKtime: bigint;
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  /** loginuid; 4294967295 = unset. */
  auid: number;
  /** Tetragon process flag bits (TH_FLAG_*). */
  flags: number;
  cgroupId: bigint;
  /** kernfs name of the cgroup-v2 leaf, e.g. "docker-<id>.scope"; "" for the root cgroup. */
  cgroupName: string;
  filename: string;
  /** argv[1..]. */
  args: string[];
  cwd: string;
}

export interface CloneRecord {
  type: 'clone';
  /** Fork time = the child's clone-image ktime. */
  ktime: bigint;
  pid: number;
  tid: number;
  parentPid: number;
  parentKtime: bigint;
  flags: number;
}

export interface ExitRecord {
  type: 'exit';
  /** Exit time. */
  ktime: bigint;
  /** ktime of the exiting image. */
  procKtime: bigint;
  pid: number;
  tid: number;
  /** Exit status 0-255 (0 when killed by a signal). */
  status: number;
  /** Terminating signal number, 0 for a normal exit. */
  signal: number;
}

export type ProcessRecord = ExecRecord | CloneRecord | ExitRecord;

/** Records the decoder skipped since start (or the last reset), by reason. */
export const decodeErrorCounts = {
  /** Record shorter than its header/struct, or whose lengths overflow it. */
  malformed: 0,
  /** Unknown record type. */
  unknownType: 0,
  /** Layout version other than TH_LAYOUT_VERSION. */
  badVersion: 0,
  /** Batch framing broken (length past the end of the batch): rest of the batch dropped. */
  framing: 0,
};

/** Total records skipped by the decoder (sum of decodeErrorCounts). */
export function decodeErrors(): number {
  const c = decodeErrorCounts;
  return c.malformed + c.unknownType + c.badVersion + c.framing;
}

export function resetDecodeErrors(): void {
  decodeErrorCounts.malformed = 0;
  decodeErrorCounts.unknownType = 0;
  decodeErrorCounts.badVersion = 0;
  decodeErrorCounts.framing = 0;
}

/** Frame header of the native consumer: [u32 length][u32 ring index]. */
export const FRAME_HEADER = 8;

/**
 * Decodes `count` framed records of `batch` and appends the process records
 * to `out`. Malformed records are skipped and counted in decodeErrorCounts.
 * Strings are copied out: the batch may be reused after the call.
 */
export function decodeBatch(batch: Buffer, count: number, out: ProcessRecord[]): void {
  const dv = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const blen = batch.byteLength;
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + FRAME_HEADER > blen) {
      decodeErrorCounts.framing += count - i;
      return;
    }
    const len = dv.getUint32(p, true);
    const rec = p + FRAME_HEADER;
    if (len > blen - rec) {
      decodeErrorCounts.framing += count - i;
      return;
    }
    p = rec + ((len + 7) & ~7);
    if (len < th_hdr.SIZE) {
      decodeErrorCounts.malformed++;
      continue;
    }
    const size = dv.getUint32(rec + th_hdr.size, true);
    if (size > len || size < th_hdr.SIZE) {
      decodeErrorCounts.malformed++;
      continue;
    }
    if (dv.getUint8(rec + th_hdr.version) !== TH_LAYOUT_VERSION) {
      decodeErrorCounts.badVersion++;
      continue;
    }
    switch (dv.getUint8(rec + th_hdr.type)) {
      case TH_REC_EXEC: {
        const r = decodeExec(batch, dv, rec, size);
        if (r) out.push(r);
        else decodeErrorCounts.malformed++;
        break;
      }
      case TH_REC_CLONE:
        if (size < th_clone.SIZE) {
          decodeErrorCounts.malformed++;
          break;
        }
        out.push({
          type: 'clone',
          ktime: dv.getBigUint64(rec + th_clone.hdr_ktime, true),
          pid: dv.getUint32(rec + th_clone.pid, true),
          tid: dv.getUint32(rec + th_clone.tid, true),
          parentPid: dv.getUint32(rec + th_clone.ppid, true),
          parentKtime: dv.getBigUint64(rec + th_clone.parent_ktime, true),
          flags: dv.getUint32(rec + th_clone.flags, true),
        });
        break;
      case TH_REC_EXIT: {
        if (size < th_exit.SIZE) {
          decodeErrorCounts.malformed++;
          break;
        }
        const code = dv.getUint32(rec + th_exit.code, true);
        out.push({
          type: 'exit',
          ktime: dv.getBigUint64(rec + th_exit.hdr_ktime, true),
          procKtime: dv.getBigUint64(rec + th_exit.proc_ktime, true),
          pid: dv.getUint32(rec + th_exit.pid, true),
          tid: dv.getUint32(rec + th_exit.tid, true),
          status: (code >>> 8) & 0xff,
          signal: code & 0x7f,
        });
        break;
      }
      default:
        decodeErrorCounts.unknownType++;
    }
  }
}

/** Buffer's UTF-8 decoder without toString's argument handling (on every Node Buffer, absent from the typings). */
type Utf8Slicer = { utf8Slice(start: number, end: number): string };

/**
 * argv in s[start, end): each argument NUL terminated (the last maybe not,
 * when truncated) → argv[1..].
 */
function splitArgs(s: string, start: number, end: number): string[] {
  const args: string[] = [];
  let z = s.indexOf('\0', start);
  if (z < 0 || z >= end) return args; // only argv[0], or nothing
  let p = z + 1;
  while (p < end) {
    z = s.indexOf('\0', p);
    if (z < 0 || z > end) z = end;
    args.push(s.slice(p, z));
    p = z + 1;
  }
  return args;
}

function decodeExec(b: Buffer, dv: DataView, rec: number, size: number): ExecRecord | null {
  if (size < th_exec.SIZE) return null;
  const flen = dv.getUint16(rec + th_exec.filename_len, true);
  const alen = dv.getUint16(rec + th_exec.args_len, true);
  const clen = dv.getUint16(rec + th_exec.cwd_len, true);
  const glen = dv.getUint16(rec + th_exec.cgroup_name_len, true);
  const fn = rec + th_exec.SIZE;
  const ar = fn + flen;
  const cw = ar + alen;
  const cg = cw + clen;
  if (cg + glen > rec + size) return null;

  let filename: string;
  let cwd: string;
  let cgroupName: string;
  let args: string[];
  // Fast path: one native call decodes the whole tail as UTF-8. Every byte
  // yields at most one UTF-16 unit, so when the string is as long as the bytes
  // (ASCII, or lone invalid bytes that each became U+FFFD) the byte offsets are
  // string offsets and the fields are cut with cheap JS slices. Otherwise (real
  // multi-byte characters) each field is decoded on its own.
  const tail = (b as unknown as Utf8Slicer).utf8Slice(fn, cg + glen);
  if (tail.length === cg + glen - fn) {
    const c0 = flen + alen;
    const g0 = c0 + clen;
    filename = tail.slice(0, flen);
    cwd = tail.slice(c0, g0);
    cgroupName = tail.slice(g0);
    args = splitArgs(tail, flen, c0);
  } else {
    filename = b.toString('utf8', fn, ar);
    cwd = b.toString('utf8', cw, cg);
    cgroupName = b.toString('utf8', cg, cg + glen);
    const raw = b.toString('utf8', ar, cw);
    args = splitArgs(raw, 0, raw.length);
  }

  return {
    type: 'exec',
    ktime: dv.getBigUint64(rec + th_exec.hdr_ktime, true),
    pid: dv.getUint32(rec + th_exec.pid, true),
    tid: dv.getUint32(rec + th_exec.tid, true),
    parentPid: dv.getUint32(rec + th_exec.ppid, true),
    parentKtime: dv.getBigUint64(rec + th_exec.parent_ktime, true),
    uid: dv.getUint32(rec + th_exec.uid, true),
    gid: dv.getUint32(rec + th_exec.gid, true),
    euid: dv.getUint32(rec + th_exec.euid, true),
    egid: dv.getUint32(rec + th_exec.egid, true),
    auid: dv.getUint32(rec + th_exec.auid, true),
    flags: dv.getUint32(rec + th_exec.flags, true),
    cgroupId: dv.getBigUint64(rec + th_exec.cgroup_id, true),
    cgroupName,
    filename,
    args,
    cwd,
  };
}

/** Counters of the tetrahub_stats map, summed over CPUs. */
export interface ProcessSensorStats {
  /** Records written to the ring, by TH_REC_* type (index). */
  emitted: number[];
  /** Records lost because the ring was full, by TH_REC_* type (index). */
  dropped: number[];
  emittedTotal: number;
  droppedTotal: number;
  /** tetrahub_procs updates that failed (map full). */
  procsUpdateErr: number;
  /** Thread-group exits of pids that were not in tetrahub_procs (no EXIT record). */
  exitUnknown: number;
}

/**
 * Sums a per-CPU lookup of tetrahub_stats (or bench_stats) key 0: the values
 * of all possible CPUs concatenated, each padded to 8 bytes
 * (BpfMap.lookup of a per-CPU map).
 */
export function decodeStats(buf: Uint8Array): ProcessSensorStats {
  const stride = (th_stats.SIZE + 7) & ~7;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const ncpu = Math.floor(buf.byteLength / stride);
  const emitted = new Array<number>(TH_REC_MAX).fill(0);
  const dropped = new Array<number>(TH_REC_MAX).fill(0);
  let procsUpdateErr = 0;
  let exitUnknown = 0;
  for (let c = 0; c < ncpu; c++) {
    const base = c * stride;
    for (let t = 0; t < TH_REC_MAX; t++) {
      emitted[t] += Number(dv.getBigUint64(base + th_stats.emitted + 8 * t, true));
      dropped[t] += Number(dv.getBigUint64(base + th_stats.dropped + 8 * t, true));
    }
    procsUpdateErr += Number(dv.getBigUint64(base + th_stats.procs_update_err, true));
    exitUnknown += Number(dv.getBigUint64(base + th_stats.exit_unknown, true));
  }
  return {
    emitted,
    dropped,
    emittedTotal: emitted.reduce((a, b) => a + b, 0),
    droppedTotal: dropped.reduce((a, b) => a + b, 0),
    procsUpdateErr,
    exitUnknown,
  };
}

/** Alias of decodeStats. */
export const sumStats = decodeStats;

/** Value of the tetrahub_procs map (struct th_proc), key = u32 tgid. */
export interface ProcValue {
  /** ktime of the pid's current image (exec, clone, or /proc starttime for procFS). */
  ktime: bigint;
  parentPid: number;
  parentKtime: bigint;
  /** TH_FLAG_* bits; TH_FLAG_PROCFS for entries seeded from /proc. */
  flags: number;
}

/** Encodes a tetrahub_procs value (for seeding the map from /proc). */
export function encodeProcValue(v: ProcValue): Buffer {
  const b = Buffer.alloc(th_proc.SIZE);
  b.writeBigUInt64LE(v.ktime, th_proc.ktime);
  b.writeBigUInt64LE(v.parentKtime, th_proc.parent_ktime);
  b.writeUInt32LE(v.parentPid >>> 0, th_proc.parent_pid);
  b.writeUInt32LE(v.flags >>> 0, th_proc.flags);
  return b;
}

/** Decodes a tetrahub_procs value; null when too short. */
export function decodeProcValue(b: Uint8Array): ProcValue | null {
  if (b.byteLength < th_proc.SIZE) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    ktime: dv.getBigUint64(th_proc.ktime, true),
    parentPid: dv.getUint32(th_proc.parent_pid, true),
    parentKtime: dv.getBigUint64(th_proc.parent_ktime, true),
    flags: dv.getUint32(th_proc.flags, true),
  };
}
