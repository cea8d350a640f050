// The DNS sensor: queries and responses over UDP and TCP to/from the DNS ports,
// captured in the kernel (cgroup_skb on the cgroup-v2 root, see
// bpf/net.bpf.c), parsed here, matched query↔response for latency, published
// as DnsEvents of the querying process, and fed to the IP → names cache.
import type { SensorStatus } from '../../agent/status';
import type { Logger } from '../../agent/log';
import type { EventBus } from '../../bus/bus';
import type { AgentConfig } from '../../config/config';
import type { DnsNameCache } from '../../enrich/dns/cache';
import type { ProcessCache } from '../../enrich/process/cache';
import type { BootClock } from '../../enrich/process/clock';
import type { NativeBinding } from '../../kernel/types';
import type { BusItem, DnsEvent } from '../../model/event';
import { NetConfigError, NetKernel, validateDnsPorts, type NetKernelOptions } from '../net/kernel';
import type { NetKernelRecord } from '../net/decode';
import { ProcessResolver } from '../net/process';
import type { EndpointsOf } from '../net/sensor';
import type { Sensor } from '../sensor';
import type { DnsPacketRecord } from './decode';
import { DNS_TYPE, dnsTypeName, messageOf, parseDnsMessage } from './parse';

export interface DnsSensorDeps {
  native: NativeBinding;
  bus: EventBus;
  cache: ProcessCache;
  clock: BootClock;
  config: AgentConfig;
  log: Logger;
  objectPath?: string;
  /** Shared with NetSensor (recommended): one ring keeps answers ahead of the connects using them. */
  kernel?: NetKernel;
  /** Filled from answers (A/AAAA); NetSensor reads it. */
  dnsNames?: DnsNameCache;
  /** Cilium identities of both ends (CiliumIdentity fits); default: the shared kernel's. */
  identity?: EndpointsOf;
}

export interface DnsSensorOptions extends NetKernelOptions {
  /** Server ports whose traffic is DNS (1 to 4); default [53]. */
  ports?: number[];
  /** Queries waiting for their response, at most; default 4096 (oldest dropped, counted). */
  pendingQueries?: number;
  /** A query without response for this long is forgotten, ms; default 30000. */
  queryTimeoutMs?: number;
}

export function validateDnsSensorOptions(o: DnsSensorOptions): void {
  if (o.ports !== undefined) validateDnsPorts(o.ports);
  if (o.pendingQueries !== undefined && (!Number.isInteger(o.pendingQueries) || o.pendingQueries < 1 || o.pendingQueries > 1_000_000)) {
    throw new NetConfigError(`pendingQueries must be an integer in [1, 1000000], got ${o.pendingQueries}`);
  }
  if (o.queryTimeoutMs !== undefined && (!Number.isInteger(o.queryTimeoutMs) || o.queryTimeoutMs < 10 || o.queryTimeoutMs > 3_600_000)) {
    throw new NetConfigError(`queryTimeoutMs must be an integer in [10, 3600000], got ${o.queryTimeoutMs}`);
  }
}

interface Pending {
  ktime: bigint;
}

export class DnsSensor implements Sensor {
  readonly name = 'dns';
  private readonly kernel: NetKernel;
  private readonly procs: ProcessResolver;
  private readonly identity?: EndpointsOf;
  private readonly ports: number[];
  private readonly maxPending: number;
  private readonly timeoutNs: bigint;
  private state: SensorStatus = { name: 'dns', state: 'off', hooks: [] };
  /** Queries by socket/server/id, oldest first (Map order). */
  private pending = new Map<string, Pending>();
  private events: DnsEvent[] = [];
  private c = {
    packets: 0,
    queries: 0,
    responses: 0,
    malformed: 0,
    truncatedCaptures: 0,
    tcpSegmentsSkipped: 0,
    unmatchedResponses: 0,
    pendingEvicted: 0,
    pendingExpired: 0,
    noProcess: 0,
  };

  constructor(
    private readonly d: DnsSensorDeps,
    opts: DnsSensorOptions = {},
  ) {
    validateDnsSensorOptions(opts);
    this.ports = [...(opts.ports ?? [53])];
    this.maxPending = opts.pendingQueries ?? 4096;
    this.timeoutNs = BigInt(opts.queryTimeoutMs ?? 30_000) * 1_000_000n;
    this.procs = new ProcessResolver(d.cache, d.clock);
    this.kernel = d.kernel ?? new NetKernel({ native: d.native, bus: d.bus, clock: d.clock, config: d.config, log: d.log, objectPath: d.objectPath }, opts);
    this.identity = d.identity ?? this.kernel.identity;
  }

  async start(): Promise<void> {
    try {
      await this.kernel.acquire('dns', (recs) => this.onRecords(recs), this.ports);
    } catch (e) {
      this.state = { name: 'dns', state: 'failed', hooks: [], note: (e as Error).message };
      throw e;
    }
    const notes = this.kernel.notes('dns');
    this.state = {
      name: 'dns',
      state: 'running',
      hooks: this.kernel.hooks('dns'),
      note: [`ports ${this.ports.join(', ')} over UDP and TCP`, ...notes].join('; '),
    };
  }

  async stop(): Promise<void> {
    await this.kernel.release('dns');
    this.pending.clear();
    if (this.state.state === 'running') this.state = { ...this.state, state: 'off', note: 'stopped' };
  }

  status(): SensorStatus {
    return this.state;
  }

  counters(): Record<string, number> {
    const k = this.kernel.stats(true);
    const cs = this.d.dnsNames?.stats();
    return {
      dns_kernel_records_emitted: k?.emitted.dns ?? 0,
      dns_kernel_ring_drops: k?.dropped.dns ?? 0,
      dns_kernel_payloads_truncated: k?.dnsTruncated ?? 0,
      dns_packets: this.c.packets,
      dns_queries: this.c.queries,
      dns_responses: this.c.responses,
      dns_malformed: this.c.malformed,
      dns_tcp_segments_skipped: this.c.tcpSegmentsSkipped,
      dns_unmatched_responses: this.c.unmatchedResponses,
      dns_pending_queries: this.pending.size,
      dns_pending_evicted: this.c.pendingEvicted,
      dns_pending_expired: this.c.pendingExpired,
      dns_events_without_process: this.c.noProcess,
      dns_cache_size: cs?.size ?? 0,
      dns_cache_capacity: cs?.capacity ?? 0,
      dns_cache_evictions: cs?.evictions ?? 0,
      dns_cache_expired: cs?.expired ?? 0,
      dns_cache_hits: cs?.hits ?? 0,
      dns_cache_misses: cs?.misses ?? 0,
    };
  }

  private onRecords(recs: readonly NetKernelRecord[]): void {
    const out = this.events;
    out.length = 0;
    for (const r of recs) {
      if (r.type !== 'dns') continue;
      const ev = this.onPacket(r);
      if (ev) out.push(ev);
    }
    if (out.length) this.d.bus.publish(out.slice() as unknown as BusItem[]);
  }

  /** One captured packet → its DnsEvent (null when it holds no message start). */
  onPacket(r: DnsPacketRecord): DnsEvent | null {
    this.c.packets++;
    this.expire(r.ktime);
    const msg = messageOf(r.payload, r.protocol);
    if (!msg) {
      this.c.tcpSegmentsSkipped++; // a TCP segment that does not start a message
      return null;
    }
    const m = parseDnsMessage(msg);
    let malformed = m.malformed;
    if (malformed && (r.truncated || msg.length < r.origLen - (r.protocol === 'tcp' ? 2 : 0))) {
      malformed += ` (captured ${r.payload.length} of ${r.origLen} bytes)`;
    }
    if (malformed) this.c.malformed++;
    if (r.truncated) this.c.truncatedCaptures++;

    // Egress: we are the client; ingress: the answer comes back to the client.
    const client = r.egress ? { addr: r.saddr, port: r.sport } : { addr: r.daddr, port: r.dport };
    const server = r.egress ? { addr: r.daddr, port: r.dport } : { addr: r.saddr, port: r.sport };
    const key = `${r.cookie}|${r.protocol}|${client.addr}|${client.port}|${server.addr}|${server.port}|${m.id}`;
    let latencyNs: number | undefined;
    if (!m.response) {
      this.c.queries++;
      this.pending.delete(key);
      this.pending.set(key, { ktime: r.ktime });
      if (this.pending.size > this.maxPending) {
        this.pending.delete(this.pending.keys().next().value as string);
        this.c.pendingEvicted++;
      }
    } else {
      this.c.responses++;
      const q = this.pending.get(key);
      if (q) {
        this.pending.delete(key);
        if (r.ktime >= q.ktime) latencyNs = Number(r.ktime - q.ktime);
      } else {
        this.c.unmatchedResponses++;
      }
    }

    const { clock, config, dnsNames } = this.d;
    const p = this.procs.resolve(r.noProc ? 0 : r.tgid, r.procKtime);
    if (p.unknown) this.c.noProcess++;
    const query = m.questions[0]?.name ?? '';
    const ev: DnsEvent = {
      kind: 'dns',
      seq: 0,
      time: clock.toWall(r.ktime),
      nodeName: config.nodeName,
      process: p.process,
      parent: p.parent,
      wire: new Map(),
      protocol: r.protocol,
      isResponse: m.response,
      id: m.id,
      query,
      qtypes: m.questions.map((q) => dnsTypeName(q.type)),
      rcode: m.rcode,
      answers: m.answers.map((a) => ({ name: a.name, type: dnsTypeName(a.type), ttl: a.ttl, data: a.data })),
      clientAddr: client.addr,
      clientPort: client.port,
      serverAddr: server.addr,
      serverPort: server.port,
    };
    if (latencyNs !== undefined) ev.latencyNs = latencyNs;
    if (malformed) ev.malformed = malformed;
    if (this.identity) {
      // DNS records carry no kernel lookup: the netns cache, the agent API and the rules decide (as for a UDP report without ids).
      const e = this.identity.resolve({ tgid: r.noProc ? 0 : r.tgid, family: r.family, saddr: client.addr, daddr: server.addr, netns: r.netns });
      ev.source = e.source;
      if (e.destination) ev.destination = e.destination;
    }

    if (dnsNames && m.response && m.rcode === 0) {
      for (const a of m.answers) {
        if ((a.type !== DNS_TYPE.A && a.type !== DNS_TYPE.AAAA) || !a.data) continue;
        // The name asked for (what the process knows the peer as), and the owner at the end of a CNAME chain.
        if (query) dnsNames.add(a.data, query, a.ttl);
        if (a.name !== query) dnsNames.add(a.data, a.name, a.ttl);
      }
    }
    return ev;
  }

  /** Forgets queries older than the timeout (Map order is arrival order). */
  private expire(now: bigint): void {
    for (const [k, q] of this.pending) {
      if (now - q.ktime <= this.timeoutNs) break;
      this.pending.delete(k);
      this.c.pendingExpired++;
    }
  }
}
