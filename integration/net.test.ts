// The network sensor on the real kernel: TCP between two network namespaces
// joined by a veth pair, a refused connect, IPv6 on loopback, UDP exchanges.
// Needs root, BTF, cgroup2, iproute2 and the built addon and objects; skips
// with the reason otherwise.
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { NetEvent } from '../src/model/event';
import { encodeCfg } from '../src/sensors/net/decode';
import { waitFor } from './harness';
import { createVethPair, exited, killHostChildren, netRigSkipReason, spawnCollected, startNetRig, waitForLine, type NetRig, type VethPair } from './netns';

const skip = netRigSkipReason();
if (skip) console.log(`# net integration tests skipped: ${skip}`);

const TCP_SERVER = `
import socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
print('ready', s.getsockname()[1], flush=True)
c, _ = s.accept()
n = 0
while True:
    d = c.recv(65536)
    if not d:
        break
    n += len(d)
c.close()
s.close()
print('received', n, flush=True)
`;

// Sends N bytes, half-closes, waits for the server to close, then closes.
const TCP_CLIENT = `
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
c.sendall(b'x' * int(sys.argv[3]))
c.shutdown(socket.SHUT_WR)
c.recv(1)
c.close()
print('done', flush=True)
`;

const REFUSED_CLIENT = `
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])))
    print('connected', flush=True)
except ConnectionRefusedError:
    print('refused', flush=True)
`;

const UDP_SERVER = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print('ready', flush=True)
for i in range(int(sys.argv[3])):
    d, a = s.recvfrom(2048)
    s.sendto(d, a)
s.close()
print('served', flush=True)
`;

// Unconnected: sendto/recvfrom N times; then a connected socket sends M datagrams of 100 bytes.
const UDP_CLIENT = `
import socket, sys, time
host, port, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(n):
    u.sendto(b'u' * 10, (host, port))
    u.recvfrom(2048)
print('unconnected', u.getsockname()[1], flush=True)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.connect((host, port))
for i in range(m):
    c.send(b'c' * 100)
    c.recv(2048)
print('connected', c.getsockname()[1], flush=True)
time.sleep(1.5)
u.close()
c.close()
print('closed', flush=True)
`;

describe('network sensor (TCP/UDP, real kernel)', { skip }, () => {
  let rig: NetRig;
  let veth: VethPair;

  before(async () => {
    veth = createVethPair();
    rig = await startNetRig({ net: { udpReportMs: 400 } });
  });
  after(async () => {
    killHostChildren();
    await rig?.stop();
    veth?.destroy();
  });

  const byPid = (pid: number, op: NetEvent['op']): NetEvent[] => rig.netEvents().filter((e) => e.process.pid === pid && e.op === op);
  const one = (pid: number, op: NetEvent['op'], what: string, pred: (e: NetEvent) => boolean = () => true): Promise<NetEvent> =>
    waitFor(() => byPid(pid, op).find(pred), 10_000, `${what} (${op} of pid ${pid})`);

  test('sensor status lists the hooks it attached', () => {
    const st = rig.net.status();
    assert.ok(st.state === 'running' || st.state === 'fallback', `state ${st.state}: ${st.note}`);
    for (const h of ['cgroup/connect4', 'cgroup/connect6', 'sock/inet_sock_set_state', 'syscalls/sys_exit_connect', 'syscalls/sys_exit_accept4', 'cgroup/sock_release']) {
      assert.ok(st.hooks.some((x) => x.includes(h)), `hook ${h} in ${st.hooks.join(', ')}`);
    }
  });

  test('TCP between two namespaces: listen, accept, connect, close with bytes, both ends attributed', async () => {
    const N = 123_457;
    const port = 18000 + (process.pid % 1000);
    const server = veth.spawnIn(veth.nsA, 'python3', ['-c', TCP_SERVER, veth.addrA, String(port)]);
    await waitForLine(server, /^ready/);
    const client = veth.spawnIn(veth.nsB, 'python3', ['-c', TCP_CLIENT, veth.addrA, String(port), String(N)]);
    assert.match(await waitForLine(server, /^received/), new RegExp(`received ${N}$`));
    await waitForLine(client, /^done/);
    const spid = server.pid!;
    const cpid = client.pid!;

    const listen = await one(spid, 'listen', 'listen');
    assert.equal(listen.protocol, 'tcp');
    assert.equal(listen.saddr, veth.addrA);
    assert.equal(listen.sport, port);
    assert.equal(listen.netns, veth.inodeA);
    assert.equal(listen.state, 'TCP_LISTEN');

    const connect = await one(cpid, 'connect', 'connect');
    assert.equal(connect.ret, 0);
    assert.equal(connect.family, 4);
    assert.equal(connect.direction, 'egress');
    assert.equal(connect.saddr, veth.addrB);
    assert.equal(connect.daddr, veth.addrA);
    assert.equal(connect.dport, port);
    assert.ok(connect.sport > 0);
    assert.equal(connect.netns, veth.inodeB);
    assert.ok(connect.socketCookie > 0n);
    assert.equal(connect.state, 'TCP_ESTABLISHED');

    const accept = await one(spid, 'accept', 'accept');
    assert.equal(accept.direction, 'ingress');
    assert.equal(accept.saddr, veth.addrA);
    assert.equal(accept.sport, port);
    assert.equal(accept.daddr, veth.addrB);
    assert.equal(accept.dport, connect.sport, 'the accepted peer is the connecting socket');
    assert.equal(accept.netns, veth.inodeA);
    assert.ok(accept.socketCookie > 0n, 'accepted sockets get a cookie (sock_ops)');

    // Both ends attributed to the right process images.
    for (const [ev, pid] of [
      [connect, cpid],
      [accept, spid],
    ] as const) {
      assert.equal(ev.process.pid, pid);
      assert.match(ev.process.binary, /python3/);
      const exec = await waitFor(() => rig.execOf(pid), 5000, `exec of ${pid}`);
      assert.equal(ev.process.execId, exec.process.execId, 'exec_id of the image that made the socket');
    }

    const cclose = await one(cpid, 'close', 'client close', (e) => e.socketCookie === connect.socketCookie);
    assert.equal(cclose.bytesSent, N);
    assert.equal(cclose.bytesReceived, 0);
    assert.equal(cclose.direction, 'egress');
    assert.equal(cclose.saddr, veth.addrB);
    assert.equal(cclose.sport, connect.sport);
    assert.equal(cclose.netns, veth.inodeB);
    const sclose = await one(spid, 'close', 'server close', (e) => e.socketCookie === accept.socketCookie);
    assert.equal(sclose.bytesReceived, N);
    assert.equal(sclose.bytesSent, 0);
    assert.equal(sclose.direction, 'ingress');
    assert.equal(sclose.process.execId, accept.process.execId);
    await one(spid, 'close', 'listener close', (e) => e.socketCookie === listen.socketCookie && e.state === 'TCP_LISTEN');
    await exited(server);
  });

  test('a refused connect reports ret -111 with both ends', async () => {
    const port = 19000 + (process.pid % 1000);
    const client = veth.spawnIn(veth.nsB, 'python3', ['-c', REFUSED_CLIENT, veth.addrA, String(port)]);
    assert.equal(await waitForLine(client, /^(refused|connected)/), 'refused');
    const ev = await one(client.pid!, 'connect', 'refused connect');
    assert.equal(ev.ret, -111);
    assert.equal(ev.daddr, veth.addrA);
    assert.equal(ev.dport, port);
    assert.equal(ev.saddr, veth.addrB, 'local end kept although the kernel reset it');
    assert.ok(ev.sport > 0);
    assert.equal(ev.state, 'TCP_CLOSE');
    // The failure is the connect event's; no separate close is reported for it.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(byPid(client.pid!, 'close').length, 0);
  });

  test('IPv6 on loopback', async () => {
    const server = spawnCollected('python3', ['-c', TCP_SERVER, '::1', '0']);
    const port = Number((await waitForLine(server, /^ready/)).split(' ')[1]);
    const client = spawnCollected('python3', ['-c', TCP_CLIENT, '::1', String(port), '4321']);
    await waitForLine(client, /^done/);
    const connect = await one(client.pid!, 'connect', 'v6 connect');
    assert.equal(connect.family, 6);
    assert.equal(connect.saddr, '::1');
    assert.equal(connect.daddr, '::1');
    assert.equal(connect.dport, port);
    const accept = await one(server.pid!, 'accept', 'v6 accept');
    assert.equal(accept.family, 6);
    assert.equal(accept.dport, connect.sport);
    const close = await one(client.pid!, 'close', 'v6 close', (e) => e.socketCookie === connect.socketCookie);
    assert.equal(close.bytesSent, 4321);
    assert.equal(close.family, 6);
    await exited(server);
  });

  test('UDP: first send/receive per socket and peer, periodic counts, totals at close', async () => {
    const port = 20000 + (process.pid % 1000);
    const N = 3;
    const M = 2;
    const server = veth.spawnIn(veth.nsA, 'python3', ['-c', UDP_SERVER, veth.addrA, String(port), String(N + M)]);
    await waitForLine(server, /^ready/);
    const client = veth.spawnIn(veth.nsB, 'python3', ['-c', UDP_CLIENT, veth.addrA, String(port), String(N), String(M)]);
    const uport = Number((await waitForLine(client, /^unconnected/)).split(' ')[1]);
    const cport = Number((await waitForLine(client, /^connected/)).split(' ')[1]);
    const cpid = client.pid!;
    const spid = server.pid!;

    // Unconnected socket: the first datagram each way is an event of its own.
    const firstSend = await one(cpid, 'send', 'first UDP send', (e) => e.sport === uport);
    assert.equal(firstSend.protocol, 'udp');
    assert.equal(firstSend.direction, 'egress');
    assert.equal(firstSend.daddr, veth.addrA);
    assert.equal(firstSend.dport, port);
    assert.equal(firstSend.packets, 1);
    assert.equal(firstSend.netns, veth.inodeB);
    const firstRecv = await one(cpid, 'receive', 'first UDP receive', (e) => e.sport === uport);
    assert.equal(firstRecv.daddr, veth.addrA, 'the peer is the server');
    assert.equal(firstRecv.packets, 1);
    const srvRecv = await one(spid, 'receive', 'server receive', (e) => e.dport === uport);
    assert.equal(srvRecv.saddr, veth.addrA);
    assert.equal(srvRecv.sport, port);
    assert.equal(srvRecv.daddr, veth.addrB);
    assert.equal(srvRecv.netns, veth.inodeA);
    assert.equal(srvRecv.process.pid, spid);

    // The sweeper reports the rest: counts of the send flow add up to N.
    const sendCount = (): number => byPid(cpid, 'send').filter((e) => e.sport === uport).reduce((a, e) => a + (e.packets ?? 0), 0);
    await waitFor(() => (sendCount() === N ? true : undefined), 5000, `UDP send counts adding up to ${N} (have ${sendCount()})`);

    // Connected socket: connect event, then counts with bytes (sock:sock_send_length, 6.3+).
    const uconnect = await one(cpid, 'connect', 'UDP connect', (e) => e.protocol === 'udp');
    assert.equal(uconnect.ret, 0);
    assert.equal(uconnect.sport, cport);
    assert.equal(uconnect.daddr, veth.addrA);
    const hasLen = rig.net.status().hooks.some((h) => h.includes('sock_send_length'));
    if (hasLen) {
      const s = await one(cpid, 'send', 'connected UDP send', (e) => e.sport === cport);
      assert.equal(s.bytesSent, 100);
    }

    // Totals when the sockets go.
    await waitForLine(client, /^closed/);
    const uclose = await one(cpid, 'close', 'UDP close (unconnected)', (e) => e.protocol === 'udp' && e.sport === uport);
    assert.equal(uclose.packets, 2 * N);
    // Without sock_*_length (before 6.3) nothing is counted on connected sockets, and a
    // UDP socket with nothing counted has no close event.
    if (hasLen) {
      const cclose = await one(cpid, 'close', 'UDP close (connected)', (e) => e.protocol === 'udp' && e.sport === cport);
      assert.equal(cclose.packets, 2 * M);
      assert.equal(cclose.bytesSent, 100 * M);
    }
    await exited(server);
  });

  test("the agent's own connections are not reported", async () => {
    const server = spawnCollected('python3', ['-c', TCP_SERVER, '127.0.0.1', '0']);
    const port = Number((await waitForLine(server, /^ready/)).split(' ')[1]);
    const net = await import('node:net');
    await new Promise<void>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => c.end('x'.repeat(10), () => resolve()));
      c.on('error', reject);
    });
    await waitForLine(server, /^received/);
    await one(server.pid!, 'accept', 'accept of the agent connection');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(rig.netEvents().filter((e) => e.process.pid === process.pid).length, 0);
  });

  test('counters', () => {
    const c = rig.net.counters();
    assert.ok(c.net_kernel_records_emitted > 0);
    assert.equal(c.net_kernel_ring_drops, 0);
    assert.equal(c.net_decode_errors, 0);
    assert.ok(c.net_socket_map_capacity > 0);
    assert.ok(c.net_events_published > 0);
  });
});

// Opt-in measurement for the notes: TETRAHUB_NET_STORM=<connections> (e.g. 20000).
// A C client does connect()+close() to a local server thread, N times, without
// and with the network sensor attached, alternating; prints both rates.
const STORM = Number(process.env.TETRAHUB_NET_STORM ?? 0);
const STORM_C = `
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static void *serve(void *a) { int l = *(int *)a; for (;;) { int c = accept(l, 0, 0); if (c >= 0) close(c); } return 0; }
int main(int argc, char **argv) {
  int port = atoi(argv[1]), n = atoi(argv[2]), one = 1;
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  int l = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (void *)&sa, sizeof sa) || listen(l, 4096)) { perror("listen"); return 1; }
  pthread_t t; pthread_create(&t, 0, serve, &l);
  struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < n; i++) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (void *)&sa, sizeof sa)) { perror("connect"); return 1; }
    close(s);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double secs = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
  printf("%d %.0f\\n", n, n / secs);
  return 0;
}
`;

describe(`connect storm on loopback (TETRAHUB_NET_STORM=${STORM || 'unset'})`, { skip: skip ?? (STORM > 0 ? undefined : 'set TETRAHUB_NET_STORM=<connections> to measure') }, () => {
  test('rates without and with the network sensor', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { execFileSync } = await import('node:child_process');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thnet-storm-'));
    try {
      fs.writeFileSync(path.join(dir, 'storm.c'), STORM_C);
      execFileSync('cc', ['-O2', '-pthread', '-o', path.join(dir, 'storm'), path.join(dir, 'storm.c')]);
      let port = 24000 + (process.pid % 1000) * 8; // below the ephemeral range
      const run = (): number => Number(execFileSync(path.join(dir, 'storm'), [String(port++), String(STORM)], { encoding: 'utf8' }).trim().split(' ')[1]);
      const off: number[] = [];
      const hooks: number[] = [];
      const on: number[] = [];
      let events = 0;
      let counters: Record<string, number> = {};
      for (let round = 0; round < 5; round++) {
        off.push(run());
        const rig = await startNetRig();
        try {
          on.push(run());
          await new Promise((r) => setTimeout(r, 2000));
          events = rig.netEvents().length;
          counters = rig.net.counters();
          // Same hooks, records switched off in th_net_cfg: the in-kernel cost alone.
          rig.kernel.map('th_net_cfg').update(Buffer.alloc(4), encodeCfg(0, [53]));
          hooks.push(run());
        } finally {
          await rig.stop();
        }
      }
      const med = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
      const ratio = (a: number[]): string => (med(a) / med(off)).toFixed(3);
      console.log(
        `# connect storm, ${STORM} connect+close per run, 5 runs each, medians: ` +
          `without sensor ${med(off)}/s; hooks only (records off) ${med(hooks)}/s, ratio ${ratio(hooks)}; ` +
          `full sensor (records → events) ${med(on)}/s, ratio ${ratio(on)}. ` +
          `Runs: without ${off.join(', ')}; hooks only ${hooks.join(', ')}; full ${on.join(', ')}. ` +
          `Last full run: ${events} net events, kernel ${counters.net_kernel_records_emitted} records emitted, ${counters.net_kernel_ring_drops} dropped (ring full)`,
      );
      assert.ok(med(on) > 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
