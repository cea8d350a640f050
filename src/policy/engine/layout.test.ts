// The generated layout of th_policy.h is fresh and matches the compiled object's BTF.
import { test } from 'node:test';
import { checkBtf, checkFresh, checkModule } from '../../sensors/file/layoutcheck';
import { LAYOUTS } from './layout.gen';

test('policy layout.gen.ts is up to date with th_policy.h', () => checkFresh('th_policy.h'));

test('policy layout module matches the header', () => checkModule('th_policy.h', LAYOUTS));

test('policy layouts match the BTF of bpf/.output/policy.bpf.o', (t) => {
  const skip = checkBtf('th_policy.h', 'policy.bpf.o');
  if (skip) t.skip(skip);
});
