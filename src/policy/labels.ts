// Kubernetes LabelSelector validation, shared by podSelector/containerSelector/
// nodeSelector/hostSelector and our DLabels/SLabels endpoint selectors.
import type { LabelSelector, LabelSelectorOperator, LabelSelectorRequirement } from './types';
import { Diag, Rec, asRec, at, checkFields, didYouMean, idx, kindOf, readList, readString, setOwn, show, stringish } from './reader';

const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Cilium label sources that may prefix a key (`k8s:app`), as in CiliumNetworkPolicy endpoint selectors. */
export const CILIUM_LABEL_SOURCES = ['k8s', 'any', 'reserved', 'container', 'cidr', 'fqdn', 'unspec', 'cilium-generated'] as const;

const OPERATORS: readonly LabelSelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

/** Why a label key is invalid, or undefined when it is fine. */
export function labelKeyProblem(key: string, allowSource: boolean): string | undefined {
  let k = key;
  if (allowSource) {
    const m = /^([a-z0-9-]+):(.*)$/.exec(k);
    if (m && (CILIUM_LABEL_SOURCES as readonly string[]).includes(m[1])) k = m[2];
  }
  if (k === '') return 'empty label key';
  const slash = k.lastIndexOf('/');
  const prefix = slash >= 0 ? k.slice(0, slash) : undefined;
  const name = slash >= 0 ? k.slice(slash + 1) : k;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return `label key prefix ${show(prefix)} must be a lowercase DNS subdomain`;
  if (name.length === 0 || name.length > 63) return 'label key name must be 1–63 characters';
  if (!LABEL_NAME.test(name)) return `label key name ${show(name)} must start and end with a letter or digit and contain only letters, digits, "-", "_", "."`;
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  if (value.length > 63) return 'label value must be at most 63 characters';
  if (!LABEL_VALUE.test(value)) return `label value ${show(value)} must be empty or start and end with a letter or digit and contain only letters, digits, "-", "_", "."`;
  return undefined;
}

export interface LabelSelectorOpts {
  /** What the selector is, for messages ("podSelector", "endpoint selector"). */
  what: string;
  /** Accept Cilium label-source prefixes on keys (`k8s:`, `reserved:`, …). */
  ciliumSources?: boolean;
}

/** Reads a LabelSelector; undefined when absent/null or broken (errors reported). */
export function readLabelSelector(d: Diag, v: unknown, path: string, opts: LabelSelectorOpts): LabelSelector | undefined {
  const r = asRec(d, v, path, opts.what);
  if (!r) return undefined;
  checkFields(d, r, path, ['matchLabels', 'matchExpressions'], opts.what);
  const out: LabelSelector = {};
  const before = d.errors.length;
  if (r.matchLabels !== null && r.matchLabels !== undefined) {
    const labels = readLabelMap(d, r.matchLabels, at(path, 'matchLabels'), opts.ciliumSources ?? false);
    if (labels) out.matchLabels = labels;
  }
  const exprs = readList(d, r, 'matchExpressions', path);
  if (exprs) {
    const list: LabelSelectorRequirement[] = [];
    exprs.forEach((e, i) => {
      if (!d.step()) return;
      const req = readRequirement(d, e, idx(at(path, 'matchExpressions'), i), opts);
      if (req) list.push(req);
    });
    out.matchExpressions = list;
  }
  return d.errors.length === before ? out : undefined;
}

function readLabelMap(d: Diag, v: unknown, path: string, ciliumSources: boolean): Record<string, string> | undefined {
  const r = asRec(d, v, path, 'matchLabels');
  if (!r) return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(r)) {
    if (!d.step()) return undefined;
    const p = at(path, k);
    const kp = labelKeyProblem(k, ciliumSources);
    if (kp) d.error(p, kp);
    const str = stringish(d, val, p);
    if (str === undefined) {
      d.error(p, `label value must be a string, got ${kindOf(val)}`);
      continue;
    }
    const vp = labelValueProblem(str);
    if (vp) d.error(p, vp);
    setOwn(out, k, str);
  }
  return out;
}

function readRequirement(d: Diag, v: unknown, path: string, opts: LabelSelectorOpts): LabelSelectorRequirement | undefined {
  const r: Rec | undefined = asRec(d, v, path, 'a matchExpressions entry');
  if (!r) {
    if (v === null || v === undefined) d.error(path, 'empty matchExpressions entry');
    return undefined;
  }
  checkFields(d, r, path, ['key', 'operator', 'values'], 'a matchExpressions entry');
  const key = readString(d, r, 'key', path, { required: true });
  if (key !== undefined) {
    const kp = labelKeyProblem(key, opts.ciliumSources ?? false);
    if (kp) d.error(at(path, 'key'), kp);
  }
  const opRaw = readString(d, r, 'operator', path, { required: true });
  let operator: LabelSelectorOperator | undefined;
  if (opRaw !== undefined) {
    if ((OPERATORS as readonly string[]).includes(opRaw)) operator = opRaw as LabelSelectorOperator;
    else d.error(at(path, 'operator'), `${show(opRaw)} is not a label selector operator`, didYouMean(opRaw, OPERATORS) ?? `use ${OPERATORS.join(', ')}`);
  }
  let values: string[] | undefined;
  const rawValues = r.values;
  if (rawValues !== null && rawValues !== undefined) {
    if (!Array.isArray(rawValues)) {
      d.error(at(path, 'values'), `expected a list, got ${kindOf(rawValues)}`, typeof rawValues === 'string' ? `write values: [${JSON.stringify(rawValues)}]` : undefined);
    } else {
      values = [];
      rawValues.forEach((x, i) => {
        if (!d.step()) return;
        const str = stringish(d, x, idx(at(path, 'values'), i));
        if (str === undefined) {
          d.error(idx(at(path, 'values'), i), `expected a string, got ${kindOf(x)}`);
          return;
        }
        const vp = labelValueProblem(str);
        if (vp) d.error(idx(at(path, 'values'), i), vp);
        values?.push(str);
      });
    }
  }
  if (operator === 'In' || operator === 'NotIn') {
    if (!values || values.length === 0) d.error(at(path, 'values'), `operator ${operator} needs at least one value`);
  } else if (operator && values && values.length > 0) {
    d.error(at(path, 'values'), `operator ${operator} takes no values`, 'remove "values"');
  }
  if (key === undefined || operator === undefined) return undefined;
  return values && values.length > 0 ? { key, operator, values } : { key, operator };
}

/** True for `{}` (or a selector with only empty parts): it matches everything. */
export function isEmptySelector(s: LabelSelector): boolean {
  return Object.keys(s.matchLabels ?? {}).length === 0 && (s.matchExpressions ?? []).length === 0;
}

export function describeLabelSelector(s: LabelSelector): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(s.matchLabels ?? {})) parts.push(`${k}=${v}`);
  for (const e of s.matchExpressions ?? []) {
    if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
    else parts.push(`${e.key} ${e.operator === 'In' ? 'in' : 'notin'} (${(e.values ?? []).join(',')})`);
  }
  return parts.length ? parts.join(', ') : '(everything)';
}

