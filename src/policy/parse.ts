// TracingPolicy front end: text (YAML or JSON, one or many documents) →
// validated model + every error/warning with its YAML path and source position.
// Never throws: input size, nesting depth, alias count and validator work are
// all bounded.
import * as yaml from 'js-yaml';
import type { Event } from 'js-yaml';
import type { KProbeSelector, ParseResult, PolicyIssue, TracingPolicy } from './types';
import { DEFAULT_DIAG_LIMITS, Diag, ROOT, at, idx, isRec, show } from './reader';
import { validateDocument } from './validate';

export interface ParseOptions {
  /** Largest accepted input, in bytes (default 2 MiB). */
  maxBytes?: number;
  /** YAML aliases per document (default 256). Aliases share structure, so a few can expand enormously. */
  maxAliases?: number;
  /** Collection nesting depth (default 64; a policy needs about 12). */
  maxDepth?: number;
  /** Nodes the validator may visit per document (default 200 000). */
  maxSteps?: number;
  /** Errors kept per document (default 200). */
  maxErrors?: number;
}

const DEFAULTS: Required<ParseOptions> = { maxBytes: 2 * 1024 * 1024, maxAliases: 256, maxDepth: 64, maxSteps: DEFAULT_DIAG_LIMITS.maxSteps, maxErrors: DEFAULT_DIAG_LIMITS.maxErrors };

/** Kubernetes list kinds whose `items` are policies (`kubectl get tracingpolicies -o yaml`). */
const LIST_KINDS = new Set(['List', 'TracingPolicyList', 'TracingPolicyNamespacedList']);

/**
 * Parses one policy. A file holding several documents (or a List) is refused
 * with a pointer to `parsePolicies`.
 */
export function parsePolicy(text: string, source?: string, options: ParseOptions = {}): ParseResult {
  const all = parsePolicies(text, source, options);
  if (all.length === 1) return all[0];
  const first = all[0];
  const err = issue({ path: ROOT, message: `expected one policy, found ${all.length} (several YAML documents or List items)`, hint: 'use parsePolicies for multi-policy files' }, source, first.document);
  return { errors: [err, ...all.flatMap((r) => r.errors)], warnings: all.flatMap((r) => r.warnings), document: first.document };
}

/**
 * Parses every policy in a file: one result per non-empty YAML document (and per
 * item of a `kind: List`). Policy identities (kind, namespace, name) must be unique
 * across the file.
 */
export function parsePolicies(text: string, source?: string, options: ParseOptions = {}): ParseResult[] {
  const o = { ...DEFAULTS, ...options };
  try {
    return parseAll(text, source, o);
  } catch (e) {
    // Defensive: the readers are written not to throw; report rather than crash a caller.
    return [{ errors: [issue({ path: ROOT, message: `internal error while checking the policy: ${(e as Error)?.message ?? String(e)}` }, source, 0)], warnings: [], document: 0 }];
  }
}

function parseAll(text: unknown, source: string | undefined, o: Required<ParseOptions>): ParseResult[] {
  if (typeof text !== 'string') {
    return [fail(source, 0, { path: ROOT, message: `expected policy text (a string), got ${show(text)}` })];
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > o.maxBytes) {
    return [fail(source, 0, { path: ROOT, message: `policy file is ${bytes} bytes; the limit is ${o.maxBytes}`, hint: 'split it into several files' })];
  }
  const loaded = load(text, source, o);
  if ('error' in loaded) return [fail(source, 0, loaded.error)];

  const docs = loaded.docs;
  // `---` separators around nothing yield null documents; Kubernetes tooling skips them too.
  const nonEmpty = docs.map((doc, i) => ({ doc, i })).filter(({ doc }) => !(doc === null && docs.length > 1));
  if (nonEmpty.length === 0) return [fail(source, 0, { path: ROOT, message: 'empty document', hint: 'a policy needs apiVersion, kind, metadata and spec' })];

  const results: ParseResult[] = [];
  const seen = new Map<string, string>();
  for (const { doc, i } of nonEmpty) {
    const pos = loaded.positions[i];
    if (isRec(doc) && typeof doc.kind === 'string' && LIST_KINDS.has(doc.kind)) {
      const items = doc.items;
      if (!Array.isArray(items)) {
        results.push(finish(source, i, pos, loaded.newlines, (d) => d.error(at('', 'items'), `a ${doc.kind} needs an items list`)));
        continue;
      }
      if (items.length === 0) results.push(finish(source, i, pos, loaded.newlines, (d) => d.warn(at('', 'items'), `empty ${doc.kind}`)));
      items.forEach((item, j) => results.push(checkOne(item, idx('items', j), source, i, pos, loaded.newlines, seen, o)));
      continue;
    }
    results.push(checkOne(doc, '', source, i, pos, loaded.newlines, seen, o));
  }
  return results;
}

function checkOne(doc: unknown, base: string, source: string | undefined, docIndex: number, pos: Map<string, number>, newlines: number[] | undefined, seen: Map<string, string>, o: Required<ParseOptions>): ParseResult {
  return finish(source, docIndex, pos, newlines, (d) => {
    const policy = validateDocument(d, doc, base);
    // Duplicate identities across documents: the later one would replace the earlier.
    if (isRec(doc) && isRec(doc.metadata) && typeof doc.metadata.name === 'string') {
      const kind = typeof doc.kind === 'string' ? doc.kind : '';
      const ns = kind === 'TracingPolicyNamespaced' && typeof doc.metadata.namespace === 'string' ? doc.metadata.namespace : '';
      const key = `${kind}/${ns}/${doc.metadata.name}`;
      const where = `document ${docIndex + 1}${base ? ` ${base}` : ''}`;
      const prev = seen.get(key);
      if (prev !== undefined) d.error(at(at(base, 'metadata'), 'name'), `duplicate policy name ${show(doc.metadata.name)}: ${prev} already defines ${kind || 'a policy'} ${show(doc.metadata.name)}${ns ? ` in ${ns}` : ''}`, 'policy names must be unique; rename one');
      else seen.set(key, where);
    }
    return policy;
  }, o);
}

function finish(source: string | undefined, docIndex: number, pos: Map<string, number>, newlines: number[] | undefined, run: (d: Diag) => TracingPolicy | void, o: Required<ParseOptions> = DEFAULTS): ParseResult {
  const d = new Diag({ maxSteps: o.maxSteps, maxErrors: o.maxErrors });
  const policy = run(d) ?? undefined;
  d.finish();
  const place = (i: PolicyIssue): PolicyIssue => locate(issue(i, source, docIndex), pos, newlines);
  const errors = sortByLine(dedupe(d.errors).map(place));
  const warnings = sortByLine(dedupe(d.warnings).map(place));
  const out: ParseResult = { errors, warnings, document: docIndex };
  if (errors.length === 0 && policy) out.policy = policy;
  return out;
}

function fail(source: string | undefined, docIndex: number, e: PolicyIssue): ParseResult {
  return { errors: [issue(e, source, docIndex)], warnings: [], document: docIndex };
}

function issue(i: PolicyIssue, source: string | undefined, doc: number): PolicyIssue {
  const out: PolicyIssue = { ...i };
  if (source !== undefined) out.source = source;
  out.document = doc;
  return out;
}

/** A macro validated for several hooks reports the same problem once. */
function dedupe(list: PolicyIssue[]): PolicyIssue[] {
  const seen = new Set<string>();
  return list.filter((i) => {
    const k = `${i.path}\u0000${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function sortByLine(list: PolicyIssue[]): PolicyIssue[] {
  return list
    .map((v, i) => ({ v, i }))
    .sort((a, b) => (a.v.line ?? Number.MAX_SAFE_INTEGER) - (b.v.line ?? Number.MAX_SAFE_INTEGER) || a.i - b.i)
    .map(({ v }) => v);
}

// ---------------------------------------------------------------------------
// loading

interface Loaded {
  docs: unknown[];
  /** Per document: path → source offset. */
  positions: Map<string, number>[];
  /** Offsets of the newlines in the text (absent for the JSON fallback). */
  newlines?: number[];
}

function load(text: string, source: string | undefined, o: Required<ParseOptions>): Loaded | { error: PolicyIssue } {
  const schema = yaml.CORE_SCHEMA.withTags(yaml.mergeTag);
  try {
    const events = yaml.parseEvents(text, { filename: source, maxDepth: o.maxDepth });
    const docs = yaml.constructFromEvents(events, { source: text, filename: source, schema, maxAliases: o.maxAliases, maxTotalMergeKeys: 10000 });
    return { docs, positions: indexPositions(text, events), newlines: newlineOffsets(text) };
  } catch (e) {
    // JSON with constructs YAML dislikes (e.g. tab indentation) still deserves a chance.
    const t = text.trimStart();
    if (t.startsWith('{') || t.startsWith('[')) {
      try {
        return { docs: [JSON.parse(text) as unknown], positions: [new Map()] };
      } catch {
        // fall through to the YAML error, which has a position
      }
    }
    return { error: yamlError(e) };
  }
}

function yamlError(e: unknown): PolicyIssue {
  if (e instanceof yaml.YAMLException) {
    const m = e.mark;
    const reason = e.reason || 'invalid YAML';
    if (m && typeof m.line === 'number') {
      const out: PolicyIssue = { path: ROOT, message: `YAML syntax error at line ${m.line + 1}, column ${m.column + 1}: ${reason}`, line: m.line + 1, column: m.column + 1 };
      if (/duplicated mapping key/.test(reason)) out.hint = 'a key appears twice in the same mapping; keep one';
      else if (/tab/i.test(reason)) out.hint = 'indent with spaces, not tabs';
      else if (/indentation|mapping|block/.test(reason)) out.hint = 'check the indentation of this line and the one above';
      else if (/alias|maxAliases/.test(reason)) out.hint = 'use fewer YAML anchors/aliases';
      return out;
    }
    return { path: ROOT, message: `YAML syntax error: ${reason}` };
  }
  return { path: ROOT, message: `cannot parse the policy: ${(e as Error)?.message ?? String(e)}` };
}

interface Frame {
  kind: 'doc' | 'map' | 'seq' | 'skip';
  path: string;
  expectKey: boolean;
  key?: string;
  i: number;
}

/** Walks the parser's events to map each YAML path to the offset of its key (or node). */
function indexPositions(text: string, events: Event[]): Map<string, number>[] {
  const out: Map<string, number>[] = [];
  let cur = new Map<string, number>();
  const stack: Frame[] = [];
  const E = yaml.EVENT_ID;
  for (const ev of events) {
    if (ev.type === E.DOCUMENT) {
      cur = new Map();
      out.push(cur);
      stack.push({ kind: 'doc', path: '', expectKey: false, i: 0 });
      continue;
    }
    if (ev.type === E.POP) {
      stack.pop();
      continue;
    }
    const top = stack[stack.length - 1];
    const start = ev.type === E.SCALAR ? ev.valueStart : ev.type === E.ALIAS ? ev.anchorStart : ev.start;
    let path: string | undefined;
    let isKey = false;
    if (!top || top.kind === 'skip') path = undefined;
    else if (top.kind === 'doc') {
      path = '';
      if (start >= 0) cur.set(ROOT, start);
    } else if (top.kind === 'seq') {
      path = idx(top.path, top.i++);
      if (start >= 0 && !cur.has(path)) cur.set(path, start);
    } else if (top.expectKey) {
      isKey = true;
      top.expectKey = false;
      top.key = ev.type === E.SCALAR ? yaml.getScalarValue(text, ev) : undefined;
      if (top.key !== undefined && start >= 0) {
        const kp = at(top.path, top.key);
        if (!cur.has(kp)) cur.set(kp, start);
      }
    } else {
      top.expectKey = true;
      path = top.key === undefined ? undefined : at(top.path, top.key);
    }
    if (ev.type === E.MAPPING || ev.type === E.SEQUENCE) {
      const kind = isKey || path === undefined ? 'skip' : ev.type === E.MAPPING ? 'map' : 'seq';
      stack.push({ kind, path: path ?? '', expectKey: true, i: 0 });
    }
  }
  return out;
}

/** Adds line/column from the nearest positioned ancestor of the issue's path. */
function locate(i: PolicyIssue, pos: Map<string, number>, newlines: number[] | undefined): PolicyIssue {
  if (i.line !== undefined || !newlines || pos.size === 0) return i;
  let p: string | undefined = i.path;
  while (p !== undefined) {
    const off = pos.get(p);
    if (off !== undefined) {
      const { line, column } = lineCol(newlines, off);
      return { ...i, line, column };
    }
    p = parentPath(p);
  }
  return i;
}

function parentPath(p: string): string | undefined {
  if (p === ROOT || p === '') return undefined;
  const bracket = /(\[\d+\]|\["(?:[^"\\]|\\.)*"\])$/.exec(p);
  if (bracket) {
    const rest = p.slice(0, p.length - bracket[0].length);
    return rest === '' || rest === ROOT ? ROOT : rest;
  }
  const dot = p.lastIndexOf('.');
  return dot > 0 ? p.slice(0, dot) : ROOT;
}

function newlineOffsets(text: string): number[] {
  const out: number[] = [];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) out.push(i);
  return out;
}

/** 1-based line/column of an offset (binary search over newline offsets). */
function lineCol(newlines: number[], offset: number): { line: number; column: number } {
  let lo = 0;
  let hi = newlines.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (newlines[mid] < offset) lo = mid + 1;
    else hi = mid;
  }
  const lineStart = lo === 0 ? 0 : newlines[lo - 1] + 1;
  return { line: lo + 1, column: offset - lineStart + 1 };
}

// ---------------------------------------------------------------------------
// helpers for consumers

/** `file:line:col: path: message (hint)` — one line per issue, for CLIs and logs. */
export function formatIssue(i: PolicyIssue): string {
  const where = [i.source, i.line, i.column].filter((x) => x !== undefined).join(':');
  return `${where ? `${where}: ` : ''}${i.path}: ${i.message}${i.hint ? ` (${i.hint})` : ''}`;
}

/** A selector with its macros merged in (fields cannot overlap in a valid policy). */
export function expandSelector(sel: KProbeSelector, macros: Readonly<Record<string, KProbeSelector>> | undefined): KProbeSelector {
  const out: KProbeSelector = { ...sel };
  delete out.macros;
  for (const name of sel.macros ?? []) {
    const m = macros && Object.prototype.hasOwnProperty.call(macros, name) ? macros[name] : undefined;
    if (!m) continue;
    for (const [k, v] of Object.entries(m)) {
      if (k !== 'macros' && v !== undefined && (out as Record<string, unknown>)[k] === undefined) (out as Record<string, unknown>)[k] = v;
    }
  }
  return out;
}
