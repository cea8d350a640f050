// Read-only access to Cilium's pinned identity maps from user space:
// IP → security identity (cilium_ipcache_v2 / cilium_ipcache, LPM trie) and
// local pod IP → endpoint (cilium_lxc). Maps are recognised by pin name plus
// type/key/value size (and BTF when bpftool is at hand); anything else is
// refused, never decoded. Cilium re-creates its maps on restart/upgrade, so
// the pins are re-checked by map id (inotify on bpffs is best effort) and
// re-opened when they change. Independent of the network sensor: the
// in-kernel lookup from our own programs uses bpf/include/cilium_maps.h.
import { EventEmitter } from 'node:events';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadNative } from '../../kernel/native';
import type { BpfMap, NativeBinding } from '../../kernel/types';
import {
  decodeEndpointInfo,
  decodeIpcacheV1,
  decodeIpcacheV2,
  endpointKey,
  ipcacheKey,
  IPCACHE_V1,
  IPCACHE_V2,
  LAYOUTS,
  LXC,
  parseIp,
  type CiliumMapName,
  type EndpointValue,
  type IpcacheValue,
  type MapLayout,
} from './layout';
import { IDENTITY_HOST, IDENTITY_UNKNOWN, IDENTITY_WORLD, IDENTITY_WORLD_IPV4, IDENTITY_WORLD_IPV6 } from './reserved';

export const DEFAULT_CILIUM_MAPS_DIR = '/sys/fs/bpf/tc/globals';

export type CiliumGeneration = '1.16/1.17' | '1.18+';

export interface CiliumMapsOptions {
  /** bpffs directory holding Cilium's global pins. Default /sys/fs/bpf/tc/globals. */
  dir?: string;
  /** The addon; loaded on first open by default. */
  native?: NativeBinding;
  /** Period of the map-id re-check in ms (0 = only on demand / fs events). Default 5000. */
  recheckMs?: number;
  /** fs.watch the directory as well (bpffs may not deliver events). Default true. */
  watch?: boolean;
  /**
   * Identity for addresses no ipcache entry covers (and for identity 0):
   * a number, or 'by-family' for world-ipv4 (9) / world-ipv6 (10) as in
   * dual-stack clusters. Default 2 (world).
   */
  worldIdentity?: number | 'by-family';
  /** ClusterMesh cluster id in lookup keys. Default 0 (local cluster). */
  clusterId?: number;
  /**
   * BTF check of key/value structs with bpftool: 'auto' (if bpftool runs),
   * 'require' (refuse maps whose BTF cannot be checked), 'off'. Default 'auto'.
   */
  btf?: 'auto' | 'require' | 'off';
  /** bpftool binary. Default 'bpftool' on PATH. */
  bpftool?: string;
  /** Where refusals and re-opens are reported. Default: nowhere. */
  log?: (msg: string) => void;
}

export type MapState =
  | { state: 'absent'; path: string }
  | { state: 'open'; path: string; id: number; flags: number; btf: 'verified' | 'unverified' }
  | { state: 'refused'; path: string; id: number; reason: string }
  | { state: 'error'; path: string; reason: string };

export interface CiliumMapsStatus {
  dir: string;
  /** Which Cilium generation the ipcache in use belongs to; undefined without one. */
  generation?: CiliumGeneration;
  /** The ipcache map lookups use (v2 wins over v1 during an upgrade). */
  ipcache?: CiliumMapName;
  maps: Record<CiliumMapName, MapState>;
}

export interface CiliumMapsChange {
  map: CiliumMapName;
  kind: 'opened' | 'replaced' | 'removed' | 'refused' | 'error';
  oldId?: number;
  newId?: number;
  reason?: string;
}

export interface IdentityLookup {
  identity: number;
  /** 'ipcache': an entry covered the address; 'world-rule': none did (or it said 0). */
  source: 'ipcache' | 'world-rule';
  /** The decoded ipcache value when source is 'ipcache'. */
  entry?: IpcacheValue;
}

export interface LocalEndpoint extends EndpointValue {
  /** sec_id, except node-IP entries (ENDPOINT_F_HOST) with sec_id 0 → host (1). */
  identity: number;
}

export interface CiliumMapsStats {
  lookups: number;
  ipcacheHits: number;
  worldRule: number;
  endpointHits: number;
  endpointMisses: number;
  /** Failed kernel lookups (each also triggers a re-check). */
  errors: number;
  rechecks: number;
  reopens: number;
  refusals: number;
}

interface OpenMap {
  name: CiliumMapName;
  map: BpfMap;
  id: number;
}

interface FdInfo {
  id: number;
  type: number;
  flags: number;
}

/** map_id / map_type / map_flags of a map fd: the addon's info has no id, the kernel's fdinfo does. */
function readFdInfo(fd: number): FdInfo {
  const text = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  };
  return { id: field('map_id'), type: field('map_type'), flags: field('map_flags') };
}

function describe(typeName: string, keySize: number, valueSize: number): string {
  return `${typeName} key ${keySize} B value ${valueSize} B`;
}

/** Why a map does not have the layout we decode, or undefined when it does. */
export function layoutMismatch(layout: MapLayout, found: { type: number; typeName: string; keySize: number; valueSize: number }): string | undefined {
  if (found.type === layout.type && found.keySize === layout.keySize && found.valueSize === layout.valueSize) return undefined;
  return (
    `unknown layout of ${layout.name}: found ${describe(found.typeName, found.keySize, found.valueSize)}, ` +
    `expected ${describe(layout.typeName, layout.keySize, layout.valueSize)} (${layout.releases})`
  );
}

// --- BTF -------------------------------------------------------------------

interface BtfMember {
  name: string;
  bits_offset: number;
}
interface BtfType {
  kind: string;
  name: string;
  size?: number;
  members?: BtfMember[];
}

/** Members we read, at the bit offsets we read them (cilium-maps.md §6). */
const BTF_EXPECT: Record<CiliumMapName, { key: Record<string, number>; value: Record<string, number> }> = {
  [IPCACHE_V1]: { key: { family: 56 }, value: { sec_identity: 0 } },
  [IPCACHE_V2]: { key: { family: 56 }, value: { sec_identity: 0 } },
  [LXC]: { key: { family: 128 }, value: { ifindex: 0, lxc_id: 48, flags: 64, sec_id: 256 } },
};

type BtfResult = { result: 'verified' } | { result: 'unverified'; why: string } | { result: 'mismatch'; reason: string } | { result: 'no-bpftool' };

function checkStruct(t: BtfType | undefined, what: string, size: number, expect: Record<string, number>): string | undefined {
  if (!t || t.kind !== 'STRUCT' || !t.members) return undefined; // typedef or absent: nothing to compare
  if (t.size !== size) return `${what} struct ${t.name} is ${t.size} B, expected ${size} B`;
  for (const [member, bits] of Object.entries(expect)) {
    const m = t.members.find((x) => x.name === member);
    if (!m) return `${what} struct ${t.name} has no member ${member}`;
    if (m.bits_offset !== bits) return `${what} member ${member} at byte ${m.bits_offset / 8}, expected ${bits / 8}`;
  }
  return undefined;
}

/** Compares the pinned map's key/value BTF with what the decoder reads. */
export function checkMapBtf(bpftool: string, pinned: string, layout: MapLayout): BtfResult {
  let out: string;
  try {
    out = execFileSync(bpftool, ['-j', 'btf', 'dump', 'map', 'pinned', pinned], {
      encoding: 'utf8',
      timeout: 3000,
      maxBuffer: 4 << 20,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') return { result: 'no-bpftool' };
    return { result: 'unverified', why: `bpftool: ${(err.stderr ?? err.message).trim().split('\n')[0]}` };
  }
  let types: BtfType[];
  try {
    types = (JSON.parse(out) as { types?: BtfType[] }).types ?? [];
  } catch {
    return { result: 'unverified', why: 'bpftool printed no JSON' };
  }
  // `btf dump map` prints the key type, then the value type.
  if (types.length !== 2) return { result: 'unverified', why: `map BTF has ${types.length} key/value types` };
  const exp = BTF_EXPECT[layout.name];
  const reason =
    checkStruct(types[0], 'key', layout.keySize, exp.key) ?? checkStruct(types[1], 'value', layout.valueSize, exp.value);
  if (reason) return { result: 'mismatch', reason: `BTF of ${layout.name} does not match: ${reason}` };
  if (types[0].kind !== 'STRUCT' && types[1].kind !== 'STRUCT') return { result: 'unverified', why: 'key/value are not structs' };
  return { result: 'verified' };
}

// --- reader ----------------------------------------------------------------

const ALL: readonly CiliumMapName[] = [IPCACHE_V2, IPCACHE_V1, LXC];

export interface CiliumMaps {
  on(event: 'change', listener: (change: CiliumMapsChange) => void): this;
  once(event: 'change', listener: (change: CiliumMapsChange) => void): this;
  off(event: 'change', listener: (change: CiliumMapsChange) => void): this;
  emit(event: 'change', change: CiliumMapsChange): boolean;
}

/**
 * Reader of Cilium's identity maps. `start()` once; lookups are synchronous
 * kernel lookups (a few µs) and never throw.
 */
export class CiliumMaps extends EventEmitter {
  readonly dir: string;
  private native?: NativeBinding;
  private readonly recheckMs: number;
  private readonly watchDir: boolean;
  private readonly world: number | 'by-family';
  private readonly clusterId: number;
  private btfMode: 'auto' | 'require' | 'off';
  private readonly bpftool: string;
  private readonly log: (msg: string) => void;
  private readonly opened = new Map<CiliumMapName, OpenMap>();
  private readonly states = new Map<CiliumMapName, MapState>();
  private timer?: NodeJS.Timeout;
  private watcher?: fs.FSWatcher;
  private debounce?: NodeJS.Timeout;
  private closed = false;
  private readonly counters: CiliumMapsStats = {
    lookups: 0,
    ipcacheHits: 0,
    worldRule: 0,
    endpointHits: 0,
    endpointMisses: 0,
    errors: 0,
    rechecks: 0,
    reopens: 0,
    refusals: 0,
  };

  constructor(opts: CiliumMapsOptions = {}) {
    super();
    this.dir = opts.dir ?? DEFAULT_CILIUM_MAPS_DIR;
    this.native = opts.native;
    this.recheckMs = opts.recheckMs ?? 5000;
    this.watchDir = opts.watch ?? true;
    this.world = opts.worldIdentity ?? IDENTITY_WORLD;
    this.clusterId = opts.clusterId ?? 0;
    this.btfMode = opts.btf ?? 'auto';
    this.bpftool = opts.bpftool ?? 'bpftool';
    this.log = opts.log ?? (() => undefined);
    for (const name of ALL) this.states.set(name, { state: 'absent', path: this.pinPath(name) });
  }

  /** Opens what is there now and keeps watching for re-created maps. Never throws. */
  start(): CiliumMapsStatus {
    this.recheck();
    if (this.recheckMs > 0 && !this.timer) {
      this.timer = setInterval(() => this.recheck(), this.recheckMs);
      this.timer.unref();
    }
    this.ensureWatcher();
    return this.status();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
    this.watcher?.close();
    this.timer = this.debounce = this.watcher = undefined;
    for (const m of this.opened.values()) m.map.close();
    this.opened.clear();
  }

  pinPath(name: CiliumMapName): string {
    return path.join(this.dir, name);
  }

  status(): CiliumMapsStatus {
    const maps = Object.fromEntries(ALL.map((n) => [n, this.states.get(n) as MapState])) as Record<CiliumMapName, MapState>;
    const ipcache = this.ipcache()?.name;
    const generation: CiliumGeneration | undefined = ipcache === IPCACHE_V2 ? '1.18+' : ipcache === IPCACHE_V1 ? '1.16/1.17' : undefined;
    return { dir: this.dir, generation, ipcache, maps };
  }

  stats(): CiliumMapsStats {
    return { ...this.counters };
  }

  /** Map id in use for a map, if open (tests, status pages). */
  mapId(name: CiliumMapName): number | undefined {
    return this.opened.get(name)?.id;
  }

  /**
   * The fd of a map that passed the checks (valid until the next change
   * event for it), for handing the map to the kernel, e.g. as an inner map
   * of our own programs. Never pass it to anything that writes.
   */
  mapFd(name: CiliumMapName): number | undefined {
    return this.opened.get(name)?.map.fd;
  }

  /**
   * Identity of an address by longest-prefix match in the ipcache. Addresses
   * no entry covers (or without Cilium) get the world identity by rule.
   * undefined only for text that is not an IP address or a failed kernel lookup.
   */
  lookupIdentity(ip: string): IdentityLookup | undefined {
    const addr = parseIp(ip);
    if (!addr) return undefined;
    this.counters.lookups++;
    const m = this.ipcache();
    if (m) {
      let raw: Buffer | null;
      try {
        raw = m.map.lookup(ipcacheKey(addr, undefined, this.clusterId));
      } catch (e) {
        this.lookupFailed(m, e);
        return undefined;
      }
      if (raw) {
        const entry = m.name === IPCACHE_V2 ? decodeIpcacheV2(raw) : decodeIpcacheV1(raw);
        if (entry.identity !== IDENTITY_UNKNOWN) {
          this.counters.ipcacheHits++;
          return { identity: entry.identity, source: 'ipcache', entry };
        }
      }
    }
    this.counters.worldRule++;
    const identity = this.world === 'by-family' ? (addr.family === 4 ? IDENTITY_WORLD_IPV4 : IDENTITY_WORLD_IPV6) : this.world;
    return { identity, source: 'world-rule' };
  }

  /** The local endpoint owning an address (cilium_lxc), if any. */
  lookupEndpoint(ip: string): LocalEndpoint | undefined {
    const addr = parseIp(ip);
    const m = this.opened.get(LXC);
    if (!addr || !m) return undefined;
    let raw: Buffer | null;
    try {
      raw = m.map.lookup(endpointKey(addr, this.clusterId));
    } catch (e) {
      this.lookupFailed(m, e);
      return undefined;
    }
    if (!raw) {
      this.counters.endpointMisses++;
      return undefined;
    }
    this.counters.endpointHits++;
    const v = decodeEndpointInfo(raw);
    return { ...v, identity: v.isHost && v.identity === 0 ? IDENTITY_HOST : v.identity };
  }

  /**
   * Compares every pin with what is open (by map id) and re-opens what
   * changed. Runs on the timer and on fs events; callable directly.
   * Returns true when anything changed.
   */
  recheck(): boolean {
    if (this.closed) return false;
    this.counters.rechecks++;
    let native: NativeBinding;
    try {
      native = this.native ??= loadNative();
    } catch (e) {
      return this.setAllError(`native addon unavailable: ${(e as Error).message}`);
    }
    let changed = false;
    for (const name of ALL) {
      try {
        changed = this.recheckOne(native, name) || changed;
      } catch (e) {
        // Runs on timers: an unexpected failure must not take the agent down.
        this.log(`cilium: re-check of ${name} failed: ${(e as Error).message}`);
      }
    }
    this.ensureWatcher();
    return changed;
  }

  private ipcache(): OpenMap | undefined {
    return this.opened.get(IPCACHE_V2) ?? this.opened.get(IPCACHE_V1);
  }

  private lookupFailed(m: OpenMap, e: unknown): void {
    this.counters.errors++;
    this.log(`cilium: lookup in ${m.name} (map id ${m.id}) failed: ${(e as Error).message}`);
    this.scheduleRecheck();
  }

  private setAllError(reason: string): boolean {
    let changed = false;
    for (const name of ALL) {
      const prev = this.states.get(name);
      if (prev?.state === 'error' && prev.reason === reason) continue;
      this.states.set(name, { state: 'error', path: this.pinPath(name), reason });
      this.emitChange({ map: name, kind: 'error', reason });
      changed = true;
    }
    return changed;
  }

  private recheckOne(native: NativeBinding, name: CiliumMapName): boolean {
    const file = this.pinPath(name);
    const cur = this.opened.get(name);
    const prev = this.states.get(name) as MapState;
    let probe: BpfMap;
    try {
      probe = native.openPinnedMap(file);
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { errno?: number };
      const gone = err.code === 'ENOENT' || err.errno === 2;
      if (gone) {
        if (prev.state === 'absent') return false;
        this.dropOpen(name);
        this.states.set(name, { state: 'absent', path: file });
        this.log(`cilium: ${name} is gone from ${this.dir}`);
        this.emitChange({ map: name, kind: 'removed', oldId: cur?.id ?? ('id' in prev ? prev.id : undefined) });
        return true;
      }
      const reason = `open ${file}: ${err.message}`;
      if (prev.state === 'error' && prev.reason === reason) return false;
      this.dropOpen(name);
      this.states.set(name, { state: 'error', path: file, reason });
      this.emitChange({ map: name, kind: 'error', oldId: cur?.id, reason });
      return true;
    }
    let info: FdInfo;
    try {
      info = readFdInfo(probe.fd);
    } catch (e) {
      probe.close();
      const reason = `read fdinfo of ${file}: ${(e as Error).message}`;
      this.states.set(name, { state: 'error', path: file, reason });
      return prev.state !== 'error';
    }
    // Same map as before (open or refused): nothing to do.
    if ((cur && cur.id === info.id) || (prev.state === 'refused' && prev.id === info.id)) {
      probe.close();
      return false;
    }
    const layout = LAYOUTS[name];
    let reason = layoutMismatch(layout, { type: info.type, typeName: probe.type, keySize: probe.keySize, valueSize: probe.valueSize });
    let btf: 'verified' | 'unverified' = 'unverified';
    if (!reason && this.btfMode !== 'off') {
      const r = checkMapBtf(this.bpftool, file, layout);
      if (r.result === 'mismatch') reason = r.reason;
      else if (r.result === 'verified') btf = 'verified';
      else if (this.btfMode === 'require') reason = `BTF of ${name} could not be checked: ${r.result === 'no-bpftool' ? `${this.bpftool} not found` : r.why}`;
      else if (r.result === 'no-bpftool') this.btfMode = 'off'; // auto: do not try a missing tool again
    }
    const oldId = cur?.id;
    this.dropOpen(name);
    if (reason) {
      probe.close();
      this.counters.refusals++;
      const msg = `refusing ${file} (map id ${info.id}): ${reason}; map-based enrichment from ${name} disabled`;
      this.log(`cilium: ${msg}`);
      this.states.set(name, { state: 'refused', path: file, id: info.id, reason: msg });
      this.emitChange({ map: name, kind: 'refused', oldId, newId: info.id, reason: msg });
      return true;
    }
    this.opened.set(name, { name, map: probe, id: info.id });
    this.states.set(name, { state: 'open', path: file, id: info.id, flags: info.flags, btf });
    if (oldId !== undefined) this.counters.reopens++;
    this.log(`cilium: ${oldId !== undefined ? 're-opened' : 'opened'} ${file} (map id ${info.id}${oldId !== undefined ? `, was ${oldId}` : ''}, BTF ${btf})`);
    this.emitChange({ map: name, kind: oldId !== undefined ? 'replaced' : 'opened', oldId, newId: info.id });
    return true;
  }

  private dropOpen(name: CiliumMapName): void {
    const cur = this.opened.get(name);
    if (!cur) return;
    cur.map.close();
    this.opened.delete(name);
  }

  private emitChange(change: CiliumMapsChange): void {
    // A throwing listener must not break the re-check loop.
    try {
      this.emit('change', change);
    } catch (e) {
      this.log(`cilium: change listener threw: ${(e as Error).message}`);
    }
  }

  private scheduleRecheck(): void {
    if (this.closed || this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.recheck();
    }, 50);
    this.debounce.unref();
  }

  private ensureWatcher(): void {
    if (!this.watchDir || this.watcher || this.closed) return;
    try {
      this.watcher = fs.watch(this.dir, { persistent: false }, () => this.scheduleRecheck());
      this.watcher.on('error', () => {
        // The directory went away (bpffs unmounted); the timer keeps checking.
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      // Directory not there yet: the periodic re-check retries.
    }
  }
}
