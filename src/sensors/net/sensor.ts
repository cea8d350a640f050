// The network sensor: TCP connect/accept/listen/close (5-tuple, netns, cookie,
// bytes at close) and UDP first send/receive per (socket, peer) plus periodic
// counts, as NetEvents on the bus. Kernel side: src/sensors/net/kernel.ts.
import type { SensorStatus } from '../../agent/status';
import type { Logger } from '../../agent/log';
import type { EventBus } from '../../bus/bus';
import type { AgentConfig } from '../../config/config';
import type { DnsNameCache } from '../../enrich/dns/cache';
import type { ProcessCache } from '../../enrich/process/cache';
import type { BootClock } from '../../enrich/process/clock';
import type { NativeBinding } from '../../kernel/types';
import type { BusItem, EndpointInfo, NetEvent, NetOp } from '../../model/event';
import type { Sensor } from '../sensor';
import { decodeUdpFlow, decodeUdpKey, encodeUdpKey, tcpStateName, type NetKernelRecord, type NetRecord } from './decode';
import type { EndpointQuery } from './endpoint';
import type { CiliumIdentity } from './identity';
import { NetConfigError, NetKernel, type NetKernelOptions } from './kernel';
import { ProcessResolver } from './process';

export interface NetSensorDeps {
  native: NativeBinding;
  bus: EventBus;
  cache: ProcessCache;
  clock: BootClock;
  config: AgentConfig;
  log: Logger;
  /** Compiled object; default bpf/.output/net.bpf.o in the package. */
  objectPath?: string;
  /** Shared with DnsSensor (recommended); one is created from the options otherwise. */
  kernel?: NetKernel;
  /** Fills NetEvent.destinationNames; share it with DnsSensor. */
  dnsNames?: DnsNameCache;
  /**
   * Fills NetEvent.source / destination (startCiliumIdentity). Default: the
   * shared kernel's. Without one, events carry no endpoints.
   */
  identity?: CiliumIdentity;
}

export interface NetSensorOptions extends NetKernelOptions {
  /** How often UDP flow counts are reported, ms; default 10000. */
  udpReportMs?: number;
  /** A UDP flow without datagrams for this long is forgotten (its next one is "first" again), ms; default 60000. */
  udpIdleMs?: number;
}

export function validateNetSensorOptions(o: NetSensorOptions): void {
  for (const k of ['udpReportMs', 'udpIdleMs'] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 100 || v > 86_400_000)) {
      throw new NetConfigError(`${k} must be an integer number of ms in [100, 86400000], got ${v}`);
    }
  }
}

const PROTO: Record<number, 'tcp' | 'udp'> = { 6: 'tcp', 17: 'udp' };

/** Resolves a record's ends to Cilium endpoints (CiliumIdentity fits); synchronous, caches only. */
export interface EndpointsOf {
  resolve(q: EndpointQuery): { source: EndpointInfo; destination?: EndpointInfo };
}

/**
 * Builds the NetEvent of one kernel record (process resolved by the caller).
 * With `endpoints`, source (local end) and destination (remote end) carry
 * the Cilium identities the kernel looked up, with cached labels.
 */
export function toNetEvent(
  r: NetRecord,
  base: Pick<NetEvent, 'time' | 'nodeName' | 'process' | 'parent'>,
  names?: DnsNameCache,
  endpoints?: EndpointsOf,
): NetEvent {
  let op: NetOp;
  let direction: NetEvent['direction'];
  switch (r.type) {
    case 'connect':
      op = 'connect';
      direction = 'egress';
      break;
    case 'accept':
    case 'listen':
      op = r.type;
      direction = 'ingress';
      break;
    case 'close':
      op = 'close';
      direction = r.ingress ? 'ingress' : 'egress';
      break;
    case 'udp':
      op = r.ingress ? 'receive' : 'send';
      direction = r.ingress ? 'ingress' : 'egress';
      break;
  }
  const protocol = PROTO[r.protocol] ?? 'tcp';
  const ev: NetEvent = {
    kind: 'net',
    seq: 0,
    time: base.time,
    nodeName: base.nodeName,
    process: base.process,
    parent: base.parent,
    wire: new Map(),
    op,
    protocol,
    family: r.family,
    saddr: r.saddr,
    sport: r.sport,
    daddr: r.daddr,
    dport: r.dport,
    netns: r.netns,
    socketCookie: r.cookie,
    direction,
    ret: r.ret,
  };
  if (protocol === 'tcp' && r.state) ev.state = tcpStateName(r.state);
  if (r.bytesSent !== undefined) ev.bytesSent = r.bytesSent;
  if (r.bytesReceived !== undefined) ev.bytesReceived = r.bytesReceived;
  if (protocol === 'udp' && r.packets) ev.packets = r.packets;
  if (names && r.dport !== 0 && r.daddr !== '0.0.0.0' && r.daddr !== '::') {
    const n = names.lookup(r.daddr);
    if (n) ev.destinationNames = n;
  }
  if (endpoints) {
    const e = endpoints.resolve(r);
    ev.source = e.source;
    if (e.destination) ev.destination = e.destination;
  }
  return ev;
}

/** How long a new UDP flow's FIRST record may take to reach user space. */
const FIRST_RECORD_GRACE_NS = 2_000_000_000n;

interface FlowSeen {
  packets: number;
  bytes: number;
  /** Kernel identities of the flow's FIRST record (the sweep has no kernel lookup of its own). */
  ids?: Pick<NetRecord, 'sIdentity' | 'dIdentity' | 'sEndpoint' | 'dEndpoint' | 'idFlags'>;
}

export class NetSensor implements Sensor {
  readonly name = 'net';
  private readonly kernel: NetKernel;
  private readonly identity?: CiliumIdentity;
  private readonly procs: ProcessResolver;
  private readonly opts: Required<Pick<NetSensorOptions, 'udpReportMs' | 'udpIdleMs'>>;
  private state: SensorStatus = { name: 'net', state: 'off', hooks: [] };
  private udpTimer?: NodeJS.Timeout;
  /** Packets/bytes of each kernel UDP flow already reported, by key bytes (hex). */
  private flowSeen = new Map<string, FlowSeen>();
  private events: NetEvent[] = [];
  private c = { published: 0, noProcess: 0, udpReports: 0, udpFlowsForgotten: 0, udpSweepErrors: 0, udpFlows: 0 };

  constructor(
    private readonly d: NetSensorDeps,
    opts: NetSensorOptions = {},
  ) {
    validateNetSensorOptions(opts);
    this.opts = { udpReportMs: opts.udpReportMs ?? 10_000, udpIdleMs: opts.udpIdleMs ?? 60_000 };
    this.procs = new ProcessResolver(d.cache, d.clock);
    this.kernel = d.kernel ?? new NetKernel({ native: d.native, bus: d.bus, clock: d.clock, config: d.config, log: d.log, objectPath: d.objectPath, identity: d.identity }, opts);
    this.identity = d.identity ?? this.kernel.identity;
    if (d.identity && d.kernel && d.kernel.identity !== d.identity) {
      // The kernel's lookups follow its own source; records would be resolved against another one.
      throw new NetConfigError('NetSensor: identity differs from the shared kernel\'s; give it to the NetKernel only');
    }
  }

  async start(): Promise<void> {
    try {
      await this.kernel.acquire('net', (recs) => this.onRecords(recs));
    } catch (e) {
      this.state = { name: 'net', state: 'failed', hooks: [], note: (e as Error).message };
      throw e;
    }
    this.udpTimer = setInterval(() => this.sweepUdp(), this.opts.udpReportMs);
    this.udpTimer.unref();
    const notes = this.kernel.notes('net');
    this.state = {
      name: 'net',
      state: notes.length ? 'fallback' : 'running',
      hooks: this.kernel.hooks('net'),
      note: [
        'no kprobes used: cgroup socket hooks + sock:inet_sock_set_state + syscall tracepoints',
        ...notes,
      ].join('; '),
    };
  }

  async stop(): Promise<void> {
    if (this.udpTimer) clearInterval(this.udpTimer);
    this.udpTimer = undefined;
    if (this.kernel.loaded) {
      try {
        this.sweepUdp(); // report what is pending before the maps go
      } catch {
        /* best effort */
      }
    }
    await this.kernel.release('net');
    this.flowSeen.clear();
    if (this.state.state === 'running' || this.state.state === 'fallback') this.state = { ...this.state, state: 'off', note: 'stopped' };
  }

  status(): SensorStatus {
    const st = this.state;
    if (!this.identity || (st.state !== 'running' && st.state !== 'fallback')) return st;
    // Cilium comes and goes while we run: describe it now, not as it was at start.
    return { ...st, note: [st.note, this.identity.describe()].filter(Boolean).join('; ') };
  }

  counters(): Record<string, number> {
    const k = this.kernel.stats(true);
    const ring = this.kernel.ringStats();
    const size = this.kernel.socketMapSize();
    const sum = (o: Record<string, number> | undefined, skip: string): number =>
      Object.entries(o ?? {}).reduce((a, [key, v]) => (key === skip ? a : a + v), 0);
    return {
      net_kernel_records_emitted: sum(k?.emitted, 'dns'),
      net_kernel_ring_drops: sum(k?.dropped, 'dns'),
      net_ring_records_consumed: ring.records,
      net_decode_errors: this.kernel.decodeErrorTotal(),
      net_events_published: this.c.published,
      net_events_without_process: this.c.noProcess,
      net_socket_map_size: size,
      net_socket_map_capacity: this.kernel.socketMapCapacity,
      // LRU evictions are not counted by the kernel: inserts that neither were deleted nor remain.
      net_socket_map_evictions_estimate: Math.max(0, (k?.sockInserts ?? 0) - (k?.sockDeletes ?? 0) - size),
      net_socket_map_update_errors: k?.sockUpdateErr ?? 0,
      net_tcp_close_untracked: k?.closeUntracked ?? 0,
      net_udp_flows: this.c.udpFlows,
      net_udp_flow_inserts: k?.udpFlowInserts ?? 0,
      net_udp_flow_insert_errors: k?.udpFlowErr ?? 0,
      net_udp_count_reports: this.c.udpReports,
      net_udp_flows_forgotten: this.c.udpFlowsForgotten,
      net_udp_sweep_errors: this.c.udpSweepErrors,
      ...this.identity?.counters(),
    };
  }

  private onRecords(recs: readonly NetKernelRecord[]): void {
    const { clock, config, dnsNames } = this.d;
    const out = this.events;
    out.length = 0;
    for (const r of recs) {
      if (r.type === 'dns') continue;
      const p = this.procs.resolve(r.noProc ? 0 : r.tgid, r.procKtime);
      if (p.unknown) this.c.noProcess++;
      const ev = toNetEvent(r, { time: clock.toWall(r.ktime), nodeName: config.nodeName, process: p.process, parent: p.parent }, dnsNames, this.identity);
      if (r.type === 'udp' && r.first) {
        // The kernel reported this flow's first datagram: the sweeper counts from there.
        const key = encodeUdpKey(r.cookie, r.familyRaw, r.daddrRaw ?? Buffer.alloc(16), r.dport, r.ingress ? 1 : 0).toString('hex');
        const ids = { sIdentity: r.sIdentity, dIdentity: r.dIdentity, sEndpoint: r.sEndpoint, dEndpoint: r.dEndpoint, idFlags: r.idFlags };
        this.flowSeen.set(key, { packets: 1, bytes: (r.ingress ? r.bytesReceived : r.bytesSent) ?? 0, ids });
      }
      out.push(ev);
    }
    this.publish(out);
  }

  private publish(evs: NetEvent[]): void {
    if (!evs.length) return;
    this.c.published += evs.length;
    // NetEvent is not in the bus union yet (the lead joins SensorEvent into RuntimeEvent).
    this.d.bus.publish(evs.slice() as unknown as BusItem[]);
  }

  /**
   * Periodic UDP counts: one event per flow with new datagrams since the last
   * report; flows idle longer than udpIdleMs are reported one last time and
   * removed from the kernel map.
   */
  private sweepUdp(): void {
    if (!this.kernel.loaded) return;
    const { clock, config, native } = this.d;
    let map;
    let keys: Buffer[];
    try {
      map = this.kernel.map('th_net_udp');
      keys = map.keys();
    } catch {
      this.c.udpSweepErrors++;
      return;
    }
    const nowBoot = native.clocks().boottime;
    const idleNs = BigInt(this.opts.udpIdleMs) * 1_000_000n;
    const live = new Set<string>();
    const known = [...this.flowSeen.keys()];
    const out: NetEvent[] = [];
    for (const kb of keys) {
      const hex = kb.toString('hex');
      const key = decodeUdpKey(kb);
      const vb = map.lookup(kb);
      const flow = vb && key ? decodeUdpFlow(vb, key.familyRaw) : null;
      if (!key || !flow) continue;
      let seen = this.flowSeen.get(hex);
      if (!seen) {
        // Its FIRST record may still be in the ring: leave young flows to it.
        if (nowBoot - flow.firstKtime < FIRST_RECORD_GRACE_NS) continue;
        seen = { packets: 0, bytes: 0 }; // that record was lost: report everything
      }
      const dp = flow.packets - seen.packets;
      const db = flow.bytes - seen.bytes;
      if (dp > 0) {
        const p = this.procs.resolve(flow.tgid, flow.procKtime);
        const ev: NetEvent = {
          kind: 'net',
          seq: 0,
          time: clock.toWall(flow.lastKtime),
          nodeName: config.nodeName,
          process: p.process,
          parent: p.parent,
          wire: new Map(),
          op: key.dir ? 'receive' : 'send',
          protocol: 'udp',
          family: key.family,
          saddr: key.family === 4 && flow.saddr === '::' ? '0.0.0.0' : flow.saddr,
          sport: flow.sport,
          daddr: key.peer,
          dport: key.port,
          netns: flow.netns,
          socketCookie: key.cookie,
          direction: key.dir ? 'ingress' : 'egress',
          ret: 0,
          packets: dp,
        };
        if (db > 0) {
          if (key.dir) ev.bytesReceived = db;
          else ev.bytesSent = db;
        }
        const names = this.d.dnsNames?.lookup(key.peer);
        if (names) ev.destinationNames = names;
        if (this.identity) {
          // FIRST record lost (no ids): rules and caches only.
          const e = this.identity.resolve({ tgid: flow.tgid, family: key.family, saddr: ev.saddr, daddr: key.peer, netns: flow.netns, ...seen.ids });
          ev.source = e.source;
          if (e.destination) ev.destination = e.destination;
        }
        out.push(ev);
        this.c.udpReports++;
      }
      if (nowBoot - flow.lastKtime > idleNs) {
        map.delete(kb);
        this.flowSeen.delete(hex);
        this.c.udpFlowsForgotten++;
        continue;
      }
      this.flowSeen.set(hex, { packets: flow.packets, bytes: flow.bytes, ids: seen.ids });
      live.add(hex);
    }
    // Flows the kernel evicted (LRU) or deleted are gone for good.
    for (const k of known) if (!live.has(k)) this.flowSeen.delete(k);
    this.c.udpFlows = live.size;
    this.publish(out);
  }
}
