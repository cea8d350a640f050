// Tracepoint formats from tracefs: field names, offsets, sizes. A
// TracingPolicy tracepoint arg `index` counts every field of the format,
// the common_* ones included (as Tetragon does).
import * as fs from 'node:fs';

export interface TraceField {
  /** Declaration as written, e.g. "const char * pathname", "__data_loc char[] filename". */
  decl: string;
  name: string;
  offset: number;
  size: number;
  signed: boolean;
  dataLoc: boolean;
  pointer: boolean;
  /** `char name[16]`-style arrays inside the record. */
  array: boolean;
}

const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

export function parseFormat(text: string): TraceField[] {
  const out: TraceField[] = [];
  const re = /field:([^;]+);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const decl = m[1].trim();
    const nameM = /([A-Za-z_][A-Za-z0-9_]*)\s*(\[[^\]]*\])?$/.exec(decl);
    out.push({
      decl,
      name: nameM ? nameM[1] : decl,
      offset: Number(m[2]),
      size: Number(m[3]),
      signed: m[4] === '1',
      dataLoc: decl.startsWith('__data_loc'),
      pointer: decl.includes('*'),
      array: !decl.startsWith('__data_loc') && /\[\d*\]$/.test(decl),
    });
  }
  return out;
}

/** The fields of subsys/event, or a reason why they cannot be had. */
export function readFormat(subsys: string, event: string): { fields: TraceField[] } | { reason: string } {
  if (!/^[A-Za-z0-9_.-]+$/.test(subsys) || !/^[A-Za-z0-9_.-]+$/.test(event)) return { reason: `invalid tracepoint name ${subsys}/${event}` };
  for (const root of TRACEFS) {
    const file = `${root}/events/${subsys}/${event}/format`;
    try {
      return { fields: parseFormat(fs.readFileSync(file, 'utf8')) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && fs.existsSync(`${root}/events`)) {
        return { reason: `tracepoint ${subsys}/${event} does not exist on this kernel (${root}/events/${subsys}/${event})` };
      }
    }
  }
  return { reason: `tracefs is not mounted (needed to read the format of ${subsys}/${event})` };
}

export function tracepointExists(subsys: string, event: string): boolean {
  return 'fields' in readFormat(subsys, event);
}
