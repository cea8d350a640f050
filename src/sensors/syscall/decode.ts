// Decoder of the syscall sensor's ring records and map values
// (bpf/include/th_syscall.h); offsets from the generated layout.gen.ts.
import { TH_LAYOUT_VERSION, th_hdr } from '../process/layout.gen';
import {
  TH_REC_SYSCALL,
  TH_SF_AT_ENTER,
  TH_SYS_BINARY_LEN,
  th_sys_config,
  th_sys_count_key,
  th_sys_stats,
  th_syscall,
} from './layout.gen';

export interface SyscallRecord {
  /** ns since boot at sys_exit (sys_enter when atEnter). */
  ktime: bigint;
  procKtime: bigint;
  pid: number;
  tid: number;
  nr: number;
  /** Raw argument registers, unsigned 64-bit. */
  args: bigint[];
  /** Return value; undefined when emitted at sys_enter (the call does not return). */
  ret?: number;
}

export const syscallDecodeErrors = {
  malformed: 0,
  unknownType: 0,
  badVersion: 0,
  framing: 0,
};

export function syscallDecodeErrorTotal(): number {
  const c = syscallDecodeErrors;
  return c.malformed + c.unknownType + c.badVersion + c.framing;
}

export function resetSyscallDecodeErrors(): void {
  syscallDecodeErrors.malformed = 0;
  syscallDecodeErrors.unknownType = 0;
  syscallDecodeErrors.badVersion = 0;
  syscallDecodeErrors.framing = 0;
}

const FRAME_HEADER = 8;

/** Decodes `count` framed records ([u32 len][u32 ring][record][pad to 8]) into `out`. */
export function decodeSyscallBatch(batch: Buffer, count: number, out: SyscallRecord[]): void {
  const dv = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const blen = batch.byteLength;
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + FRAME_HEADER > blen) {
      syscallDecodeErrors.framing += count - i;
      return;
    }
    const len = dv.getUint32(p, true);
    const rec = p + FRAME_HEADER;
    if (len > blen - rec) {
      syscallDecodeErrors.framing += count - i;
      return;
    }
    p = rec + ((len + 7) & ~7);
    if (len < th_hdr.SIZE) {
      syscallDecodeErrors.malformed++;
      continue;
    }
    if (dv.getUint8(rec + th_hdr.version) !== TH_LAYOUT_VERSION) {
      syscallDecodeErrors.badVersion++;
      continue;
    }
    if (dv.getUint8(rec + th_hdr.type) !== TH_REC_SYSCALL) {
      syscallDecodeErrors.unknownType++;
      continue;
    }
    const size = dv.getUint32(rec + th_hdr.size, true);
    if (size < th_syscall.SIZE || size > len) {
      syscallDecodeErrors.malformed++;
      continue;
    }
    const args = new Array<bigint>(6);
    for (let k = 0; k < 6; k++) args[k] = dv.getBigUint64(rec + th_syscall.args + 8 * k, true);
    const atEnter = (dv.getUint32(rec + th_syscall.rflags, true) & TH_SF_AT_ENTER) !== 0;
    out.push({
      ktime: dv.getBigUint64(rec + th_syscall.hdr_ktime, true),
      procKtime: dv.getBigUint64(rec + th_syscall.proc_ktime, true),
      pid: dv.getUint32(rec + th_syscall.pid, true),
      tid: dv.getUint32(rec + th_syscall.tid, true),
      nr: dv.getUint32(rec + th_syscall.nr, true),
      args,
      ret: atEnter ? undefined : Number(dv.getBigInt64(rec + th_syscall.ret, true)),
    });
  }
}

export interface SyscallSensorStats {
  emitted: number;
  dropped: number;
  argsFull: number;
  countsFull: number;
  binTgidsFull: number;
}

/** Sums a per-CPU lookup of th_sys_stats. */
export function decodeSyscallStats(buf: Uint8Array): SyscallSensorStats {
  const stride = (th_sys_stats.SIZE + 7) & ~7;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const ncpu = Math.floor(buf.byteLength / stride);
  const s: SyscallSensorStats = { emitted: 0, dropped: 0, argsFull: 0, countsFull: 0, binTgidsFull: 0 };
  const u = (o: number): number => Number(dv.getBigUint64(o, true));
  for (let c = 0; c < ncpu; c++) {
    const b = c * stride;
    s.emitted += u(b + th_sys_stats.emitted);
    s.dropped += u(b + th_sys_stats.dropped);
    s.argsFull += u(b + th_sys_stats.args_full);
    s.countsFull += u(b + th_sys_stats.counts_full);
    s.binTgidsFull += u(b + th_sys_stats.bin_tgids_full);
  }
  return s;
}

export interface CountKey {
  tgid: number;
  nr: number;
  /** Image ktime when the first counted call happened (0n: unknown). */
  procKtime: bigint;
}

export function encodeCountKey(k: CountKey): Buffer {
  const b = Buffer.alloc(th_sys_count_key.SIZE);
  b.writeUInt32LE(k.tgid >>> 0, th_sys_count_key.tgid);
  b.writeUInt32LE(k.nr >>> 0, th_sys_count_key.nr);
  b.writeBigUInt64LE(k.procKtime, th_sys_count_key.proc_ktime);
  return b;
}

export function decodeCountKey(b: Uint8Array): CountKey | null {
  if (b.byteLength < th_sys_count_key.SIZE) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    tgid: dv.getUint32(th_sys_count_key.tgid, true),
    nr: dv.getUint32(th_sys_count_key.nr, true),
    procKtime: dv.getBigUint64(th_sys_count_key.proc_ktime, true),
  };
}

/** Value of th_sys_counts: a __u64 call count. */
export function decodeCount(b: Uint8Array): number | null {
  if (b.byteLength < 8) return null;
  return Number(new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0, true));
}

export function encodeSysConfig(flags: number): Buffer {
  const b = Buffer.alloc(th_sys_config.SIZE);
  b.writeUInt32LE(flags >>> 0, th_sys_config.flags);
  return b;
}

/** Key of th_sys_binaries: the path, NUL padded to TH_SYS_BINARY_LEN; null when too long. */
export function encodeBinaryKey(path: string): Buffer | null {
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.length >= TH_SYS_BINARY_LEN) return null;
  const b = Buffer.alloc(TH_SYS_BINARY_LEN);
  bytes.copy(b);
  return b;
}
