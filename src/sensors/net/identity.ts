// Cilium identities for the network sensor: keeps the kernel's identity
// lookup (bpf/net.bpf.c, map-in-map slots th_cil_*) pointed at Cilium's
// current pinned maps, and resolves records' identities to EndpointInfo.
//
//   CiliumMaps (src/enrich/cilium)  finds and verifies cilium_ipcache[_v2] /
//                                   cilium_lxc, re-checks them by map id and
//                                   emits 'change' (opened/replaced/removed/
//                                   refused/error)
//   this controller                 on every change: puts the verified map's
//                                   fd into the matching slot (one atomic
//                                   update: the programs see the old map or
//                                   the new one, never none), or empties it
//   EndpointResolver (endpoint.ts)  record → source/destination, from cached
//                                   labels (CiliumApiClient) only
//
// A map CiliumMaps refuses (unknown layout) never reaches a slot: lookups
// from it report unknown (0) and status() says why. Without Cilium the slots
// stay empty and the rules of endpoint.ts apply.
import * as fs from 'node:fs';
import type { Logger } from '../../agent/log';
import { CiliumApiClient } from '../../enrich/cilium/api';
import { BPF_F_NO_PREALLOC, IPCACHE_V1, IPCACHE_V2, LXC, type CiliumMapName } from '../../enrich/cilium/layout';
import { CiliumMaps, DEFAULT_CILIUM_MAPS_DIR, type CiliumGeneration, type CiliumMapsChange } from '../../enrich/cilium/maps';
import { IDENTITY_WORLD, reservedName } from '../../enrich/cilium/reserved';
import type { BpfMap, NativeBinding } from '../../kernel/types';
import { EndpointResolver, type EndpointQuery, type EndpointResolverStats, type IpcacheState } from './endpoint';

/** The slot maps of net.bpf.o (ARRAY_OF_MAPS, one entry, key 0). */
export type IdentitySlot = 'th_cil_ipc_v2' | 'th_cil_ipc_v1' | 'th_cil_lxc' | 'th_cil_lxc_pa';
export const IDENTITY_SLOTS: readonly IdentitySlot[] = ['th_cil_ipc_v2', 'th_cil_ipc_v1', 'th_cil_lxc', 'th_cil_lxc_pa'];

/** What the controller needs of the loaded object (NetKernel passes its map()). */
export interface IdentityKernel {
  map(name: string): BpfMap;
}

export interface CiliumIdentityOptions {
  native: NativeBinding;
  log: Logger;
  /** Directory of Cilium's global pins. Default /sys/fs/bpf/tc/globals. */
  bpfDir?: string;
  /**
   * Cilium agent API (labels, pod names): `unix:///var/run/cilium/cilium.sock`
   * or a path; '' = no API (labels only for reserved identities). Default
   * $CILIUM_SOCK, else /var/run/cilium/cilium.sock.
   */
  apiSocket?: string;
  /** Identity of remote addresses no ipcache entry covers. Default 2 (world). */
  worldIdentity?: number | 'by-family';
  /** ClusterMesh cluster id in map keys. Default 0. */
  clusterId?: number;
  /** Map-id re-check period, ms (CiliumMaps also watches the directory). Default 5000. */
  recheckMs?: number;
  /** BTF check of Cilium's maps with bpftool. Default 'auto'. */
  btf?: 'auto' | 'require' | 'off';
  /** Host network namespace inode. Default: that of /proc/1/ns/net (else /proc/self/ns/net). */
  hostNetns?: number;
  /** Look up the endpoint of pod netns seen without a usable local address via /proc/<pid>/net. Default true. */
  probeNetns?: boolean;
  /** Injected reader / client (tests, benchmarks); closed by close() like owned ones. */
  maps?: CiliumMaps;
  api?: CiliumApiClient;
}

export interface SlotState {
  map: CiliumMapName;
  /** Map id of the Cilium map in the slot. */
  id: number;
}

export interface CiliumIdentityStatus {
  dir: string;
  generation?: CiliumGeneration;
  ipcache: IpcacheState;
  /** What each slot holds (undefined = empty); all empty while no kernel is bound. */
  slots: Record<IdentitySlot, SlotState | undefined>;
  kernelBound: boolean;
  /** Refusals, open errors, inner maps the kernel would not take. */
  problems: string[];
  /** Agent API socket, undefined without API. */
  api?: string;
}

export interface CiliumIdentityCounters {
  slotUpdates: number;
  slotErrors: number;
  changes: number;
  netnsProbes: number;
  netnsProbeHits: number;
}

const KEY0 = Buffer.alloc(4);
const NETNS_NEGATIVE_MS = 30_000;

function hostNetnsInode(): number {
  for (const p of ['/proc/1/ns/net', '/proc/self/ns/net']) {
    try {
      return fs.statSync(p).ino;
    } catch {
      /* next */
    }
  }
  return 0;
}

/** Local addresses of a process's network namespace from /proc/<pid>/net (no setns needed). */
export async function netnsAddresses(pid: number, procRoot = '/proc'): Promise<string[]> {
  const out: string[] = [];
  const trie = await fs.promises.readFile(`${procRoot}/${pid}/net/fib_trie`, 'utf8').catch(() => '');
  // "|-- 10.0.1.5" followed by "/32 host LOCAL": an address of this namespace.
  let last = '';
  for (const line of trie.split('\n')) {
    const m = /\|--\s+(\d+\.\d+\.\d+\.\d+)/.exec(line);
    if (m) last = m[1];
    else if (/\/32 host LOCAL/.test(line) && last && !last.startsWith('127.') && !out.includes(last)) out.push(last);
  }
  const v6 = await fs.promises.readFile(`${procRoot}/${pid}/net/if_inet6`, 'utf8').catch(() => '');
  for (const line of v6.split('\n')) {
    const f = line.trim().split(/\s+/);
    // address, ifindex, prefix length, scope (0 = global), flags, name
    if (f.length < 6 || !/^[0-9a-f]{32}$/.test(f[0]) || f[3] !== '00') continue;
    out.push((f[0].match(/.{4}/g) ?? []).join(':'));
  }
  return out;
}

/**
 * Cilium identity source of the network sensor. Create it with
 * startCiliumIdentity(); give it to NetKernel (deps.identity) and NetSensor
 * (deps.identity, or through the shared kernel).
 */
export class CiliumIdentity {
  readonly maps: CiliumMaps;
  readonly api?: CiliumApiClient;
  readonly resolver: EndpointResolver;
  readonly clusterId: number;
  private readonly log: Logger;
  private readonly worldIdentity: number | 'by-family';
  private readonly probe: boolean;
  private kernel?: IdentityKernel;
  private readonly slots = new Map<IdentitySlot, SlotState>();
  /** Further objects with th_cil_* slots (policy backends), each with what its slots hold. */
  private readonly extraKernels = new Map<IdentityKernel, Map<IdentitySlot, SlotState>>();
  private readonly slotProblems = new Map<CiliumMapName, string>();
  private readonly netnsPending = new Set<number>();
  private readonly netnsMisses = new Map<number, number>();
  private readonly c: CiliumIdentityCounters = { slotUpdates: 0, slotErrors: 0, changes: 0, netnsProbes: 0, netnsProbeHits: 0 };
  private started = false;
  private closed = false;
  private readonly onChange = (ch: CiliumMapsChange): void => this.changed(ch);

  constructor(opts: CiliumIdentityOptions) {
    this.log = opts.log;
    this.clusterId = opts.clusterId ?? 0;
    if (!Number.isInteger(this.clusterId) || this.clusterId < 0 || this.clusterId > 0xffff) throw new RangeError(`clusterId must be an integer in [0, 65535], got ${opts.clusterId}`);
    const world = opts.worldIdentity ?? IDENTITY_WORLD;
    if (world !== 'by-family' && (!Number.isInteger(world) || world < 0 || world > 0xffffffff)) throw new RangeError(`worldIdentity must be 'by-family' or an identity number, got ${String(world)}`);
    this.worldIdentity = world;
    this.probe = opts.probeNetns ?? true;
    this.maps =
      opts.maps ??
      new CiliumMaps({
        dir: opts.bpfDir ?? DEFAULT_CILIUM_MAPS_DIR,
        native: opts.native,
        recheckMs: opts.recheckMs,
        btf: opts.btf,
        clusterId: this.clusterId,
        worldIdentity: world,
        log: (m) => this.log.info(m),
      });
    if (opts.api) this.api = opts.api;
    else if (opts.apiSocket !== '') this.api = new CiliumApiClient({ socket: opts.apiSocket, log: (m) => this.log.debug(m) });
    const api = this.api;
    this.resolver = new EndpointResolver({
      sources: api
        ? {
            identityOf: (id) => api.identityOf(id),
            endpointById: (id) => api.endpointById(id),
            endpointByIp: (ip) => api.endpointByIp(ip),
          }
        : {},
      worldIdentity: world,
      hostNetns: opts.hostNetns ?? hostNetnsInode(),
      ipcacheState: () => this.ipcacheState(),
      onUnknownNetns: this.probe ? (netns, q) => this.probeNetns(netns, q) : undefined,
    });
  }

  /** Opens what Cilium has pinned now and follows it. Idempotent; never throws. */
  start(): this {
    if (this.started || this.closed) return this;
    this.started = true;
    this.maps.on('change', this.onChange);
    this.maps.start();
    this.sync();
    return this;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.maps.off('change', this.onChange);
    this.unbindKernel();
    for (const [k, slots] of this.extraKernels) for (const slot of [...slots.keys()]) this.clearExtraSlot(k, slots, slot);
    this.extraKernels.clear();
    this.maps.close();
    this.api?.close();
  }

  /** Rodata of net.bpf.o this controller needs (NetKernel merges it into its open options). */
  rodata(): Record<string, number> {
    return { th_cilium_cluster_id: this.clusterId };
  }

  /** Called by NetKernel once net.bpf.o is loaded: fills the slots from what is open now. */
  bindKernel(k: IdentityKernel): void {
    this.kernel = k;
    this.slots.clear();
    this.sync();
  }

  /**
   * Binds one more object with th_cil_* slots (e.g. a connect-policy object)
   * besides the net sensor's: its slots follow Cilium's maps like the
   * primary's. Returns the undo, to call before that object is closed.
   */
  attachKernel(k: IdentityKernel): () => void {
    const slots = new Map<IdentitySlot, SlotState>();
    this.extraKernels.set(k, slots);
    this.syncExtra(k, slots, this.wanted());
    return () => {
      if (!this.extraKernels.delete(k)) return;
      for (const slot of [...slots.keys()]) this.clearExtraSlot(k, slots, slot);
    };
  }

  /**
   * Stops following Cilium in this object: empties its slots (the kernel's
   * lookups report "no map" from now on). NetKernel calls it before closing
   * the object; callable any time, bindKernel() undoes it.
   */
  unbindKernel(): void {
    const k = this.kernel;
    this.kernel = undefined;
    if (k) for (const slot of [...this.slots.keys()]) this.clearSlot(k, slot);
    this.slots.clear();
  }

  /** Resolves both ends of a record (event path: caches only). */
  resolve(q: EndpointQuery): ReturnType<EndpointResolver['resolve']> {
    return this.resolver.resolve(q);
  }

  ipcacheState(): IpcacheState {
    if (this.slots.has('th_cil_ipc_v2') || this.slots.has('th_cil_ipc_v1')) return 'attached';
    const st = this.maps.status();
    const v1 = st.maps[IPCACHE_V1].state;
    const v2 = st.maps[IPCACHE_V2].state;
    if (v1 === 'absent' && v2 === 'absent') return 'absent';
    // Refused, failed to open, or refused by the kernel as inner map.
    return 'unusable';
  }

  status(): CiliumIdentityStatus {
    const st = this.maps.status();
    const problems: string[] = [];
    for (const name of [IPCACHE_V2, IPCACHE_V1, LXC] as const) {
      const m = st.maps[name];
      if (m.state === 'refused' || m.state === 'error') problems.push(m.reason);
    }
    for (const p of this.slotProblems.values()) problems.push(p);
    const slots = Object.fromEntries(IDENTITY_SLOTS.map((s) => [s, this.slots.get(s)])) as Record<IdentitySlot, SlotState | undefined>;
    return { dir: st.dir, generation: st.generation, ipcache: this.ipcacheState(), slots, kernelBound: this.kernel !== undefined, problems, api: this.api?.socketPath };
  }

  /** One line for the sensor's status note. */
  describe(): string {
    const st = this.status();
    const world = this.worldIdentity === 'by-family' ? 'world-ipv4/-ipv6 (9/10)' : `${reservedName(this.worldIdentity) ?? 'identity'} (${this.worldIdentity})`;
    const inKernel = IDENTITY_SLOTS.flatMap((s) => {
      const v = st.slots[s];
      return v ? [`${v.map} (map id ${v.id})`] : [];
    });
    const parts: string[] = [];
    if (inKernel.length) parts.push(`in-kernel lookup in ${inKernel.join(' and ')}${st.generation ? `, Cilium ${st.generation}` : ''}`);
    else if (st.ipcache === 'absent' && st.problems.length === 0) parts.push(`no Cilium maps in ${st.dir}: remote ends ${world} by rule, local ends host (1) in the host netns, else unknown (0)`);
    if (st.ipcache === 'unusable') parts.push('ipcache unusable: identities without an lxc entry are unknown (0)');
    if (st.problems.length) parts.push(...st.problems);
    parts.push(st.api ? `labels from ${st.api}` : 'no Cilium API: labels only for reserved identities');
    return `cilium identities: ${parts.join('; ')}`;
  }

  counters(): Record<string, number> {
    const r: EndpointResolverStats = this.resolver.stats();
    const m = this.maps.stats();
    const out: Record<string, number> = {
      net_cilium_slot_updates: this.c.slotUpdates,
      net_cilium_slot_errors: this.c.slotErrors,
      net_cilium_map_changes: this.c.changes,
      net_cilium_map_refusals: m.refusals,
      net_identity_from_kernel: r.kernel,
      net_identity_from_netns: r.netns,
      net_identity_from_api: r.api,
      net_identity_world_rule: r.worldRule,
      net_identity_host_rule: r.hostRule,
      net_identity_unknown: r.unknown,
      net_identity_netns_probes: this.c.netnsProbes,
      net_identity_netns_probe_hits: this.c.netnsProbeHits,
    };
    if (this.api) out.net_cilium_api_errors = this.api.stats().errorsTotal;
    return out;
  }

  /** Fills labels and the endpoint list now (start-up, tests); never rejects. */
  async warm(identities: readonly number[] = []): Promise<void> {
    if (!this.api) return;
    await this.api.refreshEndpoints({ force: true });
    await Promise.all(identities.map((id) => this.api?.fetchIdentity(id, { force: true })));
    this.resolver.reset();
  }

  // --- internals -----------------------------------------------------------

  private changed(ch: CiliumMapsChange): void {
    this.c.changes++;
    if (ch.kind === 'refused' || ch.kind === 'error') this.log.warn(`cilium identities: ${ch.reason ?? `${ch.map} ${ch.kind}`}`);
    this.sync();
    // Identities may have been re-allocated with the maps: rebuild the cached EndpointInfo,
    // and relearn pod netns from the new cilium_lxc.
    this.resolver.reset();
    if (ch.map === LXC) {
      this.resolver.resetNetns();
      this.netnsMisses.clear();
    }
  }

  /** What each slot should hold now. */
  private wanted(): Map<IdentitySlot, CiliumMapName> {
    const want = new Map<IdentitySlot, CiliumMapName>();
    const st = this.maps.status();
    if (st.ipcache === IPCACHE_V2) want.set('th_cil_ipc_v2', IPCACHE_V2);
    else if (st.ipcache === IPCACHE_V1) want.set('th_cil_ipc_v1', IPCACHE_V1);
    const lxc = st.maps[LXC];
    if (lxc.state === 'open') want.set(lxc.flags & BPF_F_NO_PREALLOC ? 'th_cil_lxc' : 'th_cil_lxc_pa', LXC);
    return want;
  }

  /** An extra kernel's slots in line with `want` (problems are reported by the primary's sync). Never throws. */
  private syncExtra(k: IdentityKernel, slots: Map<IdentitySlot, SlotState>, want: Map<IdentitySlot, CiliumMapName>): void {
    for (const slot of IDENTITY_SLOTS) {
      const name = want.get(slot);
      const cur = slots.get(slot);
      const id = name ? this.maps.mapId(name) : undefined;
      const fd = name ? this.maps.mapFd(name) : undefined;
      if (name && id !== undefined && fd !== undefined) {
        if (cur && cur.map === name && cur.id === id) continue;
        const v = Buffer.alloc(4);
        v.writeUInt32LE(fd, 0);
        try {
          k.map(slot).update(KEY0, v);
          slots.set(slot, { map: name, id });
          this.c.slotUpdates++;
        } catch (e) {
          this.c.slotErrors++;
          this.log.debug(`cilium identities: extra object refused ${name} in ${slot}: ${(e as Error).message}`);
          this.clearExtraSlot(k, slots, slot);
        }
      } else if (cur) {
        this.clearExtraSlot(k, slots, slot);
        this.c.slotUpdates++;
      }
    }
  }

  private clearExtraSlot(k: IdentityKernel, slots: Map<IdentitySlot, SlotState>, slot: IdentitySlot): void {
    slots.delete(slot);
    try {
      k.map(slot).delete(KEY0);
    } catch {
      /* object already closed */
    }
  }

  /** Brings every slot in line with what CiliumMaps has open. Never throws. */
  private sync(): void {
    if (this.extraKernels.size && !this.closed) {
      const want = this.wanted();
      for (const [ek, slots] of this.extraKernels) this.syncExtra(ek, slots, want);
    }
    const k = this.kernel;
    if (!k || this.closed) return;
    const want = this.wanted();
    for (const slot of IDENTITY_SLOTS) {
      const name = want.get(slot);
      const cur = this.slots.get(slot);
      const id = name ? this.maps.mapId(name) : undefined;
      const fd = name ? this.maps.mapFd(name) : undefined;
      if (name && id !== undefined && fd !== undefined) {
        if (cur && cur.map === name && cur.id === id) continue;
        const v = Buffer.alloc(4);
        v.writeUInt32LE(fd, 0);
        try {
          k.map(slot).update(KEY0, v);
        } catch (e) {
          // The kernel compares type, key/value size and map_flags with the template.
          const why = `kernel refused ${name} (map id ${id}) as inner map of ${slot}: ${(e as Error).message}; in-kernel lookups from it disabled`;
          this.c.slotErrors++;
          if (this.slotProblems.get(name) !== why) this.log.warn(`cilium identities: ${why}`);
          this.slotProblems.set(name, why);
          this.clearSlot(k, slot);
          continue;
        }
        this.slotProblems.delete(name);
        this.slots.set(slot, { map: name, id });
        this.c.slotUpdates++;
        this.log.info(`cilium identities: ${slot} now uses ${name} (map id ${id}${cur ? `, was ${cur.map} map id ${cur.id}` : ''})`);
      } else if (cur) {
        this.clearSlot(k, slot);
        this.c.slotUpdates++;
        this.log.info(`cilium identities: ${slot} emptied (was ${cur.map} map id ${cur.id})`);
      }
    }
    // Problems of maps that are gone are no longer problems.
    for (const name of [...this.slotProblems.keys()]) if (![...want.values()].includes(name)) this.slotProblems.delete(name);
  }

  private clearSlot(k: IdentityKernel, slot: IdentitySlot): void {
    this.slots.delete(slot);
    try {
      k.map(slot).delete(KEY0);
    } catch (e) {
      this.log.warn(`cilium identities: emptying ${slot} failed: ${(e as Error).message}`);
    }
  }

  /**
   * A pod netns whose sockets had no usable local address yet (listeners on
   * 0.0.0.0, unconnected UDP): its addresses from /proc/<pid>/net, looked up
   * in cilium_lxc (or the API's endpoint list), off the event path.
   */
  private probeNetns(netns: number, q: EndpointQuery): void {
    const pid = q.tgid;
    if (!pid || this.closed || this.netnsPending.has(netns)) return;
    const miss = this.netnsMisses.get(netns);
    if (miss !== undefined && Date.now() < miss) return;
    if (this.netnsPending.size >= 8) return; // bounded; the next record asks again
    this.netnsPending.add(netns);
    this.c.netnsProbes++;
    void this.runProbe(netns, pid).finally(() => this.netnsPending.delete(netns));
  }

  private async runProbe(netns: number, pid: number): Promise<void> {
    let found = false;
    try {
      // The pid may have exited or been reused: only its current netns counts.
      const st = await fs.promises.stat(`/proc/${pid}/ns/net`);
      if (st.ino === netns) {
        for (const ip of await netnsAddresses(pid)) {
          const ep = this.maps.lookupEndpoint(ip);
          if (ep && !ep.isHost && ep.identity) {
            this.resolver.learnNetns(netns, ep.id, ep.identity);
            found = true;
            break;
          }
          const api = this.api?.endpointByIp(ip);
          if (api && api.identity) {
            this.resolver.learnNetns(netns, api.id, api.identity);
            found = true;
            break;
          }
        }
      }
    } catch {
      /* process gone: try again with a later record */
    }
    if (found) {
      this.c.netnsProbeHits++;
      this.netnsMisses.delete(netns);
    } else {
      if (this.netnsMisses.size > 4096) this.netnsMisses.clear();
      this.netnsMisses.set(netns, Date.now() + NETNS_NEGATIVE_MS);
    }
  }
}

/**
 * Creates and starts the Cilium identity source. Never throws for Cilium
 * being absent, refused or unreachable (that is status); throws RangeError
 * for invalid options only.
 */
export function startCiliumIdentity(opts: CiliumIdentityOptions): CiliumIdentity {
  return new CiliumIdentity(opts).start();
}
