// Slot bookkeeping of CiliumIdentity against a scripted CiliumMaps and fake
// slot maps (the real kernel path is in integration/identity.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Logger } from '../../agent/log';
import type { CiliumMaps, CiliumMapsChange, CiliumMapsStatus, MapState } from '../../enrich/cilium/maps';
import type { CiliumMapName } from '../../enrich/cilium/layout';
import type { BpfMap, NativeBinding } from '../../kernel/types';
import { CiliumIdentity, IDENTITY_SLOTS, netnsAddresses, type IdentitySlot } from './identity';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

interface Open {
  id: number;
  fd: number;
  flags: number;
}

/** Scripted stand-in for CiliumMaps: what is "open" is set by the test. */
class FakeMaps extends EventEmitter {
  readonly dir = '/fake/tc/globals';
  open = new Map<CiliumMapName, Open>();
  refused = new Map<CiliumMapName, string>();
  start(): void {}
  close(): void {}
  status(): CiliumMapsStatus {
    const st = (n: CiliumMapName): MapState => {
      const o = this.open.get(n);
      if (o) return { state: 'open', path: `${this.dir}/${n}`, id: o.id, flags: o.flags, btf: 'verified' };
      const r = this.refused.get(n);
      if (r) return { state: 'refused', path: `${this.dir}/${n}`, id: 99, reason: r };
      return { state: 'absent', path: `${this.dir}/${n}` };
    };
    const ipcache = this.open.has('cilium_ipcache_v2') ? 'cilium_ipcache_v2' : this.open.has('cilium_ipcache') ? 'cilium_ipcache' : undefined;
    return {
      dir: this.dir,
      ipcache,
      generation: ipcache === 'cilium_ipcache_v2' ? '1.18+' : ipcache ? '1.16/1.17' : undefined,
      maps: { cilium_ipcache_v2: st('cilium_ipcache_v2'), cilium_ipcache: st('cilium_ipcache'), cilium_lxc: st('cilium_lxc') },
    };
  }
  stats() {
    return { lookups: 0, ipcacheHits: 0, worldRule: 0, endpointHits: 0, endpointMisses: 0, errors: 0, rechecks: 0, reopens: 0, refusals: this.refused.size };
  }
  mapId(n: CiliumMapName): number | undefined {
    return this.open.get(n)?.id;
  }
  mapFd(n: CiliumMapName): number | undefined {
    return this.open.get(n)?.fd;
  }
  lookupEndpoint(): undefined {
    return undefined;
  }
  change(c: CiliumMapsChange): void {
    this.emit('change', c);
  }
}

/** Slot maps that record their content (value = fd) and can refuse. */
function fakeKernel(refuse: (slot: string, fd: number) => boolean = () => false) {
  const content = new Map<string, number>();
  const map = (name: string): BpfMap =>
    ({
      name,
      update(_k: Uint8Array, v: Uint8Array) {
        const fd = Buffer.from(v).readUInt32LE(0);
        if (refuse(name, fd)) throw Object.assign(new Error('Invalid argument (EINVAL)'), { errno: 22, code: 'EINVAL' });
        content.set(name, fd);
      },
      delete() {
        return content.delete(name);
      },
    }) as unknown as BpfMap;
  return { content, kernel: { map } };
}

function make(maps: FakeMaps): CiliumIdentity {
  return new CiliumIdentity({ native: {} as NativeBinding, log: new Logger('error'), maps: maps as unknown as CiliumMaps, apiSocket: '', hostNetns: 1, probeNetns: false }).start();
}

const slots = (id: CiliumIdentity): Partial<Record<IdentitySlot, number>> =>
  Object.fromEntries(IDENTITY_SLOTS.flatMap((s) => (id.status().slots[s] ? [[s, id.status().slots[s]?.id]] : [])));

test('slots follow opened / replaced / removed maps; v2 wins over v1', () => {
  const maps = new FakeMaps();
  const ident = make(maps);
  const { content, kernel } = fakeKernel();
  maps.open.set('cilium_ipcache', { id: 10, fd: 30, flags: 1 });
  maps.open.set('cilium_lxc', { id: 11, fd: 31, flags: 1 });
  ident.bindKernel(kernel);
  assert.deepEqual(Object.fromEntries(content), { th_cil_ipc_v1: 30, th_cil_lxc: 31 });
  assert.deepEqual(slots(ident), { th_cil_ipc_v1: 10, th_cil_lxc: 11 });
  assert.equal(ident.ipcacheState(), 'attached');
  assert.match(ident.describe(), /in-kernel lookup in cilium_ipcache \(map id 10\) and cilium_lxc \(map id 11\), Cilium 1\.16\/1\.17/);

  // Upgrade to 1.18: both pinned, v2 authoritative, the v1 slot is emptied.
  maps.open.set('cilium_ipcache_v2', { id: 20, fd: 40, flags: 1 });
  maps.change({ map: 'cilium_ipcache_v2', kind: 'opened', newId: 20 });
  assert.deepEqual(Object.fromEntries(content), { th_cil_ipc_v2: 40, th_cil_lxc: 31 });

  // Cilium restart re-creates lxc (new id): swapped in place.
  maps.open.set('cilium_lxc', { id: 21, fd: 41, flags: 1 });
  maps.change({ map: 'cilium_lxc', kind: 'replaced', oldId: 11, newId: 21 });
  assert.equal(content.get('th_cil_lxc'), 41);
  const updates = ident.counters().net_cilium_slot_updates;
  maps.change({ map: 'cilium_lxc', kind: 'replaced', oldId: 21, newId: 21 });
  assert.equal(ident.counters().net_cilium_slot_updates, updates, 'same map id: no update');

  // Cilium gone.
  maps.open.clear();
  maps.change({ map: 'cilium_ipcache_v2', kind: 'removed', oldId: 20 });
  assert.deepEqual(Object.fromEntries(content), {});
  assert.equal(ident.ipcacheState(), 'absent');
  assert.match(ident.describe(), /no Cilium maps in \/fake\/tc\/globals: remote ends world \(2\) by rule/);
  ident.close();
});

test('a preallocated cilium_lxc goes to the other slot', () => {
  const maps = new FakeMaps();
  const ident = make(maps);
  const { content, kernel } = fakeKernel();
  maps.open.set('cilium_lxc', { id: 5, fd: 50, flags: 0 });
  ident.bindKernel(kernel);
  assert.deepEqual(Object.fromEntries(content), { th_cil_lxc_pa: 50 });
  ident.close();
});

test('refused layouts and inner maps the kernel rejects: slots empty, status says why, ipcache unusable', () => {
  const maps = new FakeMaps();
  const ident = make(maps);
  const { content, kernel } = fakeKernel((slot) => slot === 'th_cil_lxc');
  maps.refused.set('cilium_ipcache', 'refusing /fake/tc/globals/cilium_ipcache (map id 99): unknown layout of cilium_ipcache: found lpm_trie key 24 B value 16 B');
  maps.open.set('cilium_lxc', { id: 7, fd: 70, flags: 1 });
  ident.bindKernel(kernel);
  assert.deepEqual(Object.fromEntries(content), {});
  assert.equal(ident.ipcacheState(), 'unusable');
  const st = ident.status();
  assert.equal(st.problems.length, 2);
  assert.match(st.problems[0], /value 16 B/);
  assert.match(st.problems[1], /kernel refused cilium_lxc \(map id 7\) as inner map of th_cil_lxc/);
  assert.equal(ident.counters().net_cilium_slot_errors, 1);
  assert.match(ident.describe(), /ipcache unusable: identities without an lxc entry are unknown \(0\)/);
  // The resolver follows: remote ends unknown, not world.
  assert.equal(ident.resolve({ tgid: 0, family: 4, saddr: '10.0.0.1', daddr: '10.0.0.2', netns: 5 }).destination?.identity, 0);
  ident.unbindKernel();
  assert.deepEqual(slots(ident), {});
  ident.close();
});

test('netnsAddresses reads a namespace\'s local addresses from /proc/<pid>/net', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'th-netns-'));
  fs.mkdirSync(path.join(root, '42', 'net'), { recursive: true });
  fs.writeFileSync(
    path.join(root, '42', 'net', 'fib_trie'),
    ['Main:', '  +-- 0.0.0.0/0 3 0 5', '     |-- 10.0.1.5', '        /24 link UNICAST', '        /32 host LOCAL', '     |-- 127.0.0.1', '        /32 host LOCAL', 'Local:', '     |-- 10.0.1.5', '        /32 host LOCAL'].join('\n'),
  );
  fs.writeFileSync(
    path.join(root, '42', 'net', 'if_inet6'),
    ['20010db8000000000000000000000005 02 40 00 80 eth0', 'fe800000000000000000000000000001 02 40 20 80 eth0', '00000000000000000000000000000001 01 80 10 80 lo'].join('\n'),
  );
  assert.deepEqual(await netnsAddresses(42, root), ['10.0.1.5', '2001:0db8:0000:0000:0000:0000:0000:0005']);
  assert.deepEqual(await netnsAddresses(43, root), []);
  fs.rmSync(root, { recursive: true, force: true });
});
