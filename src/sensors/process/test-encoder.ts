// Test/benchmark-only encoder: builds records exactly as process.bpf.c writes
// them (layout from layout.gen.ts) and frames them like the native ring
// consumer does. Not used by the agent.

import {
  TH_LAYOUT_VERSION,
  TH_REC_CLONE,
  TH_REC_EXEC,
  TH_REC_EXIT,
  th_clone,
  th_exec,
  th_exit,
  th_stats,
  TH_REC_MAX,
} from './layout.gen';

export interface ExecInput {
  ktime: bigint;
  pid: number;
  tid?: number;
  parentPid: number;
  parentKtime: bigint;
  uid?: number;
  gid?: number;
  euid?: number;
  egid?: number;
  auid?: number;
  flags: number;
  cgroupId?: bigint;
  cgroupName?: string;
  filename: string;
  /** Full argv, argv[0] included; each gets a NUL. Ignored when rawArgs is set. */
  argv?: string[];
  /** Raw argv bytes as the kernel copies them (for truncation tests). */
  rawArgs?: Buffer;
  cwd: string;
}

export function encodeExec(e: ExecInput): Buffer {
  const fn = Buffer.from(e.filename, 'utf8');
  const args = e.rawArgs ?? Buffer.concat((e.argv ?? []).map((a) => Buffer.from(a + '\0', 'utf8')));
  const cwd = Buffer.from(e.cwd, 'utf8');
  const cg = Buffer.from(e.cgroupName ?? '', 'utf8');
  const size = th_exec.SIZE + fn.length + args.length + cwd.length + cg.length;
  const b = Buffer.alloc(size);
  b.writeUInt8(TH_REC_EXEC, th_exec.hdr_type);
  b.writeUInt8(TH_LAYOUT_VERSION, th_exec.hdr_version);
  b.writeUInt32LE(size, th_exec.hdr_size);
  b.writeBigUInt64LE(e.ktime, th_exec.hdr_ktime);
  b.writeUInt32LE(e.pid, th_exec.pid);
  b.writeUInt32LE(e.tid ?? e.pid, th_exec.tid);
  b.writeUInt32LE(e.parentPid, th_exec.ppid);
  b.writeUInt32LE(e.flags, th_exec.flags);
  b.writeBigUInt64LE(e.parentKtime, th_exec.parent_ktime);
  b.writeBigUInt64LE(e.cgroupId ?? 0n, th_exec.cgroup_id);
  b.writeUInt32LE(e.uid ?? 0, th_exec.uid);
  b.writeUInt32LE(e.gid ?? 0, th_exec.gid);
  b.writeUInt32LE(e.euid ?? 0, th_exec.euid);
  b.writeUInt32LE(e.egid ?? 0, th_exec.egid);
  b.writeUInt32LE(e.auid ?? 4294967295, th_exec.auid);
  b.writeUInt16LE(fn.length, th_exec.filename_len);
  b.writeUInt16LE(args.length, th_exec.args_len);
  b.writeUInt16LE(cwd.length, th_exec.cwd_len);
  b.writeUInt16LE(cg.length, th_exec.cgroup_name_len);
  let o = th_exec.SIZE;
  for (const part of [fn, args, cwd, cg]) {
    part.copy(b, o);
    o += part.length;
  }
  return b;
}

export interface CloneInput {
  ktime: bigint;
  pid: number;
  tid?: number;
  parentPid: number;
  parentKtime: bigint;
  flags: number;
}

export function encodeClone(c: CloneInput): Buffer {
  const b = Buffer.alloc(th_clone.SIZE);
  b.writeUInt8(TH_REC_CLONE, th_clone.hdr_type);
  b.writeUInt8(TH_LAYOUT_VERSION, th_clone.hdr_version);
  b.writeUInt32LE(th_clone.SIZE, th_clone.hdr_size);
  b.writeBigUInt64LE(c.ktime, th_clone.hdr_ktime);
  b.writeUInt32LE(c.pid, th_clone.pid);
  b.writeUInt32LE(c.tid ?? c.pid, th_clone.tid);
  b.writeUInt32LE(c.parentPid, th_clone.ppid);
  b.writeUInt32LE(c.flags, th_clone.flags);
  b.writeBigUInt64LE(c.parentKtime, th_clone.parent_ktime);
  return b;
}

export interface ExitInput {
  ktime: bigint;
  procKtime: bigint;
  pid: number;
  tid?: number;
  /** Raw wait status: (status << 8) | signal. */
  code: number;
}

export function encodeExit(x: ExitInput): Buffer {
  const b = Buffer.alloc(th_exit.SIZE);
  b.writeUInt8(TH_REC_EXIT, th_exit.hdr_type);
  b.writeUInt8(TH_LAYOUT_VERSION, th_exit.hdr_version);
  b.writeUInt32LE(th_exit.SIZE, th_exit.hdr_size);
  b.writeBigUInt64LE(x.ktime, th_exit.hdr_ktime);
  b.writeUInt32LE(x.pid, th_exit.pid);
  b.writeUInt32LE(x.tid ?? x.pid, th_exit.tid);
  b.writeBigUInt64LE(x.procKtime, th_exit.proc_ktime);
  b.writeUInt32LE(x.code >>> 0, th_exit.code);
  return b;
}

/** Frames records like the native consumer: [u32 len][u32 ring][record][pad to 8]. */
export function frameBatch(records: Buffer[], ringIndex = 0): Buffer {
  let total = 0;
  for (const r of records) total += 8 + ((r.length + 7) & ~7);
  const b = Buffer.alloc(total);
  let o = 0;
  for (const r of records) {
    b.writeUInt32LE(r.length, o);
    b.writeUInt32LE(ringIndex, o + 4);
    r.copy(b, o + 8);
    o += 8 + ((r.length + 7) & ~7);
  }
  return b;
}

/** A per-CPU lookup value of tetrahub_stats with the given per-CPU counters. */
export function encodeStats(
  cpus: { emitted?: number[]; dropped?: number[]; procsUpdateErr?: number; exitUnknown?: number }[],
): Buffer {
  const stride = (th_stats.SIZE + 7) & ~7;
  const b = Buffer.alloc(stride * cpus.length);
  cpus.forEach((c, i) => {
    const base = i * stride;
    for (let t = 0; t < TH_REC_MAX; t++) {
      b.writeBigUInt64LE(BigInt(c.emitted?.[t] ?? 0), base + th_stats.emitted + 8 * t);
      b.writeBigUInt64LE(BigInt(c.dropped?.[t] ?? 0), base + th_stats.dropped + 8 * t);
    }
    b.writeBigUInt64LE(BigInt(c.procsUpdateErr ?? 0), base + th_stats.procs_update_err);
    b.writeBigUInt64LE(BigInt(c.exitUnknown ?? 0), base + th_stats.exit_unknown);
  });
  return b;
}
