// Synthetic but realistic exec records (the kernel layout, built with the
// process sensor's test encoder), for the memory and fan-out benchmarks: a
// process tree with distinct pids, increasing ktimes, common binary paths,
// 3–6 arguments with per-process variation, working directories, and cgroup
// names of host sessions and containers.
import { encodeExec, frameBatch, type ExecInput } from '../src/sensors/process/test-encoder';
import { th_exec, TH_FLAG_EXECVE, TH_FLAG_CLONE } from '../src/sensors/process/layout.gen';

/** Small deterministic PRNG (mulberry32), so runs are comparable. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BINARIES = [
  '/usr/bin/curl', '/usr/bin/bash', '/bin/sh', '/usr/bin/python3.11', '/usr/local/bin/node', '/usr/bin/git',
  '/usr/bin/ls', '/usr/bin/cat', '/usr/bin/grep', '/usr/bin/sed', '/usr/bin/awk', '/usr/bin/find', '/usr/bin/tar',
  '/usr/bin/ssh', '/usr/sbin/iptables', '/usr/bin/containerd-shim-runc-v2', '/usr/bin/runc', '/usr/local/bin/kubectl',
  '/usr/bin/dpkg', '/usr/bin/apt-get', '/usr/lib/postgresql/15/bin/postgres', '/usr/sbin/nginx', '/app/bin/server',
  '/usr/bin/java', '/usr/bin/make', '/usr/bin/gcc', '/usr/lib/gcc/x86_64-linux-gnu/12/cc1', '/usr/bin/ld', '/usr/bin/env',
  '/usr/bin/sleep', '/usr/bin/date', '/usr/bin/ps', '/usr/bin/jq', '/usr/bin/wget', '/usr/bin/openssl', '/usr/bin/id',
];

const ARG_WORDS = [
  '-sS', '--retry', '3', '-H', 'Accept: application/json', '-c', '-e', '--color=auto', '-la', '-r', '-n', '--quiet',
  '-o', 'json', '--namespace', 'kube-system', 'get', 'pods', 'status', '--porcelain', 'log', '--oneline', '-v', '-f',
  '-x', '-jar', '--config', '-p', '8080', '--user', 'www-data', '-Xmx512m', '-O2', '-Wall', '-I/usr/include',
];

const CWDS = ['/', '/root', '/home/alice/src/tetrahub', '/var/lib/postgresql', '/app', '/tmp', '/home/bob/work/service-api', '/srv/www', '/opt/build/checkout'];

function hex(rnd: () => number, n: number): string {
  let s = '';
  while (s.length < n) s += Math.floor(rnd() * 0x100000000).toString(16).padStart(8, '0');
  return s.slice(0, n);
}

function argOf(rnd: () => number, i: number, pid: number): string {
  const k = rnd();
  if (k < 0.15) return `https://api.example.com/v1/items/${pid}?page=${i}`;
  if (k < 0.3) return `/var/log/app/${hex(rnd, 8)}.log`;
  if (k < 0.4) return `/home/alice/src/tetrahub/src/file${(pid * 7 + i) % 997}.ts`;
  if (k < 0.45) return `--token=${hex(rnd, 24)}`;
  return ARG_WORDS[Math.floor(rnd() * ARG_WORDS.length)];
}

/** A generator of exec inputs forming a process tree (each parent seen before its children). */
export class ExecSource {
  private rnd: () => number;
  private nextPid: number;
  private ktime: bigint;
  private known: { pid: number; ktime: bigint }[] = [];
  private cgroups: { id: bigint; name: string }[] = [];

  constructor(opts: { seed?: number; firstPid?: number; ktime?: bigint } = {}) {
    this.rnd = prng(opts.seed ?? 42);
    this.nextPid = opts.firstPid ?? 20_000;
    this.ktime = opts.ktime ?? 1_000_000_000_000n;
    for (let i = 0; i < 24; i++) {
      const r = this.rnd();
      const name = r < 0.3 ? `session-${i + 2}.scope` : r < 0.6 ? `docker-${hex(this.rnd, 64)}.scope` : `cri-containerd-${hex(this.rnd, 64)}.scope`;
      this.cgroups.push({ id: BigInt(5000 + i), name });
    }
  }

  /** The next exec (ktime strictly increasing; parent an earlier process or pid 1). */
  next(ktime?: bigint): ExecInput {
    const rnd = this.rnd;
    const pid = this.nextPid++;
    this.ktime = ktime ?? this.ktime + BigInt(1000 + Math.floor(rnd() * 50_000));
    const parent = this.known.length > 0 && rnd() < 0.9 ? this.known[Math.floor(rnd() * this.known.length)] : { pid: 1, ktime: 0n };
    const filename = BINARIES[Math.floor(rnd() * BINARIES.length)];
    const nargs = 3 + Math.floor(rnd() * 4);
    const argv = [filename.slice(filename.lastIndexOf('/') + 1)];
    for (let i = 0; i < nargs; i++) argv.push(argOf(rnd, i, pid));
    const cg = this.cgroups[Math.floor(rnd() * this.cgroups.length)];
    const uid = rnd() < 0.6 ? 0 : 1000 + Math.floor(rnd() * 3);
    const input: ExecInput = {
      ktime: this.ktime,
      pid,
      tid: pid,
      parentPid: parent.pid,
      parentKtime: parent.ktime,
      uid,
      gid: uid,
      euid: uid,
      egid: uid,
      auid: uid === 0 ? 4294967295 : uid,
      flags: TH_FLAG_EXECVE | TH_FLAG_CLONE,
      cgroupId: cg.id,
      cgroupName: cg.name,
      filename,
      argv,
      cwd: CWDS[Math.floor(rnd() * CWDS.length)],
    };
    // Keep a bounded window of possible parents (recent processes, like a real tree).
    if (this.known.length < 2048) this.known.push({ pid, ktime: this.ktime });
    else this.known[Math.floor(rnd() * this.known.length)] = { pid, ktime: this.ktime };
    return input;
  }

  /** n records framed like one ring-consumer batch. */
  batch(n: number): Buffer {
    const recs: Buffer[] = [];
    for (let i = 0; i < n; i++) recs.push(encodeExec(this.next()));
    return frameBatch(recs);
  }
}

/**
 * A framed batch whose records can be re-stamped in place (pid, tid, ktime,
 * parent) so that a publisher makes distinct processes without re-encoding.
 */
export class ReusableBatch {
  readonly buf: Buffer;
  readonly offsets: number[] = [];

  constructor(src: ExecSource, readonly count: number) {
    this.buf = src.batch(count);
    let off = 0;
    for (let i = 0; i < count; i++) {
      this.offsets.push(off + 8);
      const len = this.buf.readUInt32LE(off);
      off += 8 + ((len + 7) & ~7);
    }
  }

  /** Stamps record i as pid/ktime, child of parentPid/parentKtime. */
  stamp(i: number, pid: number, ktime: bigint, parentPid: number, parentKtime: bigint): void {
    const r = this.offsets[i];
    const b = this.buf;
    b.writeUInt32LE(pid, r + th_exec.pid);
    b.writeUInt32LE(pid, r + th_exec.tid);
    b.writeBigUInt64LE(ktime, r + th_exec.hdr_ktime);
    b.writeUInt32LE(parentPid, r + th_exec.ppid);
    b.writeBigUInt64LE(parentKtime, r + th_exec.parent_ktime);
  }
}
