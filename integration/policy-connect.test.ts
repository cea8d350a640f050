// Identity-aware connect enforcement in the kernel (issue 5 item 6), on this
// kernel: the connect backend (src/policy/connect, bpf/policy_connect.bpf.c)
// driven directly through the HookBackend contract, with the STAND-IN Cilium
// maps (1.18 layout) and agent API, two "pods" (network namespaces joined by
// a veth pair: A = app=api, B = app=db) and real processes.
//
// The example policy examples/policies/psql-only-to-db.yaml is loaded with
// /usr/bin/psql replaced by a copy of python3 at a private path (psql is not
// installed): that copy connects to the db pod's 5432, python3 and bash's
// /dev/tcp get EPERM, other ports/addresses stay open, the refusal is a
// PolicyEvent with the process, policy name and db identity/labels, monitor
// mode lets it through and says so, the outcome follows the ipcache and the
// API's labels without reloading, and close() restores connectivity. A second
// policy shows DIdentity by number and by reserved name (world), and Sigkill.
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Logger } from '../src/agent/log';
import { flowOf } from '../src/api/hubble/encode';
import { eventToProto } from '../src/api/tetragon/encode';
import { EventBus } from '../src/bus/bus';
import { defaultConfig, type AgentConfig } from '../src/config/config';
import { ProcessCache } from '../src/enrich/process/cache';
import { BootClock } from '../src/enrich/process/clock';
import { loadNative } from '../src/kernel/native';
import type { BusItem, PolicyEvent } from '../src/model/event';
import { parsePolicy } from '../src/policy';
import { zeroCounters, type HookLoadContext, type HookRef, type LoadedHook, type PolicyLoaderDeps } from '../src/policy/engine/types';
import { createConnectBackend, type ConnectBackend, type ConnectHook } from '../src/policy/connect';
import type { TracingPolicy } from '../src/policy/types';
import { startCiliumIdentity, type CiliumIdentity } from '../src/sensors/net/identity';
import { ProcessSensor } from '../src/sensors/process/sensor';
import { ROOT, waitFor } from './harness';
import { createVethPair, netRigSkipReason, waitForLine, type VethPair } from './netns';
import { CiliumApiStandin } from './standins/cilium-api';
import { CiliumMapsFixture, fixtureUnavailable } from './standins/cilium-maps';

function skipReason(): string | undefined {
  const s = netRigSkipReason() ?? fixtureUnavailable();
  if (s) return s;
  if (!fs.existsSync(path.join(ROOT, 'bpf/.output/policy_connect.bpf.o'))) return 'bpf/.output/policy_connect.bpf.o not built (make -C bpf)';
  try {
    execFileSync('python3', ['-c', 'pass']);
  } catch {
    return 'python3 is not installed';
  }
  return undefined;
}
const skip = skipReason();
if (skip) console.log(`# connect policy tests skipped: ${skip}`);

// Serves every port given, accepting and closing connections forever.
const SERVER = `
import socket, sys, threading
def serve(p):
    s = socket.socket(socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', p))
    s.listen(64)
    while True:
        c, _ = s.accept()
        c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print('ready', flush=True)
threading.Event().wait()
`;

// One TCP connect: prints "ok" or "err <errno>".
const CLIENT = `
import socket, sys
s = socket.socket(socket.AF_INET)
s.settimeout(5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print('ok', flush=True)
except OSError as e:
    print('err', e.errno, flush=True)
`;

const EPERM = 1;
const DB = 60000;
const API = 54321;
const LABELS = {
  api: ['k8s:app=api', 'k8s:io.kubernetes.pod.namespace=prod'],
  db: ['k8s:app=db', 'k8s:io.kubernetes.pod.namespace=prod'],
  cache: ['k8s:app=cache', 'k8s:io.kubernetes.pod.namespace=prod'],
};

describe('connect policy: identity-aware enforcement at the cgroup connect hooks', { skip }, () => {
  let fixture: CiliumMapsFixture;
  let api: CiliumApiStandin;
  let veth: VethPair;
  let identity: CiliumIdentity;
  let proc: ProcessSensor;
  let deps: PolicyLoaderDeps;
  let backend: ConnectBackend;
  let server: ChildProcess;
  let pause: ChildProcess;
  let tmp = '';
  let psql = '';
  let addrC = '';
  let pinRoot = '';
  let policyId = 1;
  const events: BusItem[] = [];
  let unsubscribe = (): void => undefined;

  const policyEvents = (): PolicyEvent[] => events.filter((e): e is PolicyEvent => (e as { kind: string }).kind === 'policy');

  /** One connect from the api pod with `bin` (a python); returns "ok" or "err <errno>". */
  const connectFrom = (bin: string, addr: string, port: number, ns?: string): { out: string; pid: number } => {
    // The client prints its pid first so the event can be matched to it.
    const code = `import os; print(os.getpid(), flush=True)\n${CLIENT}`;
    const out = veth.execIn(ns ?? veth.nsA, bin, ['-c', code, addr, String(port)]);
    const [pid, result] = out.trim().split('\n');
    return { out: result ?? '', pid: Number(pid) };
  };

  const loadExample = async (mode: 'enforce' | 'monitor' = 'enforce'): Promise<{ hook: LoadedHook; ctx: HookLoadContext }> => {
    const text = fs.readFileSync(path.join(ROOT, 'examples/policies/psql-only-to-db.yaml'), 'utf8').replace('values: ["/usr/bin/psql"]', `values: ["${psql}"]`);
    assert.ok(text.includes(psql), 'the example names /usr/bin/psql in matchBinaries');
    const r = parsePolicy(text, 'psql-only-to-db.yaml');
    assert.deepEqual(r.errors, []);
    const policy = r.policy as TracingPolicy;
    const ref: HookRef = { list: 'kprobes', index: 0 };
    assert.equal(backend.claims(policy, ref, deps.features), true, backend.whyNot(policy, ref, deps.features));
    const ctx: HookLoadContext = { deps, mode, policyId: policyId++, counters: zeroCounters() };
    const hook = await backend.load(policy, ref, ctx);
    return { hook, ctx };
  };

  before(async () => {
    const native = loadNative();
    const clock = new BootClock(() => native.clocks());
    pinRoot = `/sys/fs/bpf/tetrahub-pcit-${process.pid}`;
    const config: AgentConfig = { ...defaultConfig(), nodeName: 'it-node', bpfDir: pinRoot };
    const log = new Logger('warn');
    const bus = new EventBus();
    const cache = new ProcessCache({ nodeName: config.nodeName, clock });
    const sub = bus.subscribe({ name: 'policy-connect-it', limit: 1_000_000, onReady: () => events.push(...sub.take()) });
    unsubscribe = () => sub.close();

    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tetrahub-pc-'));
    psql = path.join(tmp, 'usr/bin/psql');
    fs.mkdirSync(path.dirname(psql), { recursive: true });
    fs.copyFileSync('/usr/bin/python3', psql);
    fs.chmodSync(psql, 0o755);

    fixture = CiliumMapsFixture.create({ generation: '1.18' });
    api = await CiliumApiStandin.start();
    veth = createVethPair();
    addrC = veth.addrB.replace(/\.2$/, '.3'); // a second address of pod B no ipcache entry covers
    execFileSync('ip', ['-n', veth.nsB, 'addr', 'add', `${addrC}/24`, 'dev', veth.ifB]);
    fixture.addIpcache(`${veth.addrA}/32`, { identity: API });
    fixture.addIpcache(`${veth.addrB}/32`, { identity: DB });
    fixture.addEndpoint(veth.addrA, { id: 101, identity: API, ifindex: 201 });
    fixture.addEndpoint(veth.addrB, { id: 102, identity: DB, ifindex: 202 });
    api.setIdentity(API, LABELS.api);
    api.setIdentity(DB, LABELS.db);
    api.addEndpoint({ id: 101, identity: API, ipv4: veth.addrA, namespace: 'prod', podName: 'api-0' });
    api.addEndpoint({ id: 102, identity: DB, ipv4: veth.addrB, namespace: 'prod', podName: 'db-0' });

    identity = startCiliumIdentity({ native, log, bpfDir: fixture.dir, apiSocket: api.address, recheckMs: 200, probeNetns: true });
    await identity.warm([API, DB]);
    proc = new ProcessSensor({ native, bus, cache, clock, config, log });
    await proc.start();
    deps = { native, bus, cache, clock, config, log, features: native.probeFeatures(), identity };
    backend = createConnectBackend({ refreshMs: 60_000 });

    server = veth.spawnIn(veth.nsB, 'python3', ['-c', SERVER, '5432', '5433']);
    await waitForLine(server, /^ready/);
    // The api pod's "pause container": pods have a process in their netns before any workload.
    pause = veth.spawnIn(veth.nsA, 'sleep', ['3600']);
  });

  after(async () => {
    for (const h of [...(backend?.loaded ?? [])]) await h.close();
    await proc?.stop().catch(() => undefined);
    unsubscribe();
    identity?.close();
    server?.kill('SIGKILL');
    pause?.kill('SIGKILL');
    veth?.destroy();
    await api?.dispose();
    fixture?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    if (pinRoot) fs.rmSync(pinRoot, { recursive: true, force: true });
  });

  test('without a policy every connect goes through', () => {
    assert.equal(connectFrom('python3', veth.addrB, 5432).out, 'ok');
    assert.equal(connectFrom(psql, veth.addrB, 5432).out, 'ok');
  });

  test('the plan says where it attaches, what runs in the kernel and how Override is carried out', () => {
    const policy = parsePolicy(fs.readFileSync(path.join(ROOT, 'examples/policies/psql-only-to-db.yaml'), 'utf8')).policy as TracingPolicy;
    const { status, maps } = backend.plan(policy, { list: 'kprobes', index: 0 }, deps.features);
    assert.equal(status.state, 'loaded');
    assert.match(status.attachedAs, /^cgroup connect4\/connect6 on /);
    assert.ok(status.inKernel.some((s) => /DLabels/.test(s)), status.inKernel.join('; '));
    assert.ok(status.inKernel.some((s) => /matchBinaries NotIn/.test(s)));
    assert.ok(status.actions.some((s) => /Override: cgroup connect4\/connect6 deny, connect fails with EPERM/.test(s)), status.actions.join('; '));
    if (!deps.features.attach.lsm) assert.match(status.fallback ?? '', /security_socket_connect .*→ cgroup socket hooks/);
    assert.ok(maps.some((m) => m.name === 'th_pc_ids'));
  });

  describe('psql-only-to-db (enforce)', () => {
    let hook: ConnectHook;
    let ctx: HookLoadContext;

    before(async () => {
      const l = await loadExample();
      hook = l.hook as ConnectHook;
      ctx = l.ctx;
      assert.deepEqual(hook.labelSet(0), [DB], 'DLabels app=db resolved to the db identity');
      assert.equal(hook.pods().length, 1, `the api pod's netns is selected (${hook.problems.join('; ')})`);
    });

    test('the psql copy connects to db:5432; python3 and bash get EPERM in the kernel', () => {
      assert.equal(connectFrom(psql, veth.addrB, 5432).out, 'ok');
      assert.equal(connectFrom('python3', veth.addrB, 5432).out, `err ${EPERM}`);
      const bash = veth.execIn(veth.nsA, 'bash', ['-c', `(exec 3<>/dev/tcp/${veth.addrB}/5432) 2>&1 && echo ok || echo refused`]);
      assert.match(bash, /Operation not permitted/);
      assert.match(bash, /refused/);
    });

    test('other ports, addresses and pods are not refused', () => {
      assert.equal(connectFrom('python3', veth.addrB, 5433).out, 'ok', 'db, another port');
      assert.equal(connectFrom('python3', addrC, 5432).out, 'ok', 'port 5432 on an address that is not the db endpoint (world)');
      // From the db pod itself (not an app=api pod) the policy does not apply.
      assert.equal(connectFrom('python3', veth.addrB, 5432, veth.nsB).out, 'ok', 'podSelector: the db pod is not an api pod');
    });

    test('the refusal is a PolicyEvent: process, policy, denied, db identity and labels', async () => {
      const { out, pid } = connectFrom('python3', veth.addrB, 5432);
      assert.equal(out, `err ${EPERM}`);
      const ev = await waitFor(() => policyEvents().find((e) => e.process.pid === pid), 10_000, `policy event of pid ${pid}`);
      assert.equal(ev.policyName, 'psql-only-to-db');
      assert.equal(ev.hook, 'kprobe');
      assert.equal(ev.functionName, 'security_socket_connect');
      assert.equal(ev.action, 'override');
      assert.deepEqual(ev.enforcement, { kind: 'denied', monitor: false, errno: EPERM });
      assert.match(ev.process.binary, /\/python3[.\d]*$/, 'the process behind the connect');
      assert.equal(ev.message, 'only psql may connect to the database');
      assert.deepEqual(ev.tags, ['network', 'database']);
      assert.equal(ev.net?.protocol, 'tcp');
      assert.equal(ev.net?.daddr, veth.addrB);
      assert.equal(ev.net?.dport, 5432);
      assert.equal(ev.net?.destination?.identity, DB);
      assert.equal(ev.net?.destination?.id, 102);
      assert.equal(ev.net?.destination?.podName, 'db-0');
      assert.deepEqual([...(ev.net?.destination?.labels ?? [])], LABELS.db);
      assert.equal(ev.net?.source?.identity, API, 'source: the api pod');
      assert.equal(ev.net?.source?.podName, 'api-0');
      // What hubble observe shows: a DROPPED flow between the two pods, with the process.
      const flow = flowOf(ev, 'it-node');
      assert.equal(flow.verdict, 2, 'DROPPED');
      assert.equal(flow.source?.identity, API);
      assert.equal(flow.destination?.identity, DB);
      assert.deepEqual(flow.destination?.labels, LABELS.db);
      assert.equal(flow.l4?.TCP?.destination_port, 5432);
      // What tetra getevents shows: process_kprobe with the policy name and the socket args.
      const te = eventToProto(ev) as { process_kprobe?: { function_name?: string; policy_name?: string; process?: { pid?: { value: number } }; args?: { sock_arg?: { daddr: string; dport: number } }[] } };
      assert.equal(te.process_kprobe?.policy_name, 'psql-only-to-db');
      assert.equal(te.process_kprobe?.function_name, 'security_socket_connect');
      assert.equal(te.process_kprobe?.process?.pid?.value, pid);
      assert.deepEqual([te.process_kprobe?.args?.[0]?.sock_arg?.daddr, te.process_kprobe?.args?.[0]?.sock_arg?.dport], [veth.addrB, 5432]);
      const sockArg = ev.args.find((a) => a.t === 'sock');
      assert.ok(sockArg && sockArg.t === 'sock' && sockArg.sock.daddr === veth.addrB && sockArg.sock.dport === 5432, JSON.stringify(ev.args, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
      assert.ok(ev.args.some((a) => a.t === 'sockaddr' && a.addr === veth.addrB && a.port === 5432));
    });

    test('monitor mode lets the connect through and reports it as monitor', async () => {
      await hook.setMode('monitor');
      try {
        const { out, pid } = connectFrom('python3', veth.addrB, 5432);
        assert.equal(out, 'ok');
        const ev = await waitFor(() => policyEvents().find((e) => e.process.pid === pid), 10_000, 'monitor event');
        assert.deepEqual(ev.enforcement, { kind: 'denied', monitor: true });
        assert.equal(flowOf(ev, 'it-node').verdict, 4, 'AUDIT');
        assert.equal(ev.action, 'override');
      } finally {
        await hook.setMode('enforce');
      }
      assert.equal(connectFrom('python3', veth.addrB, 5432).out, `err ${EPERM}`);
    });

    test('disabled: programs stay, nothing is refused', async () => {
      await hook.setEnabled(false);
      try {
        assert.equal(connectFrom('python3', veth.addrB, 5432).out, 'ok');
      } finally {
        await hook.setEnabled(true);
      }
      assert.equal(connectFrom('python3', veth.addrB, 5432).out, `err ${EPERM}`);
    });

    test('labels changed in the Cilium API change the outcome without reloading', async () => {
      api.setIdentity(DB, LABELS.cache);
      try {
        await hook.refresh();
        assert.deepEqual(hook.labelSet(0), []);
        assert.equal(connectFrom('python3', veth.addrB, 5432).out, 'ok');
      } finally {
        api.setIdentity(DB, LABELS.db);
        await hook.refresh();
      }
      assert.deepEqual(hook.labelSet(0), [DB]);
      assert.equal(connectFrom('python3', veth.addrB, 5432).out, `err ${EPERM}`);
    });

    test('a new db identity appears: followed (listed by the API, and on demand from the ipcache)', async () => {
      const NEW = 70001;
      fixture.addIpcache(`${addrC}/32`, { identity: NEW });
      try {
        // Not labelled anywhere yet: world-like for the policy.
        await hook.refresh();
        assert.equal(connectFrom('python3', addrC, 5432).out, 'ok');
        // The agent learns it (e.g. a new db pod elsewhere): the set follows.
        api.setIdentity(NEW, LABELS.db);
        await hook.refresh();
        assert.deepEqual(hook.labelSet(0), [DB, NEW]);
        assert.equal(connectFrom('python3', addrC, 5432).out, `err ${EPERM}`);
      } finally {
        api.removeIdentity(NEW);
        fixture.removeIpcache(`${addrC}/32`);
        await hook.refresh();
      }
      assert.deepEqual(hook.labelSet(0), [DB]);
      assert.equal(connectFrom('python3', addrC, 5432).out, 'ok');
    });

    test('the db address removed from the ipcache: no longer db, allowed (kernel lookup, no reload)', async () => {
      fixture.removeIpcache(`${veth.addrB}/32`);
      fixture.removeEndpoint(veth.addrB);
      try {
        assert.equal(connectFrom('python3', veth.addrB, 5432).out, 'ok');
      } finally {
        fixture.addIpcache(`${veth.addrB}/32`, { identity: DB });
        fixture.addEndpoint(veth.addrB, { id: 102, identity: DB, ifindex: 202 });
      }
      assert.equal(connectFrom('python3', veth.addrB, 5432).out, `err ${EPERM}`);
    });

    test('Cilium re-creates its maps: the policy follows the new ones without reloading', async () => {
      const followNew = async (): Promise<void> => {
        await waitFor(() => (identity.maps.mapId('cilium_ipcache_v2') === fixture.mapId('cilium_ipcache_v2') && identity.maps.mapId('cilium_lxc') === fixture.mapId('cilium_lxc') ? true : undefined), 10_000, 'CiliumMaps on the new maps');
        await new Promise((r) => setImmediate(r));
      };
      // New maps where the db address has an identity nobody labels: a stale slot (old maps) would still say db.
      fixture.replaceAll({ keepEntries: false });
      fixture.addIpcache(`${veth.addrA}/32`, { identity: API });
      fixture.addIpcache(`${veth.addrB}/32`, { identity: 61000 });
      fixture.addEndpoint(veth.addrB, { id: 102, identity: 61000, ifindex: 202 });
      try {
        await followNew();
        assert.equal(connectFrom('python3', veth.addrB, 5432).out, 'ok');
      } finally {
        fixture.replaceAll({ keepEntries: false });
        fixture.addIpcache(`${veth.addrA}/32`, { identity: API });
        fixture.addIpcache(`${veth.addrB}/32`, { identity: DB });
        fixture.addEndpoint(veth.addrA, { id: 101, identity: API, ifindex: 201 });
        fixture.addEndpoint(veth.addrB, { id: 102, identity: DB, ifindex: 202 });
        await followNew();
      }
      assert.equal(connectFrom('python3', veth.addrB, 5432).out, `err ${EPERM}`);
    });

    test('counters count the refusals', async () => {
      await waitFor(() => (ctx.counters.override >= 5 && ctx.counters.monitorOverride >= 1 ? true : undefined), 5000, `override counters ${JSON.stringify(ctx.counters)}`);
      const st = hook.stats();
      assert.ok(st && st.override >= 5 && st.monitor_override >= 1, JSON.stringify(st));
    });

    test('close() restores connectivity', async () => {
      await hook.close();
      assert.equal(connectFrom('python3', veth.addrB, 5432).out, 'ok');
      assert.equal(backend.loaded.size, 0);
    });
  });

  describe('binaries: followChildren and processes started before the policy', () => {
    // Waits for a file to appear, then connects once (a process older than the policy).
    const LATE = `
import os, socket, sys, time
print(os.getpid(), flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.02)
s = socket.socket(socket.AF_INET)
s.settimeout(5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print('ok', flush=True)
except OSError as e:
    print('err', e.errno, flush=True)
`;
    // Runs python3 as a child: a descendant of the psql copy.
    const LAUNCH = `
import subprocess, sys
r = subprocess.run(['python3', '-c', sys.argv[3], sys.argv[1], sys.argv[2]], capture_output=True, text=True)
print(r.stdout.strip(), flush=True)
`;
    const policyText = (follow: boolean): string => `
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "no-psql-family-on-5433"}
spec:
  kprobes:
  - call: "tcp_connect"
    syscall: false
    args: [{index: 0, type: "sock"}]
    selectors:
    - matchArgs: [{index: 0, operator: DPort, values: ["5433"]}]
      matchBinaries: [{operator: In, values: ["${psql}"], followChildren: ${follow}}]
      matchActions: [{action: Override, argError: -1}]
`;

    test('followChildren: children of the psql copy match, other python3 processes do not', async () => {
      const hook = await backend.load(parsePolicy(policyText(true)).policy as TracingPolicy, { list: 'kprobes', index: 0 }, { deps, mode: 'enforce', policyId: policyId++, counters: zeroCounters() });
      try {
        assert.equal(connectFrom(psql, veth.addrB, 5433).out, `err ${EPERM}`, 'psql itself');
        const child = veth.execIn(veth.nsA, psql, ['-c', LAUNCH, veth.addrB, '5433', CLIENT]).trim();
        assert.equal(child, `err ${EPERM}`, 'python3 started by psql');
        assert.equal(connectFrom('python3', veth.addrB, 5433).out, 'ok', 'python3 not below psql');
      } finally {
        await hook.close();
      }
      const hook2 = await backend.load(parsePolicy(policyText(false)).policy as TracingPolicy, { list: 'kprobes', index: 0 }, { deps, mode: 'enforce', policyId: policyId++, counters: zeroCounters() });
      try {
        assert.equal(veth.execIn(veth.nsA, psql, ['-c', LAUNCH, veth.addrB, '5433', CLIENT]).trim(), 'ok', 'without followChildren the child is just python3');
      } finally {
        await hook2.close();
      }
    });

    test('a psql copy already running when the policy loads is known as psql (seeded from the process cache)', async () => {
      const flag = path.join(tmp, `go-${Date.now()}`);
      const late = veth.spawnIn(veth.nsA, psql, ['-c', LATE, veth.addrB, '5433', flag]);
      await waitForLine(late, /^\d+$/);
      const hook = await backend.load(parsePolicy(policyText(false)).policy as TracingPolicy, { list: 'kprobes', index: 0 }, { deps, mode: 'enforce', policyId: policyId++, counters: zeroCounters() });
      try {
        fs.writeFileSync(flag, '');
        assert.equal(await waitForLine(late, /^(ok|err)/), `err ${EPERM}`);
      } finally {
        late.kill('SIGKILL');
        await hook.close();
      }
    });
  });

  describe('UDP: udp_sendmsg at cgroup sendmsg4 (and connect4 for connected sockets)', () => {
    // sendto without connect, or connect + send: prints "ok" or "err <errno>".
    const UDP = `
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    if sys.argv[3] == 'connect':
        u.connect((sys.argv[1], int(sys.argv[2])))
        u.send(b'x')
    else:
        u.sendto(b'x', (sys.argv[1], int(sys.argv[2])))
    print('ok', flush=True)
except OSError as e:
    print('err', e.errno, flush=True)
`;
    test('only the psql copy may send to the db on 5353/udp', async () => {
      const parsed = parsePolicy(`
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "udp-to-db"}
spec:
  kprobes:
  - call: "udp_sendmsg"
    syscall: false
    args: [{index: 0, type: "sock"}]
    selectors:
    - matchArgs:
      - {index: 0, operator: DLabels, labelSelector: {matchLabels: {app: db}}}
      - {index: 0, operator: DPort, values: ["5353"]}
      matchBinaries: [{operator: NotIn, values: ["${psql}"]}]
      matchActions: [{action: Override, argError: -1}]
`);
      assert.deepEqual(parsed.errors, []);
      const policy = parsed.policy as TracingPolicy;
      const { status } = backend.plan(policy, { list: 'kprobes', index: 0 }, deps.features);
      assert.match(status.attachedAs, /^cgroup connect4\/connect6\/sendmsg4\/sendmsg6 on /);
      const hook = await backend.load(policy, { list: 'kprobes', index: 0 }, { deps, mode: 'enforce', policyId: policyId++, counters: zeroCounters() });
      const udp = (bin: string, addr: string, port: number, how: 'sendto' | 'connect'): string => veth.execIn(veth.nsA, bin, ['-c', UDP, addr, String(port), how]).trim();
      try {
        assert.equal(udp('python3', veth.addrB, 5353, 'sendto'), `err ${EPERM}`, 'unconnected sendto refused at sendmsg4');
        assert.equal(udp('python3', veth.addrB, 5353, 'connect'), `err ${EPERM}`, 'connected UDP refused at connect4');
        assert.equal(udp(psql, veth.addrB, 5353, 'sendto'), 'ok');
        assert.equal(udp('python3', veth.addrB, 5354, 'sendto'), 'ok', 'another port');
        assert.equal(connectFrom('python3', veth.addrB, 5432).out, 'ok', 'TCP is not this hook\'s business');
        const ev = await waitFor(() => policyEvents().find((e) => e.policyName === 'udp-to-db'), 10_000, 'udp event');
        assert.equal(ev.net?.protocol, 'udp');
        assert.equal(ev.net?.destination?.identity, DB);
        assert.equal(ev.functionName, 'udp_sendmsg');
      } finally {
        await hook.close();
      }
      assert.equal(udp('python3', veth.addrB, 5353, 'sendto'), 'ok');
    });
  });

  describe('DIdentity by number and by reserved name; Sigkill', () => {
    const POLICY = (extra: string): string => `
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "identity-rules"}
spec:
  kprobes:
  - call: "sys_connect"
    syscall: true
    args: [{index: 0, type: "int"}, {index: 1, type: "sockaddr"}, {index: 2, type: "int"}]
    selectors:
    - matchArgs:
      - {index: 1, operator: SIdentity, values: ["${DB}"]}
      - {index: 1, operator: SPort, values: ["5433"]}
      matchActions: [{action: Override, argError: -1}]
    - matchArgs:
      - {index: 1, operator: SIdentity, values: ["world"]}
      - {index: 1, operator: SPort, values: ["5432"]}
      matchActions: [{action: Override, argError: -1}]
${extra}`;

    test('DIdentity 60000 and world refuse exactly their peers', async () => {
      const policy = parsePolicy(POLICY('')).policy as TracingPolicy;
      assert.ok(policy);
      const hook = await backend.load(policy, { list: 'kprobes', index: 0 }, { deps, mode: 'enforce', policyId: policyId++, counters: zeroCounters() });
      try {
        assert.equal(connectFrom('python3', veth.addrB, 5433).out, `err ${EPERM}`, 'db identity by number');
        assert.equal(connectFrom('python3', veth.addrB, 5432).out, 'ok', 'db on 5432 is not world');
        assert.equal(connectFrom('python3', addrC, 5432).out, `err ${EPERM}`, 'no ipcache entry: world');
        assert.equal(connectFrom('python3', addrC, 5433).out, 'ok');
      } finally {
        await hook.close();
      }
      assert.equal(connectFrom('python3', addrC, 5432).out, 'ok');
    });

    test('Override argError -111: ECONNREFUSED where bpf_set_retval exists, else EPERM (and the plan says which)', async () => {
      const parsed = parsePolicy(POLICY(`    - matchArgs:
      - {index: 1, operator: SPort, values: ["5435"]}
      matchActions: [{action: Override, argError: -111}]`));
      assert.deepEqual(parsed.errors, []);
      const hook = (await backend.load(parsed.policy as TracingPolicy, { list: 'kprobes', index: 0 }, { deps, mode: 'enforce', policyId: policyId++, counters: zeroCounters() })) as ConnectHook;
      try {
        const want = hook.argErrorHonoured ? 111 : EPERM;
        assert.equal(connectFrom('python3', veth.addrB, 5435).out, `err ${want}`);
        assert.match(hook.status.actions.join('; '), hook.argErrorHonoured ? /argError -1, -111/ : /cannot be returned by a cgroup hook/);
        assert.equal(connectFrom('python3', veth.addrB, 5433).out, `err ${EPERM}`, 'the argError -1 selector still EPERM');
      } finally {
        await hook.close();
      }
    });

    test('Sigkill: the connect is refused and the process killed before it sees the error', async () => {
      const text = POLICY(`    - matchArgs:
      - {index: 1, operator: SPort, values: ["5434"]}
      matchActions: [{action: Sigkill}]`);
      const parsed = parsePolicy(text);
      assert.deepEqual(parsed.errors, []);
      const hook = await backend.load(parsed.policy as TracingPolicy, { list: 'kprobes', index: 0 }, { deps, mode: 'enforce', policyId: policyId++, counters: zeroCounters() });
      try {
        let status: number | null = null;
        let signal: string | null = null;
        try {
          veth.execIn(veth.nsA, 'python3', ['-c', CLIENT, veth.addrB, '5434']);
        } catch (e) {
          const err = e as { status: number | null; signal: string | null; stdout?: string };
          status = err.status;
          signal = err.signal;
          assert.equal(err.stdout ?? '', '', 'the process printed nothing: killed inside connect()');
        }
        // ip netns exec execs the command: the signal is the command's own.
        assert.ok(signal === 'SIGKILL' || status === 137, `killed by SIGKILL (status ${status}, signal ${signal})`);
        const ev = await waitFor(() => policyEvents().find((e) => e.policyName === 'identity-rules' && e.action === 'sigkill'), 10_000, 'sigkill event');
        assert.deepEqual(ev.enforcement, { kind: 'denied', monitor: false, errno: EPERM, signal: 9 });
      } finally {
        await hook.close();
      }
    });
  });
});
