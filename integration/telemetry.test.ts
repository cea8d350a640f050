// File, network, DNS and syscall telemetry end to end: the real agent with all
// four sensors, real processes, and both APIs read by real gRPC clients — the
// Tetragon stream (kprobe / tracepoint shapes of src/api/tetragon/json.ts)
// and Hubble flows selected the way `hubble observe` selects them.
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { packRuntimeFilter } from '../src/api/hubble/client';
import { encodeName, header, ipv4Bytes, question, rr } from '../src/sensors/dns/wire';
import { getEvents, hubbleClient, runtimeOf, type Plain } from './clients';
import { kernelSkipReason, ROOT, startAgent, waitFor, type RunningAgent } from './harness';

const PY = '/usr/bin/python3';
const CAT = '/bin/cat';
const NR_GETPPID = 110;

function skipReason(): string | undefined {
  const k = kernelSkipReason();
  if (k) return k;
  for (const o of ['file.bpf.o', 'net.bpf.o', 'syscall.bpf.o']) {
    if (!fs.existsSync(path.join(ROOT, 'bpf/.output', o))) return `bpf/.output/${o} not built (npm run build)`;
  }
  if (!fs.existsSync(PY)) return `${PY} not installed`;
  return undefined;
}

const skip = skipReason();
if (skip) console.log(`# telemetry integration tests skipped: ${skip}`);

/** A follow GetFlows stream collecting every flow response. */
function followFlows(address: string, req: Plain): { flows: Plain[]; close(): void } {
  const client = hubbleClient(address);
  const call = client.GetFlows({ follow: true, ...req }) as grpc.ClientReadableStream<Plain>;
  const out = {
    flows: [] as Plain[],
    close: () => {
      call.cancel();
      client.close();
    },
  };
  call.on('data', (r: Plain) => {
    if (r.flow) out.flows.push(r);
  });
  call.on('error', () => undefined); // CANCELLED at close
  return out;
}

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): { child: ChildProcess; done: Promise<number | null>; out: () => string } {
  const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, done, out: () => out };
}

const pidOf = (p: Plain | undefined): number | undefined => p?.pid?.value ?? p?.pid;

// A TCP server that reads what comes and answers, then closes; prints its port.
const TCP_SERVER = `
import socket, sys
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen()
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
data = c.recv(4096)
c.sendall(b'pong' * 100)
c.close()
s.close()
`;

const TCP_CLIENT = `
import socket, sys
c = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
c.sendall(b'ping' * 50)
while c.recv(4096):
    pass
c.close()
`;

// One UDP DNS query by hand (A, class IN), prints the answer's size.
const DNS_QUERY = `
import socket, struct, sys
name = sys.argv[1]
q = struct.pack('>HHHHHH', 0x4242, 0x0100, 1, 0, 0, 0) + b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\\0' + struct.pack('>HH', 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(q, ('127.0.0.1', 53))
r, _ = s.recvfrom(4096)
print('answered', len(r), flush=True)
`;

/** Answers svc.telemetry.test with A 10.9.8.7 (TTL 120); anything else NXDOMAIN. */
function startDnsServer(): Promise<dgram.Socket> {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, peer) => {
    const id = msg.readUInt16BE(0);
    let off = 12;
    const labels: string[] = [];
    while (msg[off]) {
      labels.push(msg.toString('latin1', off + 1, off + 1 + msg[off]));
      off += 1 + msg[off];
    }
    const name = labels.join('.');
    const q = question(encodeName(name), 1);
    const ok = name === 'svc.telemetry.test';
    const flags = 0x8180 | (ok ? 0 : 3);
    const body = ok ? [q, rr(encodeName(name), 1, 120, ipv4Bytes('10.9.8.7'))] : [q];
    sock.send(Buffer.concat([header(id, flags, 1, ok ? 1 : 0), ...body]), peer.port, peer.address);
  });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(53, '127.0.0.1', () => resolve(sock));
  });
}

describe('file, network, DNS and syscall telemetry through both APIs', { skip }, () => {
  let agent: RunningAgent;
  let tetra: ReturnType<typeof getEvents>;
  let dir: string;

  before(async () => {
    agent = await startAgent(['--enable-sensor', 'file', '--enable-sensor', 'net', '--enable-sensor', 'dns', '--enable-sensor', 'syscall', '--syscall', 'getppid']);
    const st = await agent.status();
    for (const name of ['file', 'net', 'dns', 'syscall']) {
      const s = st.sensors.find((x) => x.name === name);
      assert.equal(s?.state, 'running', `sensor ${name}: ${s?.state} ${s?.note ?? ''}\n${agent.logs()}`);
    }
    // As `tetra getevents` sends it, narrowed to the binaries the tests run.
    tetra = getEvents(agent.tetragon, { allow_list: [{ binary_regex: ['^/usr/bin/python3(\\.\\d+)?$', '^/(usr/)?bin/cat$'] }] });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-telemetry-'));
    await new Promise((r) => setTimeout(r, 300));
  });

  after(async () => {
    tetra?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (agent) assert.equal(await agent.stop(), 0, 'agent exits cleanly');
  });

  const kprobes = (pid: number, fn: string): Plain[] =>
    tetra.events.filter((e) => e.process_kprobe && pidOf(e.process_kprobe.process) === pid && e.process_kprobe.function_name === fn).map((e) => e.process_kprobe);

  test('a file opened by relative path: Tetragon kprobe with the absolute path, Hubble runtime flow', async () => {
    const sub = path.join(dir, 'sub');
    fs.mkdirSync(sub);
    const file = path.join(sub, 'data.txt');
    fs.writeFileSync(file, 'hello\n');
    const flows = followFlows(agent.hubble, {
      whitelist: [{ event_type: [{ type: 200, match_sub_type: true, sub_type: 9 }] }],
      extensions: packRuntimeFilter({ binary_regex: ['^/(usr/)?bin/cat$'] }),
    });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const cat = run(CAT, ['data.txt'], { cwd: sub });
      assert.equal(await cat.done, 0);
      const pid = cat.child.pid!;
      const open = await waitFor(() => kprobes(pid, 'fd_install').find((k) => k.args?.[1]?.file_arg?.path === file), 10_000, 'fd_install of data.txt');
      assert.equal(open.policy_name, 'tetrahub-file');
      assert.equal(open.action, 'KPROBE_ACTION_POST');
      assert.equal(open.process.binary, CAT);
      assert.equal(open.process.cwd, sub);
      assert.ok(open.parent, 'parent present');
      assert.equal(open.args[0].label, 'fd');
      assert.ok(open.args[0].int_arg >= 3, 'an fd');
      assert.match(open.args[2].string_arg, /^O_RDONLY/);
      assert.equal(open.return.int_arg, open.args[0].int_arg);

      const flow = await waitFor(
        () => flows.flows.find((r) => pidOf(runtimeOf(r)?.process_kprobe?.process) === pid && runtimeOf(r)?.process_kprobe?.args?.[1]?.file_arg?.path === file),
        10_000,
        'Hubble runtime flow of the open',
      );
      assert.deepEqual(flow.flow.event_type, { type: 200, sub_type: 9 });
      assert.equal(flow.flow.verdict, 'FORWARDED');
      assert.ok(flow.flow.IP, 'IP is non-nil');
      assert.match(flow.flow.Summary, new RegExp(`^open ${CAT} ${file} O_RDONLY`));
    } finally {
      flows.close();
    }
  });

  test('a TCP connection on loopback: L3_L4 flows by port and protocol, tcp_connect / tcp_close with sock_arg', async () => {
    const server = run(PY, ['-c', TCP_SERVER]);
    const port = Number(await waitFor(() => server.out().trim().split('\n')[0] || undefined, 5000, 'server port'));
    assert.ok(port > 0);
    const flows = followFlows(agent.hubble, { whitelist: [{ destination_port: [String(port)], protocol: ['tcp'] }] });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const client = run(PY, ['-c', TCP_CLIENT, String(port)]);
      assert.equal(await client.done, 0);
      assert.equal(await server.done, 0);
      const cpid = client.child.pid!;
      const spid = server.child.pid!;

      // Tetragon: the client's connect and close, the server's accept, with the 4-tuple.
      const connect = await waitFor(() => kprobes(cpid, 'tcp_connect')[0], 10_000, 'tcp_connect');
      const sock = connect.args[0].sock_arg;
      assert.equal(sock.family, 'AF_INET');
      assert.equal(sock.type, 'SOCK_STREAM');
      assert.equal(sock.protocol, 'IPPROTO_TCP');
      assert.equal(sock.saddr, '127.0.0.1');
      assert.equal(sock.daddr, '127.0.0.1');
      assert.equal(sock.dport, port);
      assert.ok(sock.sport > 0);
      assert.match(sock.cookie, /^\d+$/);
      assert.equal(connect.policy_name, 'tetrahub-net');
      const close = await waitFor(() => kprobes(cpid, 'tcp_close')[0], 10_000, 'tcp_close');
      assert.equal(close.args[0].sock_arg.dport, port);
      assert.equal(close.args[0].sock_arg.sport, sock.sport);
      const sent = close.args.find((a: Plain) => a.label === 'bytes_sent');
      const received = close.args.find((a: Plain) => a.label === 'bytes_received');
      assert.equal(sent?.size_arg, '200');
      assert.equal(received?.size_arg, '400');
      const accept = await waitFor(() => kprobes(spid, 'inet_csk_accept')[0], 10_000, 'inet_csk_accept');
      assert.equal(accept.args[0].sock_arg.sport, port, 'the server side of the socket');
      assert.equal(accept.args[0].sock_arg.dport, sock.sport);

      // Hubble: flows selected by --port <port> --protocol tcp.
      const conn = await waitFor(
        () => flows.flows.find((r) => r.flow.l4?.TCP?.flags?.SYN && r.flow.traffic_direction === 'EGRESS'),
        10_000,
        'connect flow',
      );
      const f = conn.flow;
      assert.equal(f.Type, 'L3_L4');
      assert.deepEqual(f.event_type, { type: 7, sub_type: 1 });
      assert.deepEqual(f.IP, { source: '127.0.0.1', destination: '127.0.0.1', ipVersion: 'IPv4' });
      assert.deepEqual(f.l4.TCP, { source_port: sock.sport, destination_port: port, flags: { SYN: true } });
      assert.ok(f.is_reply, 'is_reply set (BoolValue false decodes as {})');
      assert.equal(f.is_reply.value ?? false, false);
      assert.equal(f.verdict, 'FORWARDED');
      assert.equal(f.socket_cookie, sock.cookie);
      assert.equal(f.Summary, `connect ${PY} 127.0.0.1:${port}`);
      const kp = runtimeOf(conn)?.process_kprobe;
      assert.equal(kp?.function_name, 'tcp_connect');
      assert.equal(pidOf(kp?.process), cpid, "the client's process in extensions");
      const fin = await waitFor(() => flows.flows.find((r) => r.flow.Summary?.startsWith(`close ${PY}`) && r.flow.traffic_direction === 'EGRESS'), 10_000, 'client close flow');
      assert.equal(fin.flow.Summary, `close ${PY} 127.0.0.1:${port} sent 200 received 400`);
      const acc = await waitFor(() => flows.flows.find((r) => r.flow.Summary?.startsWith(`accept ${PY}`)), 10_000, 'accept flow');
      assert.equal(acc.flow.traffic_direction, 'INGRESS');
      assert.deepEqual(acc.flow.l4.TCP, { source_port: sock.sport, destination_port: port, flags: { SYN: true } });
      assert.equal(pidOf(runtimeOf(acc)?.process_kprobe?.process), spid);
      for (const r of flows.flows) assert.equal(r.flow.l4?.TCP?.destination_port, port, 'only flows to the port');
    } finally {
      flows.close();
      server.child.kill();
    }
  });

  test('a DNS query to 127.0.0.1:53: L7 DNS flows selected by protocol dns, with query, ips, rcode', async (t) => {
    let dns: dgram.Socket;
    try {
      dns = await startDnsServer();
    } catch (e) {
      t.skip(`cannot bind 127.0.0.1:53: ${(e as Error).message}`);
      return;
    }
    const flows = followFlows(agent.hubble, { whitelist: [{ protocol: ['dns'] }] });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const ok = run(PY, ['-c', DNS_QUERY, 'svc.telemetry.test']);
      assert.equal(await ok.done, 0);
      const nx = run(PY, ['-c', DNS_QUERY, 'nope.telemetry.test']);
      assert.equal(await nx.done, 0);
      const mine = (pid: number, type: string): Plain | undefined =>
        flows.flows.find((r) => r.flow.l7?.type === type && pidOf(runtimeOf(r)?.process_kprobe?.process) === pid);
      const q = await waitFor(() => mine(ok.child.pid!, 'REQUEST'), 10_000, 'DNS request flow');
      assert.equal(q.flow.Type, 'L7');
      assert.deepEqual(q.flow.event_type, { type: 129 });
      assert.equal(q.flow.l7.dns.query, 'svc.telemetry.test.');
      assert.deepEqual(q.flow.l7.dns.qtypes, ['A']);
      assert.equal(q.flow.l7.dns.observation_source, 'tetrahub');
      assert.equal(q.flow.IP.destination, '127.0.0.1');
      assert.equal(q.flow.l4.UDP.destination_port, 53);
      assert.equal(q.flow.traffic_direction, 'EGRESS');
      assert.equal(q.flow.Summary, 'DNS Query svc.telemetry.test. A');
      const r = await waitFor(() => mine(ok.child.pid!, 'RESPONSE'), 10_000, 'DNS response flow');
      assert.deepEqual(r.flow.l7.dns.ips, ['10.9.8.7']);
      assert.equal(r.flow.l7.dns.ttl, 120);
      assert.equal(r.flow.l7.dns.rcode ?? 0, 0);
      assert.deepEqual(r.flow.l7.dns.rrtypes, ['A']);
      assert.equal(r.flow.l4.UDP.source_port, 53);
      assert.equal(r.flow.is_reply?.value, true);
      assert.match(String(r.flow.l7.latency_ns ?? ''), /^\d+$/);
      assert.equal(runtimeOf(r)?.process_kprobe?.function_name, 'dns_response');
      const n = await waitFor(() => mine(nx.child.pid!, 'RESPONSE'), 10_000, 'NXDOMAIN response flow');
      assert.equal(n.flow.l7.dns.rcode, 3);
      assert.equal(n.flow.Summary, 'DNS Answer RCode: Non-Existent Domain TTL: 0 (Query nope.telemetry.test. A)');
    } finally {
      flows.close();
      dns.close();
    }
  });

  test('getppid from a python3 child: Tetragon process_tracepoint raw_syscalls/sys_enter', async () => {
    const py = run(PY, ['-c', 'import os; print(os.getppid())']);
    assert.equal(await py.done, 0);
    const pid = py.child.pid!;
    const ppid = Number(py.out().trim());
    const tp = await waitFor(
      () => tetra.events.find((e) => e.process_tracepoint && pidOf(e.process_tracepoint.process) === pid && e.process_tracepoint.args?.[0]?.long_arg === String(NR_GETPPID))?.process_tracepoint,
      10_000,
      'getppid tracepoint',
    );
    assert.equal(tp.subsys, 'raw_syscalls');
    assert.equal(tp.event, 'sys_enter');
    assert.equal(tp.policy_name, 'tetrahub-syscall');
    assert.equal(tp.action, 'KPROBE_ACTION_POST');
    assert.equal(tp.process.binary, PY);
    const ret = tp.args.find((a: Plain) => a.label === 'return');
    assert.equal(ret?.long_arg, String(ppid));
  });

  test('no sensor event reached the Tetragon stream without a process', () => {
    for (const e of tetra.events) {
      const body = e.process_kprobe ?? e.process_tracepoint;
      if (body) assert.ok(body.process?.exec_id, JSON.stringify(e).slice(0, 300));
    }
    assert.equal(tetra.error, undefined);
  });
});
