// Decoder of policy records (struct th_pol_event, bpf/include/th_policy.h)
// from ring-consumer batches; offsets from the generated layout.gen.ts.
import type { PolicyArg } from '../../model/event';
import { TH_LAYOUT_VERSION } from '../../sensors/process/layout.gen';
import type { ArgDesc, ArgRender } from './compile';
import * as L from './layout.gen';

export interface PolicyRecord {
  /** Index of the ring in the consumer (= hook slot of the policy). */
  ring: number;
  ktime: bigint;
  procKtime: bigint;
  ret: bigint;
  pid: number;
  tid: number;
  flags: number;
  actions: number;
  sig: number;
  err: number;
  sel: number;
  /** Copy of the args area. */
  args: Uint8Array;
}

export interface DecodeErrors {
  malformed: number;
  unknownType: number;
  badVersion: number;
}

const E = L.th_pol_event;

/** Walks one batch ([u32 len][u32 ring][record][pad to 8]) into records. */
export function decodePolicyBatch(batch: Buffer, count: number, out: PolicyRecord[], errs: DecodeErrors): void {
  const dv = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  let off = 0;
  for (let i = 0; i < count && off + 8 <= batch.byteLength; i++) {
    const len = dv.getUint32(off, true);
    const ring = dv.getUint32(off + 4, true);
    const rec = off + 8;
    off = rec + ((len + 7) & ~7);
    if (rec + len > batch.byteLength || len < L.TH_POL_EVENT_HDR) {
      errs.malformed++;
      continue;
    }
    if (dv.getUint8(rec + E.hdr_type) !== L.TH_REC_POLICY) {
      errs.unknownType++;
      continue;
    }
    if (dv.getUint8(rec + E.hdr_version) !== TH_LAYOUT_VERSION) {
      errs.badVersion++;
      continue;
    }
    const argsLen = dv.getUint16(rec + E.args_len, true);
    if (L.TH_POL_EVENT_HDR + argsLen > len) {
      errs.malformed++;
      continue;
    }
    out.push({
      ring,
      ktime: dv.getBigUint64(rec + E.hdr_ktime, true),
      procKtime: dv.getBigUint64(rec + E.proc_ktime, true),
      ret: dv.getBigInt64(rec + E.ret, true),
      pid: dv.getUint32(rec + E.pid, true),
      tid: dv.getUint32(rec + E.tid, true),
      flags: dv.getUint32(rec + E.flags, true),
      actions: dv.getUint32(rec + E.actions, true),
      sig: dv.getUint32(rec + E.sig, true),
      err: dv.getInt32(rec + E.err, true),
      sel: dv.getUint16(rec + E.sel, true),
      args: Uint8Array.prototype.slice.call(batch, rec + E.args, rec + E.args + argsLen),
    });
  }
}

function intArg(render: ArgRender, v: bigint): PolicyArg {
  switch (render) {
    case 'int': return { t: 'int', v: Number(BigInt.asIntN(32, v)) };
    case 'uint': return { t: 'uint', v: Number(BigInt.asUintN(32, v)) };
    case 'long': return { t: 'long', v: BigInt.asIntN(64, v) };
    default: return { t: 'size', v: BigInt.asUintN(64, v) };
  }
}

const utf8 = new TextDecoder('utf-8');

/** The typed args of a record's args area, per the hook's arg descriptors. */
export function decodeArgs(area: Uint8Array, descs: readonly ArgDesc[]): PolicyArg[] {
  const dv = new DataView(area.buffer, area.byteOffset, area.byteLength);
  const out: PolicyArg[] = [];
  let off = 0;
  for (const d of descs) {
    const label = d.label ? { label: d.label } : {};
    if (d.kind === L.TH_PA_INT || d.kind === L.TH_PA_NONE) {
      if (off + 8 > area.length) break;
      out.push({ ...intArg(d.render, dv.getBigUint64(off, true)), ...label });
      off += 8;
      continue;
    }
    if (off + 4 > area.length) break;
    const h = dv.getUint32(off, true);
    const n = h & 0xffff;
    const truncated = (h & L.TH_IF_TRUNC) !== 0;
    if (off + 4 + n > area.length) break;
    const bytes = area.subarray(off + 4, off + 4 + n);
    off += 4 + n;
    switch (d.render) {
      case 'bytes':
        out.push({ t: 'bytes', v: Uint8Array.prototype.slice.call(bytes), ...(truncated ? { truncated } : {}), ...label });
        break;
      case 'file':
      case 'path':
        out.push({ t: d.render, path: utf8.decode(bytes), ...(truncated ? { truncated } : {}), ...label });
        break;
      case 'linux_binprm':
        out.push({ t: 'linux_binprm', path: utf8.decode(bytes), ...label });
        break;
      default:
        out.push({ t: 'string', v: utf8.decode(bytes), ...label });
    }
  }
  return out;
}

export function retArg(render: ArgRender, v: bigint): PolicyArg {
  return intArg(render, v);
}
