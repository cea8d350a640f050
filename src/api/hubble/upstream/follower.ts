// A gRPC client of Cilium's Hubble (observer.Observer) that follows its
// flows and never stalls the agent:
//
//   connect    a fresh channel per attempt; ServerStatus with a deadline
//              first (proves the peer speaks Hubble; a hung or garbage
//              peer fails here), then GetFlows{follow, since}
//   since      now at the first connect; on reconnect the time of the last
//              flow seen, so the outage is replayed from Cilium's ring (the
//              merge drops the flows it already has by uuid)
//   liveness   HTTP/2 keepalive pings: a peer that stops answering costs a
//              transport error, the stream ends, we reconnect
//   backoff    exponential with jitter (250 ms → 30 s by default), reset
//              once a stream stayed up for a while
//   intake     raw response bytes into a bounded queue (decoded by the
//              consumer, merge.ts); overflow drops the newest, counted
//
// Responses stay undecoded here so that an unmatched flow can be served
// byte for byte as Cilium sent it.
import * as grpc from '@grpc/grpc-js';
import type { WallTime } from '../../../model/event';
import { wallNow, toTimestamp } from '../encode';
import { protos } from '../proto';

export interface FollowerOptions {
  /** `unix:///var/run/cilium/hubble.sock`, `unix:/path`, `/path` or `host:port`. */
  address: string;
  /** Raw responses queued at most; default 8192. */
  queueLimit?: number;
  /** Reconnect backoff: first delay, cap, jitter fraction (±). Defaults 250 ms, 30 s, 0.2. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  backoffJitter?: number;
  /** Deadline of the ServerStatus probe at connect, ms; default 5000. */
  probeTimeoutMs?: number;
  /** HTTP/2 keepalive ping period and ack timeout, ms; defaults 15000 / 10000. */
  keepaliveMs?: number;
  keepaliveTimeoutMs?: number;
  /** Consecutive undecodable responses after which the stream is dropped and re-opened; default 64. */
  maxGarbageRun?: number;
  /** A stream that stayed up this long resets the backoff, ms; default 10000. */
  stableMs?: number;
}

export interface FollowerState {
  connected: boolean;
  /** Why the last attempt or stream failed. */
  lastError: string;
  /** Cilium's version from ServerStatus. */
  version: string;
}

export interface FollowerCounters {
  /** Responses received on GetFlows streams. */
  responses: number;
  /** Responses dropped because the intake queue was full. */
  dropped: number;
  /** Successful connects after the first one. */
  reconnects: number;
  /** Failed attempts, broken or closed streams, garbage. */
  errors: number;
  /** Undecodable responses (part of errors). */
  garbage: number;
  connects: number;
}

export interface FollowerHandlers {
  /** New raw responses are queued (called synchronously from the gRPC callback). */
  onReady(): void;
  /** connected → true after a successful connect; false when an established stream is lost. */
  onState(connected: boolean, message: string): void;
}

const GET_FLOWS = '/observer.Observer/GetFlows';
const SERVER_STATUS = '/observer.Observer/ServerStatus';

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

const identity = (b: Buffer): Buffer => b;

/** The grpc-js target for a configured address (a bare path is a unix socket). */
export function grpcTarget(address: string): string {
  return address.startsWith('/') ? `unix://${address}` : address;
}

export class CiliumHubbleFollower {
  readonly address: string;
  private readonly target: string;
  private readonly o: Required<Omit<FollowerOptions, 'address'>>;
  private handlers: FollowerHandlers = { onReady: () => undefined, onState: () => undefined };
  private client?: grpc.Client;
  private call?: grpc.ClientReadableStream<Buffer>;
  private timer?: NodeJS.Timeout;
  private attempt = 0;
  private started = false;
  private closed = false;
  private connectedAt = 0;
  private everConnected = false;
  private garbageRun = 0;
  private queue: Buffer[] = [];
  private head = 0;
  /** Intake drops not yet taken by the consumer. */
  private pendingDrops = 0;
  private since?: WallTime;
  readonly state: FollowerState = { connected: false, lastError: '', version: '' };
  readonly c: FollowerCounters = { responses: 0, dropped: 0, reconnects: 0, errors: 0, garbage: 0, connects: 0 };

  constructor(opts: FollowerOptions) {
    if (!opts.address) throw new Error('Cilium Hubble follower: empty address');
    this.address = opts.address;
    this.target = grpcTarget(opts.address);
    this.o = {
      queueLimit: opts.queueLimit ?? 8192,
      backoffInitialMs: opts.backoffInitialMs ?? 250,
      backoffMaxMs: opts.backoffMaxMs ?? 30_000,
      backoffJitter: opts.backoffJitter ?? 0.2,
      probeTimeoutMs: opts.probeTimeoutMs ?? 5000,
      keepaliveMs: opts.keepaliveMs ?? 15_000,
      keepaliveTimeoutMs: opts.keepaliveTimeoutMs ?? 10_000,
      maxGarbageRun: opts.maxGarbageRun ?? 64,
      stableMs: opts.stableMs ?? 10_000,
    };
  }

  setHandlers(h: FollowerHandlers): void {
    this.handlers = h;
  }

  get connected(): boolean {
    return this.state.connected;
  }

  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.connect();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.teardown();
    this.state.connected = false;
    this.queue = [];
    this.head = 0;
  }

  /** Queued raw responses. */
  get size(): number {
    return this.queue.length - this.head;
  }

  /** Takes up to max queued responses, oldest first. */
  take(max = Infinity): Buffer[] {
    const end = Math.min(this.queue.length, this.head + max);
    const out = this.queue.slice(this.head, end);
    this.head = end;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  /** Intake drops since the last call. */
  takeDropped(): number {
    const n = this.pendingDrops;
    this.pendingDrops = 0;
    return n;
  }

  /** The consumer decoded a flow: it is where a reconnect resumes. */
  noteFlowTime(t: WallTime): void {
    const s = this.since;
    if (!s || t.sec > s.sec || (t.sec === s.sec && t.nsec > s.nsec)) this.since = t;
    this.garbageRun = 0;
  }

  /** The consumer could not decode a response: counted; a run of them re-opens the stream. */
  noteGarbage(why: string): void {
    this.c.garbage++;
    this.c.errors++;
    this.state.lastError = `undecodable response from ${this.address}: ${why}`;
    if (++this.garbageRun >= this.o.maxGarbageRun && this.call) {
      this.garbageRun = 0;
      this.fail(this.call, `${this.o.maxGarbageRun} undecodable responses in a row; re-opening the stream`);
    }
  }

  private channelOptions(): grpc.ChannelOptions {
    return {
      'grpc.keepalive_time_ms': this.o.keepaliveMs,
      'grpc.keepalive_timeout_ms': this.o.keepaliveTimeoutMs,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      'grpc.enable_retries': 0,
      // Each attempt gets its own channel: never share a subchannel with the previous one.
      'grpc.use_local_subchannel_pool': 1,
    };
  }

  private teardown(): void {
    const call = this.call;
    const client = this.client;
    this.call = undefined;
    this.client = undefined;
    try {
      call?.cancel();
    } catch {
      /* already gone */
    }
    try {
      client?.close();
    } catch {
      /* already closed */
    }
  }

  private connect(): void {
    if (this.closed) return;
    this.timer = undefined;
    this.teardown();
    let client: grpc.Client;
    try {
      client = new grpc.Client(this.target, grpc.credentials.createInsecure(), this.channelOptions());
    } catch (e) {
      this.attemptFailed(`cannot dial ${this.address}: ${(e as Error).message}`);
      return;
    }
    this.client = client;
    const P = protos();
    const deadline = Date.now() + this.o.probeTimeoutMs;
    client.makeUnaryRequest(SERVER_STATUS, identity, identity, Buffer.alloc(0), new grpc.Metadata(), { deadline }, (err, res) => {
      if (this.client !== client || this.closed) return;
      if (err) return this.attemptFailed(`ServerStatus on ${this.address}: ${err.message}`);
      try {
        const st = P.ServerStatusResponse.toObject(P.ServerStatusResponse.decode(res ?? Buffer.alloc(0))) as { version?: string };
        this.state.version = st.version ?? '';
      } catch (e) {
        this.c.garbage++;
        return this.attemptFailed(`ServerStatus on ${this.address}: undecodable response (${(e as Error).message})`);
      }
      this.openStream(client);
    });
  }

  private openStream(client: grpc.Client): void {
    const P = protos();
    const since = this.since ?? wallNow();
    const req = toBuffer(P.GetFlowsRequest.encode({ follow: true, since: toTimestamp(since) }).finish());
    const call = client.makeServerStreamRequest(GET_FLOWS, identity, identity, req, new grpc.Metadata(), {});
    this.call = call;
    call.on('data', (b: Buffer) => this.push(b));
    call.on('error', (e: grpc.ServiceError) => this.fail(call, `GetFlows stream from ${this.address} failed: ${e.message}`));
    call.on('end', () => this.fail(call, `GetFlows stream from ${this.address} closed by the server`));
    this.connectedAt = Date.now();
    this.garbageRun = 0;
    this.c.connects++;
    if (this.everConnected) this.c.reconnects++;
    this.everConnected = true;
    this.state.connected = true;
    this.handlers.onState(true, `following Cilium Hubble at ${this.address}${this.state.version ? ` (${this.state.version})` : ''}`);
  }

  private push(b: Buffer): void {
    this.c.responses++;
    if (this.size >= this.o.queueLimit) {
      this.c.dropped++;
      this.pendingDrops++;
    } else {
      this.queue.push(b);
    }
    this.handlers.onReady();
  }

  /** An established stream ended (error, server close, garbage): report, then reconnect. */
  private fail(call: grpc.ClientReadableStream<Buffer>, why: string): void {
    if (this.call !== call || this.closed) return;
    this.call = undefined;
    this.c.errors++;
    this.state.lastError = why;
    const wasConnected = this.state.connected;
    this.state.connected = false;
    if (Date.now() - this.connectedAt >= this.o.stableMs) this.attempt = 0;
    this.teardown();
    if (wasConnected) this.handlers.onState(false, `${why}; runtime events continue, reconnecting`);
    this.schedule();
  }

  private attemptFailed(why: string): void {
    if (this.closed) return;
    this.c.errors++;
    this.state.lastError = why;
    this.teardown();
    this.schedule();
  }

  /** Next attempt after the backoff delay (exponential, capped, jittered). */
  private schedule(): void {
    if (this.closed || this.timer) return;
    const base = Math.min(this.o.backoffMaxMs, this.o.backoffInitialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    const j = this.o.backoffJitter;
    const delay = Math.max(0, Math.round(base * (1 - j + 2 * j * Math.random())));
    this.timer = setTimeout(() => this.connect(), delay);
    this.timer.unref();
  }

  /** Delay the next failure would wait (status, tests). */
  get nextBackoffMs(): number {
    return Math.min(this.o.backoffMaxMs, this.o.backoffInitialMs * 2 ** Math.min(this.attempt, 30));
  }
}
