// One loaded connect-policy hook: bpf/policy_connect.bpf.o with that hook's
// rules, its binary/address/identity sets, the Cilium identity slots bound
// to the CiliumIdentity controller, DLabels/podSelector kept current, and its
// ring decoded into PolicyEvents.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EventBus } from '../../bus/bus';
import { cgroup2Mount } from '../../enrich/process/procfs';
import { formatIp, parseCidr } from '../../enrich/cilium/layout';
import { IDENTITY_WORLD } from '../../enrich/cilium/reserved';
import { repoRoot } from '../../kernel/native';
import type { BpfLink, BpfMap, BpfObject, RingConsumer } from '../../kernel/types';
import type { EndpointInfo, PolicyAction, PolicyArg, PolicyEvent } from '../../model/event';
import { netnsAddresses } from '../../sensors/net/identity';
import { resolveProcess } from '../../sensors/net/process';
import { TH_NET_ID_D_IPCACHE, TH_NET_ID_D_LXC, TH_NET_ID_MAP_IPCACHE } from '../../sensors/net/layout.gen';
import type { HookLoadContext, HookStatusInfo, LoadedHook, PolicyMode } from '../engine/types';
import type { KProbeArg, TracingPolicy } from '../types';
import type { CompiledHook, CompiledRule } from './compile';
import { fetchIdentity, listIdentities, netnsOfProcesses, reservedIdentities, selectorMatches, type LabeledIdentity } from './labels';
import {
  TH_PC_ACT_NOPOST,
  TH_PC_ACT_OVERRIDE,
  TH_PC_ACT_SIGKILL,
  TH_PC_CFG_ENABLED,
  TH_PC_CFG_MONITOR,
  TH_PC_CHK_ADDR,
  TH_PC_CHK_IDENT,
  TH_PC_CHK_NOTADDR,
  TH_PC_CHK_NOTIDENT,
  TH_PC_EV_ID_IPCACHE,
  TH_PC_EV_ID_LXC,
  TH_PC_EV_ID_RULE,
  TH_PC_EV_KILL,
  TH_PC_EV_MAP_IPCACHE,
  TH_PC_EV_MONITOR,
  TH_PC_LAYOUT_VERSION,
  TH_PC_PATH_MAX,
  TH_PC_REC_DECISION,
  TH_PC_R_BIN,
  TH_PC_R_BIN_NOT,
  TH_PC_R_NETNS,
  TH_PC_R_NOTPORT,
  TH_PC_R_NOTPRIV,
  TH_PC_R_PORT,
  TH_PC_R_PRIV,
  TH_PC_R_VALID,
  th_pc_cfg,
  th_pc_event,
  th_pc_rule,
  th_pc_stats,
} from './layout.gen';

export interface ConnectKernelOptions {
  /** Compiled object; default bpf/.output/policy_connect.bpf.o. */
  objectPath?: string;
  /** cgroup-v2 directory to attach to; default config.cgroupRoot, else the cgroup2 mount. */
  cgroupRoot?: string;
  /** How often DLabels / podSelector are re-resolved, ms. Default 5000. */
  refreshMs?: number;
  /** Identities fetched one by one per round (seen in the ipcache, missing from the listing). Default 64. */
  onDemandPerRound?: number;
}

const ZERO4 = Buffer.alloc(4);
/** Longest a decision waits for its process's exec record. */
const PROCESS_WAIT_MS = 500;
const AF_INET = 2;

function cgroupRootOf(opt: string | undefined, cfg: string): string {
  const dir = opt || cfg || cgroup2Mount();
  if (!dir) throw new Error('no cgroup2 filesystem mounted (needed for the cgroup connect hooks)');
  if (!fs.statSync(dir).isDirectory()) throw new Error(`cgroup root ${dir} is not a directory`);
  return dir;
}

/** The world identity setting as the kernel's cfg wants it. */
function worldOf(setting: string): number {
  if (setting === 'by-family') return 0xffffffff;
  const n = Number(setting);
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff ? n : IDENTITY_WORLD;
}

function pathKey(p: string): Buffer {
  const b = Buffer.alloc(TH_PC_PATH_MAX);
  b.write(p, 0, TH_PC_PATH_MAX - 1, 'utf8');
  return b;
}

function addrKey(set: number, cidr: string): Buffer | undefined {
  const c = parseCidr(cidr);
  if (!c) return undefined;
  const k = Buffer.alloc(24);
  k.writeUInt32LE(32 + c.bits, 0);
  k[4] = set;
  k[5] = c.addr.family;
  c.addr.bytes.copy(k, 8);
  return k;
}

function idKey(set: number, identity: number): Buffer {
  const k = Buffer.alloc(8);
  k.writeUInt32LE(set, 0);
  k.writeUInt32LE(identity >>> 0, 4);
  return k;
}

function encodeRule(r: CompiledRule, netns: boolean): Buffer {
  const b = Buffer.alloc(th_pc_rule.SIZE);
  let flags = TH_PC_R_VALID;
  if (r.ports) flags |= TH_PC_R_PORT;
  if (r.notPorts) flags |= TH_PC_R_NOTPORT;
  if (r.priv) flags |= TH_PC_R_PRIV;
  if (r.notPriv) flags |= TH_PC_R_NOTPRIV;
  if (r.binaries) flags |= TH_PC_R_BIN | (r.binaries.not ? TH_PC_R_BIN_NOT : 0);
  if (netns) flags |= TH_PC_R_NETNS;
  b.writeUInt32LE(flags, th_pc_rule.flags);
  b.writeUInt32LE(r.actions, th_pc_rule.actions);
  b.writeInt32LE(r.err, th_pc_rule.err);
  b.writeUInt16LE(r.families, th_pc_rule.families);
  b[th_pc_rule.protocols] = r.protocols;
  b[th_pc_rule.bin_bit] = r.binaries?.bit ?? 0;
  b[th_pc_rule.nports] = r.ports?.length ?? 0;
  b[th_pc_rule.nnotports] = r.notPorts?.length ?? 0;
  b[th_pc_rule.nchecks] = r.checks.length;
  (r.ports ?? []).forEach((p, i) => {
    b.writeUInt16LE(p.lo, th_pc_rule.port_lo + 2 * i);
    b.writeUInt16LE(p.hi, th_pc_rule.port_hi + 2 * i);
  });
  (r.notPorts ?? []).forEach((p, i) => {
    b.writeUInt16LE(p.lo, th_pc_rule.nport_lo + 2 * i);
    b.writeUInt16LE(p.hi, th_pc_rule.nport_hi + 2 * i);
  });
  r.checks.forEach((c, i) => {
    const kind = c.kind === 'addr' ? (c.negate ? TH_PC_CHK_NOTADDR : TH_PC_CHK_ADDR) : c.negate ? TH_PC_CHK_NOTIDENT : TH_PC_CHK_IDENT;
    b[th_pc_rule.chk_kind + i] = kind;
    b[th_pc_rule.chk_set + i] = c.set;
  });
  return b;
}

/** A decision record, decoded. */
export interface ConnectDecision {
  ktime: bigint;
  cookie: bigint;
  procKtime: bigint;
  tgid: number;
  tid: number;
  netns: number;
  dIdentity: number;
  dEndpoint: number;
  err: number;
  family: 4 | 6;
  dport: number;
  sport: number;
  protocol: number;
  rule: number;
  actions: number;
  flags: number;
  saddr: string;
  daddr: string;
}

function addrText(buf: Buffer, off: number, family: 4 | 6): string {
  return formatIp(family === 4 ? { family: 4, bytes: buf.subarray(off, off + 4) } : { family: 6, bytes: buf.subarray(off, off + 16) });
}

export function decodeDecision(rec: Buffer): ConnectDecision | undefined {
  if (rec.length < th_pc_event.SIZE || rec[th_pc_event.hdr_type] !== TH_PC_REC_DECISION || rec[th_pc_event.hdr_version] !== TH_PC_LAYOUT_VERSION) return undefined;
  const family = rec.readUInt16LE(th_pc_event.family) === AF_INET ? 4 : 6;
  // v4-mapped destinations are reported as written; formatIp of 16 bytes keeps them IPv6.
  return {
    ktime: rec.readBigUInt64LE(th_pc_event.hdr_ktime),
    cookie: rec.readBigUInt64LE(th_pc_event.cookie),
    procKtime: rec.readBigUInt64LE(th_pc_event.proc_ktime),
    tgid: rec.readUInt32LE(th_pc_event.tgid),
    tid: rec.readUInt32LE(th_pc_event.tid),
    netns: rec.readUInt32LE(th_pc_event.netns),
    dIdentity: rec.readUInt32LE(th_pc_event.d_identity),
    dEndpoint: rec.readUInt16LE(th_pc_event.d_endpoint),
    err: rec.readInt32LE(th_pc_event.err),
    family,
    dport: rec.readUInt16LE(th_pc_event.dport),
    sport: rec.readUInt16LE(th_pc_event.sport),
    protocol: rec[th_pc_event.protocol],
    rule: rec[th_pc_event.rule],
    actions: rec[th_pc_event.actions],
    flags: rec[th_pc_event.flags],
    saddr: addrText(rec, th_pc_event.saddr, family),
    daddr: addrText(rec, th_pc_event.daddr, family),
  };
}

const STAT_FIELDS = ['checked', 'matched', 'post', 'nopost', 'override', 'monitor_override', 'signal', 'monitor_signal', 'ring_drops', 'procs_update_err'] as const;
export type ConnectStats = Record<(typeof STAT_FIELDS)[number], number>;

function sumStats(v: Buffer): ConnectStats {
  const out = Object.fromEntries(STAT_FIELDS.map((f) => [f, 0])) as ConnectStats;
  const stride = Math.ceil(th_pc_stats.SIZE / 8) * 8;
  for (let off = 0; off + th_pc_stats.SIZE <= v.length; off += stride) {
    for (const f of STAT_FIELDS) out[f] += Number(v.readBigUInt64LE(off + th_pc_stats[f]));
  }
  return out;
}

/** The loaded hook (LoadedHook of the contract). */
export class ConnectHook implements LoadedHook {
  private baseStatus: HookStatusInfo;
  readonly kernelMemoryBytes: number;
  private obj?: BpfObject;
  private readonly maps = new Map<string, BpfMap>();
  private links: BpfLink[] = [];
  private consumer?: RingConsumer;
  private unbindIdentity?: () => void;
  private timer?: NodeJS.Timeout;
  private statsTimer?: NodeJS.Timeout;
  private mode: PolicyMode;
  private enabled = true;
  private closed = false;
  private refreshing?: Promise<void>;
  private lastStats?: ConnectStats;
  /** What each label set holds in the kernel now. */
  private readonly labelSets = new Map<number, Set<number>>();
  private netnsSet = new Set<number>();
  /** Labelled identities known (listing + on-demand), refreshed per round. */
  private known = new Map<number, readonly string[]>();
  private readonly onDemandMisses = new Map<number, number>();
  private readonly onMapsChange = (): void => void this.refresh();
  /** Problems met while keeping sets current (status). */
  readonly problems: string[] = [];
  readonly cgroupRoot: string;

  constructor(
    private readonly policy: TracingPolicy,
    private readonly hook: CompiledHook,
    private readonly ctx: HookLoadContext,
    status: HookStatusInfo,
    kernelMemoryBytes: number,
    private readonly opts: ConnectKernelOptions = {},
  ) {
    this.baseStatus = status;
    this.kernelMemoryBytes = kernelMemoryBytes;
    this.mode = ctx.mode;
    this.cgroupRoot = cgroupRootOf(opts.cgroupRoot, ctx.deps.config.cgroupRoot);
  }

  /** The plan's status plus what keeping DLabels/podSelector current ran into lately. */
  get status(): HookStatusInfo {
    if (!this.problems.length) return this.baseStatus;
    return { ...this.baseStatus, inUserSpace: [...this.baseStatus.inUserSpace, ...this.problems.map((p) => `problem: ${p}`)] };
  }

  set status(s: HookStatusInfo) {
    this.baseStatus = s;
  }

  private map(name: string): BpfMap {
    const obj = this.obj;
    if (!obj) throw new Error('connect policy object not loaded');
    let m = this.maps.get(name);
    if (!m) {
      m = obj.map(name);
      this.maps.set(name, m);
    }
    return m;
  }

  private get identity(): HookLoadContext['deps']['identity'] {
    return this.ctx.deps.identity;
  }

  async load(): Promise<void> {
    const { native, config } = this.ctx.deps;
    const objPath = this.opts.objectPath ?? path.join(repoRoot(), 'bpf/.output/policy_connect.bpf.o');
    if (!fs.existsSync(objPath)) throw new Error(`${objPath} missing (run make -C bpf)`);
    fs.mkdirSync(config.bpfDir, { recursive: true });
    let procsEntries = config.processMapEntries;
    const procsPin = path.join(config.bpfDir, 'tetrahub_procs');
    if (fs.existsSync(procsPin)) {
      try {
        const m = native.openPinnedMap(procsPin);
        procsEntries = m.maxEntries;
        m.close();
      } catch {
        /* libbpf reports a mismatch at load */
      }
    }
    let follow = 0n;
    for (const s of this.hook.binarySets) if (s.followChildren) follow |= 1n << BigInt(s.bit);
    const needKill = this.hook.rules.some((r) => r.actions & TH_PC_ACT_SIGKILL);
    const open = (setRetval: boolean): BpfObject => {
      const obj = native.openObject(objPath, {
        pinRoot: config.bpfDir,
        // Without matchBinaries the per-process maps are never used: one entry each.
        mapSizes: { tetrahub_procs: procsEntries, ...(this.hook.binarySets.length ? {} : { th_pc_procs: 1, th_pc_bins: 1 }), ...(needKill ? {} : { th_pc_kill: 1 }), ...(this.hook.podSelector ? {} : { th_pc_netns: 1 }) },
        rodata: { agent_tgid: process.pid, follow_sets: follow, use_set_retval: setRetval ? 1 : 0, th_cilium_cluster_id: this.identity?.clusterId ?? 0 },
        skipPrograms: [
          ...(this.hook.binarySets.length ? [] : ['th_pc_exec', 'th_pc_fork', 'th_pc_exit']),
          ...(needKill ? [] : ['th_pc_connect_exit']),
          ...(needKill && this.hook.sendmsg ? [] : ['th_pc_sendto_exit', 'th_pc_sendmsg_exit']),
          ...(this.hook.sendmsg ? [] : ['th_pc_sendmsg4', 'th_pc_sendmsg6']),
        ],
      });
      try {
        obj.load();
      } catch (e) {
        obj.close();
        throw e;
      }
      return obj;
    };
    // bpf_set_retval (argError other than EPERM) exists for cgroup connect hooks on newer kernels only.
    const wantRetval = this.hook.rules.some((r) => r.actions & TH_PC_ACT_OVERRIDE && r.err !== -1);
    try {
      this.obj = open(wantRetval);
      this.retval = wantRetval;
    } catch (e) {
      if (!wantRetval) throw e;
      this.obj = open(false);
      this.retval = false;
    }
    try {
      if (this.identity) this.unbindIdentity = this.identity.attachKernel({ map: (n) => this.map(n) });
      // Binary tracking first, then seed running processes: an exec racing the seed wins (NOEXIST).
      if (this.hook.binarySets.length) for (const prog of ['th_pc_exec', 'th_pc_fork', 'th_pc_exit']) this.links.push(this.obj.attach(prog));
      if (needKill) this.links.push(this.obj.attach('th_pc_connect_exit'));
      if (needKill && this.hook.sendmsg) for (const prog of ['th_pc_sendto_exit', 'th_pc_sendmsg_exit']) this.links.push(this.obj.attach(prog));
      this.writeBinaries();
      await this.seedProcesses();
      this.writeStaticSets();
      await this.refresh();
      for (const [i, r] of this.hook.rules.entries()) {
        const k = Buffer.alloc(4);
        k.writeUInt32LE(i, 0);
        this.map('th_pc_rules').update(k, encodeRule(r, this.hook.podSelector !== undefined));
      }
      this.writeCfg();
      this.consumer = native.createRingConsumer([this.map('th_pc_events')], { onBatch: (b, n) => this.onBatch(b, n) });
      this.consumer.start();
      const cgroupProgs = ['th_pc_connect4', 'th_pc_connect6', ...(this.hook.sendmsg ? ['th_pc_sendmsg4', 'th_pc_sendmsg6'] : [])];
      for (const prog of cgroupProgs) this.links.push(this.obj.attach(prog, { cgroupPath: this.cgroupRoot }));
      if (this.hook.usesLabels || this.hook.podSelector) {
        this.identity?.maps.on('change', this.onMapsChange);
        this.timer = setInterval(() => void this.refresh(), this.opts.refreshMs ?? 5000);
        this.timer.unref();
      }
      this.statsTimer = setInterval(() => this.pollStats(), 1000);
      this.statsTimer.unref();
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  private retval = false;

  /** Whether argError other than -1 is returned as written (bpf_set_retval), else EPERM. */
  get argErrorHonoured(): boolean {
    return this.retval;
  }

  private writeCfg(): void {
    if (!this.obj) return;
    const b = Buffer.alloc(th_pc_cfg.SIZE);
    b.writeUInt32LE((this.enabled ? TH_PC_CFG_ENABLED : 0) | (this.mode === 'monitor' ? TH_PC_CFG_MONITOR : 0), th_pc_cfg.flags);
    b.writeUInt32LE(this.hook.rules.length, th_pc_cfg.nrules);
    b.writeUInt32LE(worldOf(this.ctx.deps.config.ciliumWorldIdentity), th_pc_cfg.world_identity);
    this.map('th_pc_cfg').update(ZERO4, b);
  }

  private writeBinaries(): void {
    const masks = new Map<string, bigint>();
    for (const s of this.hook.binarySets) for (const p of s.paths) masks.set(p, (masks.get(p) ?? 0n) | (1n << BigInt(s.bit)));
    const m = this.map('th_pc_bins');
    for (const [p, mask] of masks) {
      const v = Buffer.alloc(8);
      v.writeBigUInt64LE(mask, 0);
      m.update(pathKey(p), v);
    }
  }

  /** Processes running before the exec hook was attached: their binary from the process cache, else /proc/<pid>/exe. */
  private async seedProcesses(): Promise<void> {
    if (this.hook.binarySets.length === 0) return;
    const { cache } = this.ctx.deps;
    const byPath = new Map<string, bigint>();
    let follow = 0n;
    for (const s of this.hook.binarySets) {
      for (const p of s.paths) byPath.set(p, (byPath.get(p) ?? 0n) | (1n << BigInt(s.bit)));
      if (s.followChildren) follow |= 1n << BigInt(s.bit);
    }
    const names = await fs.promises.readdir('/proc').catch(() => [] as string[]);
    const binOf = new Map<number, { bin: string; ppid: number }>();
    for (const n of names) {
      if (!/^\d+$/.test(n)) continue;
      const pid = Number(n);
      const info = cache.current(pid);
      let bin = info?.binary ?? '';
      let ppid = 0;
      if (!bin) bin = await fs.promises.readlink(`/proc/${pid}/exe`).catch(() => '');
      const stat = await fs.promises.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      const m = /\) \S (\d+)/.exec(stat);
      if (m) ppid = Number(m[1]);
      if (bin) binOf.set(pid, { bin, ppid });
    }
    const maskOf = (pid: number): bigint => byPath.get(binOf.get(pid)?.bin ?? '') ?? 0n;
    const m = this.map('th_pc_procs');
    for (const pid of binOf.keys()) {
      const mask = maskOf(pid);
      let inherited = 0n;
      if (follow) {
        let p = binOf.get(pid)?.ppid ?? 0;
        for (let depth = 0; p > 1 && depth < 64; depth++) {
          inherited |= maskOf(p) & follow;
          p = binOf.get(p)?.ppid ?? 0;
        }
      }
      const fol = inherited | (mask & follow);
      if (!mask && !fol) continue;
      const k = Buffer.alloc(4);
      k.writeUInt32LE(pid, 0);
      const v = Buffer.alloc(16);
      v.writeBigUInt64LE(mask, 0);
      v.writeBigUInt64LE(fol, 8);
      try {
        m.update(k, v, 1 /* BPF_NOEXIST: what the exec hook saw wins */);
      } catch {
        /* already set by the kernel */
      }
    }
  }

  private writeStaticSets(): void {
    for (const r of this.hook.rules) {
      for (const c of r.checks) {
        if (c.kind === 'addr') {
          for (const cidr of c.cidrs) {
            const k = addrKey(c.set, cidr);
            if (k) this.map('th_pc_addrs').update(k, Buffer.from([1]));
          }
        } else if (c.kind === 'ident') {
          for (const id of c.identities) this.map('th_pc_ids').update(idKey(c.set, id), Buffer.from([1]));
        }
      }
    }
  }

  /** Re-resolves DLabels sets and the podSelector netns set now; concurrent calls share one round. */
  refresh(): Promise<void> {
    if (this.closed || (!this.hook.usesLabels && !this.hook.podSelector)) return Promise.resolve();
    this.refreshing ??= this.refreshRound().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private apiSocket(): string | undefined {
    const a = this.identity?.api?.socketPath;
    return a || undefined;
  }

  private async refreshRound(): Promise<void> {
    const problems: string[] = [];
    const socket = this.apiSocket();
    const known = new Map<number, readonly string[]>();
    for (const r of reservedIdentities()) known.set(r.id, r.labels);
    let listed = false;
    if (socket) {
      try {
        for (const i of await listIdentities({ socket })) known.set(i.id, i.labels);
        listed = true;
      } catch (e) {
        problems.push(`DLabels: ${(e as Error).message}; keeping the previous identity sets`);
      }
      // Identities the ipcache holds that the listing lacks: ask for them one by one, bounded.
      if (listed) await this.onDemand(socket, known, problems);
    } else if (this.hook.usesLabels || this.hook.podSelector) {
      problems.push('no Cilium agent API: DLabels match reserved identities only');
      listed = true;
    }
    if (this.closed) return;
    if (listed) {
      this.known = known;
      for (const r of this.hook.rules) {
        for (const c of r.checks) if (c.kind === 'labels') this.syncLabelSet(c.set, (labels) => selectorMatches(c.selector, labels));
      }
    }
    if (this.hook.podSelector && socket) await this.syncNetns(socket, problems);
    this.problems.splice(0, this.problems.length, ...problems);
  }

  private async onDemand(socket: string, known: Map<number, readonly string[]>, problems: string[]): Promise<void> {
    const maps = this.identity?.maps;
    if (!maps) return;
    const name = maps.status().ipcache;
    if (!name) return;
    let ids: Set<number>;
    try {
      const m = this.ctx.deps.native.openPinnedMap(maps.pinPath(name));
      try {
        ids = new Set<number>();
        const keys = m.keys();
        for (const k of keys.slice(0, 65536)) {
          const v = m.lookup(k);
          if (v) ids.add(v.readUInt32LE(0));
        }
      } finally {
        m.close();
      }
    } catch (e) {
      problems.push(`DLabels: reading ${name}: ${(e as Error).message}`);
      return;
    }
    const now = Date.now();
    let budget = this.opts.onDemandPerRound ?? 64;
    for (const id of ids) {
      if (known.has(id) || id === 0) continue;
      const prev = this.known.get(id);
      if (prev) {
        known.set(id, prev);
        continue;
      }
      if ((this.onDemandMisses.get(id) ?? 0) > now) continue;
      if (budget-- <= 0) break;
      try {
        const got: LabeledIdentity | undefined = await fetchIdentity({ socket }, id);
        if (got) known.set(id, got.labels);
        else {
          if (this.onDemandMisses.size > 4096) this.onDemandMisses.clear();
          this.onDemandMisses.set(id, now + 30_000);
        }
      } catch (e) {
        problems.push(`DLabels: identity ${id}: ${(e as Error).message}`);
        break;
      }
    }
  }

  private syncLabelSet(set: number, match: (labels: readonly string[]) => boolean): void {
    if (!this.obj) return;
    const want = new Set<number>();
    for (const [id, labels] of this.known) if (match(labels)) want.add(id);
    const cur = this.labelSets.get(set) ?? new Set<number>();
    const m = this.map('th_pc_ids');
    for (const id of want) if (!cur.has(id)) m.update(idKey(set, id), Buffer.from([1]));
    for (const id of cur) if (!want.has(id)) m.delete(idKey(set, id));
    this.labelSets.set(set, want);
  }

  /** podSelector: netns of running processes whose addresses belong to matching Cilium endpoints. */
  private async syncNetns(socket: string, problems: string[]): Promise<void> {
    const sel = this.hook.podSelector;
    if (!sel || !this.obj) return;
    const api = this.identity?.api;
    if (!api) return;
    const ok = await api.refreshEndpoints({ force: true });
    if (!ok) {
      problems.push(`podSelector: GET /v1/endpoint on ${socket} failed; keeping the previous pods`);
      return;
    }
    const ips = new Map<string, { id: number; identity: number }>();
    for (const ep of api.endpoints()) if (selectorMatches(sel, ep.labels)) for (const ip of [...ep.ipv4, ...ep.ipv6]) ips.set(ip, ep);
    const want = new Set<number>();
    if (ips.size) {
      for (const [ns, pid] of await netnsOfProcesses()) {
        const hit = (await netnsAddresses(pid)).map((a) => ips.get(a)).find((x) => x !== undefined);
        if (!hit) continue;
        want.add(ns);
        // The events' source end: this pod's endpoint, known before its first connect.
        this.identity?.resolver.learnNetns(ns, hit.id, hit.identity);
      }
    }
    if (this.closed || !this.obj) return;
    const m = this.map('th_pc_netns');
    for (const ns of want) if (!this.netnsSet.has(ns)) {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(ns, 0);
      m.update(k, Buffer.from([1]));
    }
    for (const ns of this.netnsSet) if (!want.has(ns)) {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(ns, 0);
      m.delete(k);
    }
    this.netnsSet = want;
  }

  /** Identities in a DLabels set now (tests, status). */
  labelSet(selectorIndex: number): number[] {
    const r = this.hook.rules.find((x) => x.index === selectorIndex);
    const c = r?.checks.find((x) => x.kind === 'labels');
    return c ? [...(this.labelSets.get(c.set) ?? [])].sort((a, b) => a - b) : [];
  }

  pods(): number[] {
    return [...this.netnsSet];
  }

  stats(): ConnectStats | undefined {
    if (!this.obj) return this.lastStats;
    try {
      const v = this.map('th_pc_stats').lookup(ZERO4);
      if (v) return sumStats(v);
    } catch {
      /* closed */
    }
    return this.lastStats;
  }

  private pollStats(): void {
    const s = this.stats();
    if (!s) return;
    const prev = this.lastStats;
    this.lastStats = s;
    const d = (f: keyof ConnectStats): number => s[f] - (prev?.[f] ?? 0);
    const c = this.ctx.counters;
    c.post += d('post');
    c.nopost += d('nopost');
    c.override += d('override');
    c.monitorOverride += d('monitor_override');
    c.signal += d('signal');
    c.monitorSignal += d('monitor_signal');
  }

  /**
   * Decisions whose process the cache does not know yet (its exec record is
   * in the process sensor's ring, which drains separately): held back a
   * little, bounded; published as they are when the wait is over.
   */
  private pending: { d: ConnectDecision; until: number }[] = [];
  private pendingTimer?: NodeJS.Timeout;
  /** Decisions published without their process (not in the cache within the wait, or the queue was full). */
  noProcess = 0;

  private processKnown(d: ConnectDecision): boolean {
    const p = resolveProcess(this.ctx.deps.cache, this.ctx.deps.clock, d.tgid, d.procKtime);
    return !p.unknown && (d.procKtime === 0n || p.process.ktime === d.procKtime);
  }

  private onBatch(batch: Buffer, count: number): void {
    const out: PolicyEvent[] = [];
    let off = 0;
    for (let i = 0; i < count && off + 8 <= batch.length; i++) {
      const len = batch.readUInt32LE(off);
      const rec = batch.subarray(off + 8, off + 8 + len);
      off += 8 + ((len + 7) & ~7);
      const d = decodeDecision(rec);
      if (!d) continue;
      if (!this.processKnown(d) && this.pending.length < 4096) {
        this.pending.push({ d, until: Date.now() + PROCESS_WAIT_MS });
        this.pendingTimer ??= setTimeout(() => this.flushPending(), 20);
        continue;
      }
      this.emit(d, out);
    }
    if (out.length) (this.ctx.deps.bus as EventBus).publish(out);
  }

  private flushPending(): void {
    this.pendingTimer = undefined;
    const now = Date.now();
    const out: PolicyEvent[] = [];
    const keep: { d: ConnectDecision; until: number }[] = [];
    for (const p of this.pending) {
      if (this.closed || this.processKnown(p.d) || now >= p.until) this.emit(p.d, out);
      else keep.push(p);
    }
    this.pending = keep;
    if (out.length) (this.ctx.deps.bus as EventBus).publish(out);
    if (keep.length && !this.closed) this.pendingTimer = setTimeout(() => this.flushPending(), 20);
  }

  private emit(d: ConnectDecision, out: PolicyEvent[]): void {
    try {
      const ev = this.toEvent(d);
      if (!ev.process.binary) this.noProcess++;
      out.push(ev);
    } catch (e) {
      this.ctx.deps.log.warn(`connect policy ${this.policy.metadata.name}: event dropped: ${(e as Error).message}`);
    }
  }

  private argOf(a: KProbeArg, d: ConnectDecision, proto: string): PolicyArg | undefined {
    const fam = d.family === 4 ? 'AF_INET' : 'AF_INET6';
    const label = a.label ? { label: a.label } : {};
    if (a.type === 'sock' || a.type === 'socket') {
      return { ...label, t: 'sock', sock: { family: fam, type: proto === 'IPPROTO_TCP' ? 'SOCK_STREAM' : 'SOCK_DGRAM', protocol: proto, saddr: d.saddr, daddr: d.daddr, sport: d.sport, dport: d.dport, cookie: d.cookie, state: proto === 'IPPROTO_TCP' ? 'TCP_CLOSE' : undefined } };
    }
    if (a.type === 'sockaddr') return { ...label, t: 'sockaddr', family: fam, addr: d.daddr, port: d.dport };
    return undefined;
  }

  private toEvent(d: ConnectDecision): PolicyEvent {
    const { cache, clock, config } = this.ctx.deps;
    const p = resolveProcess(cache, clock, d.tgid, d.procKtime);
    const proto = d.protocol === 6 ? 'IPPROTO_TCP' : 'IPPROTO_UDP';
    const args: PolicyArg[] = [];
    for (const a of this.hook.args) {
      const x = this.argOf(a, d, proto);
      if (x) args.push(x);
    }
    const kill = (d.actions & TH_PC_ACT_SIGKILL) !== 0;
    const override = (d.actions & TH_PC_ACT_OVERRIDE) !== 0;
    const monitor = (d.flags & TH_PC_EV_MONITOR) !== 0;
    const action: PolicyAction = kill ? 'sigkill' : override ? 'override' : d.actions & TH_PC_ACT_NOPOST ? 'nopost' : 'post';
    let enforcement: PolicyEvent['enforcement'];
    if (kill || override) {
      enforcement = d.err ? { kind: 'denied', monitor, errno: -d.err } : { kind: 'denied', monitor };
      if (kill) enforcement.signal = 9;
    }
    let source: EndpointInfo | undefined;
    let destination: EndpointInfo | undefined;
    if (this.identity) {
      let idFlags = 0;
      if (d.flags & TH_PC_EV_ID_LXC) idFlags |= TH_NET_ID_D_LXC;
      if (d.flags & (TH_PC_EV_ID_IPCACHE | TH_PC_EV_ID_RULE)) idFlags |= TH_NET_ID_D_IPCACHE;
      if (d.flags & TH_PC_EV_MAP_IPCACHE) idFlags |= TH_NET_ID_MAP_IPCACHE;
      const r = this.identity.resolve({ tgid: d.tgid, family: d.family, saddr: d.saddr, daddr: d.daddr, netns: d.netns, dIdentity: d.dIdentity, dEndpoint: d.dEndpoint, idFlags });
      source = r.source;
      destination = r.destination;
    }
    const kp = this.hook.hook === 'kprobe' ? this.policy.spec.kprobes?.[Number(/\d+/.exec(this.hook.section)?.[0] ?? 0)] : undefined;
    const lsm = this.hook.hook === 'lsm' ? this.policy.spec.lsmhooks?.[Number(/\d+/.exec(this.hook.section)?.[0] ?? 0)] : undefined;
    const ev: PolicyEvent = {
      kind: 'policy',
      seq: 0,
      time: clock.toWall(d.ktime),
      nodeName: config.nodeName,
      process: p.process,
      parent: p.parent,
      wire: new Map(),
      hook: this.hook.hook,
      functionName: this.hook.call,
      args,
      policyName: this.policy.metadata.name,
      action,
      net: { protocol: d.protocol === 6 ? 'tcp' : 'udp', family: d.family, saddr: d.saddr, sport: d.sport, daddr: d.daddr, dport: d.dport, source, destination },
    };
    if (this.policy.metadata.namespace) ev.policyNamespace = this.policy.metadata.namespace;
    if (enforcement) ev.enforcement = enforcement;
    const message = kp?.message ?? lsm?.message;
    if (message) ev.message = message;
    const tags = kp?.tags ?? lsm?.tags;
    if (tags?.length) ev.tags = [...tags];
    if (d.flags & TH_PC_EV_KILL && !enforcement) ev.enforcement = { kind: 'killed', monitor: false, signal: 9 };
    return ev;
  }

  async setMode(mode: PolicyMode): Promise<void> {
    this.mode = mode;
    this.writeCfg();
  }

  async setEnabled(on: boolean): Promise<void> {
    this.enabled = on;
    this.writeCfg();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.statsTimer) clearInterval(this.statsTimer);
    if (this.pendingTimer) clearTimeout(this.pendingTimer);
    this.identity?.maps.off('change', this.onMapsChange);
    await this.refreshing?.catch(() => undefined);
    if (this.obj) this.pollStats();
    for (const l of this.links.reverse()) l.destroy();
    this.links = [];
    this.consumer?.stop();
    this.consumer = undefined;
    this.flushPending();
    this.unbindIdentity?.();
    this.unbindIdentity = undefined;
    for (const m of this.maps.values()) m.close();
    this.maps.clear();
    this.obj?.close();
    this.obj = undefined;
  }
}
