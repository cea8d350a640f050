#!/usr/bin/env node
// Loads bpf/.output/process.bpf.o for real through th-consumer (print mode),
// runs a few scenarios and checks the records. Root only. Run from anywhere:
//   node bench/c-consumer/verify-process.js [--decoder path/to/decode.js]
// With --decoder (the compiled src/sensors/process/decode.ts, e.g.
// dist/src/sensors/process/decode.js), the raw records are also decoded by the
// TypeScript decoder and compared with the C consumer's view.
// Exit code 0 when every check passes.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '../..');
const consumer = path.join(__dirname, 'th-consumer');
const pinRoot = `/sys/fs/bpf/th-verify-${process.pid}`;
const failures = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function check(name, cond, detail) {
  if (cond) console.log(`ok   ${name}`);
  else {
    console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`);
    failures.push(name);
  }
}

function cgroupSetup() {
  const lines = fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  const rows = fs.readFileSync('/proc/cgroups', 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
  const memIdx = rows.findIndex((r) => r[0] === 'memory' && r[1] !== '0');
  const memLine = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  if (memIdx >= 0 && memLine && fs.existsSync('/sys/fs/cgroup/memory')) {
    const p = memLine.split(':')[2];
    return { args: ['--set', `cgroup_subsys_idx=${memIdx}`], name: p === '/' ? '' : path.basename(p), dir: path.join('/sys/fs/cgroup/memory', p) };
  }
  const v2 = (lines.find((l) => l.startsWith('0::')) || '0::/').slice(3);
  const mnt = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'].find((d) => fs.existsSync(path.join(d, 'cgroup.controllers')) || fs.existsSync(path.join(d, 'cgroup.procs')));
  return { args: [], name: v2 === '/' ? '' : path.basename(v2), dir: mnt ? path.join(mnt, v2) : null };
}

async function main() {
  const obj = path.join(root, 'bpf/.output/process.bpf.o');
  if (!fs.existsSync(consumer) || !fs.existsSync(obj)) {
    console.error('build first: make -C bpf && make -C bench/c-consumer');
    process.exit(2);
  }
  const di = process.argv.indexOf('--decoder');
  const decoderPath = di > 0 ? path.resolve(process.argv[di + 1]) : null;
  const dumpPath = path.join(os.tmpdir(), `th-verify-${process.pid}.bin`);
  // Name the cgroup the way an agent would on this host: v1 "memory" when the
  // host has a v1 memory hierarchy (hybrid), else the v2 cgroup.
  const cg = cgroupSetup();
  const child = spawn(consumer, ['--mode', 'print', '--obj', obj, '--pin-root', pinRoot, '--dump', dumpPath, ...cg.args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const started = Date.now();
  while (!err.includes('attached') && Date.now() - started < 120000) {
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  if (!err.includes('attached')) {
    console.error(err);
    process.exit(1);
  }
  // The pinned process map exists while the consumer runs.
  check('tetrahub_procs pinned by name', fs.existsSync(path.join(pinRoot, 'tetrahub_procs')));

  const me = process.pid;
  const uid = process.getuid();
  let auid = 4294967295;
  try {
    auid = Number(fs.readFileSync('/proc/self/loginuid', 'utf8').trim());
  } catch {}

  // 1. exec of /bin/true a b "c d" from /tmp.
  const r1 = spawnSync('/bin/true', ['a', 'b', 'c d'], { cwd: '/tmp' });
  // 2. sh -c 'exit 3'.
  const r2 = spawnSync('/bin/sh', ['-c', 'exit 3']);
  // 3. sleep 10 killed with SIGKILL.
  const sl = spawn('/bin/sleep', ['10']);
  await sleep(300);
  sl.kill('SIGKILL');
  await new Promise((r) => sl.on('exit', r));
  // 4. a multithreaded process (node with worker threads).
  const r4 = spawnSync(process.execPath, [
    '-e',
    "const {Worker}=require('worker_threads');for(let i=0;i<4;i++)new Worker('setTimeout(()=>{},200)',{eval:true});setTimeout(()=>process.exit(0),100)",
  ]);
  // 5. fork + exec chain inside a shell.
  const r5 = spawnSync('/bin/sh', ['-c', '/bin/true x; exec /bin/echo y'], { cwd: '/' });
  // 6. long argv (truncated) and a deep cwd (over 64 components).
  const long = 'A'.repeat(3000);
  const r6 = spawnSync('/bin/true', [long, long]);
  let deep = fs.mkdtempSync(path.join(os.tmpdir(), 'thv-'));
  const deepRoot = deep;
  for (let i = 0; i < 70; i++) deep = path.join(deep, 'd');
  fs.mkdirSync(deep, { recursive: true });
  const r7 = spawnSync('/bin/true', ['deep'], { cwd: deep });
  // 7. thread-group corner cases: leader exits first; exec from a non-leader thread.
  const threads = path.join(__dirname, 'th-threads');
  const r8 = spawnSync(threads, ['leader-exit', '5']);
  const r9 = spawnSync(threads, ['thread-exec', '/bin/true']);
  // 8. loginuid set in the child before exec.
  const r10 = spawnSync('/bin/sh', ['-c', 'echo 4242 > /proc/self/loginuid && exec /bin/true auid']);
  await sleep(1500);
  child.kill('SIGINT');
  await new Promise((r) => child.on('exit', r));
  fs.rmSync(deepRoot, { recursive: true, force: true });

  const recs = out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const byPid = (pid) => recs.filter((r) => r.pid === pid);
  const execOf = (pid) => byPid(pid).filter((r) => r.type === 'exec');
  const exitOf = (pid) => byPid(pid).filter((r) => r.type === 'exit');
  const cloneOf = (pid) => byPid(pid).filter((r) => r.type === 'clone');

  // 1
  {
    const ex = execOf(r1.pid);
    const e = ex[0] || {};
    check('1 one exec record', ex.length === 1, JSON.stringify(ex));
    check('1 filename', e.filename === '/bin/true', e.filename);
    check('1 argv', JSON.stringify(e.argv) === JSON.stringify(['/bin/true', 'a', 'b', 'c d']), JSON.stringify(e.argv));
    check('1 cwd', e.cwd === '/tmp', e.cwd);
    check('1 uid/euid/gid', e.uid === uid && e.euid === uid && e.gid === process.getgid(), JSON.stringify(e));
    check('1 auid', e.auid === auid, `${e.auid} vs ${auid}`);
    check('1 flags execve only', e.flags === '0x1', e.flags);
    const cl = cloneOf(r1.pid)[0] || {};
    check('1 clone from the verifier', cl.ppid === me && (parseInt(cl.flags, 16) & 0x4000) !== 0, JSON.stringify(cl));
    check('1 exec parent = clone image', e.ppid === r1.pid && e.parentKtime === cl.ktime, JSON.stringify([e.ppid, e.parentKtime, cl.ktime]));
    const x = exitOf(r1.pid);
    check('1 exit status 0, procKtime = exec ktime', x.length === 1 && x[0].status === 0 && x[0].signal === 0 && x[0].procKtime === e.ktime, JSON.stringify(x));
    check('1 ktime ordering', cl.ktime < e.ktime && e.ktime < (x[0] || {}).ktime);
  }
  // 2
  {
    const x = exitOf(r2.pid);
    check('2 exit 3 -> status 3', x.length === 1 && x[0].status === 3 && x[0].signal === 0, JSON.stringify(x));
  }
  // 3
  {
    const x = exitOf(sl.pid);
    check('3 kill -9 -> signal 9', x.length === 1 && x[0].signal === 9 && x[0].status === 0, JSON.stringify(x));
  }
  // 4
  {
    const x = exitOf(r4.pid);
    const clones = recs.filter((r) => r.type === 'clone' && r.ppid === r4.pid);
    check('4 multithreaded: one exit', x.length === 1 && x[0].status === 0, JSON.stringify(x));
    check('4 threads make no clone records', clones.length === 0, JSON.stringify(clones));
    check('4 exec seen', execOf(r4.pid).length === 1);
  }
  // 5
  {
    const sh = execOf(r5.pid);
    check('5 sh execs then execs echo', sh.length === 2 && sh[0].filename === '/bin/sh' && sh[1].filename === '/bin/echo', JSON.stringify(sh.map((e) => e.filename)));
    if (sh.length === 2) {
      check('5 echo parent = sh image (same pid)', sh[1].ppid === r5.pid && sh[1].parentKtime === sh[0].ktime);
      check('5 rootcwd', sh[1].cwd === '/' && (parseInt(sh[1].flags, 16) & 0x1000) !== 0, `${sh[1].cwd} ${sh[1].flags}`);
      const kids = recs.filter((r) => r.type === 'clone' && r.ppid === r5.pid);
      check('5 one child clone, parent = sh image', kids.length === 1 && kids[0].parentKtime === sh[0].ktime, JSON.stringify(kids));
      if (kids.length === 1) {
        const ke = execOf(kids[0].pid)[0] || {};
        check('5 child exec parent = its clone image', ke.filename === '/bin/true' && ke.ppid === kids[0].pid && ke.parentKtime === kids[0].ktime, JSON.stringify(ke));
        const kx = exitOf(kids[0].pid)[0] || {};
        check('5 child exit procKtime = its exec', kx.procKtime === ke.ktime);
      }
      const x = exitOf(r5.pid)[0] || {};
      check('5 exit of sh pid carries the echo image', x.procKtime === sh[1].ktime);
    }
  }
  // 6
  {
    const e = execOf(r6.pid)[0] || {};
    const f = parseInt(e.flags, 16);
    check('6 truncArgs', (f & 0x10) !== 0, e.flags);
    const bytes = e.argv ? e.argv.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0) - 1 : 0;
    check('6 args bounded to 4096 bytes', bytes === 4096, String(bytes));
    const d = execOf(r7.pid)[0] || {};
    const df = parseInt(d.flags, 16);
    check('6 deep cwd flags errorPathResolutionCwd', (df & 0x400000) !== 0, d.flags);
    check('6 deep cwd keeps the deepest 64 components', d.cwd === '/d'.repeat(64), d.cwd);
  }
  // 7
  {
    const x = exitOf(r8.pid);
    check('7 leader exits first: one exit, status 5', x.length === 1 && x[0].status === 5 && x[0].signal === 0, JSON.stringify(x));
    check('7 leader exits first: reported by the last thread', x.length === 1 && x[0].tid !== r8.pid, JSON.stringify(x));
    const ex = execOf(r9.pid);
    const last = ex[ex.length - 1] || {};
    check('7 exec from a thread: pid = tid = tgid', ex.length === 2 && last.filename === '/bin/true' && last.tid === r9.pid && last.ppid === r9.pid && last.parentKtime === ex[0].ktime, JSON.stringify(ex));
    const x9 = exitOf(r9.pid);
    check('7 exec from a thread: one exit', x9.length === 1 && x9[0].procKtime === last.ktime, JSON.stringify(x9));
  }
  // 8
  {
    const e = execOf(r10.pid).find((r) => r.filename === '/bin/true') || {};
    if (r10.status === 0) check('8 auid from loginuid', e.auid === 4242, String(e.auid));
    else console.log('skip 8 auid (cannot write /proc/self/loginuid here)');
  }
  // 9 cgroup name/id of the scenarios' processes
  {
    const e = execOf(r1.pid)[0] || {};
    check('9 cgroup name', e.cgroup === cg.name, `${JSON.stringify(e.cgroup)} vs ${JSON.stringify(cg.name)} (${cg.args.join(' ') || 'v2'})`);
    if (cg.dir && fs.existsSync(cg.dir)) {
      const ino = fs.statSync(cg.dir, { bigint: true }).ino;
      check('9 cgroup id = cgroup directory inode', String(e.cgroupId) === String(ino), `${e.cgroupId} vs ${ino} (${cg.dir})`);
    } else console.log(`skip 9 cgroup id (no cgroup directory for ${cg.name})`);
  }
  // No record of the consumer itself (agent_tgid).
  check('agent excluded', byPid(child.pid).length === 0);
  check('pins removed', !fs.existsSync(pinRoot));
  const stats = err.split('\n').find((l) => l.startsWith('{"stats"'));
  console.log(stats);
  if (stats) {
    const s = JSON.parse(stats).stats;
    check('no drops', s.dropped.every((n) => n === 0));
  }
  if (decoderPath) {
    const { decodeBatch, decodeErrors } = require(decoderPath);
    const batch = fs.readFileSync(dumpPath);
    const ts = [];
    decodeBatch(batch, recs.length, ts);
    check('TS decoder: every record decoded', ts.length === recs.length && decodeErrors() === 0, `${ts.length} of ${recs.length}, errors ${decodeErrors()}`);
    let mismatches = 0;
    for (let i = 0; i < Math.min(ts.length, recs.length); i++) {
      const c = recs[i];
      const t = ts[i];
      let same = c.type === t.type && c.pid === t.pid && c.tid === t.tid && String(c.ktime) === String(t.ktime);
      if (c.type === 'exec') {
        same &&= c.filename === t.filename && c.cwd === t.cwd && c.cgroup === t.cgroupName && c.uid === t.uid && c.auid === t.auid &&
          c.ppid === t.parentPid && String(c.parentKtime) === String(t.parentKtime) && parseInt(c.flags, 16) === t.flags &&
          JSON.stringify(c.argv.slice(1)) === JSON.stringify(t.args);
      } else if (c.type === 'clone') {
        same &&= c.ppid === t.parentPid && String(c.parentKtime) === String(t.parentKtime) && parseInt(c.flags, 16) === t.flags;
      } else if (c.type === 'exit') {
        same &&= String(c.procKtime) === String(t.procKtime) && c.status === t.status && c.signal === t.signal;
      }
      if (!same && mismatches++ < 3) console.log('  C :', JSON.stringify(c), '\n  TS:', JSON.stringify(t, (k, v) => (typeof v === 'bigint' ? String(v) : v)));
    }
    check('TS decoder agrees with the C consumer', mismatches === 0, `${mismatches} mismatches`);
  }
  fs.rmSync(dumpPath, { force: true });
  console.log(failures.length ? `${failures.length} FAILED` : 'all passed');
  process.exit(failures.length ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
