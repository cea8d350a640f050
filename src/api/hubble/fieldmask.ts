// Flow field masks (GetFlowsRequest.field_mask, or experimental.field_mask from
// CLIs up to 1.18). Paths are validated against the loaded flow.Flow schema, so
// every 1.19 path (nested ones like `source.identity`, `l4.TCP.flags`, and
// `ip_trace_id`) is known without a hand-kept list. Masks are applied by copying
// only the selected fields into a new plain object.
import * as protobuf from 'protobufjs';
import type { Flow } from './types';

/** A node of the mask: `true` keeps the whole field, a map keeps selected subfields. */
type MaskTree = Map<string, MaskTree | true>;

export class FieldMaskError extends Error {}

export interface CompiledFieldMask {
  /** Canonical form (sorted, covered paths removed): the cache key of the masked encoding. */
  readonly key: string;
  readonly paths: readonly string[];
  /** True when the mask keeps (part of) the top-level field. */
  has(field: keyof Flow): boolean;
  apply(flow: Flow): Flow;
}

function lookupField(type: protobuf.Type, name: string): protobuf.Field | undefined {
  // Own property only: protobufjs' fields map is a plain object.
  return Object.prototype.hasOwnProperty.call(type.fields, name) ? type.fields[name] : undefined;
}

/** Throws FieldMaskError naming the first path that is not a Flow field path. */
function validatePath(flowType: protobuf.Type, p: string, label: string): string[] {
  const parts = p.split('.');
  let type: protobuf.Type | undefined = flowType;
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i];
    const field: protobuf.Field | undefined = type ? lookupField(type, name) : undefined;
    if (!name || !field) throw new FieldMaskError(`${label}: invalid path "${p}" for message flow.Flow`);
    if (i < parts.length - 1) {
      field.resolve();
      // Masks cannot reach into repeated or map fields, nor below scalars.
      if (field.repeated || field.map || !(field.resolvedType instanceof protobuf.Type)) {
        throw new FieldMaskError(`${label}: invalid path "${p}": "${name}" has no subfields`);
      }
      type = field.resolvedType;
    }
  }
  return parts;
}

function insert(tree: MaskTree, parts: string[]): void {
  let node = tree;
  for (let i = 0; i < parts.length; i++) {
    const cur = node.get(parts[i]);
    if (cur === true) return; // a shorter path already keeps everything below
    if (i === parts.length - 1) {
      node.set(parts[i], true);
      return;
    }
    let next: MaskTree;
    if (cur) next = cur;
    else {
      next = new Map();
      node.set(parts[i], next);
    }
    node = next;
  }
}

function flatten(tree: MaskTree, prefix: string, out: string[]): void {
  for (const [k, v] of tree) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (v === true) out.push(p);
    else flatten(v, p, out);
  }
}

function applyTree(src: Record<string, unknown>, tree: MaskTree): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, sub] of tree) {
    const v = src[k];
    if (v === undefined || v === null) continue;
    // A present sub-message stays present (possibly empty), as with Go's mask copy.
    out[k] = sub === true ? v : applyTree(v as Record<string, unknown>, sub);
  }
  return out;
}

/**
 * Compiles a mask; returns undefined when there are no paths (no masking).
 * `label` names the request field in errors (`field_mask`, `experimental.field_mask`).
 */
export function compileFieldMask(flowType: protobuf.Type, paths: readonly string[] | undefined, label = 'field_mask'): CompiledFieldMask | undefined {
  if (!paths || paths.length === 0) return undefined;
  const tree: MaskTree = new Map();
  for (const raw of paths) insert(tree, validatePath(flowType, raw.trim(), label));
  const canonical: string[] = [];
  flatten(tree, '', canonical);
  canonical.sort();
  return {
    key: canonical.join(','),
    paths: canonical,
    has: (field) => tree.has(field),
    apply: (flow) => applyTree(flow as Record<string, unknown>, tree) as Flow,
  };
}

/** Default masks the stock CLIs send for compact/dict/table output (hubble-api.md §6). */
export const DEFAULT_MASK_1_16_TO_1_18 = [
  'time', 'source.identity', 'source.namespace', 'source.pod_name', 'destination.identity', 'destination.namespace', 'destination.pod_name',
  'source_service', 'destination_service', 'l4', 'IP', 'ethernet', 'l7', 'Type', 'node_name', 'is_reply', 'event_type', 'verdict', 'Summary',
] as const;

export const DEFAULT_MASK_1_19 = [
  'time', 'verdict', 'ethernet', 'IP', 'l4', 'source.identity', 'source.namespace', 'source.pod_name', 'destination.identity',
  'destination.namespace', 'destination.pod_name', 'Type', 'node_name', 'l7', 'event_type', 'source_service', 'destination_service',
  'is_reply', 'Summary', 'ip_trace_id',
] as const;
