// Codecs of Cilium's map layouts against the byte examples of
// shared/reference/cilium-maps.md, and the reserved identity table.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  decodeEndpointInfo,
  decodeIpcacheV1,
  decodeIpcacheV2,
  endpointKey,
  formatIp,
  ipcacheKey,
  parseCidr,
  parseIp,
  type IpAddr,
} from './layout';
import { clusterIdOf, identityScope, isReservedIdentity, reservedIdentity, reservedLabels, reservedName } from './reserved';
import { layoutMismatch } from './maps';
import { LAYOUTS } from './layout';

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/[\s|]/g, ''), 'hex');
}

function ip(s: string): IpAddr {
  const a = parseIp(s);
  assert.ok(a, s);
  return a;
}

test('ipcache key bytes match the reference examples (§3.1)', () => {
  assert.deepEqual(ipcacheKey(ip('10.0.1.5')), hex('40 00 00 00 | 00 00 | 00 | 01 | 0a 00 01 05 | 00 00 00 00 00 00 00 00 00 00 00 00'));
  assert.deepEqual(ipcacheKey(ip('2001:db8::1')), hex('a0 00 00 00 | 00 00 | 00 | 02 | 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01'));
  // A /24 entry: 32 static bits + 24.
  assert.equal(ipcacheKey(ip('10.0.1.0'), 24).readUInt32LE(0), 56);
  assert.equal(ipcacheKey(ip('10.0.1.5'), undefined, 3).readUInt16LE(4), 3);
});

test('endpoint key bytes match the reference example (§4.1)', () => {
  assert.deepEqual(endpointKey(ip('10.0.1.5')), hex('0a 00 01 05 00 00 00 00 00 00 00 00 00 00 00 00 | 01 | 00 | 00 00'));
  const k6 = endpointKey(ip('fd00::5'));
  assert.equal(k6.length, 20);
  assert.equal(k6[16], 2);
});

test('IP parsing: v4, v6 forms, v4-mapped v6 becomes v4, junk rejected', () => {
  assert.deepEqual(ip('192.168.0.1'), { family: 4, bytes: Buffer.from([192, 168, 0, 1]) });
  assert.deepEqual(ip('::ffff:10.0.1.5'), { family: 4, bytes: Buffer.from([10, 0, 1, 5]) });
  assert.equal(formatIp(ip('2001:db8::1')), '2001:db8::1');
  assert.equal(formatIp(ip('::1')), '::1');
  assert.equal(formatIp(ip('::')), '::');
  assert.equal(formatIp(ip('fe80::1%eth0')), 'fe80::1');
  assert.equal(formatIp(ip('1:2:3:4:5:6:7:8')), '1:2:3:4:5:6:7:8');
  assert.equal(formatIp(ip('64:ff9b::192.0.2.33')), '64:ff9b::c000:221');
  assert.equal(formatIp(ip('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1');
  assert.deepEqual(ip('0.0.0.0').bytes, Buffer.from([0, 0, 0, 0]));
  assert.deepEqual(ip('255.255.255.255').bytes, Buffer.from([255, 255, 255, 255]));
  for (const bad of ['10.0.0', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1..2.3', '1.2.3.', '.1.2.3', '1.2.3.4 ', '1.2.3.1000', 'a.b.c.d']) {
    assert.equal(parseIp(bad), undefined, bad);
  }
  assert.equal(parseIp('example.com'), undefined);
  assert.equal(parseIp(''), undefined);
});

test('CIDR parsing', () => {
  assert.equal(parseCidr('10.0.0.0/8')?.bits, 8);
  assert.equal(parseCidr('0.0.0.0/0')?.bits, 0);
  assert.equal(parseCidr('10.1.2.3')?.bits, 32);
  assert.equal(parseCidr('2001:db8::/32')?.bits, 32);
  assert.equal(parseCidr('::ffff:10.0.0.0/104')?.bits, 8);
  assert.equal(parseCidr('10.0.0.0/33'), undefined);
  assert.equal(parseCidr('10.0.0.0/x'), undefined);
});

test('ipcache values: v1 (12 B) and v2 (24 B)', () => {
  const v1 = hex('39 30 00 00 | c0 a8 01 02 | 00 00 | 07 | 01');
  assert.deepEqual(decodeIpcacheV1(v1), { identity: 12345, tunnelEndpoint: '192.168.1.2', encryptKey: 7, flags: 1, skipTunnel: true });
  const v2 = Buffer.alloc(24);
  v2.writeUInt32LE(0x01000005, 0);
  hex('fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02').copy(v2, 4);
  v2[22] = 3;
  v2[23] = 0b0110; // has_tunnel_ep + ipv6_tunnel_ep
  assert.deepEqual(decodeIpcacheV2(v2), { identity: 0x01000005, tunnelEndpoint: 'fd00::2', encryptKey: 3, flags: 6, skipTunnel: false });
  const none = Buffer.alloc(24);
  none.writeUInt32LE(2, 0);
  assert.equal(decodeIpcacheV2(none).tunnelEndpoint, '');
});

test('endpoint_info (48 B)', () => {
  const v = Buffer.alloc(48);
  v.writeUInt32LE(17, 0);
  v.writeUInt16LE(1234, 6);
  v.writeUInt32LE(1, 8);
  hex('0a 58 0a 00 01 05').copy(v, 16);
  hex('02 42 ac 11 00 02').copy(v, 24);
  v.writeUInt32LE(54321, 32);
  v.writeUInt32LE(3, 36);
  assert.deepEqual(decodeEndpointInfo(v), {
    ifindex: 17,
    id: 1234,
    flags: 1,
    isHost: true,
    mac: '0a:58:0a:00:01:05',
    nodeMac: '02:42:ac:11:00:02',
    identity: 54321,
    parentIfindex: 3,
  });
});

test('layout guard message names the map, the sizes found and expected', () => {
  assert.equal(layoutMismatch(LAYOUTS.cilium_ipcache, { type: 11, typeName: 'lpm_trie', keySize: 24, valueSize: 12 }), undefined);
  assert.equal(
    layoutMismatch(LAYOUTS.cilium_ipcache, { type: 11, typeName: 'lpm_trie', keySize: 24, valueSize: 16 }),
    'unknown layout of cilium_ipcache: found lpm_trie key 24 B value 16 B, expected lpm_trie key 24 B value 12 B (Cilium 1.16/1.17)',
  );
  assert.match(
    layoutMismatch(LAYOUTS.cilium_lxc, { type: 1, typeName: 'hash', keySize: 20, valueSize: 56 }) ?? '',
    /cilium_lxc: found hash key 20 B value 56 B, expected hash key 20 B value 48 B/,
  );
  assert.match(layoutMismatch(LAYOUTS.cilium_ipcache_v2, { type: 1, typeName: 'hash', keySize: 24, valueSize: 24 }) ?? '', /found hash .* expected lpm_trie/);
});

test('reserved identities resolve by name', () => {
  assert.deepEqual(reservedLabels(1), ['reserved:host']);
  assert.deepEqual(reservedLabels(2), ['reserved:world']);
  assert.deepEqual(reservedLabels(7), ['reserved:kube-apiserver', 'reserved:remote-node']);
  assert.deepEqual(reservedLabels(10), ['reserved:world-ipv6']);
  assert.equal(reservedLabels(0), undefined);
  assert.equal(reservedLabels(11), undefined);
  assert.equal(reservedLabels(256), undefined);
  assert.equal(reservedName(6), 'remote-node');
  assert.equal(reservedIdentity('ingress'), 8);
  assert.ok(isReservedIdentity(5) && !isReservedIdentity(256));
  assert.equal(identityScope(0x01000010), 'local');
  assert.equal(identityScope(0x02000001), 'remote-node');
  assert.equal(identityScope(102), 'well-known');
  assert.equal(identityScope(200), 'user-reserved');
  assert.equal(identityScope(12345), 'cluster');
  assert.equal(clusterIdOf((3 << 16) | 300), 3);
  assert.equal(clusterIdOf(0x01000010), 0);
});
