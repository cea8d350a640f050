// GetEventsRequest.field_filters (`tetra getevents -f/-F`): field masks applied
// to the event body (the oneof member, e.g. ProcessExec), never to the
// envelope. Filters run in request order: INCLUDE keeps only the listed paths,
// EXCLUDE removes them, so exclusion wins and one INCLUDE drops everything not
// named. event_set (optionally inverted) limits which event types a filter
// touches. Unknown paths are ignored, as upstream's field-mask library does.
//
// Works on the plain proto object and never mutates its input: the object may
// share maps (pod labels) with the event model.
import { EVENT_FIELD_TYPE, FieldFilterAction, type PFieldFilter, type PGetEventsResponse } from './protos';

/** Path tree: an empty node means "this whole field". */
type Mask = Map<string, Mask>;

function maskFromPaths(paths: string[]): Mask {
  const root: Mask = new Map();
  const leaves = new Set<Mask>();
  for (const p of paths) {
    if (!p) continue;
    let node = root;
    for (const part of p.split('.')) {
      if (leaves.has(node)) break; // a shorter path already takes the whole field
      let next = node.get(part);
      if (!next) {
        next = new Map();
        node.set(part, next);
      }
      node = next;
    }
    // This path ends here: the whole subtree is selected.
    node.clear();
    leaves.add(node);
  }
  return root;
}

type Obj = { [k: string]: unknown };

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function keepOnly(v: unknown, mask: Mask): unknown {
  if (mask.size === 0) return v;
  if (Array.isArray(v)) return v.map((e) => keepOnly(e, mask));
  if (!isObj(v)) return v;
  const out: Obj = {};
  for (const [k, sub] of mask) if (k in v && v[k] !== undefined) out[k] = keepOnly(v[k], sub);
  return out;
}

function remove(v: unknown, mask: Mask): unknown {
  if (mask.size === 0) return v;
  if (Array.isArray(v)) return v.map((e) => remove(e, mask));
  if (!isObj(v)) return v;
  const out: Obj = { ...v };
  for (const [k, sub] of mask) {
    if (!(k in out)) continue;
    if (sub.size === 0) delete out[k];
    else out[k] = remove(out[k], sub);
  }
  return out;
}

interface OneFilter {
  types: Set<number>;
  invert: boolean;
  include: boolean;
  mask: Mask;
}

export interface CompiledFieldFilters {
  /** Stable identity of the filter set, for sharing encodings between streams. */
  key: string;
  /** A filtered copy of the response. */
  apply(resp: PGetEventsResponse): PGetEventsResponse;
}

/** undefined when the request has no field filters (the shared encoding is used). */
export function compileFieldFilters(list: PFieldFilter[] | undefined): CompiledFieldFilters | undefined {
  const filters: OneFilter[] = [];
  const keyParts: unknown[] = [];
  for (const f of list ?? []) {
    if (!f) continue;
    const paths = f.fields?.paths ?? [];
    const types = f.event_set ?? [];
    const invert = f.invert_event_set?.value === true;
    const include = (f.action ?? FieldFilterAction.INCLUDE) === FieldFilterAction.INCLUDE;
    filters.push({ types: new Set(types), invert, include, mask: maskFromPaths(paths) });
    keyParts.push([include ? 'i' : 'e', invert ? 1 : 0, [...types].sort((a, b) => a - b), [...paths].sort()]);
  }
  if (filters.length === 0) return undefined;
  const key = JSON.stringify(keyParts);
  return {
    key,
    apply(resp) {
      let member: string | undefined;
      for (const k in resp) {
        if (k in EVENT_FIELD_TYPE) {
          member = k;
          break;
        }
      }
      if (!member) return resp;
      const type = EVENT_FIELD_TYPE[member];
      const src = resp as Obj;
      let body: unknown = src[member];
      for (const f of filters) {
        if (f.types.size > 0 && f.types.has(type) === f.invert) continue;
        body = f.include ? keepOnly(body, f.mask) : remove(body, f.mask);
      }
      return { ...src, [member]: body } as PGetEventsResponse;
    },
  };
}
