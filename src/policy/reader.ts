// Small typed readers over untrusted parsed YAML/JSON: every reader reports
// problems into a Diag (with a YAML path) and returns undefined instead of
// throwing, so one pass collects all errors.
import type { PolicyIssue } from './types';
import { FIELD_HOMES } from './tables';

export type Rec = Record<string, unknown>;

export const ROOT = '(root)';

export interface DiagLimits {
  /** Nodes the validator may visit per document (bounds alias fan-out). */
  maxSteps: number;
  /** Errors kept per document; the rest are counted. */
  maxErrors: number;
}

export const DEFAULT_DIAG_LIMITS: DiagLimits = { maxSteps: 200_000, maxErrors: 200 };

export class Diag {
  readonly errors: PolicyIssue[] = [];
  readonly warnings: PolicyIssue[] = [];
  /** Set once the step budget is exhausted: readers then stop descending. */
  aborted = false;
  private steps = 0;
  private droppedErrors = 0;
  private droppedWarnings = 0;

  constructor(readonly limits: DiagLimits = DEFAULT_DIAG_LIMITS) {}

  error(path: string, message: string, hint?: string): void {
    if (this.errors.length >= this.limits.maxErrors) {
      this.droppedErrors++;
      return;
    }
    this.errors.push(hint ? { path, message, hint } : { path, message });
  }

  warn(path: string, message: string, hint?: string): void {
    if (this.warnings.length >= this.limits.maxErrors) {
      this.droppedWarnings++;
      return;
    }
    this.warnings.push(hint ? { path, message, hint } : { path, message });
  }

  /** Counts one visited node; false once over budget (reported once). */
  step(n = 1): boolean {
    if (this.aborted) return false;
    this.steps += n;
    if (this.steps > this.limits.maxSteps) {
      this.aborted = true;
      this.errors.push({
        path: ROOT,
        message: `policy is too large to check (more than ${this.limits.maxSteps} nodes after expanding YAML aliases)`,
        hint: 'remove deeply nested anchors/aliases or split the policy',
      });
      return false;
    }
    return true;
  }

  /** Adds the "N more" notes; call once when done. */
  finish(): void {
    if (this.droppedErrors > 0) this.errors.push({ path: ROOT, message: `${this.droppedErrors} more errors not shown` });
    if (this.droppedWarnings > 0) this.warnings.push({ path: ROOT, message: `${this.droppedWarnings} more warnings not shown` });
  }
}

// ---------------------------------------------------------------------------
// paths

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export function at(path: string, key: string): string {
  const k = PLAIN_KEY.test(key) ? key : `[${JSON.stringify(key)}]`;
  if (path === '' || path === ROOT) return k.startsWith('[') ? `${ROOT}${k}` : k;
  return k.startsWith('[') ? `${path}${k}` : `${path}.${k}`;
}

export function idx(path: string, i: number): string {
  return `${path}[${i}]`;
}

// ---------------------------------------------------------------------------
// describing values in messages

/** Short, safe rendering of a user value (never dumps a large structure). */
export function show(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Date) return `the timestamp ${JSON.stringify(v.toISOString())}`;
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

export function kindOf(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `the string ${show(v)}`;
  if (typeof v === 'number') return `the number ${show(v)}`;
  if (typeof v === 'boolean') return `the boolean ${v}`;
  if (v instanceof Date) return show(v);
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

export function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof Uint8Array);
}

export function has(r: Rec, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(r, key) && r[key] !== null && r[key] !== undefined;
}

/** Assigns even `__proto__` as an own property (user map keys are data). */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * A YAML number/boolean where the schema wants a string. Tetragon loads policy
 * files through sigs.k8s.io/yaml, which stringifies such scalars when the Go
 * field is a string (upstream examples rely on it: `values: [80]`,
 * `rateLimit: 5`), while `kubectl apply` refuses them. Accepted with a warning;
 * anything else returns undefined for the caller to report.
 */
export function stringish(d: Diag, v: unknown, p: string): string | undefined {
  if (typeof v === 'string') return v;
  const ok = typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v) && (!Number.isInteger(v) || Number.isSafeInteger(v)));
  if (!ok) return undefined;
  const s = String(v);
  d.warn(p, `unquoted ${s} is read as the string "${s}"`, `quote it: kubectl apply refuses a ${typeof v} here`);
  return s;
}

function notString(d: Diag, v: unknown, p: string): void {
  const hint = typeof v === 'number' ? 'quote it (numbers this large or special lose precision)' : undefined;
  d.error(p, `expected a string, got ${kindOf(v)}`, hint);
}

// ---------------------------------------------------------------------------
// suggestions

function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) > cap) return cap + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      rowMin = Math.min(rowMin, cur[j]);
    }
    if (rowMin > cap) return cap + 1;
    prev = cur;
  }
  return prev[b.length];
}

/** Closest candidate to a misspelling, if any is close enough to be a likely typo. */
export function suggest(input: string, candidateList: Iterable<string>): string | undefined {
  if (input.length > 64) return undefined;
  const candidates = [...candidateList];
  const lower = input.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    if (c.toLowerCase() === lower) return c;
    const cap = input.length <= 4 ? 1 : input.length <= 8 ? 2 : 3;
    const d = editDistance(lower, c.toLowerCase(), cap);
    if (d <= cap && d < bestD) {
      best = c;
      bestD = d;
    }
  }
  if (best !== undefined || lower.length < 3) return best;
  // "Kill" → "Sigkill": a whole-word fragment of a longer name.
  for (const c of candidates) if (c.toLowerCase().includes(lower)) return c;
  return undefined;
}

export function didYouMean(input: string, candidates: Iterable<string>): string | undefined {
  const s = suggest(input, candidates);
  return s === undefined ? undefined : `did you mean "${s}"?`;
}

export function oneOf(values: readonly string[]): string {
  return values.length <= 12 ? `one of ${values.join(', ')}` : `one of ${values.slice(0, 12).join(', ')}, …`;
}

// ---------------------------------------------------------------------------
// readers

/** Expects a mapping; reports and returns undefined otherwise (null = absent, not reported). */
export function asRec(d: Diag, v: unknown, path: string, what: string): Rec | undefined {
  if (v === null || v === undefined) return undefined;
  if (!isRec(v)) {
    const hint = Array.isArray(v) ? `${what} is a single mapping, not a list` : undefined;
    d.error(path, `expected ${what} (a mapping), got ${kindOf(v)}`, hint);
    return undefined;
  }
  return v;
}

/** Reports keys that are not in `allowed`, with a spelling or placement hint. */
export function checkFields(d: Diag, r: Rec, path: string, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(r)) {
    if (allowed.includes(key)) continue;
    if (!d.step()) return;
    let hint = didYouMean(key, allowed);
    if (hint && hint.toLowerCase() === `did you mean "${key.toLowerCase()}"?`) hint += ' Field names are case-sensitive.';
    if (!hint) {
      const home = FIELD_HOMES.get(key);
      if (home) hint = `"${key}" belongs in ${home}, not in ${what}`;
    }
    d.error(at(path, key), `unknown field "${key}" in ${what}`, hint ?? `known fields: ${allowed.join(', ')}`);
  }
}

export interface StrOpts {
  required?: boolean;
  nonEmpty?: boolean;
}

export function readString(d: Diag, r: Rec, key: string, path: string, opts: StrOpts = {}): string | undefined {
  const p = at(path, key);
  const v = r[key];
  if (v === null || v === undefined || !Object.prototype.hasOwnProperty.call(r, key)) {
    if (opts.required) d.error(p, `"${key}" is required`);
    return undefined;
  }
  const str = stringish(d, v, p);
  if (str === undefined) {
    notString(d, v, p);
    return undefined;
  }
  if ((opts.required || opts.nonEmpty) && str.trim() === '') {
    d.error(p, `"${key}" must not be empty`);
    return undefined;
  }
  return str;
}

export function readBool(d: Diag, r: Rec, key: string, path: string): boolean | undefined {
  const v = r[key];
  if (v === null || v === undefined || !Object.prototype.hasOwnProperty.call(r, key)) return undefined;
  if (typeof v !== 'boolean') {
    const s = typeof v === 'string' ? v.toLowerCase() : '';
    const hint = ['true', 'yes', 'on', 'y'].includes(s) ? 'write true (unquoted)' : ['false', 'no', 'off', 'n'].includes(s) ? 'write false (unquoted)' : 'use true or false';
    d.error(at(path, key), `expected a boolean, got ${kindOf(v)}`, hint);
    return undefined;
  }
  return v;
}

export interface IntOpts {
  required?: boolean;
  min?: number;
  max?: number;
  /** Text for "required" errors, e.g. 'the argument position'. */
  what?: string;
}

/** Integer field (Go int32/uint32 semantics given by min/max). */
export function readInt(d: Diag, r: Rec, key: string, path: string, opts: IntOpts = {}): number | undefined {
  const p = at(path, key);
  const v = r[key];
  if (v === null || v === undefined || !Object.prototype.hasOwnProperty.call(r, key)) {
    if (opts.required) d.error(p, `"${key}" is required${opts.what ? ` (${opts.what})` : ''}`);
    return undefined;
  }
  return intValue(d, v, p, opts);
}

export function intValue(d: Diag, v: unknown, p: string, opts: IntOpts = {}): number | undefined {
  const min = opts.min ?? -2147483648;
  const max = opts.max ?? 2147483647;
  if (typeof v !== 'number') {
    const hint = typeof v === 'string' && /^\s*[-+]?\d+\s*$/.test(v) ? `write ${v.trim()} without quotes` : undefined;
    d.error(p, `expected an integer, got ${kindOf(v)}`, hint);
    return undefined;
  }
  if (!Number.isInteger(v)) {
    d.error(p, `expected an integer, got ${show(v)}`);
    return undefined;
  }
  if (v < min || v > max) {
    d.error(p, `${show(v)} is out of range (${min}..${max})`);
    return undefined;
  }
  return v;
}

/** A list field; a lone scalar/mapping is reported with a "wrap it in a list" hint. */
export function readList(d: Diag, r: Rec, key: string, path: string, opts: { required?: boolean; what?: string } = {}): unknown[] | undefined {
  const p = at(path, key);
  const v = r[key];
  if (v === null || v === undefined || !Object.prototype.hasOwnProperty.call(r, key)) {
    if (opts.required) d.error(p, `"${key}" is required${opts.what ? ` (${opts.what})` : ''}`);
    return undefined;
  }
  if (!Array.isArray(v)) {
    const hint = typeof v === 'string' ? `write ${key}: [${JSON.stringify(v)}]` : isRec(v) ? `write ${key}: [ {…} ] (a list of mappings)` : undefined;
    d.error(p, `expected a list, got ${kindOf(v)}`, hint);
    return undefined;
  }
  return v;
}

/** List of strings; numbers/booleans are refused with a quoting hint (the CRD types them as strings). */
export function readStringList(d: Diag, r: Rec, key: string, path: string, opts: { required?: boolean; nonEmpty?: boolean; what?: string } = {}): string[] | undefined {
  const list = readList(d, r, key, path, opts);
  if (list === undefined) return undefined;
  const p = at(path, key);
  if (opts.nonEmpty && list.length === 0) d.error(p, `"${key}" must not be empty${opts.what ? ` (${opts.what})` : ''}`);
  const out: string[] = [];
  let ok = true;
  for (let i = 0; i < list.length; i++) {
    if (!d.step()) return undefined;
    const str = stringish(d, list[i], idx(p, i));
    if (str !== undefined) {
      out.push(str);
      continue;
    }
    ok = false;
    notString(d, list[i], idx(p, i));
  }
  return ok ? out : undefined;
}

/** Byte length as the kernel sees it. */
export function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
