// The local socket table: built from our own NetEvents, it answers "which
// process owns the socket this Cilium flow belongs to". Keys:
//   5-tuple  "proto|local ip|local port|remote ip|remote port", looked up in
//            both orientations (a flow's source may be either end);
//   cookie   the kernel socket cookie, when Cilium's flow carries one
//            (TraceSock flows: socket_cookie).
// A socket matches flows from shortly before it was seen (the SYN can be
// traced before the connect returns) until a grace period after its close,
// so a reused port does not pick up an earlier owner. Bounded: the oldest
// entry goes first (insertion order = age), evictions counted.
//
// The table also remembers which connections Cilium reported (dedupe of our
// own connection flows), bounded and aged the same way.
import type { NetEvent, WallTime } from '../../../model/event';

export interface SocketEntry {
  /** The event that opened (or last refreshed) the socket: its process enriches flows. */
  ev: NetEvent;
  /** Time of the first event, ms since the epoch. */
  openMs: number;
  /** Time of the close event, ms since the epoch. */
  closedMs?: number;
  netns: number;
  /** Cached extensions/Summary suffix (built on first match). */
  cache?: unknown;
}

export interface SocketTableOptions {
  /** Sockets held at most. Default 65536. */
  capacity?: number;
  /** A flow may precede the socket's first event by this much, ms. Default 2000. */
  earlyMs?: number;
  /** Flows still match this long after the close, ms. Default 5000. */
  graceMs?: number;
  /** Connections Cilium reported, held at most. Default 65536. */
  reportedCapacity?: number;
  /** How long a reported connection dedupes our flows after Cilium's last flow of it, ms. Default 600000. */
  reportedTtlMs?: number;
}

export interface SocketTableStats {
  sockets: number;
  capacity: number;
  added: number;
  evicted: number;
  reported: number;
}

export interface FlowTuple {
  protocol: 'tcp' | 'udp';
  srcIp: string;
  srcPort: number;
  dstIp: string;
  dstPort: number;
  /** Flow time, ms since the epoch. */
  timeMs: number;
  /** 0 / undefined = none. */
  cookie?: string;
  /** INGRESS prefers the socket whose local end is the destination. */
  ingress?: boolean;
}

export function wallMs(t: WallTime): number {
  return t.sec * 1000 + Math.floor(t.nsec / 1e6);
}

function tupleKey(protocol: string, lip: string, lport: number, rip: string, rport: number): string {
  return `${protocol}|${lip}|${lport}|${rip}|${rport}`;
}

/** Orientation-free connection key. */
export function connKey(protocol: string, aIp: string, aPort: number, bIp: string, bPort: number): string {
  const a = `${aIp}|${aPort}`;
  const b = `${bIp}|${bPort}`;
  return a < b ? `${protocol}|${a}|${b}` : `${protocol}|${b}|${a}`;
}

/** Whether the event describes a connection with a peer (listen and unconnected ends do not). */
function hasPeer(ev: NetEvent): boolean {
  return ev.op !== 'listen' && ev.dport !== 0 && ev.daddr !== '' && ev.daddr !== '0.0.0.0' && ev.daddr !== '::';
}

export class SocketTable {
  private readonly capacity: number;
  private readonly earlyMs: number;
  private readonly graceMs: number;
  private readonly reportedCapacity: number;
  private readonly reportedTtlMs: number;
  private readonly byTuple = new Map<string, SocketEntry>();
  private readonly byCookie = new Map<string, SocketEntry>();
  /** connKey → last Cilium flow time (ms); insertion order = first report. */
  private readonly reportedConns = new Map<string, number>();
  private added = 0;
  private evicted = 0;

  constructor(opts: SocketTableOptions = {}) {
    this.capacity = Math.max(16, opts.capacity ?? 65536);
    this.earlyMs = opts.earlyMs ?? 2000;
    this.graceMs = opts.graceMs ?? 5000;
    this.reportedCapacity = Math.max(16, opts.reportedCapacity ?? 65536);
    this.reportedTtlMs = opts.reportedTtlMs ?? 600_000;
  }

  stats(): SocketTableStats {
    return { sockets: this.byTuple.size, capacity: this.capacity, added: this.added, evicted: this.evicted, reported: this.reportedConns.size };
  }

  /** Learns from one of our net events (connect, accept, send, receive, close). */
  add(ev: NetEvent): void {
    if (!hasPeer(ev)) return;
    if ((ev.op === 'connect' || ev.op === 'accept') && ev.ret < 0 && ev.ret !== -115 /* EINPROGRESS */) return;
    const key = tupleKey(ev.protocol, ev.saddr, ev.sport, ev.daddr, ev.dport);
    const ms = wallMs(ev.time);
    const cur = this.byTuple.get(key);
    const cookie = ev.socketCookie ? ev.socketCookie.toString() : '';
    // The same socket again (close, periodic UDP report): keep the opening event, note the close.
    const same = cur && (!cookie || !cur.ev.socketCookie || cur.ev.socketCookie === ev.socketCookie) && (cur.closedMs === undefined || ms <= cur.closedMs + this.graceMs);
    if (cur && same) {
      if (ev.op === 'close') cur.closedMs = ms;
      return;
    }
    if (cur) this.drop(key, cur);
    const entry: SocketEntry = { ev, openMs: ms, netns: ev.netns };
    if (ev.op === 'close') entry.closedMs = ms;
    this.byTuple.set(key, entry);
    if (cookie) this.byCookie.set(cookie, entry);
    this.added++;
    while (this.byTuple.size > this.capacity) {
      const [k, e] = this.byTuple.entries().next().value as [string, SocketEntry];
      this.drop(k, e);
      this.evicted++;
    }
  }

  private drop(key: string, e: SocketEntry): void {
    this.byTuple.delete(key);
    const cookie = e.ev.socketCookie ? e.ev.socketCookie.toString() : '';
    if (cookie && this.byCookie.get(cookie) === e) this.byCookie.delete(cookie);
  }

  private live(e: SocketEntry | undefined, ms: number): SocketEntry | undefined {
    if (!e) return undefined;
    if (ms < e.openMs - this.earlyMs) return undefined;
    if (e.closedMs !== undefined && ms > e.closedMs + this.graceMs) return undefined;
    return e;
  }

  /** The local socket a flow belongs to: by cookie, else by 5-tuple in either orientation. */
  match(t: FlowTuple): SocketEntry | undefined {
    if (t.cookie && t.cookie !== '0') {
      const e = this.live(this.byCookie.get(t.cookie), t.timeMs);
      if (e) return e;
    }
    // Local end = source (the flow leaves this socket) or = destination (it arrives).
    const out = this.live(this.byTuple.get(tupleKey(t.protocol, t.srcIp, t.srcPort, t.dstIp, t.dstPort)), t.timeMs);
    const inb = this.live(this.byTuple.get(tupleKey(t.protocol, t.dstIp, t.dstPort, t.srcIp, t.srcPort)), t.timeMs);
    if (out && inb) return t.ingress ? inb : out; // both ends local (same node)
    return out ?? inb;
  }

  /** Notes that Cilium reported a flow of this connection. */
  markReported(t: FlowTuple): void {
    const k = connKey(t.protocol, t.srcIp, t.srcPort, t.dstIp, t.dstPort);
    const prev = this.reportedConns.get(k);
    // Refresh in place (order = first report, FIFO eviction): no delete/re-insert per flow.
    if (prev !== undefined) {
      if (t.timeMs > prev) this.reportedConns.set(k, t.timeMs);
      return;
    }
    this.reportedConns.set(k, t.timeMs);
    if (this.reportedConns.size > this.reportedCapacity) {
      const oldest = this.reportedConns.keys().next().value;
      if (oldest !== undefined) this.reportedConns.delete(oldest);
    }
  }

  /** Whether Cilium reported this event's connection (recently enough). */
  reported(ev: NetEvent): boolean {
    if (!hasPeer(ev)) return false;
    const k = connKey(ev.protocol, ev.saddr, ev.sport, ev.daddr, ev.dport);
    const last = this.reportedConns.get(k);
    if (last === undefined) return false;
    if (wallMs(ev.time) - last > this.reportedTtlMs) {
      this.reportedConns.delete(k);
      return false;
    }
    return true;
  }
}
