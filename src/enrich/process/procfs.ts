// Start-up scan of /proc: processes that were running before the agent get
// cache entries (flag procFS) with the same exec_id scheme as live execs, so
// later events find their parents. Unreadable entries are skipped, not fatal.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execSync } from 'node:child_process';
import type { ProcessInfo } from '../../model/event';
import { containerIdFromCgroup, joinArguments } from './args';
import type { BootClock } from './clock';
import { execIdOf } from './execId';
import { FLAG, flagString } from './flags';

export interface ProcScanResult {
  processes: ProcessInfo[];
  /** Parent pid of each scanned process (for seeding the kernel process map). */
  ppid: Map<number, number>;
  skipped: number;
  notes: string[];
}

let clkTck: number | undefined;
function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execSync('getconf CLK_TCK', { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

function readText(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

function readLink(p: string): string | undefined {
  try {
    return fs.readlinkSync(p);
  } catch {
    return undefined;
  }
}

function idsFrom(status: string, key: string): number[] {
  const m = new RegExp(`^${key}:\\s+(\\d+)\\s+(\\d+)`, 'm').exec(status);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** Where cgroup v2 is mounted (pure v2 or the hybrid "unified" mount), for cgroup ids. */
export function cgroup2Mount(procRoot = '/proc'): string | undefined {
  const mounts = readText(path.join(procRoot, 'mounts')) ?? '';
  for (const line of mounts.split('\n')) {
    const f = line.split(' ');
    if (f[2] === 'cgroup2') return f[1];
  }
  return undefined;
}

export function scanProc(opts: { nodeName: string; clock: BootClock; procRoot?: string; excludePid?: number }): ProcScanResult {
  const procRoot = opts.procRoot ?? '/proc';
  const tickNs = BigInt(Math.round(1e9 / clockTicks()));
  const cg2 = cgroup2Mount(procRoot);
  const notes: string[] = [];
  const raw: { pid: number; ppid: number; ktime: bigint; info: Omit<ProcessInfo, 'parentExecId'> }[] = [];
  let skipped = 0;
  let names: string[];
  try {
    names = fs.readdirSync(procRoot);
  } catch (e) {
    return { processes: [], ppid: new Map(), skipped: 0, notes: [`cannot read ${procRoot}: ${(e as Error).message}`] };
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === opts.excludePid) continue;
    const dir = path.join(procRoot, name);
    const stat = readText(path.join(dir, 'stat'));
    const cmdline = readText(path.join(dir, 'cmdline'));
    if (!stat || cmdline === undefined || cmdline === '') {
      skipped++; // gone meanwhile, or a kernel thread
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(fields[1]);
    const ktime = BigInt(fields[19]) * tickNs;
    const argv = cmdline.split('\0');
    if (argv[argv.length - 1] === '') argv.pop();
    const status = readText(path.join(dir, 'status')) ?? '';
    const [uid, euid] = idsFrom(status, 'Uid');
    const [gid, egid] = idsFrom(status, 'Gid');
    const loginuid = Number(readText(path.join(dir, 'loginuid')) ?? '4294967295');
    const exe = readLink(path.join(dir, 'exe'));
    const cwd = readLink(path.join(dir, 'cwd'));
    let cgroupId = 0n;
    let cgroupLeaf = '';
    const cg = readText(path.join(dir, 'cgroup')) ?? '';
    const v2 = /^0::(.*)$/m.exec(cg);
    if (v2) {
      cgroupLeaf = path.basename(v2[1]);
      if (cg2) {
        try {
          cgroupId = fs.statSync(path.join(cg2, v2[1]), { bigint: true }).ino;
        } catch {
          /* cgroup vanished */
        }
      }
    }
    let flags = FLAG.procFS;
    if (cwd === undefined) flags |= FLAG.nocwd;
    else if (cwd === '/') flags |= FLAG.rootcwd;
    const args = argv.slice(1);
    raw.push({
      pid,
      ppid,
      ktime,
      info: {
        execId: execIdOf(opts.nodeName, ktime, pid),
        pid,
        tid: pid,
        ktime,
        creds: { uid, gid, euid, egid },
        auid: Number.isFinite(loginuid) ? loginuid : 4294967295,
        cwd: cwd ?? '',
        binary: exe?.replace(/ \(deleted\)$/, '') ?? argv[0] ?? '',
        args,
        arguments: joinArguments(args),
        flags: flagString(flags),
        startTime: opts.clock.toWall(ktime),
        cgroupId,
        docker: containerIdFromCgroup(cgroupLeaf),
        refcnt: 1,
      },
    });
  }
  if (readLink(path.join(procRoot, '1', 'ns', 'pid')) === undefined) {
    notes.push('host namespace details are hidden here (/proc/1/ns unreadable even as root): namespace fields stay empty');
  }
  const byPid = new Map(raw.map((r) => [r.pid, r]));
  raw.sort((a, b) => (a.ktime < b.ktime ? -1 : a.ktime > b.ktime ? 1 : a.pid - b.pid));
  const ppidMap = new Map<number, number>();
  const processes = raw.map((r) => {
    const parent = byPid.get(r.ppid);
    ppidMap.set(r.pid, r.ppid);
    return { ...r.info, parentExecId: parent ? parent.info.execId : '' };
  });
  return { processes, ppid: ppidMap, skipped, notes };
}
