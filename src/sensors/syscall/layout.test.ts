// The generated layout of th_syscall.h is fresh and matches the compiled object's BTF.
import { test } from 'node:test';
import { checkBtf, checkFresh, checkModule } from '../file/layoutcheck';
import { LAYOUTS } from './layout.gen';

test('syscall layout.gen.ts is up to date with th_syscall.h', () => checkFresh('th_syscall.h'));

test('syscall layout module matches the header', () => checkModule('th_syscall.h', LAYOUTS));

test('syscall layouts match the BTF of bpf/.output/syscall.bpf.o', (t) => {
  const skip = checkBtf('th_syscall.h', 'syscall.bpf.o');
  if (skip) t.skip(skip);
});
