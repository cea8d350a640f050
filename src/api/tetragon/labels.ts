// Kubernetes label-selector strings ("app=x,tier!=db,env in (a,b),!legacy"),
// as `Filter.labels` carries them. Requirements separated by commas are
// ANDed; an empty selector selects everything.

export class LabelSelectorError extends Error {
  override name = 'LabelSelectorError';
}

type Op = 'exists' | 'notexists' | 'eq' | 'neq' | 'in' | 'notin' | 'gt' | 'lt';

interface Requirement {
  key: string;
  op: Op;
  values: string[];
}

export type LabelMatcher = (labels: Record<string, string>) => boolean;

const NAME = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

function checkKey(key: string): void {
  const slash = key.indexOf('/');
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (slash >= 0) {
    const prefix = key.slice(0, slash);
    if (!prefix || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)) throw new LabelSelectorError(`invalid label key "${key}": bad prefix`);
  }
  if (!NAME.test(name)) throw new LabelSelectorError(`invalid label key "${key}"`);
}

function checkValue(v: string): void {
  if (v !== '' && !NAME.test(v)) throw new LabelSelectorError(`invalid label value "${v}"`);
}

type Token = { kind: 'id'; text: string } | { kind: 'op'; text: string };

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === ' ' || c === '\t' || c === '\n') {
      i++;
      continue;
    }
    const two = s.slice(i, i + 2);
    if (two === '==' || two === '!=') {
      out.push({ kind: 'op', text: two });
      i += 2;
      continue;
    }
    if ('=!,()<>'.includes(c)) {
      out.push({ kind: 'op', text: c });
      i++;
      continue;
    }
    let j = i;
    while (j < s.length && !' \t\n=!,()<>'.includes(s[j])) j++;
    out.push({ kind: 'id', text: s.slice(i, j) });
    i = j;
  }
  return out;
}

/** Parses one selector string; throws LabelSelectorError with a readable reason. */
export function parseLabelSelector(selector: string): LabelMatcher {
  const toks = tokenize(selector);
  const reqs: Requirement[] = [];
  let i = 0;
  const peek = (): Token | undefined => toks[i];
  const expectId = (what: string): string => {
    const t = toks[i++];
    if (!t || t.kind !== 'id') throw new LabelSelectorError(`expected ${what} in "${selector}"`);
    return t.text;
  };
  while (i < toks.length) {
    let t = peek();
    if (t && t.kind === 'op' && t.text === '!') {
      i++;
      const key = expectId('label key after "!"');
      checkKey(key);
      reqs.push({ key, op: 'notexists', values: [] });
    } else {
      const key = expectId('label key');
      checkKey(key);
      t = peek();
      if (!t || (t.kind === 'op' && t.text === ',')) {
        reqs.push({ key, op: 'exists', values: [] });
      } else if (t.kind === 'op' && (t.text === '=' || t.text === '==' || t.text === '!=')) {
        i++;
        const next = peek();
        // "a=" (empty value) is legal and matches an empty label value.
        const value = next && next.kind === 'id' ? (i++, next.text) : '';
        checkValue(value);
        reqs.push({ key, op: t.text === '!=' ? 'neq' : 'eq', values: [value] });
      } else if (t.kind === 'op' && (t.text === '<' || t.text === '>')) {
        i++;
        const value = expectId('integer');
        if (!/^-?\d+$/.test(value)) throw new LabelSelectorError(`"${value}" is not an integer in "${selector}"`);
        reqs.push({ key, op: t.text === '>' ? 'gt' : 'lt', values: [value] });
      } else if (t.kind === 'id' && (t.text === 'in' || t.text === 'notin')) {
        i++;
        const open = toks[i++];
        if (!open || open.text !== '(') throw new LabelSelectorError(`expected "(" after ${t.text} in "${selector}"`);
        const values: string[] = [];
        for (;;) {
          const v = toks[i++];
          if (!v) throw new LabelSelectorError(`unterminated value set in "${selector}"`);
          if (v.kind === 'id') {
            checkValue(v.text);
            values.push(v.text);
            const sep = toks[i++];
            if (sep && sep.text === ')') break;
            if (!sep || sep.text !== ',') throw new LabelSelectorError(`expected "," or ")" in "${selector}"`);
          } else if (v.text === ')' && values.length === 0) {
            throw new LabelSelectorError(`empty value set for "${key}" in "${selector}"`);
          } else if (v.text === ',') {
            values.push(''); // "(a,,b)" carries an empty value
          } else {
            throw new LabelSelectorError(`unexpected "${v.text}" in "${selector}"`);
          }
        }
        reqs.push({ key, op: t.text === 'in' ? 'in' : 'notin', values });
      } else {
        throw new LabelSelectorError(`unexpected "${t.text}" after "${key}" in "${selector}"`);
      }
    }
    const sep = toks[i];
    if (sep) {
      if (sep.text !== ',') throw new LabelSelectorError(`expected "," before "${sep.text}" in "${selector}"`);
      i++;
      if (i >= toks.length) throw new LabelSelectorError(`trailing "," in "${selector}"`);
    }
  }
  return (labels) => reqs.every((r) => matches(r, labels));
}

function matches(r: Requirement, labels: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const v = has ? labels[r.key] : undefined;
  switch (r.op) {
    case 'exists':
      return has;
    case 'notexists':
      return !has;
    case 'eq':
      return v === r.values[0];
    case 'neq':
      return v !== r.values[0];
    case 'in':
      return v !== undefined && r.values.includes(v);
    case 'notin':
      return v === undefined || !r.values.includes(v);
    case 'gt':
    case 'lt': {
      if (v === undefined || !/^-?\d+$/.test(v)) return false;
      const a = Number(v);
      const b = Number(r.values[0]);
      return r.op === 'gt' ? a > b : a < b;
    }
  }
}
