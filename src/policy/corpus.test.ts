// Policy corpus: integration/policies/good/*.yaml must parse clean (no errors,
// no warnings); each integration/policies/bad/*.yaml starts with one or more
//   # expect: <path> <regex>
// lines, and the parse must report an error at <path> whose
// "message (hint)" text matches <regex>.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatIssue, parsePolicies } from './parse';
import type { PolicyIssue } from './types';

// dist/src/policy → repo root
const ROOT = path.resolve(__dirname, '..', '..', '..');
const CORPUS = path.join(ROOT, 'integration', 'policies');

function files(dir: string): string[] {
  return fs.readdirSync(path.join(CORPUS, dir)).filter((f) => f.endsWith('.yaml')).sort();
}

export interface Expectation {
  path: string;
  re: RegExp;
}

export function readExpectations(text: string): Expectation[] {
  const out: Expectation[] = [];
  for (const line of text.split('\n')) {
    const m = /^#\s*expect:\s*(\S+)\s+(.+?)\s*$/.exec(line);
    if (!m) break;
    out.push({ path: m[1], re: new RegExp(m[2]) });
  }
  return out;
}

const render = (i: PolicyIssue): string => `${i.message}${i.hint ? ` (${i.hint})` : ''}`;

test('corpus has at least 10 good and 40 bad policies', () => {
  assert.ok(files('good').length >= 10, `good: ${files('good').length}`);
  assert.ok(files('bad').length >= 40, `bad: ${files('bad').length}`);
});

for (const f of files('good')) {
  test(`good/${f} parses clean`, () => {
    const text = fs.readFileSync(path.join(CORPUS, 'good', f), 'utf8');
    const results = parsePolicies(text, `good/${f}`);
    assert.ok(results.length >= 1);
    for (const r of results) {
      assert.deepEqual(r.errors.map(formatIssue), [], 'errors');
      assert.deepEqual(r.warnings.map(formatIssue), [], 'warnings');
      assert.ok(r.policy, 'policy');
    }
  });
}

for (const f of files('bad')) {
  test(`bad/${f} reports the expected error`, () => {
    const text = fs.readFileSync(path.join(CORPUS, 'bad', f), 'utf8');
    const expects = readExpectations(text);
    assert.ok(expects.length > 0, 'file must start with "# expect: <path> <regex>"');
    const results = parsePolicies(text, `bad/${f}`);
    const errors = results.flatMap((r) => r.errors);
    assert.ok(errors.length > 0, 'expected errors');
    assert.ok(results.some((r) => r.policy === undefined), 'at least one document must be rejected');
    for (const e of expects) {
      const hit = errors.find((x) => x.path === e.path && e.re.test(render(x)));
      assert.ok(hit, `no error at ${e.path} matching ${e.re}; got:\n  ${errors.map(formatIssue).join('\n  ')}`);
    }
  });
}
