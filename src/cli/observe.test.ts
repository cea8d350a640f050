import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { RuntimeEvent } from '../model/event';
import { flowResponseBytes } from '../api/hubble/encode';
import { protos } from '../api/hubble/proto';
import { dnsEvent, dnsResponse, fileEvent, netEvent, policyEvent, syscallEvent } from '../api/tetragon/sensorkit';
import { makeProcess, xwingPod } from '../api/tetragon/testkit';
import { buildRequest, formatResponse, parseObserveArgs, UsageError } from './observe';

/** A GetFlowsResponse as runObserve's client decodes it. */
function response(ev: RuntimeEvent): Record<string, unknown> {
  const T = protos().GetFlowsResponse;
  return T.toObject(T.decode(flowResponseBytes(ev, undefined, 'node1')), { longs: String, enums: String, defaults: false });
}

test('--type file|net|dns|syscall become FlowFilter event types', () => {
  const o = parseObserveArgs(['--type', 'file', '--type', 'net', '--type', 'dns', '--type', 'syscall', '--type', 'exec', '--type', 'FILE'], false);
  assert.deepEqual(buildRequest(o).whitelist, [
    {
      event_type: [
        { type: 200, match_sub_type: true, sub_type: 9 },
        { type: 7 },
        { type: 129 },
        { type: 200, match_sub_type: true, sub_type: 10 },
        { type: 200, match_sub_type: true, sub_type: 1 },
      ],
    },
  ]);
  assert.throws(() => parseObserveArgs(['--type', 'bogus'], false), (e: Error) => e instanceof UsageError && /file, net, dns, syscall/.test(e.message));
});

test('runtime flows print through the Tetragon compact encoder', () => {
  const o = parseObserveArgs(['--color', 'never'], false);
  assert.equal(formatResponse(response(fileEvent()), o).out, '📬 open    mynode /usr/bin/cat /etc/passwd');
  assert.equal(formatResponse(response(syscallEvent()), o).out, '☎  syscall mynode /usr/bin/python3 getppid()');
  const json = JSON.parse(formatResponse(response(fileEvent()), parseObserveArgs(['-o', 'json'], false)).out!);
  assert.equal(json.process_kprobe.function_name, 'fd_install');
});

test('connection and DNS flows print a Hubble line plus the process', () => {
  const o = parseObserveArgs(['--color', 'never'], false);
  const curl = makeProcess({ binary: '/usr/bin/curl', pid: 321, pod: xwingPod() });
  assert.equal(
    formatResponse(response(netEvent({ destination: { id: 0, identity: 2, namespace: '', podName: '', labels: [] } }, curl)), o).out,
    'default/xwing:51234 (unknown) -> 10.0.0.2:443 (world) pre-xlate-fwd FORWARDED (connect /usr/bin/curl 10.0.0.2:443) default/xwing /usr/bin/curl pid 321',
  );
  assert.equal(
    formatResponse(response(netEvent({ op: 'accept', direction: 'ingress', destinationNames: ['peer.example.com'] })), o).out,
    'peer.example.com:443 (unknown) -> 10.0.0.1:51234 (unknown) pre-xlate-rev FORWARDED (accept /usr/bin/curl 10.0.0.2:443) mynode /usr/bin/curl pid 4242',
  );
  assert.equal(
    formatResponse(response(dnsEvent()), o).out,
    '10.0.0.1:40000 (unknown) -> 10.0.0.53:53 (unknown) dns-request tetrahub FORWARDED (DNS Query example.com. A) mynode /usr/bin/dig pid 4242',
  );
  // Replies flip the arrow and the ends, as hubble does.
  assert.match(formatResponse(response(dnsResponse()), o).out!, /^10\.0\.0\.1:40000 \(unknown\) <- 10\.0\.0\.53:53 \(unknown\) dns-response tetrahub FORWARDED \(DNS Answer /);
  const ts = formatResponse(response(netEvent()), parseObserveArgs(['--timestamps'], false)).out!;
  assert.match(ts, /^2023-10-06T22:03:57\.700Z: 10\.0\.0\.1:51234 /);
  const json = JSON.parse(formatResponse(response(netEvent()), parseObserveArgs(['-o', 'json'], false)).out!);
  assert.equal(json.flow.Type, 'L3_L4');
  assert.equal(json.flow.extensions.process_kprobe.function_name, 'tcp_connect');
});

test('policy events: the tetra line plus the policy, its action and whether it was enforced', () => {
  const o = parseObserveArgs(['--color', 'never'], false);
  const sh = makeProcess({ binary: '/bin/sh', arguments: '-c true' });
  assert.equal(
    formatResponse(response(policyEvent({ functionName: 'sys_execve', args: [{ t: 'string', v: '/bin/true' }], policyName: 'process-monitoring' }, sh)), o).out,
    '❓ syscall mynode /bin/sh __x64_sys_execve  [policy process-monitoring]',
  );
  assert.equal(
    formatResponse(response(policyEvent({ functionName: 'sys_execve', policyName: 'no-evil', action: 'sigkill', message: 'evil binary', enforcement: { kind: 'killed', monitor: false } }, sh)), o).out,
    '❓ syscall mynode /bin/sh __x64_sys_execve  [policy no-evil: sigkill, enforced] "evil binary"',
  );
  assert.equal(
    formatResponse(response(policyEvent({ hook: 'lsm', functionName: 'file_open', policyName: 'p', action: 'override', enforcement: { kind: 'denied', monitor: true } }, sh)), o).out,
    '🔒 LSM     mynode /bin/sh file_open  [policy p: override, monitor mode: not enforced]',
  );
  // A denied connect: the Hubble line (drop) with the process.
  const deny = policyEvent({
    functionName: 'tcp_connect',
    policyName: 'psql-only-to-db',
    action: 'override',
    enforcement: { kind: 'denied', monitor: false, errno: 1 },
    net: { protocol: 'tcp', family: 4, saddr: '10.0.0.7', sport: 41234, daddr: '10.0.1.5', dport: 5432 },
  }, makeProcess({ binary: '/usr/bin/python3', pid: 77 }));
  assert.equal(
    formatResponse(response(deny), o).out,
    '10.0.0.7:41234 (unknown) -> 10.0.1.5:5432 (unknown) Policy denied DROPPED (connect denied /usr/bin/python3 → 10.0.1.5:5432 (EPERM) (policy psql-only-to-db)) mynode /usr/bin/python3 pid 77',
  );
  assert.deepEqual(buildRequest(parseObserveArgs(['--type', 'drop', '--type', 'lsm'], false)).whitelist, [{ event_type: [{ type: 1 }, { type: 200, match_sub_type: true, sub_type: 28 }] }]);
});
