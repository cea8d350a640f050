// STAND-IN for Cilium's pinned identity maps (test fixture, not Cilium).
//
// Creates cilium_ipcache / cilium_ipcache_v2 / cilium_lxc with exactly
// Cilium's layouts on a private bpffs, by loading
// integration/standins/cilium_fixture.bpf.c (LIBBPF_PIN_BY_NAME, one object
// per map), and fills them the way the Cilium agent would. The value bytes are
// written here with their own offsets (from shared/reference/cilium-maps.md),
// independently of the reader's decoders in src/enrich/cilium/layout.ts.
//
// Needs root (bpffs mount, map creation) and clang (the fixture objects are
// built on first use with `make -C integration/standins`).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadNative, repoRoot } from '../../src/kernel/native';
import type { BpfMap, BpfObject, NativeBinding } from '../../src/kernel/types';
import { parseCidr, parseIp, type IpAddr } from '../../src/enrich/cilium/layout';

/** '1.17': cilium_ipcache (12-byte value); '1.18': cilium_ipcache_v2 (24-byte value); 'upgrade': both pinned. */
export type FixtureGeneration = '1.17' | '1.18' | 'upgrade';

type Variant = 'ipcache_v1' | 'ipcache_v2' | 'lxc' | 'ipcache_bad' | 'lxc_shifted';
const VARIANT_MAP: Record<Variant, string> = {
  ipcache_v1: 'cilium_ipcache',
  ipcache_v2: 'cilium_ipcache_v2',
  lxc: 'cilium_lxc',
  ipcache_bad: 'cilium_ipcache',
  lxc_shifted: 'cilium_lxc',
};

/**
 * Layouts no Cilium release has, for negative tests:
 * 'value-size': cilium_ipcache with a 16-byte value (+ a normal cilium_lxc);
 * 'btf-offsets': cilium_ipcache_v2 as 1.18 + a cilium_lxc of the right sizes
 * whose BTF puts sec_id at 44 and lxc_id at 4 (only a BTF check sees it).
 */
export type UnknownLayout = 'value-size' | 'btf-offsets';

export interface IpcacheEntryOptions {
  identity: number;
  /** Remote node IP (IPv4 for v1; IPv4 or IPv6 for v2). */
  tunnelEndpoint?: string;
  /** IPsec key index. */
  key?: number;
  /** Raw flag byte; v2 sets has_tunnel_ep / ipv6_tunnel_ep itself when tunnelEndpoint is given. */
  flags?: number;
  clusterId?: number;
}

export interface EndpointEntryOptions {
  /** Cilium endpoint ID (lxc_id). */
  id: number;
  /** Security identity (sec_id). */
  identity?: number;
  /** Same as identity, by the struct's field name; wins when both are given. */
  secId?: number;
  ifindex: number;
  mac?: string;
  nodeMac?: string;
  /** ENDPOINT_F_HOST = 1 for node IPs. */
  flags?: number;
  parentIfindex?: number;
  clusterId?: number;
}

export interface CiliumMapsFixtureOptions {
  generation: FixtureGeneration;
  /** Also pin cilium_lxc. Default true. */
  lxc?: boolean;
  native?: NativeBinding;
}

interface Created {
  variant: Variant;
  obj: BpfObject;
  map: BpfMap;
}

function mounted(dir: string): boolean {
  return fs.readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === dir);
}

/** Directory of the fixture objects. */
export function fixtureObjectDir(): string {
  return path.join(repoRoot(), 'integration', 'standins', '.output');
}

/**
 * Builds the fixture objects (make is incremental). Returns undefined when
 * they are ready, else why not (for t.skip).
 */
export function buildFixtureObjects(): string | undefined {
  const src = path.join(repoRoot(), 'integration', 'standins');
  try {
    execFileSync('make', ['-s', '-C', src], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  } catch (e) {
    const err = e as Error & { stderr?: Buffer };
    return `cannot build the Cilium map fixture (make -C integration/standins): ${(err.stderr?.toString() || err.message).trim().split('\n')[0]}`;
  }
  return undefined;
}

/** Why the fixture cannot run here, or undefined. */
export function fixtureUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to mount a bpffs and create BPF maps';
  try {
    loadNative();
  } catch (e) {
    return (e as Error).message;
  }
  return buildFixtureObjects();
}

function macBytes(mac: string | undefined): Buffer {
  const out = Buffer.alloc(8);
  if (!mac) return out;
  const parts = mac.split(':').map((h) => parseInt(h, 16));
  if (parts.length !== 6 || parts.some((n) => !(n >= 0 && n <= 255))) throw new Error(`bad MAC ${mac}`);
  Buffer.from(parts).copy(out, 0);
  return out;
}

function addrOf(ip: string): IpAddr {
  const a = parseIp(ip);
  if (!a) throw new Error(`not an IP address: ${ip}`);
  return a;
}

/** STAND-IN Cilium map set on a private bpffs. */
export class CiliumMapsFixture {
  /** Mount point of the private bpffs. */
  readonly mountPoint: string;
  /** Where the maps are pinned: <mount>/tc/globals, like Cilium's /sys/fs/bpf/tc/globals. */
  readonly dir: string;
  readonly generation: FixtureGeneration | 'unknown-layout';
  private readonly native: NativeBinding;
  private readonly maps = new Map<string, Created>();
  /** The model: re-applied when a map is re-created. */
  private readonly ipcacheEntries = new Map<string, { cidr: string; opts: IpcacheEntryOptions }>();
  private readonly endpointEntries = new Map<string, { ip: string; opts: EndpointEntryOptions }>();

  private constructor(generation: FixtureGeneration | 'unknown-layout', native: NativeBinding) {
    this.generation = generation;
    this.native = native;
    this.mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'tetrahub-cilium-bpffs-'));
    execFileSync('mount', ['-t', 'bpf', 'bpf', this.mountPoint], { stdio: 'ignore' });
    this.dir = path.join(this.mountPoint, 'tc', 'globals');
    fs.mkdirSync(this.dir, { recursive: true });
  }

  /** Creates the maps of a Cilium generation on a fresh private bpffs. */
  static create(opts: CiliumMapsFixtureOptions): CiliumMapsFixture {
    const f = new CiliumMapsFixture(opts.generation, opts.native ?? loadNative());
    try {
      if (opts.generation !== '1.18') f.createMap('ipcache_v1');
      if (opts.generation !== '1.17') f.createMap('ipcache_v2');
      if (opts.lxc ?? true) f.createMap('lxc');
    } catch (e) {
      f.close();
      throw e;
    }
    return f;
  }

  /** Maps named like Cilium's with a layout no Cilium release uses (see UnknownLayout). */
  static createUnknownLayout(kind: UnknownLayout = 'value-size', native?: NativeBinding): CiliumMapsFixture {
    const f = new CiliumMapsFixture('unknown-layout', native ?? loadNative());
    try {
      f.createMap(kind === 'value-size' ? 'ipcache_bad' : 'ipcache_v2');
      f.createMap(kind === 'value-size' ? 'lxc' : 'lxc_shifted');
    } catch (e) {
      f.close();
      throw e;
    }
    return f;
  }

  /** Map id of a pinned map (to compare with what a reader sees). */
  mapId(name: string): number {
    const c = this.maps.get(name);
    if (!c) throw new Error(`fixture has no ${name}`);
    const m = /^map_id:\s*(\d+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${c.map.fd}`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  }

  pinPath(name: string): string {
    return path.join(this.dir, name);
  }

  /** Adds or replaces an ipcache entry (prefix) in every ipcache map of this generation. */
  addIpcache(cidr: string, opts: IpcacheEntryOptions): void {
    this.ipcacheEntries.set(cidr, { cidr, opts });
    for (const c of this.ipcacheMaps()) this.writeIpcache(c, cidr, opts);
  }

  removeIpcache(cidr: string): boolean {
    const had = this.ipcacheEntries.get(cidr);
    this.ipcacheEntries.delete(cidr);
    for (const c of this.ipcacheMaps()) c.map.delete(this.ipcacheKeyOf(cidr, had?.opts.clusterId ?? 0));
    return had !== undefined;
  }

  addEndpoint(ip: string, opts: EndpointEntryOptions): void {
    this.endpointEntries.set(ip, { ip, opts });
    const c = this.maps.get('cilium_lxc');
    if (c) this.writeEndpoint(c, ip, opts);
  }

  removeEndpoint(ip: string): boolean {
    const had = this.endpointEntries.get(ip);
    this.endpointEntries.delete(ip);
    this.maps.get('cilium_lxc')?.map.delete(this.endpointKeyOf(ip, had?.opts.clusterId ?? 0));
    return had !== undefined;
  }

  /**
   * Deletes every map and creates it again (new map ids), as Cilium does on
   * restart/upgrade. keepEntries re-fills the new maps from the model.
   */
  replaceAll(opts: { keepEntries?: boolean } = {}): void {
    const variants = [...this.maps.values()].map((c) => c.variant);
    for (const v of variants) this.dropMap(VARIANT_MAP[v]);
    for (const v of variants) this.createMap(v);
    if (opts.keepEntries ?? true) {
      for (const { cidr, opts: o } of this.ipcacheEntries.values()) for (const c of this.ipcacheMaps()) this.writeIpcache(c, cidr, o);
      for (const { ip, opts: o } of this.endpointEntries.values()) {
        const c = this.maps.get('cilium_lxc');
        if (c) this.writeEndpoint(c, ip, o);
      }
    } else {
      this.ipcacheEntries.clear();
      this.endpointEntries.clear();
    }
  }

  /** Unpins and closes one map (Cilium gone, or mid-upgrade). */
  dropMap(name: string): void {
    const c = this.maps.get(name);
    if (!c) return;
    fs.rmSync(this.pinPath(name), { force: true });
    c.map.close();
    c.obj.close();
    this.maps.delete(name);
  }

  close(): void {
    for (const name of [...this.maps.keys()]) this.dropMap(name);
    try {
      if (mounted(this.mountPoint)) execFileSync('umount', [this.mountPoint], { stdio: 'ignore' });
      fs.rmSync(this.mountPoint, { recursive: true, force: true });
    } catch {
      // best effort: a leftover empty tmp dir is harmless
    }
  }

  // --- internals -------------------------------------------------------------

  private createMap(variant: Variant): void {
    const name = VARIANT_MAP[variant];
    const file = path.join(fixtureObjectDir(), `cilium_fixture_${variant}.bpf.o`);
    const obj = this.native.openObject(file, { pinRoot: this.dir });
    try {
      obj.load();
      this.maps.set(name, { variant, obj, map: obj.map(name) });
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  private ipcacheMaps(): Created[] {
    return [...this.maps.values()].filter((c) => c.variant === 'ipcache_v1' || c.variant === 'ipcache_v2' || c.variant === 'ipcache_bad');
  }

  // struct ipcache_key: u32 prefixlen @0 (32 static bits + address bits),
  // u16 cluster_id @4, u8 pad1 @6, u8 family @7, address @8.
  private ipcacheKeyOf(cidr: string, clusterId: number): Buffer {
    const c = parseCidr(cidr);
    if (!c) throw new Error(`not a CIDR: ${cidr}`);
    const key = Buffer.alloc(24);
    key.writeUInt32LE(32 + c.bits, 0);
    key.writeUInt16LE(clusterId, 4);
    key.writeUInt8(c.addr.family === 4 ? 1 : 2, 7);
    // The trie ignores bits past the prefix, but Cilium writes the network address.
    const masked = Buffer.from(c.addr.bytes);
    for (let bit = c.bits; bit < masked.length * 8; bit++) masked[bit >> 3] &= ~(0x80 >> (bit & 7));
    masked.copy(key, 8);
    return key;
  }

  private writeIpcache(c: Created, cidr: string, o: IpcacheEntryOptions): void {
    const key = this.ipcacheKeyOf(cidr, o.clusterId ?? 0);
    let value: Buffer;
    if (c.variant === 'ipcache_v1') {
      // remote_endpoint_info (1.16/1.17, 12 B): sec_identity @0, tunnel_endpoint (IPv4) @4, pad @8, key @10, flags @11.
      value = Buffer.alloc(12);
      value.writeUInt32LE(o.identity >>> 0, 0);
      if (o.tunnelEndpoint) {
        const t = addrOf(o.tunnelEndpoint);
        if (t.family !== 4) throw new Error('cilium_ipcache (1.17) tunnel endpoints are IPv4');
        t.bytes.copy(value, 4);
      }
      value.writeUInt8(o.key ?? 0, 10);
      value.writeUInt8(o.flags ?? 0, 11);
    } else if (c.variant === 'ipcache_v2') {
      // remote_endpoint_info (1.18+, 24 B): sec_identity @0, tunnel_endpoint @4 (16 B), pad @20, key @22,
      // flag bits @23: skip_tunnel 0, has_tunnel_ep 1, ipv6_tunnel_ep 2, remote_cluster 3, unroutable 4.
      value = Buffer.alloc(24);
      value.writeUInt32LE(o.identity >>> 0, 0);
      let flags = o.flags ?? 0;
      if (o.tunnelEndpoint) {
        const t = addrOf(o.tunnelEndpoint);
        t.bytes.copy(value, 4);
        flags |= 0x2 | (t.family === 6 ? 0x4 : 0);
      }
      value.writeUInt8(o.key ?? 0, 22);
      value.writeUInt8(flags, 23);
    } else {
      // The unknown 16-byte layout: identity first, the rest left zero.
      value = Buffer.alloc(16);
      value.writeUInt32LE(o.identity >>> 0, 0);
    }
    c.map.update(key, value);
  }

  // struct endpoint_key: address @0 (16 B, zero padded), family @16, key @17, cluster_id u16 @18.
  private endpointKeyOf(ip: string, clusterId: number): Buffer {
    const a = addrOf(ip);
    const key = Buffer.alloc(20);
    a.bytes.copy(key, 0);
    key.writeUInt8(a.family === 4 ? 1 : 2, 16);
    key.writeUInt16LE(clusterId, 18);
    return key;
  }

  // struct endpoint_info (48 B): ifindex @0, unused @4, lxc_id @6, flags @8, pad @12,
  // mac @16 (u64, octets in the low 6 bytes), node_mac @24, sec_id @32, parent_ifindex @36, pad @40.
  private writeEndpoint(c: Created, ip: string, o: EndpointEntryOptions): void {
    const v = Buffer.alloc(48);
    v.writeUInt32LE(o.ifindex >>> 0, 0);
    v.writeUInt16LE(o.id, 6);
    v.writeUInt32LE((o.flags ?? 0) >>> 0, 8);
    macBytes(o.mac).copy(v, 16);
    macBytes(o.nodeMac).copy(v, 24);
    v.writeUInt32LE((o.secId ?? o.identity ?? 0) >>> 0, 32);
    v.writeUInt32LE((o.parentIfindex ?? 0) >>> 0, 36);
    c.map.update(this.endpointKeyOf(ip, o.clusterId ?? 0), v);
  }
}
