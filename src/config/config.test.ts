import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, parseAgentArgs } from './config';

test('defaults match the documented listeners', () => {
  const c = parseAgentArgs([], { NODE_NAME: 'nodeA' });
  assert.deepEqual(c.hubbleAddresses, ['unix:///var/run/tetrahub/hubble.sock', '127.0.0.1:4244']);
  assert.deepEqual(c.tetragonAddresses, ['127.0.0.1:54321', 'unix:///var/run/tetrahub/tetragon.sock']);
  assert.equal(c.metricsAddress, '127.0.0.1:2112');
  assert.equal(c.nodeName, 'nodeA');
  assert.equal(parseAgentArgs([], { HUBBLE_NODE_NAME: 'h', NODE_NAME: 'n' }).nodeName, 'h');
  // Both APIs encode file, network and DNS events; the syscall sensor stays opt-in.
  assert.deepEqual(c.sensors, { process: true, file: true, net: true, dns: true, syscall: false });
});

test('flags override, lists replace then append, sensors toggle', () => {
  const c = parseAgentArgs(['--hubble-address', '127.0.0.1:1', '--hubble-address=unix:///tmp/x.sock', '--process-cache-size=10', '--disable-sensor', 'process'], {});
  assert.deepEqual(c.hubbleAddresses, ['127.0.0.1:1', 'unix:///tmp/x.sock']);
  assert.equal(c.processCacheSize, 10);
  assert.equal(c.sensors.process, false);
});

test('a config file is applied and bad input names the problem', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-cfg-'));
  const f = path.join(dir, 'c.yaml');
  fs.writeFileSync(f, 'node-name: fromfile\nhubbleHistorySize: 63\n');
  const c = parseAgentArgs(['--config', f], {});
  assert.equal(c.nodeName, 'fromfile');
  assert.equal(c.hubbleHistorySize, 63);
  fs.writeFileSync(f, 'bogus: 1\n');
  assert.throws(() => parseAgentArgs(['--config', f], {}), (e: Error) => e instanceof ConfigError && /unknown key "bogus"/.test(e.message));
  fs.writeFileSync(f, 'eventQueueSize: -3\n');
  assert.throws(() => parseAgentArgs(['--config', f], {}), /eventQueueSize: expected a non-negative integer/);
  assert.throws(() => parseAgentArgs(['--nope', '1'], {}), /unknown flag --nope/);
  assert.throws(() => parseAgentArgs(['--enable-sensor', 'xyz'], {}), /unknown sensor "xyz"/);
});
