// One Cilium GetFlowsResponse → an UpstreamItem, and the enrichment of a
// flow with the process of its local socket.
//
// Decoding uses our protos (protobufjs) once per response; the plain Flow
// object that filters and field masks need is only built when a stream asks
// (most streams have neither). An enriched flow gets:
//   extensions  the Tetragon JSON of the socket's own event (connect,
//               accept, send/receive) as Any(google.protobuf.Struct): the
//               same shape our runtime flows carry (process, parent, sock)
//   Summary     Cilium's Summary + `; Process: <binary> (pid <pid>)`
// and is otherwise Cilium's bytes (splice.ts). Unmatched flows keep Cilium's
// response bytes unchanged.
import type * as protobuf from 'protobufjs';
import type { NetEvent, WallTime } from '../../../model/event';
import { tetragonExtensions } from '../encode';
import type { CompiledFieldMask } from '../fieldmask';
import { DECODE_OPTIONS, protos } from '../proto';
import type { AnyMessage, Flow } from '../types';
import type { FlowTuple, SocketEntry, SocketTable } from './sockets';
import { encodeTail, spliceResponseTail } from './splice';
import type { UpstreamFlowItem, UpstreamNoticeItem } from './types';

/** What protobufjs decodes a flow into (only the fields read here). */
interface DecodedFlow extends protobuf.Message {
  time?: { seconds?: number | Long; nanos?: number } | null;
  uuid?: string;
  IP?: { source?: string; destination?: string } | null;
  l4?: { TCP?: { source_port?: number; destination_port?: number } | null; UDP?: { source_port?: number; destination_port?: number } | null } | null;
  traffic_direction?: number;
  socket_cookie?: number | Long;
  Summary?: string;
  source?: { namespace?: string } | null;
  destination?: { namespace?: string } | null;
}

interface Long {
  toString(): string;
  toNumber(): number;
  isZero(): boolean;
}

interface DecodedResponse extends protobuf.Message {
  flow?: DecodedFlow | null;
  node_status?: protobuf.Message | null;
  lost_events?: protobuf.Message | null;
  node_name?: string;
  time?: { seconds?: number | Long; nanos?: number } | null;
}

const INGRESS = 1;

function num(v: number | Long | undefined | null): number {
  if (v === undefined || v === null) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

function wallOf(t: DecodedResponse['time']): WallTime | undefined {
  if (!t) return undefined;
  return { sec: num(t.seconds), nsec: t.nanos ?? 0 };
}

/** A Cilium flow as received, enrichable once. */
export class CiliumFlow implements UpstreamFlowItem {
  readonly kind = 'cilium' as const;
  seq = 0;
  socket?: NetEvent;
  private obj?: Flow;
  private masks?: Map<string, Uint8Array>;
  private enrichment?: { summary: string; extensions: AnyMessage };

  constructor(
    public bytes: Uint8Array,
    readonly time: WallTime,
    readonly nodeName: string,
    private readonly msg: DecodedFlow,
    /** undefined: no 5-tuple (ICMP, no IP). */
    readonly tuple: FlowTuple | undefined,
  ) {}

  get uuid(): string {
    return this.msg.uuid ?? '';
  }

  get summary(): string {
    return this.enrichment?.summary ?? this.msg.Summary ?? '';
  }

  get enriched(): boolean {
    return this.enrichment !== undefined;
  }

  namespaces(): string[] {
    const a = this.msg.source?.namespace;
    const b = this.msg.destination?.namespace;
    return a && b && a !== b ? [a, b] : a ? [a] : b ? [b] : [];
  }

  flow(): Flow {
    if (!this.obj) {
      const obj = protos().Flow.toObject(this.msg, DECODE_OPTIONS) as Flow;
      if (this.enrichment) {
        obj.Summary = this.enrichment.summary;
        obj.extensions = this.enrichment.extensions;
      }
      this.obj = obj;
    }
    return this.obj;
  }

  masked(mask: CompiledFieldMask): Uint8Array {
    this.masks ??= new Map();
    let b = this.masks.get(mask.key);
    if (!b) {
      const P = protos();
      b = Uint8Array.prototype.slice.call(P.GetFlowsResponse.encode({ flow: mask.apply(this.flow()), node_name: this.nodeName, time: { seconds: this.time.sec, nanos: this.time.nsec } }).finish());
      this.masks.set(mask.key, b);
    }
    return b;
  }

  /** Rewrites Summary and extensions with the socket's process (once). */
  enrich(entry: SocketEntry): void {
    if (this.enrichment) return;
    const cached = (entry.cache ??= enrichmentOf(entry.ev)) as Enrichment;
    const base = this.msg.Summary ?? '';
    let t = cached.tails.get(base);
    if (!t) {
      const summary = base ? `${base}; ${cached.suffix}` : cached.suffix;
      t = { summary, bytes: encodeTail(summary, cached.extensions) };
      // A connection's flows have few distinct Summaries (flags); bounded anyway.
      if (cached.tails.size >= 16) cached.tails.clear();
      cached.tails.set(base, t);
    }
    const summary = t.summary;
    this.bytes = spliceResponseTail(this.bytes, t.bytes);
    this.enrichment = { summary, extensions: cached.extensions };
    this.socket = entry.ev;
    this.obj = undefined;
    this.masks = undefined;
  }
}

interface Enrichment {
  suffix: string;
  extensions: AnyMessage;
  /** Cilium Summary → encoded Summary + extensions fields. */
  tails: Map<string, { summary: string; bytes: Uint8Array }>;
}

/** Built once per socket: every flow of the connection shares the bytes. */
function enrichmentOf(ev: NetEvent): Enrichment {
  return { suffix: processSuffix(ev), extensions: tetragonExtensions(ev), tails: new Map() };
}

/** `Process: /usr/bin/curl (pid 1234)` */
export function processSuffix(ev: NetEvent): string {
  return `Process: ${ev.process.binary || '<unknown>'} (pid ${ev.process.pid})`;
}

export type Decoded =
  | { kind: 'flow'; item: CiliumFlow }
  | { kind: 'notice'; item: UpstreamNoticeItem }
  | { kind: 'empty' }
  | { kind: 'garbage'; error: string };

function tupleOf(f: DecodedFlow, timeMs: number): FlowTuple | undefined {
  const ip = f.IP;
  const l4 = f.l4;
  if (!ip || !l4 || !ip.source || !ip.destination) return undefined;
  const ports = l4.TCP ?? l4.UDP;
  if (!ports) return undefined;
  // uint64 decodes to a Long (a zero Long is truthy, and toString is not free).
  const c = f.socket_cookie;
  const cookie = c && (typeof c === 'number' ? c !== 0 : !c.isZero()) ? c.toString() : undefined;
  return {
    protocol: l4.TCP ? 'tcp' : 'udp',
    srcIp: ip.source,
    srcPort: ports.source_port ?? 0,
    dstIp: ip.destination,
    dstPort: ports.destination_port ?? 0,
    timeMs,
    cookie,
    ingress: f.traffic_direction === INGRESS,
  };
}

/** Decodes one raw GetFlowsResponse from Cilium; never throws. */
export function decodeUpstream(bytes: Buffer, fallbackNode: string): Decoded {
  const P = protos();
  let msg: DecodedResponse;
  try {
    msg = P.GetFlowsResponse.decode(bytes) as DecodedResponse;
  } catch (e) {
    return { kind: 'garbage', error: (e as Error).message };
  }
  const nodeName = msg.node_name || fallbackNode;
  const f = msg.flow;
  if (f) {
    const time = wallOf(f.time) ?? wallOf(msg.time);
    if (!time) return { kind: 'garbage', error: 'flow without time' };
    const timeMs = time.sec * 1000 + Math.floor(time.nsec / 1e6);
    return { kind: 'flow', item: new CiliumFlow(bytes, time, nodeName, f, tupleOf(f, timeMs)) };
  }
  if (msg.node_status || msg.lost_events) {
    const time = wallOf(msg.time) ?? nowWall();
    return { kind: 'notice', item: { kind: 'upstream_notice', seq: 0, time, nodeName, bytes } };
  }
  return { kind: 'empty' };
}

function nowWall(): WallTime {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
}

/** Matches the flow to a local socket and enriches it; true when matched. */
export function enrichFlow(item: CiliumFlow, table: SocketTable): boolean {
  if (item.enriched) return true;
  const t = item.tuple;
  if (!t) return false;
  const e = table.match(t);
  if (!e) return false;
  item.enrich(e);
  return true;
}
