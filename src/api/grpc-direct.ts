// Direct HTTP/2 writes for grpc-js server-streaming calls: many already-encoded
// messages framed into ONE Buffer and written with ONE Http2Stream.write().
//
// Why reach past grpc-js: its ServerWritableStream is an objectMode Writable
// without _writev whose _write callback waits until grpc-js's own
// Http2Stream.write() has completed, so a stream moves one message per socket
// write (a syscall and ~20 µs of server CPU per message, a few thousand
// messages/s per stream). Writing gRPC frames (5-byte header + payload) to the
// call's HTTP/2 stream ourselves, everything queued for the stream per round in
// one write, makes the per-message cost a memcpy; HTTP/2 flow control stays the
// back-pressure signal (the stream's writable buffer only empties as the peer's
// window allows, and write() returning false means "wait for 'drain'").
//
// What it relies on (grpc-js 1.x internals, feature-checked on every call):
//   - ServerWritableStreamImpl.call is the BaseServerInterceptingCall (no
//     server interceptors configured) and its `.stream` is the Http2Stream;
//   - response headers were sent through grpc-js (call.sendMetadata()) with
//     `waitForTrailers`, so ending the call through grpc-js (call.end() →
//     sendStatus → stream.end() → 'wantTrailers' → sendTrailers) puts the
//     grpc-status trailers after every byte we wrote: the client sees status OK
//     and a clean end of stream.
// When the shape is not there (interceptors, a grpc-js that changed, headers
// not sent), GrpcStreamWriter falls back to call.write() per message; callers
// should assert `direct` in a test so an upgrade that breaks the fast path
// fails loudly rather than silently getting slow.
//
// Bypassed on the direct path (acceptable for our streaming APIs): grpc-js's
// per-message max_send_message_length check (see `maxMessageBytes`), channelz
// "messages sent" counters, and response compression (grpc-js never compresses
// server responses either: the compressed flag is always 0).
import { Duplex } from 'node:stream';

/** Bytes of the gRPC length-prefixed message header (compressed flag + uint32 BE length). */
export const GRPC_FRAME_HEADER = 5;

/** Default bytes coalesced into one stream write (and bound on what one stream buffers). */
export const DEFAULT_MAX_WRITE_BYTES = 256 * 1024;

/** The part of Node's Http2Stream the fast path uses. */
export type RawHttp2Stream = Duplex & { headersSent: boolean };

/** The subset of grpc-js's ServerWritableStream (and duplex) the writer needs. */
export interface GrpcWritableCall {
  write(chunk: Buffer): boolean;
  end(): void;
  on(event: 'drain', fn: () => void): unknown;
  off(event: 'drain', fn: () => void): unknown;
  readonly writableNeedDrain: boolean;
}

/**
 * The writable HTTP/2 stream behind a grpc-js server call, or undefined when
 * the internal shape is not the expected one or the stream cannot take data
 * (headers not sent yet, ended, destroyed). Call after call.sendMetadata().
 */
export function rawHttp2Stream(call: unknown): RawHttp2Stream | undefined {
  if (typeof call !== 'object' || call === null) return undefined;
  const inner: unknown = (call as { call?: unknown }).call;
  if (typeof inner !== 'object' || inner === null) return undefined;
  const s: unknown = (inner as { stream?: unknown }).stream;
  if (!(s instanceof Duplex)) return undefined;
  const h = s as Duplex & { headersSent?: unknown; respond?: unknown; sendTrailers?: unknown };
  if (typeof h.respond !== 'function' || typeof h.sendTrailers !== 'function') return undefined;
  if (h.headersSent !== true || h.destroyed || h.writableEnded) return undefined;
  return h as RawHttp2Stream;
}

/** Writes the 5-byte gRPC header of a `length`-byte uncompressed message at `off`. */
function writeHeader(out: Buffer, off: number, length: number): void {
  out[off] = 0;
  out.writeUInt32BE(length, off + 1);
}

/** One gRPC-framed message in its own exact-size buffer (not from the shared pool). */
export function grpcFrame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(payload.byteLength + GRPC_FRAME_HEADER);
  writeHeader(out, 0, payload.byteLength);
  out.set(payload, GRPC_FRAME_HEADER);
  return out;
}

/** Frames all payloads back to back into one new Buffer of exactly `framedBytes` bytes. */
export function frameAll(payloads: readonly Uint8Array[], framedBytes: number): Buffer {
  const out = Buffer.allocUnsafe(framedBytes);
  let off = 0;
  for (const p of payloads) {
    writeHeader(out, off, p.byteLength);
    out.set(p, off + GRPC_FRAME_HEADER);
    off += GRPC_FRAME_HEADER + p.byteLength;
  }
  return out;
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export class MessageTooLargeError extends Error {}

export interface GrpcStreamWriterOptions {
  /** Try the direct path (default true); false forces call.write() per message. */
  direct?: boolean;
  /** Bytes coalesced into one write; add() reports `full` past it (default 256 KiB). */
  maxWriteBytes?: number;
  /**
   * Bytes the transport may hold unsent before `blocked` (default maxWriteBytes).
   * Below it a stream keeps writing small rounds without waiting for 'drain'.
   */
  maxBufferedBytes?: number;
  /** Largest accepted message payload (grpc-js's max_send_message_length); default unlimited. */
  maxMessageBytes?: number;
  /** Called when a blocked writer can take more (after 'drain'). */
  onDrain?: () => void;
  /** Called once when the HTTP/2 stream fails or closes under the direct path. */
  onClose?: () => void;
}

/**
 * Writes encoded messages (payloads without the gRPC header) of one
 * server-streaming call: add() queues, flush() writes what is queued — one
 * Http2Stream.write() on the direct path — and `blocked` says to wait for
 * onDrain before flushing again. end() lets grpc-js end the call (status OK,
 * trailers after the data). Create it after call.sendMetadata().
 *
 *   const w = new GrpcStreamWriter(call, { onDrain: wake, onClose: stop });
 *   for (const m of batch) { w.add(m); if (w.full) { w.flush(); if (w.blocked) await drained(); } }
 *   w.flush(); if (w.blocked) await drained();
 *   ...
 *   w.end();
 *
 * Memory held per stream on the direct path, if the caller only flushes while
 * not blocked: below maxBufferedBytes + maxWriteBytes + one message in the
 * HTTP/2 stream, plus what is queued for the next flush. The fallback keeps
 * grpc-js's own bound (one round, then 'drain' after 16 queued messages).
 */
export class GrpcStreamWriter {
  /** Whether frames go straight to the HTTP/2 stream (false: grpc-js call.write()). */
  readonly direct: boolean;
  /** Messages written so far. */
  messages = 0;
  /** Transport writes so far: Http2Stream.write() calls (direct) or call.write() calls (fallback). */
  writes = 0;
  /** Framed bytes written so far. */
  bytes = 0;
  private readonly raw: RawHttp2Stream | undefined;
  private readonly maxWriteBytes: number;
  private readonly maxBufferedBytes: number;
  private readonly maxMessageBytes: number;
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  private waitingDrain = false;
  private gone = false;
  private readonly drained = (): void => {
    if (!this.waitingDrain) return;
    this.waitingDrain = false;
    this.opts.onDrain?.();
  };
  private readonly failed = (): void => {
    if (this.gone) return;
    this.gone = true;
    this.queued = [];
    this.queuedBytes = 0;
    this.opts.onClose?.();
  };

  constructor(
    private readonly call: GrpcWritableCall,
    private readonly opts: GrpcStreamWriterOptions = {},
  ) {
    this.raw = opts.direct === false ? undefined : rawHttp2Stream(call);
    this.direct = this.raw !== undefined;
    this.maxWriteBytes = Math.max(1, opts.maxWriteBytes ?? DEFAULT_MAX_WRITE_BYTES);
    this.maxBufferedBytes = Math.max(1, opts.maxBufferedBytes ?? this.maxWriteBytes);
    this.maxMessageBytes = opts.maxMessageBytes ?? Infinity;
    if (this.raw) {
      this.raw.on('drain', this.drained);
      this.raw.on('error', this.failed);
      this.raw.on('close', this.failed);
    } else {
      call.on('drain', this.drained);
    }
  }

  /** Framed bytes queued for the next flush. */
  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /** Messages queued for the next flush. */
  get pendingMessages(): number {
    return this.queued.length;
  }

  /** The queued messages reach the write budget: flush before adding more. */
  get full(): boolean {
    return this.queuedBytes >= this.maxWriteBytes;
  }

  /** The transport holds enough unsent data: wait for onDrain before the next flush. */
  get blocked(): boolean {
    return this.waitingDrain && !this.gone;
  }

  /** The HTTP/2 stream failed or closed (direct path); nothing more can be written. */
  get closed(): boolean {
    return this.gone;
  }

  /** Bytes the transport still holds unsent (the HTTP/2 stream's or grpc-js's writable buffer). */
  get transportBuffered(): number {
    return this.raw ? this.raw.writableLength : (this.call as unknown as { writableLength?: number }).writableLength ?? 0;
  }

  /** Queues one encoded message (shared bytes are fine: they are copied at flush on the direct path). */
  add(payload: Uint8Array): void {
    if (this.gone) return;
    if (payload.byteLength > this.maxMessageBytes) {
      throw new MessageTooLargeError(`Sent message larger than max (${payload.byteLength} vs. ${this.maxMessageBytes})`);
    }
    this.queued.push(payload);
    this.queuedBytes += payload.byteLength + GRPC_FRAME_HEADER;
  }

  /**
   * Writes every queued message; false when the stream is gone (nothing was
   * written). Afterwards check `blocked`.
   */
  flush(): boolean {
    if (this.gone) return false;
    const n = this.queued.length;
    if (n === 0) return true;
    const parts = this.queued;
    const size = this.queuedBytes;
    this.queued = [];
    this.queuedBytes = 0;
    if (this.raw) {
      const raw = this.raw;
      if (raw.destroyed || raw.writableEnded) {
        this.failed();
        return false;
      }
      const ok = raw.write(n === 1 ? grpcFrame(parts[0]) : frameAll(parts, size));
      this.writes++;
      // write() is false past the Writable's 16 KiB mark; allow up to
      // maxBufferedBytes in flight so small rounds need no drain round trip.
      // 'drain' is emitted whenever a write() returned false, so waiting is safe.
      if (!ok && raw.writableLength >= this.maxBufferedBytes) this.waitingDrain = true;
    } else {
      // grpc-js adds the header; it passes Buffers through (the service's responseSerialize must too).
      for (const p of parts) this.call.write(asBuffer(p));
      this.writes += n;
      if (this.call.writableNeedDrain) this.waitingDrain = true;
    }
    this.messages += n;
    this.bytes += size;
    return true;
  }

  /** Flushes what is queued and ends the call through grpc-js (status OK, trailers after the data). */
  end(): void {
    this.flush();
    this.detach();
    try {
      this.call.end();
    } catch {
      /* already ended or gone */
    }
  }

  /** Stops writing and listening to the transport (after end(), or when the call is torn down elsewhere). */
  detach(): void {
    if (this.raw) {
      // The 'error' listener stays: grpc-js only has a once('error') on the
      // stream, and a later write error must not become an uncaught exception.
      this.raw.off('drain', this.drained);
      this.raw.off('close', this.failed);
    } else {
      this.call.off('drain', this.drained);
    }
    this.gone = true;
    this.queued = [];
    this.queuedBytes = 0;
  }
}
