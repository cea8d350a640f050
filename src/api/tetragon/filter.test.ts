import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RuntimeEvent } from '../../model/event';
import { compileFieldFilters } from './fields';
import { compileEventFilter, FilterError, pidOfExecId } from './filter';
import { parseLabelSelector } from './labels';
import { eventToProto } from './encode';
import type { PGetEventsRequest } from './protos';
import { compileRe2, Re2Error } from './re2';
import { dnsEvent, fileEvent, netEvent, syscallEvent } from './sensorkit';
import { makeExec, makeExecId, makeExit, makeProcess, xwingPod } from './testkit';

const curl = makeExec(makeProcess({ binary: '/usr/bin/curl', arguments: 'https://x', pod: xwingPod(), docker: '551e161c47d8ff0eb665438a7bcd5b4' }));
const hostLs = makeExec(makeProcess({ binary: '/bin/ls', arguments: '-l /tmp', pid: 77 }));
const hostExit = makeExit(makeProcess({ binary: '/bin/ls', pid: 77 }), 0, '');

function run(req: PGetEventsRequest, evs: RuntimeEvent[]): boolean[] {
  const f = compileEventFilter(req);
  return evs.map((e) => f(e));
}

test('empty allow list and an empty Filter both match everything', () => {
  assert.deepEqual(run({}, [curl, hostLs, hostExit]), [true, true, true]);
  assert.deepEqual(run({ allow_list: [{}] }, [curl, hostLs, hostExit]), [true, true, true]);
});

test('allow is OR across filters, AND within; deny wins', () => {
  assert.deepEqual(run({ allow_list: [{ binary_regex: ['curl'] }, { pid: [77] }] }, [curl, hostLs, hostExit]), [true, true, true]);
  assert.deepEqual(run({ allow_list: [{ binary_regex: ['ls$'], event_set: [5] }] }, [curl, hostLs, hostExit]), [false, false, true]);
  assert.deepEqual(run({ allow_list: [{}], deny_list: [{ binary_regex: ['^/usr/'] }] }, [curl, hostLs, hostExit]), [false, true, true]);
  assert.deepEqual(run({ allow_list: [{ binary_regex: ['nomatch', 'curl'] }] }, [curl, hostLs]), [true, false]);
});

test('namespace "" selects host processes; pod, labels, container fields never match the host', () => {
  assert.deepEqual(run({ allow_list: [{ namespace: [''] }] }, [curl, hostLs]), [false, true]);
  assert.deepEqual(run({ allow_list: [{ namespace: ['default'] }] }, [curl, hostLs]), [true, false]);
  assert.deepEqual(run({ allow_list: [{ pod_regex: ['^xw'] }] }, [curl, hostLs]), [true, false]);
  assert.deepEqual(run({ allow_list: [{ namespace_regex: ['^def'] }] }, [curl, hostLs]), [true, false]);
  assert.deepEqual(run({ allow_list: [{ container_name_regex: ['ship'] }] }, [curl, hostLs]), [true, false]);
  assert.deepEqual(run({ allow_list: [{ container_id: ['^551e'] }] }, [curl, hostLs]), [true, false]);
  assert.deepEqual(run({ allow_list: [{ labels: ['org=alliance,class in (xwing, tie)'] }] }, [curl, hostLs]), [true, false]);
  assert.deepEqual(run({ allow_list: [{ labels: ['org!=empire'] }] }, [curl, hostLs]), [true, false]);
  assert.deepEqual(run({ allow_list: [{ labels: ['!org'] }] }, [curl]), [false]);
  assert.deepEqual(run({ allow_list: [{ arguments_regex: ['^-l '] }] }, [curl, hostLs]), [false, true]);
  assert.deepEqual(run({ allow_list: [{ policy_names: ['p'] }] }, [curl, hostLs]), [false, false]);
  assert.deepEqual(run({ allow_list: [{ ancestor_binary_regex: ['.'] }] }, [curl]), [false]);
  assert.deepEqual(run({ allow_list: [{ in_init_tree: { value: false } }] }, [curl]), [true]);
  assert.deepEqual(run({ allow_list: [{ in_init_tree: {} }] }, [curl]), [true]);
});

test('parent filters look at the parent', () => {
  const parent = makeProcess({ binary: '/bin/bash', arguments: '-c "curl x"' });
  const child = makeExec(makeProcess({ parentExecId: parent.execId }), parent);
  assert.deepEqual(run({ allow_list: [{ parent_binary_regex: ['bash$'] }] }, [child, hostLs]), [true, false]);
  assert.deepEqual(run({ allow_list: [{ parent_arguments_regex: ['curl'] }] }, [child]), [true]);
});

test('pid_set follows descendants through the exec_id chain', () => {
  const root = makeProcess({ pid: 100, ktime: 10n, binary: '/bin/bash' });
  // fork child: its exec's parent is the pre-exec (clone) image of pid 101
  const clone101 = makeProcess({ pid: 101, ktime: 20n, parentExecId: root.execId, flags: 'clone' });
  const ls101 = makeProcess({ pid: 101, ktime: 21n, parentExecId: clone101.execId, binary: '/bin/ls' });
  const clone102 = makeProcess({ pid: 102, ktime: 30n, parentExecId: ls101.execId, flags: 'clone' });
  const cat102 = makeProcess({ pid: 102, ktime: 31n, parentExecId: clone102.execId, binary: '/bin/cat' });
  const other = makeProcess({ pid: 555, ktime: 40n, parentExecId: makeExecId('mynode', 5n, 1) });
  const f = compileEventFilter({ allow_list: [{ pid_set: [100] }] });
  assert.equal(f(makeExec(ls101, clone101)), true, 'child of a root that exec\'d before the stream');
  assert.equal(f(makeExec(cat102, clone102)), true, 'grandchild');
  assert.equal(f(makeExec(other)), false);
  assert.equal(f(makeExit(cat102, 0, '')), true);
  assert.equal(f(makeExit(root, 0, '')), true);
  assert.equal(pidOfExecId(makeExecId('n', 5n, 4242)), 4242);
});

test('invalid input names the field', () => {
  assert.throws(
    () => compileEventFilter({ allow_list: [{ binary_regex: ['ok', '('] }] }),
    (e: unknown) => e instanceof FilterError && e.message.startsWith('allow_list[0].binary_regex[1]: invalid regex "(": '),
  );
  assert.throws(() => compileEventFilter({ deny_list: [{}, { pod_regex: ['a(?=b)'] }] }), /^FilterError: deny_list\[1\]\.pod_regex\[0\]: invalid regex "a\(\?=b\)": lookahead not supported$/);
  assert.throws(() => compileEventFilter({ allow_list: [{ labels: ['a in ()'] }] }), /allow_list\[0\]\.labels\[0\]: invalid label selector/);
  assert.throws(() => compileEventFilter({ allow_list: [{ cel_expression: ['true'] }] }), /allow_list\[0\]\.cel_expression: /);
  assert.throws(() => compileEventFilter({ allow_list: [{ capabilities: {} }] }), /allow_list\[0\]\.capabilities: /);
  assert.throws(() => compileEventFilter({ allow_list: [{ health_check: { value: true } }] }), /allow_list\[0\]\.health_check: /);
});

test('RE2 patterns: translated where JS differs, refused where RE2 refuses', () => {
  assert.ok(compileRe2('(?i)^/USR/bin').test('/usr/bin/curl'));
  assert.ok(compileRe2('(?P<dir>/usr)/bin').test('/usr/bin'));
  assert.ok(compileRe2('\\Acurl\\z').test('curl'));
  assert.ok(!compileRe2('\\Acurl\\z').test('curl\n'));
  assert.ok(compileRe2('[[:digit:]]+$').test('abc123'));
  assert.ok(compileRe2('\\Qa.b\\E').test('a.b'));
  assert.ok(!compileRe2('\\Qa.b\\E').test('axb'));
  assert.ok(compileRe2('a\\-b').test('a-b'));
  for (const bad of ['(a)\\1', 'a(?!b)', '(?<=a)b', 'a(?i)b', 'a++', '\\y', '(']) {
    assert.throws(() => compileRe2(bad), Re2Error, bad);
  }
});

test('label selectors', () => {
  const l = { app: 'web', tier: 'front', n: '5' };
  const m = (s: string): boolean => parseLabelSelector(s)(l);
  assert.equal(m(''), true);
  assert.equal(m('app'), true);
  assert.equal(m('app=web'), true);
  assert.equal(m('app==web'), true);
  assert.equal(m('app!=web'), false);
  assert.equal(m('missing!=x'), true);
  assert.equal(m('app in (web,db),tier notin (back)'), true);
  assert.equal(m('app notin (web)'), false);
  assert.equal(m('!missing'), true);
  assert.equal(m('n>4,n<6'), true);
  for (const bad of ['app in (web', 'in (a)', 'a=b=c', 'a b', 'app,', '-bad=1']) {
    assert.throws(() => parseLabelSelector(bad), bad);
  }
});

test('field filters: include keeps only the named paths of the body, exclude wins', () => {
  const ev = makeExec(makeProcess({ binary: '/bin/ls', pod: xwingPod() }), makeProcess({ binary: '/bin/sh' }));
  const inc = compileFieldFilters([{ fields: { paths: ['process.binary', 'process.pod.name', 'parent.binary'] }, action: 0 }]);
  assert.ok(inc);
  const out = inc.apply(eventToProto(ev));
  assert.deepEqual(out.process_exec, { process: { binary: '/bin/ls', pod: { name: 'xwing' } }, parent: { binary: '/bin/sh' } });
  assert.equal(out.node_name, 'mynode');
  assert.ok(out.time);
  const both = compileFieldFilters([
    { fields: { paths: ['process'] }, action: 0 },
    { fields: { paths: ['process.pod', 'process.exec_id'] }, action: 1 },
  ]);
  const out2 = both?.apply(eventToProto(ev));
  assert.equal(out2?.process_exec?.process?.pod, undefined);
  assert.equal(out2?.process_exec?.process?.exec_id, undefined);
  assert.equal(out2?.process_exec?.process?.binary, '/bin/ls');
  assert.equal(out2?.process_exec?.parent, undefined);
  // event_set limits the filter; invert flips it
  const onlyExit = compileFieldFilters([{ event_set: [5], fields: { paths: ['process.binary'] }, action: 0 }]);
  assert.deepEqual(onlyExit?.apply(eventToProto(ev)).process_exec, eventToProto(ev).process_exec);
  const notExit = compileFieldFilters([{ event_set: [5], invert_event_set: { value: true }, fields: { paths: ['parent'] }, action: 1 }]);
  assert.equal(notExit?.apply(eventToProto(ev)).process_exec?.parent, undefined);
  assert.equal(compileFieldFilters([]), undefined);
  // the model's maps are not touched
  const labels = ev.process.pod?.labels;
  compileFieldFilters([{ fields: { paths: ['process.pod.pod_labels.org'] }, action: 1 }])?.apply(eventToProto(ev));
  assert.equal(labels?.org, 'alliance');
});

test('sensor events: event_set (kprobe 9, tracepoint 10), policy_names, process fields', () => {
  const evs = [fileEvent(), netEvent(), dnsEvent(), syscallEvent(), hostLs];
  assert.deepEqual(run({ allow_list: [{ event_set: [9] }] }, evs), [true, true, true, false, false]);
  assert.deepEqual(run({ allow_list: [{ event_set: [10] }] }, evs), [false, false, false, true, false]);
  assert.deepEqual(run({ allow_list: [{ policy_names: ['tetrahub-net', 'tetrahub-syscall'] }] }, evs), [false, true, false, true, false]);
  assert.deepEqual(run({ allow_list: [{ policy_names: [''] }] }, evs), [false, false, false, false, false]);
  assert.deepEqual(run({ allow_list: [{ binary_regex: ['/(cat|dig)$'] }] }, evs), [true, false, true, false, false]);
  assert.deepEqual(run({ deny_list: [{ event_set: [9] }] }, evs), [false, false, false, true, true]);
});

test('field filters apply to kprobe and tracepoint bodies', () => {
  const ff = compileFieldFilters([{ event_set: [9], fields: { paths: ['function_name', 'args'] }, action: 0 }])!;
  const kp = ff.apply(eventToProto(fileEvent())) as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(kp.process_kprobe).sort(), ['args', 'function_name']);
  const tp = ff.apply(eventToProto(syscallEvent())) as Record<string, Record<string, unknown>>;
  assert.ok(tp.process_tracepoint.process, 'other event types untouched');
});
