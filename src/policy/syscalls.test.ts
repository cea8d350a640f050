import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_HEADER, renderTable } from './gen-syscalls';
import { checkSyscallListValue, checkSyscallSymbol, lookupSyscall, syscallCount } from './syscalls';

test('x86_64 table: well-known numbers and kernel-function aliases', () => {
  assert.ok(syscallCount() > 350);
  assert.deepEqual(lookupSyscall('execve'), { name: 'execve', nr: 59 });
  assert.deepEqual(lookupSyscall('openat'), { name: 'openat', nr: 257 });
  assert.deepEqual(lookupSyscall('newuname'), { name: 'uname', nr: 63 });
  assert.deepEqual(lookupSyscall('clone3'), { name: 'clone3', nr: 435 });
  assert.deepEqual(lookupSyscall('fchmodat2'), { name: 'fchmodat2', nr: 452 });
  assert.equal(lookupSyscall('execvee'), undefined);
});

test('syscall symbols as Tetragon resolves them on amd64', () => {
  assert.equal(checkSyscallSymbol('sys_execve').ok, true);
  assert.equal(checkSyscallSymbol('__x64_sys_execve').ok, true);
  const bare = checkSyscallSymbol('execve');
  assert.equal(bare.ok, false);
  assert.match(bare.ok ? '' : bare.reason, /lacks the sys_ prefix/);
  assert.equal(checkSyscallSymbol('__ia32_sys_execve').ok, false);
  assert.equal(checkSyscallSymbol('__arm64_sys_execve').ok, false);
  const typo = checkSyscallSymbol('sys_opennat');
  assert.equal(typo.ok ? '' : typo.hint, 'did you mean "sys_openat"?');
  const uname = checkSyscallSymbol('sys_uname');
  assert.ok(uname.ok && uname.warning && /sys_newuname/.test(uname.hint ?? ''));
  assert.equal(checkSyscallListValue('x64/sys_dup').ok, true);
  assert.equal(checkSyscallListValue('i386/sys_dup').ok, true);
  assert.equal(checkSyscallListValue('arm64/sys_dup').ok, false);
  assert.equal(checkSyscallListValue('dup').ok, false);
});

test('the checked-in table is what the generator makes from the header', (t) => {
  if (!fs.existsSync(DEFAULT_HEADER)) {
    t.skip(`${DEFAULT_HEADER} not installed`);
    return;
  }
  const src = path.resolve(__dirname, '..', '..', '..', 'src', 'policy', 'syscalls_x86_64.ts');
  const expected = renderTable(fs.readFileSync(DEFAULT_HEADER, 'utf8'), path.basename(DEFAULT_HEADER));
  assert.equal(fs.readFileSync(src, 'utf8'), expected, 'regenerate: node dist/src/policy/gen-syscalls.js');
});
