// The file sensor on the real kernel: real processes, real paths, events
// checked field by field, each with its process from the process cache.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { ExecEvent, FileEvent } from '../src/model/event';
import { FileSensor } from '../src/sensors/file/sensor';
import { kernelSkipReason, startStack, waitFor, type Stack } from '../src/sensors/file/testkit';

const PY = '/usr/bin/python3';
const skip = kernelSkipReason(['file.bpf.o']) ?? (fs.existsSync(PY) ? undefined : `${PY} not installed`);
if (skip) console.log(`# file sensor kernel tests skipped: ${skip}`);

let st: Stack;
let sensor: FileSensor;
let dir: string;

before(async () => {
  if (skip) return;
  st = await startStack('file-it');
  sensor = new FileSensor({ ...st, options: { ioReportIntervalMs: 0 } });
  await sensor.start();
  // realpath: the kernel reports the resolved path (/tmp may be a symlink elsewhere)
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'th-file-')));
});

after(async () => {
  if (skip) return;
  await sensor?.stop();
  await st?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs a command to its end; returns its pid. */
function run(cmd: string, args: string[], cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve(c.pid!) : reject(new Error(`${cmd} exited with ${code}: ${err}`))));
  });
}

function fileEvents(pid: number): FileEvent[] {
  return st.fileEvents().filter((e) => e.process.pid === pid);
}

async function waitEvent(pid: number, pred: (e: FileEvent) => boolean, what: string): Promise<FileEvent> {
  return waitFor(() => fileEvents(pid).find(pred), 5000, what);
}

/** The process of the event is the exec'd image of pid, as the cache built it. */
function assertProcess(e: FileEvent, pid: number, binary: string): void {
  assert.equal(e.process.pid, pid);
  assert.equal(e.process.binary, binary);
  const exec = st.items.find((i): i is ExecEvent => i.kind === 'exec' && i.process.pid === pid);
  assert.ok(exec, `exec event of ${pid}`);
  assert.equal(e.process.execId, exec.process.execId);
  assert.equal(e.process.execId, st.cache.execIdOf(exec.process.ktime, pid));
  assert.equal(e.nodeName, 'test-node');
  assert.ok(e.time.sec > 1_600_000_000);
}

test('a file opened by a relative path from another cwd', { skip }, async () => {
  const sub = path.join(dir, 'x');
  fs.mkdirSync(sub);
  fs.writeFileSync(path.join(sub, 'a'), 'hello\n');
  const pid = await run('/usr/bin/cat', ['./a'], sub); // as `cd x && cat ./a`
  const e = await waitEvent(pid, (x) => x.op === 'open' && x.path === path.join(sub, 'a'), 'open of x/a');
  assert.equal(e.syscall, 'openat');
  assert.ok(e.ret >= 3, `fd ${e.ret}`);
  assert.equal(e.flags & 3, 0); // O_RDONLY
  assert.equal(e.truncated, false);
  assert.equal(e.mode, undefined);
  assertProcess(e, pid, '/usr/bin/cat');
  // cat read 6 bytes and closed it
  const c = await waitEvent(pid, (x) => x.op === 'close' && x.path === path.join(sub, 'a'), 'close of x/a');
  assert.equal(c.syscall, 'close');
  assert.equal(c.bytesRead, 6);
  assert.equal(c.bytesWritten, 0);
});

test('dirfd-relative open, rename, chmod, unlink, mkdir/rmdir: absolute paths', { skip }, async () => {
  const py = [
    'import os',
    "os.mkdir('d')",
    "fd = os.open('d', os.O_RDONLY | os.O_DIRECTORY)",
    "open('d/a', 'w').close()",
    "os.close(os.open('a', os.O_RDONLY, dir_fd=fd))",
    "os.rename('d/a', 'd/b')",
    "os.rename('b', 'c', src_dir_fd=fd, dst_dir_fd=fd)",
    "os.chmod('d/c', 0o640)",
    "os.unlink('c', dir_fd=fd)",
    "os.mkdir('e', 0o750, dir_fd=fd)",
    "os.rmdir('d/e')",
    "os.rmdir('d')",
  ].join('\n');
  const pid = await run(PY, ['-c', py], dir);
  const d = path.join(dir, 'd');

  const mk = await waitEvent(pid, (x) => x.op === 'mkdir' && x.path === d, 'mkdir d');
  assert.equal(mk.ret, 0);
  assert.equal(mk.mode, 0o777);
  assertProcess(mk, pid, PY);

  const opened = await waitEvent(pid, (x) => x.op === 'open' && x.path === path.join(d, 'a') && (x.flags & 3) === 0, 'dirfd open');
  assert.equal(opened.syscall, 'openat');
  assert.ok(opened.ret >= 0);

  const r1 = await waitEvent(pid, (x) => x.op === 'rename' && x.path === path.join(d, 'a'), 'rename a→b');
  assert.equal(r1.path2, path.join(d, 'b'));
  assert.equal(r1.ret, 0);
  const r2 = await waitEvent(pid, (x) => x.op === 'rename' && x.path === path.join(d, 'b'), 'rename b→c (dirfd)');
  assert.equal(r2.path2, path.join(d, 'c'));
  assert.equal(r2.truncated, false);

  const ch = await waitEvent(pid, (x) => x.op === 'chmod', 'chmod');
  assert.equal(ch.path, path.join(d, 'c'));
  assert.equal(ch.mode, 0o640);
  assert.equal(ch.ret, 0);
  assert.equal(ch.syscall, 'chmod'); // Python's os.chmod without dir_fd

  const ul = await waitEvent(pid, (x) => x.op === 'unlink', 'unlink (dirfd)');
  assert.equal(ul.path, path.join(d, 'c'));
  assert.equal(ul.syscall, 'unlinkat');
  assert.equal(ul.ret, 0);

  const mk2 = await waitEvent(pid, (x) => x.op === 'mkdir' && x.path === path.join(d, 'e'), 'mkdirat e');
  assert.equal(mk2.mode, 0o750);
  assert.equal(mk2.syscall, 'mkdirat');
  const rms = fileEvents(pid).filter((x) => x.op === 'rmdir');
  await waitFor(() => (fileEvents(pid).filter((x) => x.op === 'rmdir').length >= 2 ? true : undefined), 5000, 'two rmdirs');
  assert.deepEqual(
    fileEvents(pid).filter((x) => x.op === 'rmdir').map((x) => x.path),
    [path.join(d, 'e'), d],
    `rmdir events ${JSON.stringify(rms.map((x) => x.path))}`,
  );
});

test('bytes written and read are reported on close', { skip }, async () => {
  const py = [
    "f = open('w.bin', 'wb', buffering=0)",
    "f.write(b'x' * 12345)",
    'f.close()',
    "g = open('w.bin', 'rb', buffering=0)",
    'n = 0',
    'while True:',
    '    b = g.read(4000)',
    '    if not b: break',
    '    n += len(b)',
    'g.close()',
  ].join('\n');
  const pid = await run(PY, ['-c', py], dir);
  const p = path.join(dir, 'w.bin');
  const w = await waitEvent(pid, (x) => x.op === 'close' && x.path === p && (x.bytesWritten ?? 0) > 0, 'close after write');
  assert.equal(w.bytesWritten, 12345);
  assert.equal(w.bytesRead, 0);
  assert.equal(w.syscall, 'close');
  assertProcess(w, pid, PY);
  const r = await waitEvent(pid, (x) => x.op === 'close' && x.path === p && (x.bytesRead ?? 0) > 0, 'close after read');
  assert.equal(r.bytesRead, 12345);
  assert.equal(r.bytesWritten, 0);
  const o = fileEvents(pid).find((x) => x.op === 'open' && x.path === p);
  assert.ok(o);
  assert.equal(o.flags & 0o1101, 0o1101); // O_WRONLY|O_CREAT|O_TRUNC
  assert.equal(o.mode, 0o666);
});

test('excluded prefixes (/proc) never arrive', { skip }, async () => {
  const before = sensor.kernelStats()?.excluded ?? 0;
  const marker = path.join(dir, 'after-proc');
  const py = ["open('/proc/self/status').read()", "open('/proc/self/../self/stat').read()", "os = __import__('os')", "os.chdir('/proc')", "open('self/cmdline').read()", `open('${marker}', 'w').close()`].join('\n');
  const pid = await run(PY, ['-c', py], dir);
  await waitEvent(pid, (x) => x.op === 'open' && x.path === marker, 'marker open');
  const leaked = fileEvents(pid).filter((x) => x.path === '/proc' || x.path.startsWith('/proc/'));
  assert.deepEqual(leaked.map((x) => x.path), []);
  assert.ok((sensor.kernelStats()?.excluded ?? 0) >= before + 3, 'the kernel dropped them');
});

test('a path longer than the bound is flagged truncated', { skip }, async () => {
  const name = 'd'.repeat(200);
  const py = [
    'import os, shutil',
    `for i in range(22): os.mkdir('${name}'); os.chdir('${name}')`,
    "open('deep.txt', 'w').close()",
    `os.chdir('${dir}')`,
    `shutil.rmtree('${name}')`,
  ].join('\n');
  const pid = await run(PY, ['-c', py], dir);
  const e = await waitEvent(pid, (x) => x.op === 'open' && x.path.endsWith('/deep.txt'), 'deep open');
  assert.equal(e.truncated, true);
  assert.ok(Buffer.byteLength(e.path) <= 4095, `${Buffer.byteLength(e.path)} bytes`);
  assert.ok(e.path.endsWith(`/${name}/deep.txt`));
  assert.ok(e.ret >= 0);
  const shallow = fileEvents(pid).find((x) => x.op === 'mkdir' && x.path === path.join(dir, name));
  assert.ok(shallow, 'first mkdir reported whole');
  assert.equal(shallow.truncated, false);
  assert.ok((sensor.kernelStats()?.truncated ?? 0) >= 1);
});

test('status lists the hooks and counters are sane', { skip }, () => {
  const s = sensor.status();
  assert.equal(s.state, 'running');
  assert.ok(s.hooks.includes('tracepoint/syscalls/sys_exit_openat'));
  assert.ok(s.hooks.includes('tracepoint/syscalls/sys_enter_close'));
  const c = sensor.counters();
  assert.equal(c.file_decode_errors, 0);
  assert.ok(c.file_kernel_records_emitted > 0);
  assert.equal(c.file_kernel_ring_drops, 0);
  assert.ok(c.file_process_exact > 0);
});

test('symlink, link, chown, truncate', { skip }, async () => {
  const py = [
    'import os',
    "open('t', 'w').close()",
    "os.symlink('t', 'sl')",
    "os.link('t', 'hl')",
    "os.chown('t', 1234, 5678)",
    "os.truncate('t', 10)",
    "for n in ('sl', 'hl', 't'): os.unlink(n)",
  ].join('\n');
  const pid = await run(PY, ['-c', py], dir);
  const t = path.join(dir, 't');
  const sl = await waitEvent(pid, (x) => x.op === 'symlink', 'symlink');
  assert.equal(sl.path, t); // target, relative to the link's directory
  assert.equal(sl.path2, path.join(dir, 'sl'));
  assert.equal(sl.ret, 0);
  const hl = await waitEvent(pid, (x) => x.op === 'link', 'link');
  assert.equal(hl.path, t);
  assert.equal(hl.path2, path.join(dir, 'hl'));
  const ch = await waitEvent(pid, (x) => x.op === 'chown', 'chown');
  assert.equal(ch.path, t);
  assert.equal(ch.uid, 1234);
  assert.equal(ch.gid, 5678);
  assert.equal(ch.ret, 0);
  const tr = await waitEvent(pid, (x) => x.op === 'truncate', 'truncate');
  assert.equal(tr.path, t);
  assert.equal(tr.syscall, 'truncate');
  assertProcess(tr, pid, PY);
});

test('bytes of a file left open at exit are reported by the sweep', { skip }, async () => {
  const py = ["f = open('left.bin', 'wb', buffering=0)", "f.write(b'y' * 777)", 'import os', 'os._exit(0)'].join('\n');
  const pid = await run(PY, ['-c', py], dir);
  const p = path.join(dir, 'left.bin');
  await waitEvent(pid, (x) => x.op === 'open' && x.path === p, 'open of left.bin');
  assert.equal(fileEvents(pid).some((x) => x.op === 'close' && x.path === p), false);
  sensor.sweepIo(true);
  const c = await waitEvent(pid, (x) => x.op === 'close' && x.path === p, 'swept close');
  assert.equal(c.syscall, ''); // closed by the exit, not by a close(2)
  assert.equal(c.bytesWritten, 777);
  assert.equal(c.process.binary, PY);
});
