// The generated layout of th_net.h is fresh and matches the compiled object's
// BTF (helpers shared with the file/syscall sensors' layout tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkBtf, checkFresh, checkModule } from '../file/layoutcheck';
import { LAYOUTS, TH_NET_REC_BASE, TH_NET_REC_DNS, TH_NET_REC_MAX, th_net } from './layout.gen';

test('net layout.gen.ts is up to date with th_net.h', () => checkFresh('th_net.h'));

test('net layout module matches the header', () => {
  checkModule('th_net.h', LAYOUTS);
  assert.ok(TH_NET_REC_DNS - TH_NET_REC_BASE < TH_NET_REC_MAX, 'every record type has a stats slot');
  assert.equal(th_net.hdr_ktime, 8);
});

test('net layouts match the BTF of bpf/.output/net.bpf.o', (t) => {
  const skip = checkBtf('th_net.h', 'net.bpf.o');
  if (skip) t.skip(skip);
});
