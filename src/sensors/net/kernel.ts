// The kernel side shared by the network and DNS sensors: bpf/net.bpf.o, its
// ring, the socket-owner hooks both need, and the dispatch of decoded records.
//
// Both sensors use ONE object and ONE ring on purpose: a DNS answer is always
// in the ring before a connect() that used it, so the name is in the DNS cache
// by the time the connect is decoded. The first user loads and attaches the
// common hooks; each sensor attaches only its own extra hooks; the last one to
// leave closes everything. Give the same NetKernel to NetSensor and DnsSensor.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../../agent/log';
import type { EventBus } from '../../bus/bus';
import type { AgentConfig } from '../../config/config';
import type { BootClock } from '../../enrich/process/clock';
import { cgroup2Mount } from '../../enrich/process/procfs';
import type { BpfLink, BpfMap, BpfObject, NativeBinding, RingConsumer } from '../../kernel/types';
import type { LossNotice } from '../../model/event';
import type { DnsPacketRecord } from '../dns/decode';
import { repoRoot } from '../../kernel/native';
import type { CiliumIdentity } from './identity';
import {
  decodeBatch,
  decodeStats,
  encodeCfg,
  newDecodeErrors,
  totalDecodeErrors,
  type NetDecodeErrors,
  type NetKernelRecord,
  type NetKernelStats,
  type NetRecord,
} from './decode';
import {
  TH_NET_CFG_DNS,
  TH_NET_CFG_NET,
  TH_NET_DNS_PORTS,
  TH_NET_EVENTS_DEFAULT_BYTES,
  TH_NET_SOCKS_DEFAULT_ENTRIES,
  TH_NET_UDP_DEFAULT_ENTRIES,
} from './layout.gen';

export interface NetKernelDeps {
  native: NativeBinding;
  bus: EventBus;
  clock: BootClock;
  config: AgentConfig;
  log: Logger;
  /** Compiled object; default bpf/.output/net.bpf.o in the package. */
  objectPath?: string;
  /**
   * Cilium identities (startCiliumIdentity): the object's identity slots are
   * handed to it after every load; NetSensor resolves records through it.
   */
  identity?: CiliumIdentity;
}

export interface NetKernelOptions {
  /** cgroup-v2 directory the cgroup programs attach to; default: the cgroup2 mount (its root). */
  cgroupRoot?: string;
  /** th_net_socks entries (sockets whose owner is remembered); default 65536. */
  socketMapEntries?: number;
  /** th_net_udp entries (UDP socket/peer/direction flows); default 16384. */
  udpFlowEntries?: number;
  /** Ring buffer bytes: a power of two, at least 4096; default 8 MiB. */
  ringBytes?: number;
}

export class NetConfigError extends Error {}

/** Checks options; throws NetConfigError naming the option and what is wrong. */
export function validateNetKernelOptions(o: NetKernelOptions): void {
  const int = (name: string, v: number | undefined, min: number, max: number): void => {
    if (v === undefined) return;
    if (!Number.isInteger(v) || v < min || v > max) throw new NetConfigError(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  };
  int('socketMapEntries', o.socketMapEntries, 64, 1 << 24);
  int('udpFlowEntries', o.udpFlowEntries, 64, 1 << 24);
  int('ringBytes', o.ringBytes, 4096, 1 << 30);
  if (o.ringBytes !== undefined && (o.ringBytes & (o.ringBytes - 1)) !== 0) {
    throw new NetConfigError(`ringBytes must be a power of two, got ${o.ringBytes}`);
  }
  if (o.cgroupRoot !== undefined) {
    if (typeof o.cgroupRoot !== 'string' || !path.isAbsolute(o.cgroupRoot)) {
      throw new NetConfigError(`cgroupRoot must be an absolute path, got ${String(o.cgroupRoot)}`);
    }
  }
}

/** Checks DNS ports; throws NetConfigError. */
export function validateDnsPorts(ports: readonly number[]): void {
  if (!Array.isArray(ports) || ports.length < 1 || ports.length > TH_NET_DNS_PORTS) {
    throw new NetConfigError(`DNS ports: 1 to ${TH_NET_DNS_PORTS} ports, got ${JSON.stringify(ports)}`);
  }
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new NetConfigError(`DNS port must be an integer in [1, 65535], got ${p}`);
  }
  if (new Set(ports).size !== ports.length) throw new NetConfigError(`DNS ports repeat: ${ports.join(', ')}`);
}

/** Resolves and checks the cgroup-v2 directory to attach to. */
export function resolveCgroupRoot(opt?: string, procRoot = '/proc'): string {
  const mount = cgroup2Mount(procRoot);
  if (!mount) throw new NetConfigError('no cgroup2 filesystem mounted (needed for the cgroup socket hooks); mount one or set cgroupRoot');
  const dir = opt ?? mount;
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw new NetConfigError(`cgroupRoot ${dir}: ${(e as Error).message}`);
  }
  if (!st.isDirectory()) throw new NetConfigError(`cgroupRoot ${dir} is not a directory`);
  const rel = path.relative(mount, dir);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new NetConfigError(`cgroupRoot ${dir} is not inside the cgroup2 mount ${mount}`);
  }
  return dir;
}

export type NetKernelUser = 'net' | 'dns';

interface Hook {
  prog: string;
  cgroup: boolean;
  /** Set for hooks the sensor works without: what is lost when absent. */
  optional?: string;
}

/** Socket-owner tracking and the TCP/UDP records: needed by both sensors. */
const COMMON_HOOKS: Hook[] = [
  { prog: 'th_connect4', cgroup: true },
  { prog: 'th_connect6', cgroup: true },
  { prog: 'th_connect_exit', cgroup: false },
  { prog: 'th_state', cgroup: false },
  { prog: 'th_accept_exit', cgroup: false },
  { prog: 'th_accept4_exit', cgroup: false },
  { prog: 'th_sendmsg4', cgroup: true },
  { prog: 'th_sendmsg6', cgroup: true },
  { prog: 'th_recvmsg4', cgroup: true },
  { prog: 'th_recvmsg6', cgroup: true },
  { prog: 'th_release', cgroup: true },
  { prog: 'th_sockops', cgroup: true, optional: 'accepted sockets may report cookie 0' },
  { prog: 'th_post_bind4', cgroup: true, optional: 'listening IPv4 sockets may report cookie 0' },
  { prog: 'th_post_bind6', cgroup: true, optional: 'listening IPv6 sockets may report cookie 0' },
  { prog: 'th_send_len', cgroup: false, optional: 'connected UDP sockets: no per-peer send counts or bytes' },
  { prog: 'th_recv_len', cgroup: false, optional: 'connected UDP sockets: no per-peer receive counts or bytes' },
];

const DNS_HOOKS: Hook[] = [
  { prog: 'th_dns_egress', cgroup: true },
  { prog: 'th_dns_ingress', cgroup: true },
];

interface Attached {
  hook: string;
  link: BpfLink;
}

interface UserState {
  onRecords: (records: readonly NetKernelRecord[]) => void;
  links: Attached[];
  notes: string[];
}

const MAP_SIZE_REFRESH_MS = 5000;

export class NetKernel {
  private readonly opts: NetKernelOptions;
  private obj?: BpfObject;
  private consumer?: RingConsumer;
  private maps = new Map<string, BpfMap>();
  private common: Attached[] = [];
  private commonNotes: string[] = [];
  private users = new Map<NetKernelUser, UserState>();
  private dnsPorts: number[] = [53];
  private cgroupRoot = '';
  private statsTimer?: NodeJS.Timeout;
  private lastDrops = 0;
  private kstats?: NetKernelStats;
  private sockMapSize = { value: 0, at: 0 };
  private starting?: Promise<void>;
  readonly decodeErrors: NetDecodeErrors = newDecodeErrors();
  private recs: NetKernelRecord[] = [];
  private netRecs: NetRecord[] = [];
  private dnsRecs: DnsPacketRecord[] = [];

  constructor(
    private readonly d: NetKernelDeps,
    opts: NetKernelOptions = {},
  ) {
    validateNetKernelOptions(opts);
    this.opts = { ...opts };
  }

  get loaded(): boolean {
    return this.obj !== undefined;
  }

  /** The Cilium identity source the object's lookups follow, if any. */
  get identity(): CiliumIdentity | undefined {
    return this.d.identity;
  }

  get socketMapCapacity(): number {
    return this.opts.socketMapEntries ?? TH_NET_SOCKS_DEFAULT_ENTRIES;
  }

  get udpFlowCapacity(): number {
    return this.opts.udpFlowEntries ?? TH_NET_UDP_DEFAULT_ENTRIES;
  }

  /**
   * Registers a sensor: loads the object on first use, attaches that
   * sensor's hooks and turns its records on. Records are handed over in ring
   * order, DNS records of a batch before the others.
   */
  async acquire(user: NetKernelUser, onRecords: (records: readonly NetKernelRecord[]) => void, dnsPorts?: readonly number[]): Promise<void> {
    if (this.users.has(user)) throw new Error(`net kernel: ${user} already acquired`);
    if (dnsPorts) {
      validateDnsPorts(dnsPorts);
      this.dnsPorts = [...dnsPorts];
    }
    if (!this.obj) {
      // Two sensors starting at once share one load.
      this.starting ??= Promise.resolve().then(() => this.load());
      try {
        await this.starting;
      } finally {
        this.starting = undefined;
      }
    }
    const st: UserState = { onRecords, links: [], notes: [] };
    try {
      if (user === 'dns') this.attachAll(DNS_HOOKS, st.links, st.notes);
    } catch (e) {
      for (const a of st.links) a.link.destroy();
      if (this.users.size === 0) this.unload();
      throw e;
    }
    this.users.set(user, st);
    this.writeCfg();
  }

  /** Unregisters a sensor; the last one out detaches everything and closes the object. */
  async release(user: NetKernelUser): Promise<void> {
    const st = this.users.get(user);
    if (!st) return;
    this.users.delete(user);
    for (const a of st.links) a.link.destroy();
    if (this.users.size === 0) this.unload();
    else this.writeCfg();
  }

  /** Hooks attached for a user: the common ones plus its own. */
  hooks(user: NetKernelUser): string[] {
    const own = this.users.get(user)?.links ?? [];
    return [...this.common, ...own].map((a) => a.hook);
  }

  /** Optional hooks that could not be attached, with what that costs. */
  notes(user: NetKernelUser): string[] {
    return [...this.commonNotes, ...(this.users.get(user)?.notes ?? [])];
  }

  /** A map of the loaded object (th_net_udp, th_net_socks, ...). */
  map(name: string): BpfMap {
    if (!this.obj) throw new Error('net kernel not loaded');
    let m = this.maps.get(name);
    if (!m) {
      m = this.obj.map(name);
      this.maps.set(name, m);
    }
    return m;
  }

  /** Kernel counters (refreshed by the 1 s poll, or now when `fresh`). */
  stats(fresh = false): NetKernelStats | undefined {
    if (fresh) this.pollStats();
    return this.kstats;
  }

  /** Live entries of th_net_socks (walked at most every 5 s: it is a syscall per key). */
  socketMapSize(): number {
    if (!this.obj) return 0;
    const now = Date.now();
    if (now - this.sockMapSize.at >= MAP_SIZE_REFRESH_MS) {
      try {
        this.sockMapSize = { value: this.map('th_net_socks').keys().length, at: now };
      } catch {
        /* keep the last value */
      }
    }
    return this.sockMapSize.value;
  }

  ringStats(): { records: number; batches: number; bytes: number } {
    return this.consumer?.stats() ?? { records: 0, batches: 0, bytes: 0 };
  }

  decodeErrorTotal(): number {
    return totalDecodeErrors(this.decodeErrors);
  }

  private load(): void {
    const { native, config, log } = this.d;
    const objPath = this.d.objectPath ?? path.join(repoRoot(), 'bpf/.output/net.bpf.o');
    if (!fs.existsSync(objPath)) throw new Error(`${objPath} missing (run make -C bpf)`);
    this.cgroupRoot = resolveCgroupRoot(this.opts.cgroupRoot);
    fs.mkdirSync(config.bpfDir, { recursive: true });
    // Reuse the process sensor's pinned map: its size must match the pinned one exactly.
    const procsPin = path.join(config.bpfDir, 'tetrahub_procs');
    let procsEntries = config.processMapEntries;
    if (fs.existsSync(procsPin)) {
      try {
        const m = native.openPinnedMap(procsPin);
        procsEntries = m.maxEntries;
        m.close();
      } catch (e) {
        log.warn(`net: cannot open ${procsPin}: ${(e as Error).message}`);
      }
    } else {
      this.commonNotes.push(`${procsPin} not pinned (start the process sensor first): events resolve processes by pid only`);
    }
    const obj = native.openObject(objPath, {
      pinRoot: config.bpfDir,
      mapSizes: {
        tetrahub_procs: procsEntries,
        th_net_events: this.opts.ringBytes ?? TH_NET_EVENTS_DEFAULT_BYTES,
        th_net_socks: this.socketMapCapacity,
        th_net_udp: this.udpFlowCapacity,
      },
      rodata: { agent_tgid: process.pid, ...this.d.identity?.rodata() },
    });
    this.obj = obj;
    try {
      obj.load();
      // Before the hooks: the first records already see Cilium's maps.
      this.d.identity?.bindKernel({ map: (name) => this.map(name) });
      this.attachAll(COMMON_HOOKS, this.common, this.commonNotes);
      this.writeCfg();
      this.consumer = native.createRingConsumer([this.map('th_net_events')], {
        onBatch: (batch, count) => this.onBatch(batch, count),
      });
      this.consumer.start();
      this.statsTimer = setInterval(() => this.pollStats(), 1000);
      this.statsTimer.unref();
    } catch (e) {
      const err = e as Error & { verifierLog?: string };
      if (err.verifierLog) log.debug(`net: verifier log:\n${err.verifierLog}`);
      this.unload();
      throw e;
    }
  }

  private attachAll(hooks: readonly Hook[], into: Attached[], notes: string[]): void {
    const obj = this.obj;
    if (!obj) throw new Error('net kernel not loaded');
    const sections = new Map(obj.programs().map((p) => [p.name, p.section]));
    for (const h of hooks) {
      const section = sections.get(h.prog);
      if (!section) throw new Error(`program ${h.prog} missing in ${obj.path}`);
      const label = h.cgroup ? `${section} (${this.cgroupRoot})` : section;
      try {
        const link = obj.attach(h.prog, h.cgroup ? { cgroupPath: this.cgroupRoot } : undefined);
        into.push({ hook: label, link });
      } catch (e) {
        const msg = (e as Error).message;
        if (!h.optional) throw new Error(`attach ${label}: ${msg}`);
        notes.push(`${section} unavailable (${msg}): ${h.optional}`);
      }
    }
  }

  private writeCfg(): void {
    if (!this.obj) return;
    const flags = (this.users.has('net') ? TH_NET_CFG_NET : 0) | (this.users.has('dns') ? TH_NET_CFG_DNS : 0);
    this.map('th_net_cfg').update(Buffer.alloc(4), encodeCfg(flags, this.dnsPorts));
  }

  private onBatch(batch: Buffer, count: number): void {
    const recs = this.recs;
    recs.length = 0;
    decodeBatch(batch, count, recs, this.decodeErrors);
    const net = this.netRecs;
    const dns = this.dnsRecs;
    net.length = 0;
    dns.length = 0;
    for (const r of recs) {
      if (r.type === 'dns') dns.push(r);
      else net.push(r);
    }
    // DNS first: names learned in this batch are known to the connects in it.
    const du = this.users.get('dns');
    if (dns.length && du) this.deliver('dns', du, dns);
    const nu = this.users.get('net');
    if (net.length && nu) this.deliver('net', nu, net);
  }

  private deliver(user: NetKernelUser, st: UserState, recs: readonly NetKernelRecord[]): void {
    try {
      st.onRecords(recs);
    } catch (e) {
      this.d.log.error(`${user} sensor: handling records failed: ${(e as Error).stack ?? e}`);
    }
  }

  /** Ring drops become loss notices on the bus (Hubble lost_events) and counters. */
  private pollStats(): void {
    if (!this.obj) return;
    try {
      const v = this.map('th_net_stats').lookup(Buffer.alloc(4));
      if (!v) return;
      this.kstats = decodeStats(v);
    } catch {
      return;
    }
    const delta = this.kstats.droppedTotal - this.lastDrops;
    if (delta > 0) {
      this.lastDrops = this.kstats.droppedTotal;
      const item: LossNotice = { kind: 'lost', seq: 0, time: this.d.clock.now(), nodeName: this.d.config.nodeName, source: 'kernel_ring', count: delta, wire: new Map() };
      this.d.bus.publish([item]);
    }
  }

  private unload(): void {
    this.d.identity?.unbindKernel();
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = undefined;
    if (this.obj) this.pollStats();
    this.consumer?.stop();
    this.consumer = undefined;
    for (const a of this.common) a.link.destroy();
    this.common = [];
    this.commonNotes = [];
    for (const st of this.users.values()) for (const a of st.links) a.link.destroy();
    for (const m of this.maps.values()) m.close();
    this.maps.clear();
    this.obj?.close();
    this.obj = undefined;
  }
}
