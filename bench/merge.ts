// `merge`: Cilium-shaped flows per second that the merge (src/api/hubble/
// upstream) takes in and enriches on one core: decode (protobufjs), uuid
// check, "reported" mark, release in time order, socket-table match and the
// Summary/extensions splice, handed to one subscriber (as the history ring
// takes them). Same run, same flows:
//   enrich     a table of N local sockets, half the flows match one (hit rate printed)
//   all hit    every flow matches
//   pass       the table empty: every flow passes through unchanged (baseline)
//   decode     protobufjs decode of the responses alone (floor)
// CPU time of this process, not wall time; variants interleaved, medians. No kernel needed: the flows are
// built like the STAND-IN Hubble server's, the sockets like our NetEvents.
import { EventBus } from '../src/bus/bus';
import { protos } from '../src/api/hubble/proto';
import { MergedFeed } from '../src/api/hubble/upstream/merge';
import { SocketTable } from '../src/api/hubble/upstream/sockets';
import type { NetEvent, ProcessInfo } from '../src/model/event';
import { traceFlow } from '../integration/standins/hubble-server';
import { type BenchResult, cpuS, int, median, nowS, pct, rate, rows, section } from './common';

const NAME = 'merge';

function proc(pid: number): ProcessInfo {
  return {
    execId: Buffer.from(`bench-node:${pid * 1000}:${pid}`).toString('base64'),
    parentExecId: Buffer.from('bench-node:1000:1').toString('base64'),
    pid,
    tid: pid,
    ktime: BigInt(pid * 1000),
    creds: { uid: 0, gid: 0, euid: 0, egid: 0 },
    auid: 4294967295,
    cwd: '/app',
    binary: '/usr/bin/curl',
    args: ['-s', 'http://db:5432'],
    arguments: '-s http://db:5432',
    flags: 'execve clone',
    startTime: { sec: 1_700_000_000, nsec: 0 },
    cgroupId: 4242n,
    docker: '',
    refcnt: 1,
  };
}

function ip(i: number, net: number): string {
  return `10.${net}.${(i >> 8) & 255}.${i & 255}`;
}

/** N connect events of N processes: local 10.1.x.y:(20000+i%40000) → 10.2.x.y:5432. */
function sockets(n: number, timeSec: number): NetEvent[] {
  const out: NetEvent[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      kind: 'net',
      seq: 0,
      time: { sec: timeSec, nsec: 0 },
      nodeName: 'bench-node',
      process: proc(10_000 + i),
      wire: new Map(),
      op: 'connect',
      protocol: 'tcp',
      family: 4,
      saddr: ip(i, 1),
      sport: 20_000 + (i % 40_000),
      daddr: ip(i, 2),
      dport: 5432,
      netns: 4026531840,
      socketCookie: BigInt(1_000_000 + i),
      direction: 'egress',
      ret: 0,
    });
  }
  return out;
}

/** `count` responses; with hitRate 0.5 the even ones match socket (k/2 mod n), with 1 all do. */
function flows(count: number, n: number, hitRate: number, timeSec: number): Buffer[] {
  const P = protos();
  const out: Buffer[] = [];
  for (let k = 0; k < count; k++) {
    const hit = hitRate >= 1 || k % 2 === 0; // 100 % or 50 %
    const i = (k >> 1) % n;
    const reply = k % 4 === 2; // some replies: the reverse orientation
    const src = hit ? { ip: ip(i, 1), port: 20_000 + (i % 40_000) } : { ip: ip(i, 3), port: 30_000 + (k % 30_000) };
    const dst = hit ? { ip: ip(i, 2), port: 5432 } : { ip: ip(i, 4), port: 443 };
    const [s, d] = reply ? [dst, src] : [src, dst];
    const f = traceFlow({
      time: new Date(timeSec * 1000 + k),
      nodeName: 'kind-worker',
      source: { ip: s.ip, id: 1234, identity: 54321, namespace: 'shop', podName: 'web-1', labels: ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop'] },
      destination: { ip: d.ip, identity: 60000, namespace: 'shop', podName: 'db-0', labels: ['k8s:app=db', 'k8s:io.kubernetes.pod.namespace=shop'] },
      l4: { protocol: 'TCP', sourcePort: s.port, destinationPort: d.port, flags: reply ? ['ACK'] : ['SYN'] },
      obsPoint: 'to-stack',
      direction: 'EGRESS',
      isReply: reply,
    });
    const t = f.time as { seconds: number; nanos: number };
    out.push(Buffer.from(P.GetFlowsResponse.encode(P.GetFlowsResponse.fromObject({ flow: f, node_name: 'kind-worker', time: t })).finish()));
  }
  return out;
}

interface Pass {
  flowsPerSec: number;
  enriched: number;
  unmatched: number;
  hitRate: number;
  bytesOut: number;
}

/** Runs the responses through a MergedFeed `rounds` times; CPU time of the last rounds. */
function runMerge(raws: Buffer[], table: SocketTable, rounds: number): Pass {
  const bus = new EventBus();
  let bytesOut = 0;
  const feed = new MergedFeed({ bus, table, nodeName: 'bench-node', windowMs: 0, maxHeld: 1 << 20 });
  const sub = feed.subscribe({
    name: 'bench-history',
    limit: 1 << 20,
    onReady: () => {
      for (const it of sub.take()) if (it.kind === 'cilium') bytesOut += it.bytes.length;
    },
  });
  const BATCH = 1024;
  const pass = (): void => {
    for (let i = 0; i < raws.length; i += BATCH) {
      feed.ingest(raws.slice(i, i + BATCH));
      feed.pump();
    }
  };
  // Warm-up (JIT, per-socket enrichment caches), then measured rounds. Each round
  // decodes fresh items; uuids repeat across rounds, so the replay check is reset.
  let c0 = 0;
  let before = { ...feed.c };
  for (let r = 0; r < rounds + 1; r++) {
    feed.forgetSeenIds();
    if (r === 1) {
      c0 = cpuS();
      before = { ...feed.c };
      bytesOut = 0;
    }
    pass();
  }
  const cpu = cpuS() - c0;
  const enriched = feed.c.enriched - before.enriched;
  const unmatched = feed.c.unmatched - before.unmatched;
  sub.close();
  feed.close();
  const n = raws.length * rounds;
  return { flowsPerSec: n / cpu, enriched, unmatched, hitRate: enriched / Math.max(1, enriched + unmatched), bytesOut };
}

function runDecode(raws: Buffer[], rounds: number): number {
  const P = protos();
  for (const r of raws) P.GetFlowsResponse.decode(r);
  const c0 = cpuS();
  for (let k = 0; k < rounds; k++) for (const r of raws) P.GetFlowsResponse.decode(r);
  return (raws.length * rounds) / (cpuS() - c0);
}

export async function run(nSockets = 10_000, nFlows = 50_000, rounds = 5): Promise<BenchResult> {
  section(`merge: Cilium flows/s decoded, ordered and enriched on one core (table of ${int(nSockets)} sockets)`);
  const t0 = nowS();
  const timeSec = Math.floor(Date.now() / 1000);
  const table = new SocketTable({ capacity: nSockets * 2 });
  for (const ev of sockets(nSockets, timeSec)) table.add(ev);
  const half = flows(nFlows, nSockets, 0.5, timeSec);
  const all = flows(nFlows, nSockets, 1, timeSec);

  // Variants interleaved, `rounds` times each, medians: the machine is shared.
  const runs: Record<'enrich' | 'allHit' | 'pass', Pass[]> = { enrich: [], allHit: [], pass: [] };
  const decodes: number[] = [];
  const empty = new SocketTable();
  for (let r = 0; r < rounds; r++) {
    runs.enrich.push(runMerge(half, table, 1));
    runs.allHit.push(runMerge(all, table, 1));
    runs.pass.push(runMerge(half, empty, 1));
    decodes.push(runDecode(half, 1));
  }
  const med = (xs: Pass[]): Pass => ({ ...xs[0], flowsPerSec: median(xs.map((x) => x.flowsPerSec)) });
  const enrich = med(runs.enrich);
  const allHit = med(runs.allHit);
  const pass = med(runs.pass);
  const decode = median(decodes);
  // Per enriched flow, from the 100 %-hit and pass-through runs (same flows shape).
  const cost = (1 / allHit.flowsPerSec - 1 / pass.flowsPerSec) * 1e6;

  rows([
    ['enrich (50 % hit)', `${rate(enrich.flowsPerSec, ' flows/s')}  hit rate ${pct(enrich.hitRate)} (${int(enrich.enriched)} enriched, ${int(enrich.unmatched)} passed through)`],
    ['enrich (100 % hit)', `${rate(allHit.flowsPerSec, ' flows/s')}  hit rate ${pct(allHit.hitRate)}`],
    ['pass-through', `${rate(pass.flowsPerSec, ' flows/s')}  (table empty: every flow unmatched, bytes unchanged)`],
    ['decode only', `${rate(decode, ' flows/s')}  (protobufjs GetFlowsResponse.decode alone)`],
    ['cost per enriched flow', `≈ ${cost.toFixed(1)} µs over pass-through`],
    ['response size', `${(pass.bytesOut / half.length).toFixed(0)} B unmatched → ${((enrich.bytesOut - pass.bytesOut) / Math.max(1, enrich.enriched)).toFixed(0)} B more per enriched flow`],
  ]);
  return {
    name: NAME,
    status: 'ok',
    value: `${rate(enrich.flowsPerSec, ' flows/s')} at ${pct(enrich.hitRate, 0)} hit`,
    baseline: `pass-through ${rate(pass.flowsPerSec, ' flows/s')}`,
    ratio: `${pct(enrich.flowsPerSec / pass.flowsPerSec, 0)} of pass-through`,
    seconds: nowS() - t0,
    figures: { nSockets, nFlows, rounds, enrich, allHit, pass, decodeOnlyPerSec: decode, enrichCostUs: cost, runs },
  };
}
