// Byte-level rewrite of a Cilium GetFlowsResponse: replaces Flow.Summary
// (100000) and Flow.extensions (150000) and copies every other field as
// received, in its order. Re-encoding a decoded message instead would drop fields our
// protos do not know (a newer Cilium) and cost a full encode per flow.
import * as protobuf from 'protobufjs';
import type { AnyMessage } from '../types';

const RESPONSE_FLOW = 1;
const FLOW_SUMMARY = 100000;
const FLOW_EXTENSIONS = 150000;
const WIRE_LEN = 2;

export class SpliceError extends Error {}

interface FieldSpan {
  field: number;
  /** Whole field, tag included. */
  start: number;
  end: number;
  /** Payload of a length-delimited field. */
  dataStart: number;
}

/** Top-level fields of one message; throws SpliceError on malformed input. */
function scan(buf: Uint8Array): FieldSpan[] {
  const r = protobuf.Reader.create(buf);
  const out: FieldSpan[] = [];
  try {
    while (r.pos < r.len) {
      const start = r.pos;
      const tag = r.uint32();
      const field = tag >>> 3;
      const wt = tag & 7;
      if (field === 0) throw new SpliceError('field number 0');
      let dataStart = r.pos;
      if (wt === WIRE_LEN) {
        const len = r.uint32();
        dataStart = r.pos;
        r.skip(len);
      } else {
        r.skipType(wt);
      }
      out.push({ field, start, end: r.pos, dataStart });
    }
  } catch (e) {
    if (e instanceof SpliceError) throw e;
    throw new SpliceError((e as Error).message);
  }
  return out;
}

/** The Flow fields Summary and extensions, encoded: what an enriched flow gets in place of its own. */
export function encodeTail(summary: string, extensions: AnyMessage): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32((FLOW_SUMMARY << 3) | WIRE_LEN).string(summary);
  w.uint32((FLOW_EXTENSIONS << 3) | WIRE_LEN).fork();
  w.uint32((1 << 3) | WIRE_LEN).string(extensions.type_url);
  w.uint32((2 << 3) | WIRE_LEN).bytes(extensions.value);
  w.ldelim();
  return Uint8Array.prototype.slice.call(w.finish());
}

function varintLen(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

/** [start, end) byte ranges, adjacent ones merged. */
function keep(spans: FieldSpan[], drop: (field: number) => boolean): number[] {
  const r: number[] = [];
  for (const f of spans) {
    if (drop(f.field)) continue;
    if (r.length && r[r.length - 1] === f.start) r[r.length - 1] = f.end;
    else r.push(f.start, f.end);
  }
  return r;
}

function rangesLen(r: number[]): number {
  let n = 0;
  for (let i = 0; i < r.length; i += 2) n += r[i + 1] - r[i];
  return n;
}

function copyRanges(src: Uint8Array, r: number[], out: Uint8Array, pos: number): number {
  for (let i = 0; i < r.length; i += 2) {
    out.set(src.subarray(r[i], r[i + 1]), pos);
    pos += r[i + 1] - r[i];
  }
  return pos;
}

const isTailField = (f: number): boolean => f === FLOW_SUMMARY || f === FLOW_EXTENSIONS;

/**
 * The GetFlowsResponse with its flow's own Summary and extensions dropped and
 * `tail` (encodeTail) appended to the flow; every other byte as received. One
 * exact-size, unpooled output buffer (a cached flow must not pin a shared slab).
 */
export function spliceResponseTail(resp: Uint8Array, tail: Uint8Array): Uint8Array {
  const top = scan(resp);
  const flowSpan = top.find((f) => f.field === RESPONSE_FLOW);
  if (!flowSpan) throw new SpliceError('GetFlowsResponse has no flow');
  const flow = resp.subarray(flowSpan.dataStart, flowSpan.end);
  const inner = keep(scan(flow), isTailField);
  const flowLen = rangesLen(inner) + tail.length;
  const before = keep(top.filter((f) => f.start < flowSpan.start), () => false);
  const after = keep(top.filter((f) => f.start > flowSpan.start), () => false);
  const tag = (RESPONSE_FLOW << 3) | WIRE_LEN;
  const total = rangesLen(before) + 1 + varintLen(flowLen) + flowLen + rangesLen(after);
  const out = Buffer.allocUnsafeSlow(total);
  let pos = copyRanges(resp, before, out, 0);
  out[pos++] = tag;
  pos = writeVarint(out, pos, flowLen);
  pos = copyRanges(flow, inner, out, pos);
  out.set(tail, pos);
  pos += tail.length;
  copyRanges(resp, after, out, pos);
  return out;
}
