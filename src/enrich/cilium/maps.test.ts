// The map reader against the STAND-IN Cilium maps (integration/standins):
// real LPM tries and hash maps with Cilium's layouts on a private bpffs.
import { test, type TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import { CiliumMapsFixture, fixtureUnavailable, type FixtureGeneration } from '../../../integration/standins/cilium-maps';
import { CiliumMaps, type CiliumMapsChange, type CiliumMapsOptions } from './maps';

let unavailable: string | undefined | null = null;
function fixtureOr(t: TestContext): boolean {
  if (unavailable === null) unavailable = fixtureUnavailable();
  if (unavailable) t.skip(unavailable);
  return !unavailable;
}

/** Fixture + reader, both closed when the test ends. */
function setup(t: TestContext, generation: FixtureGeneration, opts: Omit<CiliumMapsOptions, 'dir'> = {}): { fx: CiliumMapsFixture; maps: CiliumMaps; logs: string[] } {
  const fx = CiliumMapsFixture.create({ generation });
  const logs: string[] = [];
  const maps = new CiliumMaps({ dir: fx.dir, recheckMs: 0, watch: false, log: (m) => logs.push(m), ...opts });
  t.after(() => {
    maps.close();
    fx.close();
  });
  return { fx, maps, logs };
}

/** Waits for p; the timer also keeps the event loop alive (the reader's own timers are unref'd). */
async function within<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what())), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** The classic nesting: a /32 inside a /24 inside 0.0.0.0/0, plus IPv6. */
function fillNested(fx: CiliumMapsFixture): void {
  fx.addIpcache('0.0.0.0/0', { identity: 2 });
  fx.addIpcache('10.0.1.0/24', { identity: 0x01000001 });
  fx.addIpcache('10.0.1.5/32', { identity: 54321, tunnelEndpoint: '192.168.0.12', key: 4 });
  fx.addIpcache('10.0.2.7', { identity: 1 });
  fx.addIpcache('fd00::/64', { identity: 0x01000002 });
  fx.addIpcache('fd00::5/128', { identity: 60000 });
  fx.addEndpoint('10.0.1.5', { id: 1234, identity: 54321, ifindex: 17, mac: '0a:58:0a:00:01:05', nodeMac: '02:42:ac:11:00:02', parentIfindex: 2 });
  fx.addEndpoint('fd00::5', { id: 1234, identity: 54321, ifindex: 17 });
  fx.addEndpoint('10.0.2.7', { id: 0, identity: 0, ifindex: 0, flags: 1 });
}

for (const generation of ['1.17', '1.18'] as const) {
  test(`Cilium ${generation} maps: identities by longest prefix, endpoints, world by rule`, (t) => {
    if (!fixtureOr(t)) return;
    const { fx, maps } = setup(t, generation);
    fillNested(fx);
    const st = maps.start();
    const ipcache = generation === '1.17' ? 'cilium_ipcache' : 'cilium_ipcache_v2';
    assert.equal(st.ipcache, ipcache);
    assert.equal(st.generation, generation === '1.17' ? '1.16/1.17' : '1.18+');
    assert.equal(st.maps[ipcache].state, 'open');
    assert.equal(st.maps.cilium_lxc.state, 'open');
    assert.equal(maps.mapId(ipcache), fx.mapId(ipcache));

    const hit = maps.lookupIdentity('10.0.1.5');
    assert.equal(hit?.identity, 54321);
    assert.equal(hit?.source, 'ipcache');
    assert.equal(hit?.entry?.tunnelEndpoint, '192.168.0.12');
    assert.equal(hit?.entry?.encryptKey, 4);
    assert.deepEqual(maps.lookupIdentity('10.0.1.6'), { identity: 0x01000001, source: 'ipcache', entry: maps.lookupIdentity('10.0.1.200')?.entry });
    assert.equal(maps.lookupIdentity('10.0.1.6')?.identity, 0x01000001);
    assert.equal(maps.lookupIdentity('8.8.8.8')?.identity, 2);
    assert.equal(maps.lookupIdentity('8.8.8.8')?.source, 'ipcache'); // the 0.0.0.0/0 entry
    assert.equal(maps.lookupIdentity('::ffff:10.0.1.5')?.identity, 54321);
    assert.equal(maps.lookupIdentity('fd00::5')?.identity, 60000);
    assert.equal(maps.lookupIdentity('fd00::6')?.identity, 0x01000002);
    // No IPv6 default route in the ipcache: world by rule.
    assert.deepEqual(maps.lookupIdentity('2001:db8::1'), { identity: 2, source: 'world-rule' });
    assert.equal(maps.lookupIdentity('not-an-ip'), undefined);

    const ep = maps.lookupEndpoint('10.0.1.5');
    assert.deepEqual(ep, {
      ifindex: 17,
      id: 1234,
      flags: 0,
      isHost: false,
      mac: '0a:58:0a:00:01:05',
      nodeMac: '02:42:ac:11:00:02',
      identity: 54321,
      parentIfindex: 2,
    });
    assert.equal(maps.lookupEndpoint('fd00::5')?.id, 1234);
    const host = maps.lookupEndpoint('10.0.2.7');
    assert.equal(host?.isHost, true);
    assert.equal(host?.identity, 1, 'node IP entries with sec_id 0 are host');
    assert.equal(maps.lookupEndpoint('10.0.1.6'), undefined);

    // Removal is visible at once (no caching in the reader).
    fx.removeIpcache('10.0.1.5/32');
    assert.equal(maps.lookupIdentity('10.0.1.5')?.identity, 0x01000001);
    fx.removeIpcache('0.0.0.0/0');
    assert.deepEqual(maps.lookupIdentity('8.8.8.8'), { identity: 2, source: 'world-rule' });
    const s = maps.stats();
    assert.ok(s.ipcacheHits > 0 && s.worldRule >= 2 && s.endpointHits === 3 && s.endpointMisses === 1 && s.errors === 0, JSON.stringify(s));
  });
}

test('world rule is configurable (by family, or a fixed identity)', (t) => {
  if (!fixtureOr(t)) return;
  const { fx, maps } = setup(t, '1.18', { worldIdentity: 'by-family' });
  fx.addIpcache('10.0.0.0/8', { identity: 300 });
  maps.start();
  assert.deepEqual(maps.lookupIdentity('1.1.1.1'), { identity: 9, source: 'world-rule' });
  assert.deepEqual(maps.lookupIdentity('2606:4700::1111'), { identity: 10, source: 'world-rule' });
  // An entry saying identity 0 (unknown) also falls to the rule.
  fx.addIpcache('192.0.2.0/24', { identity: 0 });
  assert.deepEqual(maps.lookupIdentity('192.0.2.1'), { identity: 9, source: 'world-rule' });
});

test('upgrade window (both pins): cilium_ipcache_v2 is authoritative', (t) => {
  if (!fixtureOr(t)) return;
  const { fx, maps } = setup(t, 'upgrade');
  fx.addIpcache('10.0.0.0/8', { identity: 300 });
  const st = maps.start();
  assert.equal(st.ipcache, 'cilium_ipcache_v2');
  assert.equal(st.maps.cilium_ipcache.state, 'open');
  assert.equal(maps.lookupIdentity('10.1.1.1')?.identity, 300);
  // v2 removed (rollback): the reader falls back to v1.
  fx.dropMap('cilium_ipcache_v2');
  maps.recheck();
  assert.equal(maps.status().ipcache, 'cilium_ipcache');
  assert.equal(maps.lookupIdentity('10.1.1.1')?.identity, 300);
});

test('no Cilium: every address is world by rule, nothing throws', () => {
  const maps = new CiliumMaps({ dir: '/nonexistent/tetrahub-test/tc/globals', recheckMs: 0 });
  try {
    const st = maps.start();
    assert.equal(st.generation, undefined);
    // Without root (or the addon) the maps are 'error', with them 'absent'.
    for (const m of Object.values(st.maps)) assert.ok(m.state === 'absent' || m.state === 'error', JSON.stringify(m));
    assert.deepEqual(maps.lookupIdentity('10.0.1.5'), { identity: 2, source: 'world-rule' });
    assert.equal(maps.lookupEndpoint('10.0.1.5'), undefined);
  } finally {
    maps.close();
  }
});

test('an unknown layout is refused with the map, the sizes found and expected', (t) => {
  if (!fixtureOr(t)) return;
  const fx = CiliumMapsFixture.createUnknownLayout('value-size');
  const logs: string[] = [];
  const maps = new CiliumMaps({ dir: fx.dir, recheckMs: 0, watch: false, log: (m) => logs.push(m) });
  t.after(() => {
    maps.close();
    fx.close();
  });
  fx.addIpcache('10.0.0.0/8', { identity: 300 });
  fx.addEndpoint('10.0.1.5', { id: 7, identity: 300, ifindex: 3 });
  const st = maps.start();
  const m = st.maps.cilium_ipcache;
  assert.equal(m.state, 'refused');
  assert.ok(m.state === 'refused');
  assert.equal(
    m.reason,
    `refusing ${fx.pinPath('cilium_ipcache')} (map id ${fx.mapId('cilium_ipcache')}): unknown layout of cilium_ipcache: ` +
      'found lpm_trie key 24 B value 16 B, expected lpm_trie key 24 B value 12 B (Cilium 1.16/1.17); ' +
      'map-based enrichment from cilium_ipcache disabled',
  );
  assert.ok(logs.some((l) => l.includes('value 16 B')), logs.join('\n'));
  assert.equal(st.ipcache, undefined);
  // Never decoded: lookups go by rule, the healthy lxc map still works.
  assert.deepEqual(maps.lookupIdentity('10.1.2.3'), { identity: 2, source: 'world-rule' });
  assert.equal(maps.lookupEndpoint('10.0.1.5')?.id, 7);
  // Refused once per map id, not on every re-check.
  maps.recheck();
  assert.equal(maps.stats().refusals, 1);
});

for (const [how, opts] of [
  ['periodic map-id re-check', { recheckMs: 100, watch: false }],
  ['fs events on the bpffs dir', { recheckMs: 0, watch: true }],
] as const) {
  test(`maps replaced while running are picked up (new map id) — ${how}`, async (t) => {
    if (!fixtureOr(t)) return;
    const { fx, maps } = setup(t, '1.18', opts);
    fx.addIpcache('10.0.1.0/24', { identity: 1000 });
    fx.addEndpoint('10.0.1.5', { id: 1, identity: 1000, ifindex: 5 });
    maps.start();
    const before = maps.mapId('cilium_ipcache_v2');
    assert.equal(before, fx.mapId('cilium_ipcache_v2'));
    assert.equal(maps.lookupIdentity('10.0.1.5')?.identity, 1000);

    const seen: CiliumMapsChange[] = [];
    const replaced = new Promise<void>((resolve) => {
      maps.on('change', (c) => {
        seen.push(c);
        if (seen.filter((x) => x.kind === 'replaced').length === 2) resolve();
      });
    });
    // Cilium restarts: maps deleted and re-created empty, then refilled with new identities.
    fx.replaceAll({ keepEntries: false });
    fx.addIpcache('10.0.1.0/24', { identity: 2000 });
    fx.addEndpoint('10.0.1.5', { id: 2, identity: 2000, ifindex: 6 });
    await within(replaced, 5000, () => `no re-open within 5 s: ${JSON.stringify(seen)}`);

    const after = maps.mapId('cilium_ipcache_v2');
    assert.notEqual(after, before);
    assert.equal(after, fx.mapId('cilium_ipcache_v2'));
    const v2 = seen.find((c) => c.map === 'cilium_ipcache_v2' && c.kind === 'replaced');
    assert.deepEqual(v2, { map: 'cilium_ipcache_v2', kind: 'replaced', oldId: before, newId: after });
    assert.equal(maps.lookupIdentity('10.0.1.5')?.identity, 2000);
    assert.equal(maps.lookupEndpoint('10.0.1.5')?.id, 2);
    assert.ok(maps.stats().reopens >= 2);

    // Cilium gone: removal noticed, lookups fall back to the rule.
    const removed = new Promise<void>((resolve) => maps.on('change', (c) => c.kind === 'removed' && c.map === 'cilium_ipcache_v2' && resolve()));
    fx.dropMap('cilium_ipcache_v2');
    await within(removed, 5000, () => 'removal not noticed within 5 s');
    assert.deepEqual(maps.lookupIdentity('10.0.1.5'), { identity: 2, source: 'world-rule' });
  });
}

test('BTF of the pinned maps is checked when bpftool is present', (t) => {
  if (!fixtureOr(t)) return;
  const { maps } = setup(t, '1.17', { btf: 'require' });
  const st = maps.start();
  for (const name of ['cilium_ipcache', 'cilium_lxc'] as const) {
    const m = st.maps[name];
    if (m.state === 'refused' && /bpftool not found/.test(m.reason)) return t.skip('bpftool not installed');
    assert.equal(m.state, 'open', JSON.stringify(m));
    assert.ok(m.state === 'open' && m.btf === 'verified');
    assert.equal(m.flags & 1, 1, 'BPF_F_NO_PREALLOC as Cilium');
  }
});

test('same sizes, different struct: refused by the BTF check', (t) => {
  if (!fixtureOr(t)) return;
  const fx = CiliumMapsFixture.createUnknownLayout('btf-offsets');
  const maps = new CiliumMaps({ dir: fx.dir, recheckMs: 0, watch: false, btf: 'auto' });
  t.after(() => {
    maps.close();
    fx.close();
  });
  fx.addEndpoint('10.0.1.5', { id: 7, identity: 300, ifindex: 3 });
  const lxc = maps.start().maps.cilium_lxc;
  if (lxc.state === 'open' && lxc.btf === 'unverified') return t.skip('bpftool not installed: BTF not checked');
  assert.equal(lxc.state, 'refused');
  assert.ok(lxc.state === 'refused');
  assert.match(lxc.reason, /BTF of cilium_lxc does not match: value member lxc_id at byte 4, expected 6/);
  assert.equal(maps.lookupEndpoint('10.0.1.5'), undefined);
  // The well-formed ipcache beside it is used.
  assert.equal(maps.status().maps.cilium_ipcache_v2.state, 'open');
});
