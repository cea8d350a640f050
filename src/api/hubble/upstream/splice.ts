// Byte-level rewrite of a Cilium GetFlowsResponse: replaces Flow.Summary
// (100000) and Flow.extensions (150000) and copies every other field as
// received. Re-encoding a decoded message instead would drop fields our
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

/** Tag + length prefix of a length-delimited field. */
function lenPrefix(field: number, len: number): Uint8Array {
  return protobuf.Writer.create().uint32((field << 3) | WIRE_LEN).uint32(len).finish();
}

/** The Flow bytes with Summary and extensions replaced (other fields in their order), as chunks. */
function spliceFlowChunks(flow: Uint8Array, summary: string, extensions: AnyMessage): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (const f of scan(flow)) {
    if (f.field === FLOW_SUMMARY || f.field === FLOW_EXTENSIONS) continue;
    chunks.push(flow.subarray(f.start, f.end));
  }
  const w = protobuf.Writer.create();
  w.uint32((FLOW_SUMMARY << 3) | WIRE_LEN).string(summary);
  w.uint32((FLOW_EXTENSIONS << 3) | WIRE_LEN).fork();
  w.uint32((1 << 3) | WIRE_LEN).string(extensions.type_url);
  w.uint32((2 << 3) | WIRE_LEN).bytes(extensions.value);
  w.ldelim();
  chunks.push(w.finish());
  return chunks;
}

/** One exact-size, unpooled copy of the chunks (a cached flow must not pin a shared slab). */
function concat(chunks: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const c of chunks) len += c.length;
  const out = Buffer.allocUnsafeSlow(len);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

export function spliceFlow(flow: Uint8Array, summary: string, extensions: AnyMessage): Uint8Array {
  return concat(spliceFlowChunks(flow, summary, extensions));
}

/** The GetFlowsResponse bytes with its flow's Summary and extensions replaced. */
export function spliceResponse(resp: Uint8Array, summary: string, extensions: AnyMessage): Uint8Array {
  const chunks: Uint8Array[] = [];
  let found = false;
  for (const f of scan(resp)) {
    if (f.field === RESPONSE_FLOW && !found) {
      found = true;
      const inner = spliceFlowChunks(resp.subarray(f.dataStart, f.end), summary, extensions);
      let len = 0;
      for (const c of inner) len += c.length;
      chunks.push(lenPrefix(RESPONSE_FLOW, len), ...inner);
    } else {
      chunks.push(resp.subarray(f.start, f.end));
    }
  }
  if (!found) throw new SpliceError('GetFlowsResponse has no flow');
  return concat(chunks);
}
