import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { EventBus } from '../../bus/bus';
import type { BusItem } from '../../model/event';
import { FlowHistory, ringCapacity } from './history';
import { execEvent, lossNotice, podProcess } from './testkit';

test('capacities round up to 2ⁿ−1', () => {
  assert.equal(ringCapacity(4095), 4095);
  assert.equal(ringCapacity(4000), 4095);
  assert.equal(ringCapacity(4096), 8191);
  assert.equal(ringCapacity(0), 1);
  assert.equal(ringCapacity(2), 3);
});

test('ring keeps the newest items and counts what it saw', () => {
  const bus = new EventBus();
  const h = new FlowHistory(bus, { capacity: 7 });
  const evs = Array.from({ length: 10 }, () => execEvent());
  bus.publish(evs.slice(0, 4));
  bus.publish([lossNotice(), ...evs.slice(4)]);
  assert.equal(h.head, 11);
  assert.equal(h.size, 7);
  assert.equal(h.oldest, 4);
  assert.equal(h.seenFlows, 10);
  assert.equal(h.at(3), undefined, 'overwritten');
  assert.equal(h.at(10), evs[9]);
  assert.equal((h.at(4) as BusItem).kind, 'lost');
  h.close();
  assert.equal(bus.subscriberCount, 0);
});

test('flows_rate over the last minute', () => {
  let now = 1_000_000;
  const bus = new EventBus();
  const h = new FlowHistory(bus, { capacity: 1023, now: () => now });
  now += 10_000;
  bus.publish(Array.from({ length: 100 }, () => execEvent()));
  assert.equal(h.flowsRate(), 10, '100 flows in the first 10 s');
  now += 30_000;
  bus.publish(Array.from({ length: 20 }, () => execEvent()));
  now += 20_000;
  assert.equal(h.flowsRate(), 2, '120 flows over the last 60 s');
  now += 15_000;
  assert.equal(h.flowsRate(), 20 / 60, 'the first batch left the window');
  h.close();
});

test('namespaces seen in the last hour, sorted, expiring', () => {
  let now = 5_000_000;
  const bus = new EventBus();
  const h = new FlowHistory(bus, { now: () => now });
  bus.publish([execEvent({}, podProcess('prod', 'a')), execEvent({}, podProcess('default', 'b')), execEvent()]);
  assert.deepEqual(h.namespaces(), [
    { cluster: '', namespace: 'default' },
    { cluster: '', namespace: 'prod' },
  ]);
  now += 30 * 60_000;
  bus.publish([execEvent({}, podProcess('prod', 'a'))]);
  now += 45 * 60_000;
  assert.deepEqual(h.namespaces(), [{ cluster: '', namespace: 'prod' }]);
  h.close();
});

test('a batch larger than the intake queue leaves a visible gap', () => {
  const bus = new EventBus();
  // Intake queue bound: max(capacity, 65536).
  const h = new FlowHistory(bus, { capacity: 1023 });
  const n = (1 << 16) + 10;
  bus.publish(Array.from({ length: n }, () => execEvent()));
  assert.equal(h.seenFlows, n);
  assert.equal(h.intakeDrops, 10);
  const last = h.at(h.head - 1)!;
  assert.equal(last.kind, 'lost');
  assert.equal(last.kind === 'lost' && last.source, 'history_ring');
  h.close();
});
