// IP → DNS names, learned from the answers the DNS sensor sees, so that a later
// connection to that IP can say which name the process looked up (Hubble's
// destination_names). Bounded: at most `capacity` addresses (least recently
// used go first, counted as evictions) and `namesPerIp` names each; a name
// lives as long as its TTL, clamped to [minTtlSec, maxTtlSec].

export interface DnsNameCacheOptions {
  /** Addresses kept; default 8192. */
  capacity?: number;
  /** Names kept per address (the most recently answered win); default 8. */
  namesPerIp?: number;
  /** Lower bound of the TTL used, seconds; default 0 (respect the answer). */
  minTtlSec?: number;
  /** Upper bound of the TTL used, seconds; default 86400. */
  maxTtlSec?: number;
  /** Clock in ms (tests); default Date.now. */
  now?: () => number;
}

export interface DnsNameCacheStats {
  size: number;
  capacity: number;
  inserts: number;
  evictions: number;
  expired: number;
  hits: number;
  misses: number;
}

export class DnsNameCache {
  /** ip → (name → expiry in ms); Map order = least recently used first. */
  private entries = new Map<string, Map<string, number>>();
  readonly capacity: number;
  private readonly namesPerIp: number;
  private readonly minTtl: number;
  private readonly maxTtl: number;
  private readonly now: () => number;
  private counts = { inserts: 0, evictions: 0, expired: 0, hits: 0, misses: 0 };

  constructor(opts: DnsNameCacheOptions = {}) {
    this.capacity = positiveInt(opts.capacity ?? 8192, 'capacity');
    this.namesPerIp = positiveInt(opts.namesPerIp ?? 8, 'namesPerIp');
    this.minTtl = opts.minTtlSec ?? 0;
    this.maxTtl = opts.maxTtlSec ?? 86400;
    if (!(this.minTtl >= 0 && this.maxTtl >= this.minTtl)) throw new RangeError('DnsNameCache: need 0 <= minTtlSec <= maxTtlSec');
    this.now = opts.now ?? Date.now;
  }

  /** Records that `name` resolved to `ip` for `ttlSec` seconds. */
  add(ip: string, name: string, ttlSec: number): void {
    const ttl = Math.min(this.maxTtl, Math.max(this.minTtl, ttlSec));
    if (ttl <= 0) return;
    const expires = this.now() + ttl * 1000;
    let names = this.entries.get(ip);
    if (names) {
      this.entries.delete(ip); // re-insert: most recently used
    } else {
      names = new Map();
      this.counts.inserts++;
    }
    names.delete(name);
    names.set(name, expires);
    while (names.size > this.namesPerIp) names.delete(names.keys().next().value as string);
    this.entries.set(ip, names);
    while (this.entries.size > this.capacity) {
      this.entries.delete(this.entries.keys().next().value as string);
      this.counts.evictions++;
    }
  }

  /** Unexpired names of `ip`, most recent last; undefined when none. */
  lookup(ip: string): string[] | undefined {
    const names = this.entries.get(ip);
    if (!names) {
      this.counts.misses++;
      return undefined;
    }
    const now = this.now();
    const out: string[] = [];
    for (const [name, exp] of names) {
      if (exp <= now) {
        names.delete(name);
        this.counts.expired++;
      } else {
        out.push(name);
      }
    }
    this.entries.delete(ip);
    if (out.length === 0) {
      this.counts.misses++;
      return undefined;
    }
    this.entries.set(ip, names);
    this.counts.hits++;
    return out;
  }

  /** Drops expired names (and addresses left without any); returns how many names went. */
  prune(): number {
    const now = this.now();
    let n = 0;
    for (const [ip, names] of this.entries) {
      for (const [name, exp] of names) {
        if (exp <= now) {
          names.delete(name);
          n++;
        }
      }
      if (names.size === 0) this.entries.delete(ip);
    }
    this.counts.expired += n;
    return n;
  }

  stats(): DnsNameCacheStats {
    return { size: this.entries.size, capacity: this.capacity, ...this.counts };
  }
}

function positiveInt(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`DnsNameCache: ${what} must be a positive integer, got ${v}`);
  return v;
}
