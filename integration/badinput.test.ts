// Start-up failures say plainly what is wrong and exit non-zero.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from './harness';

const cli = path.join(ROOT, 'bin/tetrahub.js');
const built = fs.existsSync(path.join(ROOT, 'dist/src/cli/main.js')) ? undefined : 'not built';

test('not root: one clear message and a non-zero exit', { skip: built ?? (process.getuid?.() !== 0 ? 'needs root to switch to an unprivileged user' : undefined) }, () => {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cli, 'agent', '--admin-socket', '', '--metrics-address', ''], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /must run as root/);
  assert.equal(r.stderr.trim().split('\n').length, 1, 'one message, no stack trace');
});

test('bad flags and config files name the problem and exit 2', { skip: built }, () => {
  const r = spawnSync(process.execPath, [cli, 'agent', '--hubble-history-size', 'lots'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--hubble-history-size: expected a non-negative integer, got "lots"/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-bad-'));
  fs.writeFileSync(path.join(dir, 'c.yaml'), 'hubble-address: [unix:///x\n');
  const y = spawnSync(process.execPath, [cli, 'agent', '--config', path.join(dir, 'c.yaml')], { encoding: 'utf8' });
  assert.equal(y.status, 2);
  assert.match(y.stderr, /config file .*c\.yaml/);
  const u = spawnSync(process.execPath, [cli, 'frobnicate'], { encoding: 'utf8' });
  assert.equal(u.status, 2);
  assert.match(u.stderr, /unknown command "frobnicate"/);
});

test('status without an agent says where it looked', { skip: built }, () => {
  const r = spawnSync(process.execPath, [cli, 'status', '--admin-socket', '/nonexistent/admin.sock'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot reach the agent at \/nonexistent\/admin.sock/);
});
