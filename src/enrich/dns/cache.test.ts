import { test } from 'node:test';
import assert from 'node:assert/strict';

import { DnsNameCache } from './cache';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test('names live as long as their TTL', () => {
  const c = clock();
  const cache = new DnsNameCache({ now: c.now });
  cache.add('10.0.0.1', 'a.example', 10);
  cache.add('10.0.0.1', 'b.example', 100);
  assert.deepEqual(cache.lookup('10.0.0.1'), ['a.example', 'b.example']);
  c.advance(10_000);
  assert.deepEqual(cache.lookup('10.0.0.1'), ['b.example']);
  c.advance(90_000);
  assert.equal(cache.lookup('10.0.0.1'), undefined);
  const s = cache.stats();
  assert.equal(s.expired, 2);
  assert.equal(s.hits, 2);
  assert.equal(s.misses, 1);
});

test('a re-answered name gets the new TTL and moves last', () => {
  const c = clock();
  const cache = new DnsNameCache({ now: c.now });
  cache.add('10.0.0.2', 'x', 5);
  cache.add('10.0.0.2', 'y', 5);
  cache.add('10.0.0.2', 'x', 50);
  c.advance(6000);
  assert.deepEqual(cache.lookup('10.0.0.2'), ['x']);
});

test('TTL clamps: 0 is not cached unless a minimum is set; the maximum caps', () => {
  const c = clock();
  const plain = new DnsNameCache({ now: c.now });
  plain.add('10.0.0.3', 'zero', 0);
  assert.equal(plain.lookup('10.0.0.3'), undefined);
  const clamped = new DnsNameCache({ now: c.now, minTtlSec: 30, maxTtlSec: 60 });
  clamped.add('10.0.0.3', 'zero', 0);
  clamped.add('10.0.0.4', 'long', 86400);
  c.advance(29_000);
  assert.deepEqual(clamped.lookup('10.0.0.3'), ['zero']);
  c.advance(32_000);
  assert.equal(clamped.lookup('10.0.0.4'), undefined);
  assert.throws(() => new DnsNameCache({ minTtlSec: 10, maxTtlSec: 5 }), RangeError);
  assert.throws(() => new DnsNameCache({ capacity: 0 }), RangeError);
});

test('least recently used addresses are evicted and counted', () => {
  const cache = new DnsNameCache({ capacity: 3, now: clock().now });
  for (const ip of ['1.0.0.1', '1.0.0.2', '1.0.0.3']) cache.add(ip, `n${ip}`, 60);
  assert.ok(cache.lookup('1.0.0.1')); // now the most recent
  cache.add('1.0.0.4', 'n4', 60);
  assert.equal(cache.lookup('1.0.0.2'), undefined, 'the least recently used went');
  assert.ok(cache.lookup('1.0.0.1'));
  assert.equal(cache.stats().evictions, 1);
  assert.equal(cache.stats().size, 3);
});

test('names per address are bounded; prune drops expired entries', () => {
  const c = clock();
  const cache = new DnsNameCache({ namesPerIp: 2, now: c.now });
  cache.add('2001:db8::1', 'a', 10);
  cache.add('2001:db8::1', 'b', 10);
  cache.add('2001:db8::1', 'c', 100);
  assert.deepEqual(cache.lookup('2001:db8::1'), ['b', 'c']);
  cache.add('10.1.1.1', 'short', 1);
  c.advance(20_000);
  assert.equal(cache.prune(), 2);
  assert.equal(cache.stats().size, 1);
});
