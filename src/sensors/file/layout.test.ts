// The generated layout of th_file.h is fresh and matches the compiled object's BTF.
import { test } from 'node:test';
import { checkBtf, checkFresh, checkModule } from './layoutcheck';
import { LAYOUTS, TH_FILE_NAME_MAX, TH_FILE_PATH_MAX, TH_FILE_RECORD_MAX, th_file } from './layout.gen';
import assert from 'node:assert/strict';

test('file layout.gen.ts is up to date with th_file.h', () => checkFresh('th_file.h'));

test('file layout module matches the header', () => {
  checkModule('th_file.h', LAYOUTS);
  assert.equal(TH_FILE_RECORD_MAX, th_file.SIZE + 2 * TH_FILE_PATH_MAX + 2 * TH_FILE_NAME_MAX);
});

test('file layouts match the BTF of bpf/.output/file.bpf.o', (t) => {
  const skip = checkBtf('th_file.h', 'file.bpf.o');
  if (skip) t.skip(skip);
});
