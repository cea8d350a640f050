// The DNS sensor on the real kernel: a small DNS server (UDP and TCP, port 53)
// in namespace A, clients in namespace B using the system resolver (glibc, via
// a per-namespace resolv.conf) and hand-made TCP queries; then a connect to an
// answered address carries the name. Skips with the reason when it cannot run.
import { after, before, describe, test } from 'node:test';
import * as dgram from 'node:dgram';
import * as assert from 'node:assert/strict';
import type { DnsEvent } from '../src/model/event';
import { waitFor } from './harness';
import { createVethPair, exited, killHostChildren, netRigSkipReason, spawnCollected, startNetRig, waitForLine, type NetRig, type VethPair } from './netns';

const skip = netRigSkipReason();
if (skip) console.log(`# dns integration tests skipped: ${skip}`);

const APP_PORT = 8080;
/** A second DNS port, on loopback of the host namespace. */
const EXTRA_PORT = 10053;

// Answers svc.tetrahub.test (A → argv[2], TTL 300) and alias.tetrahub.test
// (CNAME svc, TTL 60); AAAA of those: no data; anything else: NXDOMAIN.
// Also accepts (and closes) TCP connections on the app port.
const DNS_SERVER = `
import socket, struct, sys, threading
addr, ip, app = sys.argv[1], sys.argv[2], int(sys.argv[3])

def enc(name):
    return b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\\0'

def answer(q):
    qid, flags = struct.unpack('>HH', q[:4])
    off, labels = 12, []
    while q[off]:
        labels.append(q[off + 1:off + 1 + q[off]].decode())
        off += 1 + q[off]
    name = '.'.join(labels)
    qtype = struct.unpack('>H', q[off + 1:off + 3])[0]
    question = q[12:off + 5]
    body, an, rcode, target = b'', 0, 0, name
    if name == 'alias.tetrahub.test':
        body += b'\\xc0\\x0c' + struct.pack('>HHIH', 5, 1, 60, len(enc('svc.tetrahub.test'))) + enc('svc.tetrahub.test')
        an += 1
        target = 'svc.tetrahub.test'
    if target == 'svc.tetrahub.test':
        if qtype == 1:
            owner = b'\\xc0\\x0c' if target == name else enc(target)
            body += owner + struct.pack('>HHIH', 1, 1, 300, 4) + socket.inet_aton(ip)
            an += 1
    else:
        rcode = 3
    return struct.pack('>HHHHHH', qid, 0x8080 | (flags & 0x0100) | rcode, 1, an, 0, 0) + question + body

def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    ready.release()
    while True:
        q, peer = s.recvfrom(4096)
        s.sendto(answer(q), peer)

def tcp():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 53))
    s.listen()
    ready.release()
    while True:
        c, _ = s.accept()
        n = struct.unpack('>H', c.recv(2))[0]
        q = b''
        while len(q) < n:
            q += c.recv(n - len(q))
        r = answer(q)
        c.sendall(struct.pack('>H', len(r)) + r)
        c.close()

def app_server():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, app))
    s.listen()
    ready.release()
    while True:
        c, _ = s.accept()
        c.close()

ready = threading.Semaphore(0)
for f in (udp, tcp, app_server):
    threading.Thread(target=f, daemon=True).start()
for _ in range(3):
    ready.acquire()
print('ready', flush=True)
threading.Event().wait()
`;

// Resolves a name with the system resolver (A only), then connects to the first address.
const RESOLVE_CONNECT = `
import socket, sys
name, port = sys.argv[1], int(sys.argv[2])
try:
    ip = socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
except socket.gaierror as e:
    print('gaierror', e.errno, flush=True)
    sys.exit(0)
print('resolved', ip, flush=True)
c = socket.create_connection((ip, port))
c.close()
print('connected', flush=True)
`;

// One query over TCP, by hand.
const TCP_QUERY = `
import socket, struct, sys
server, name = sys.argv[1], sys.argv[2]
q = struct.pack('>HHHHHH', 0x7a7a, 0x0100, 1, 0, 0, 0) + b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\\0' + struct.pack('>HH', 1, 1)
c = socket.create_connection((server, 53))
c.sendall(struct.pack('>H', len(q)) + q)
n = struct.unpack('>H', c.recv(2))[0]
r = b''
while len(r) < n:
    r += c.recv(n - len(r))
c.close()
print('answered', len(r), flush=True)
`;

describe('DNS sensor (real kernel)', { skip }, () => {
  let rig: NetRig;
  let veth: VethPair;

  before(async () => {
    veth = createVethPair();
    veth.setResolver(veth.nsB, veth.addrA);
    rig = await startNetRig({ dns: { ports: [53, EXTRA_PORT] }, net: {} });
    const server = veth.spawnIn(veth.nsA, 'python3', ['-c', DNS_SERVER, veth.addrA, veth.addrA, String(APP_PORT)]);
    await waitForLine(server, /^ready/);
  });
  after(async () => {
    killHostChildren();
    await rig?.stop();
    veth?.destroy();
  });

  const dnsOf = (pid: number, pred: (e: DnsEvent) => boolean, what: string): Promise<DnsEvent> =>
    waitFor(() => rig.dnsEvents().find((e) => e.process.pid === pid && pred(e)), 10_000, what);

  test('status', () => {
    const st = rig.dns!.status();
    assert.equal(st.state, 'running', st.note);
    assert.ok(st.hooks.some((h) => h.startsWith('cgroup_skb/egress')));
    assert.ok(st.hooks.some((h) => h.startsWith('cgroup_skb/ingress')));
  });

  test('query and answer over UDP through the system resolver; the connect carries the name', async () => {
    const client = veth.spawnIn(veth.nsB, 'python3', ['-c', RESOLVE_CONNECT, 'svc.tetrahub.test', String(APP_PORT)]);
    assert.equal(await waitForLine(client, /^(resolved|gaierror)/), `resolved ${veth.addrA}`);
    await waitForLine(client, /^connected/);
    const pid = client.pid!;

    const q = await dnsOf(pid, (e) => !e.isResponse && e.query === 'svc.tetrahub.test', 'query event');
    assert.equal(q.protocol, 'udp');
    assert.deepEqual(q.qtypes, ['A']);
    assert.equal(q.serverAddr, veth.addrA);
    assert.equal(q.serverPort, 53);
    assert.equal(q.clientAddr, veth.addrB);
    assert.match(q.process.binary, /python3/);

    const r = await dnsOf(pid, (e) => e.isResponse && e.id === q.id, 'response event');
    assert.equal(r.rcode, 0);
    assert.equal(r.query, 'svc.tetrahub.test');
    assert.deepEqual(r.answers, [{ name: 'svc.tetrahub.test', type: 'A', ttl: 300, data: veth.addrA }]);
    assert.equal(r.clientPort, q.clientPort, 'the querying socket');
    assert.equal(r.process.execId, q.process.execId, 'the querying process, also for the response');
    assert.ok(r.latencyNs !== undefined && r.latencyNs > 0 && r.latencyNs < 5e9, `latency ${r.latencyNs}`);
    assert.equal(r.malformed, undefined);

    const connect = await waitFor(() => rig.netEvents().find((e) => e.process.pid === pid && e.op === 'connect' && e.protocol === 'tcp'), 10_000, 'connect');
    assert.equal(connect.daddr, veth.addrA);
    assert.equal(connect.dport, APP_PORT);
    assert.deepEqual(connect.destinationNames, ['svc.tetrahub.test']);
    await exited(client);
  });

  test('a CNAME chain caches both names; NXDOMAIN is an rcode, not an error', async () => {
    const c1 = veth.spawnIn(veth.nsB, 'python3', ['-c', RESOLVE_CONNECT, 'alias.tetrahub.test', String(APP_PORT)]);
    await waitForLine(c1, /^connected/);
    const r = await dnsOf(c1.pid!, (e) => e.isResponse && e.query === 'alias.tetrahub.test', 'CNAME response');
    assert.deepEqual(
      r.answers.map((a) => [a.name, a.type, a.ttl, a.data]),
      [
        ['alias.tetrahub.test', 'CNAME', 60, 'svc.tetrahub.test'],
        ['svc.tetrahub.test', 'A', 300, veth.addrA],
      ],
    );
    const connect = await waitFor(() => rig.netEvents().find((e) => e.process.pid === c1.pid && e.op === 'connect' && e.protocol === 'tcp'), 10_000, 'connect');
    assert.ok(connect.destinationNames?.includes('alias.tetrahub.test'), `names ${connect.destinationNames}`);

    const c2 = veth.spawnIn(veth.nsB, 'python3', ['-c', RESOLVE_CONNECT, 'missing.tetrahub.test', String(APP_PORT)]);
    assert.match(await waitForLine(c2, /^(resolved|gaierror)/), /^gaierror/);
    const nx = await dnsOf(c2.pid!, (e) => e.isResponse && e.query === 'missing.tetrahub.test', 'NXDOMAIN response');
    assert.equal(nx.rcode, 3);
    assert.deepEqual(nx.answers, []);
  });

  test('DNS over TCP', async () => {
    const c = veth.spawnIn(veth.nsB, 'python3', ['-c', TCP_QUERY, veth.addrA, 'svc.tetrahub.test']);
    await waitForLine(c, /^answered/);
    const q = await dnsOf(c.pid!, (e) => !e.isResponse && e.protocol === 'tcp', 'TCP query');
    assert.equal(q.id, 0x7a7a);
    assert.equal(q.query, 'svc.tetrahub.test');
    const r = await dnsOf(c.pid!, (e) => e.isResponse && e.protocol === 'tcp', 'TCP response');
    assert.equal(r.id, 0x7a7a);
    assert.equal(r.answers[0]?.data, veth.addrA);
    assert.ok((r.latencyNs ?? 0) > 0);
  });

  test("a configured extra port is watched; the agent's own queries are not reported", async () => {
    const query = (name: string): Buffer =>
      Buffer.concat([
        Buffer.from([0x11, 0x22, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
        ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
        Buffer.from([0, 0, 1, 0, 1]),
      ]);
    // This process is the agent (agent_tgid): excluded in the kernel.
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.send(query('agent.tetrahub.test'), EXTRA_PORT, '127.0.0.1', () => r()));
    sock.close();
    // Another process to the same port: reported.
    const py = spawnCollected('python3', [
      '-c',
      `import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(bytes.fromhex(sys.argv[1]), ('127.0.0.1', ${EXTRA_PORT})); print('sent', flush=True)`,
      query('other.tetrahub.test').toString('hex'),
    ]);
    await waitForLine(py, /^sent/);
    const other = await dnsOf(py.pid!, (e) => e.query === 'other.tetrahub.test', 'query to the extra port');
    assert.equal(other.serverPort, EXTRA_PORT);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(rig.dnsEvents().filter((e) => e.query === 'agent.tetrahub.test').length, 0, 'no event for the agent itself');
  });

  test('counters', () => {
    const c = rig.dns!.counters();
    assert.ok(c.dns_queries >= 4, `queries ${c.dns_queries}`);
    assert.ok(c.dns_responses >= 4);
    assert.equal(c.dns_malformed, 0);
    assert.equal(c.dns_kernel_ring_drops, 0);
    assert.ok(c.dns_cache_size >= 1);
  });
});
