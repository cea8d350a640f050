import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { expandSelector, formatIssue, parsePolicies, parsePolicy } from './parse';
import { parseIdentityValue, parseRateLimit } from './selectors';
import type { ParseResult, PolicyIssue } from './types';

const SEED = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: "process-monitoring"}
spec:
  kprobes:
  - call: "sys_execve"
    syscall: true
    args: [{index: 0, type: "string"}, {index: 1, type: "string"}, {index: 2, type: "string"}]
    selectors:
    - matchBinaries: [{operator: In, values: ["/usr/bin/bash", "/bin/sh"]}]
`;

const head = (name = 'p'): string => `apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: ${name}}\n`;
const render = (list: PolicyIssue[]): string => list.map(formatIssue).join('\n');
const find = (list: PolicyIssue[], path: string): PolicyIssue | undefined => list.find((i) => i.path === path);

test('the seed policy from the issue parses clean into the model', () => {
  const r = parsePolicy(SEED, 'seed.yaml');
  assert.equal(render(r.errors), '');
  assert.equal(render(r.warnings), '');
  assert.deepEqual(r.policy, {
    apiVersion: 'cilium.io/v1alpha1',
    kind: 'TracingPolicy',
    metadata: { name: 'process-monitoring' },
    spec: {
      kprobes: [{
        call: 'sys_execve', return: false, syscall: true,
        args: [{ index: 0, type: 'string' }, { index: 1, type: 'string' }, { index: 2, type: 'string' }],
        selectors: [{ matchBinaries: [{ operator: 'In', values: ['/usr/bin/bash', '/bin/sh'], followChildren: false }] }],
      }],
    },
  });
});

test('JSON input parses like YAML, with positions; tab-indented JSON falls back to JSON.parse', () => {
  const obj = parsePolicy(SEED).policy;
  const json = JSON.stringify(obj, null, 2);
  const r = parsePolicy(json, 'p.json');
  assert.equal(render(r.errors), '');
  assert.deepEqual(r.policy, obj);
  const tabbed = JSON.stringify(obj, null, '\t');
  assert.deepEqual(parsePolicy(tabbed).policy, obj);
  const bad = JSON.stringify({ ...obj, spec: { kprobes: [{ call: 'sys_execve', bogus: 1 }] } }, null, 2);
  const e = find(parsePolicy(bad).errors, 'spec.kprobes[0].bogus');
  assert.ok(e && e.line !== undefined && e.line > 1, JSON.stringify(e));
});

test('multi-document files: one result per document; parsePolicy refuses them', () => {
  const two = `${SEED}---\n${SEED.replace('process-monitoring', 'second')}\n---\n`;
  const all = parsePolicies(two);
  assert.equal(all.length, 2);
  assert.ok(all.every((r) => r.policy && r.errors.length === 0));
  assert.deepEqual(all.map((r) => r.document), [0, 1]);
  const one = parsePolicy(two);
  assert.equal(one.policy, undefined);
  assert.match(one.errors[0].message, /expected one policy, found 2/);
});

test('kind: List (kubectl get -o yaml) expands to its items with items[i] paths', () => {
  const list = `apiVersion: v1\nkind: List\nitems:\n- ${SEED.trimEnd().split('\n').join('\n  ')}\n- ${SEED.replace('process-monitoring', 'x').trimEnd().split('\n').join('\n  ').replace('call: "sys_execve"', 'call: "sys_exec"')}\n`;
  const all = parsePolicies(list);
  assert.equal(all.length, 2);
  assert.ok(all[0].policy);
  const e = find(all[1].errors, 'items[1].spec.kprobes[0].call');
  assert.ok(e, render(all[1].errors));
  assert.match(e.message, /not an x86_64 syscall/);
  assert.equal(e.line, 19);
});

test('all errors are collected, each with a path, a position and (where we know one) a hint', () => {
  const text = `${head()}spec:
  kprobes:
  - call: sys_openat
    sycall: true
    args: [{index: 0, type: int}, {index: 1, type: strng}]
    selectors:
    - matchArgs: [{index: 0, operator: Prefix, values: [/etc]}, {index: 7, operator: Equal, values: ["1"]}]
      matchActions: [{action: Signal}, {action: Post, rateLimit: "soon"}]
  tracepoints:
  - event: sys_enter_openat
`;
  const r = parsePolicy(text, 'many.yaml');
  const paths = r.errors.map((e) => e.path);
  assert.deepEqual(paths, [
    'spec.kprobes[0].sycall',
    'spec.kprobes[0].args[1].type',
    'spec.kprobes[0].selectors[0].matchArgs[0].operator',
    'spec.kprobes[0].selectors[0].matchArgs[1].index',
    'spec.kprobes[0].selectors[0].matchActions[0].argSig',
    'spec.kprobes[0].selectors[0].matchActions[1].rateLimit',
    'spec.tracepoints[0].subsystem',
  ]);
  const typo = find(r.errors, 'spec.kprobes[0].sycall');
  assert.equal(typo?.hint, 'did you mean "syscall"?');
  assert.equal(typo?.line, 7);
  assert.equal(typo?.column, 5);
  assert.equal(typo?.source, 'many.yaml');
  assert.match(formatIssue(typo as PolicyIssue), /^many\.yaml:7:5: spec\.kprobes\[0\]\.sycall: unknown field "sycall" in a kprobe hook \(did you mean "syscall"\?\)$/);
  assert.equal(r.policy, undefined);
});

test('spellings are normalised: operator/action/namespace aliases, type aliases, capabilities', () => {
  const text = `${head()}spec:
  kprobes:
  - call: sys_setuid
    syscall: true
    args: [{index: 0, type: "unsigned long"}]
    selectors:
    - matchArgs: [{index: 0, operator: gt, values: ["0x10"]}]
      matchNamespaces: [{namespace: pid, operator: NotIn, values: [host_ns]}]
      matchCapabilities: [{operator: In, values: [sys_admin, " cap_net_raw "]}]
      matchActions: [{action: sigkill}]
  - call: tcp_connect
    syscall: false
    args: [{index: 0, type: sock}]
    selectors:
    - matchArgs: [{index: 0, operator: NotSportPriv}, {index: 0, operator: GreaterThan, values: ["1"]}]
`;
  const r = parsePolicy(text);
  // GreaterThan on a sock arg is still wrong:
  assert.deepEqual(r.errors.map((e) => e.path), ['spec.kprobes[1].selectors[0].matchArgs[1].operator']);
  const fixed = parsePolicy(text.replace(', {index: 0, operator: GreaterThan, values: ["1"]}', ''));
  assert.equal(render(fixed.errors), '');
  const k = fixed.policy?.spec.kprobes ?? [];
  assert.equal(k[0].args?.[0].type, 'ulong');
  const sel = k[0].selectors?.[0];
  assert.equal(sel?.matchArgs?.[0].operator, 'GT');
  assert.equal(sel?.matchNamespaces?.[0].namespace, 'Pid');
  assert.deepEqual(sel?.matchCapabilities?.[0], { type: 'Effective', operator: 'In', isNamespaceCapability: false, values: ['CAP_SYS_ADMIN', 'CAP_NET_RAW'] });
  assert.equal(sel?.matchActions?.[0].action, 'Sigkill');
  assert.equal(k[1].selectors?.[0].matchArgs?.[0].operator, 'NotSPortPriv');
  // Non-CRD spellings load on Tetragon from a file but not through kubectl: warned.
  const warned = fixed.warnings.map((w) => w.path);
  assert.deepEqual(warned, [
    'spec.kprobes[0].selectors[0].matchArgs[0].operator',
    'spec.kprobes[0].selectors[0].matchNamespaces[0].namespace',
    'spec.kprobes[0].selectors[0].matchActions[0].action',
  ]);
});

test('warnings: long messages are truncated, syscall default, CAP_DAC_OVERRIDE, unused lists and macros', () => {
  const long = 'm'.repeat(300);
  const text = `${head()}spec:
  lists: [{name: unused, type: syscalls, values: [sys_dup]}]
  selectorsMacros:
    lonely: {matchBinaries: [{operator: In, values: [/bin/sh]}]}
  kprobes:
  - call: security_file_permission
    message: "${long}"
    args: [{index: 0, type: file}]
    selectors:
    - matchCapabilities: [{operator: In, values: [CAP_DAC_OVERRIDE]}]
`;
  const r = parsePolicy(text);
  assert.equal(render(r.errors), '');
  assert.equal(r.policy?.spec.kprobes?.[0].message, 'm'.repeat(256));
  const msgs = render(r.warnings);
  assert.match(msgs, /spec\.kprobes\[0\]\.message: message is 300 characters; it is truncated to 256/);
  assert.match(msgs, /spec\.kprobes\[0\]\.call: "security_file_permission" is not a syscall, but syscall defaults to true/);
  assert.match(msgs, /Tetragon spells this capability "DAC_OVERRIDE"/);
  assert.match(msgs, /list "unused" is never used/);
  assert.match(msgs, /macro "lonely" is never used/);
});

test('selector macros merge into the selector; expandSelector returns the merged view', () => {
  const text = `${head()}spec:
  selectorsMacros:
    shells: {matchBinaries: [{operator: In, values: [/bin/sh]}]}
    kill: {matchActions: [{action: Sigkill}]}
  kprobes:
  - call: sys_execve
    args: [{index: 0, type: string}]
    selectors:
    - macros: [shells, kill]
      matchArgs: [{index: 0, operator: Postfix, values: [/nc]}]
`;
  const r = parsePolicy(text);
  assert.equal(render(r.errors), '');
  const sel = r.policy?.spec.kprobes?.[0].selectors?.[0];
  assert.deepEqual(sel?.macros, ['shells', 'kill']);
  const merged = expandSelector(sel ?? {}, r.policy?.spec.selectorsMacros);
  assert.equal(merged.macros, undefined);
  assert.equal(merged.matchBinaries?.[0].values[0], '/bin/sh');
  assert.equal(merged.matchActions?.[0].action, 'Sigkill');
  assert.equal(merged.matchArgs?.[0].operator, 'Postfix');
});

test('DIdentity / DLabels: shape, values and where they apply', () => {
  const base = `${head()}spec:
  kprobes:
  - call: tcp_connect
    syscall: false
    args: [{index: 0, type: sock}]
    selectors:
    - matchArgs:
`;
  const ok = parsePolicy(`${base}      - {index: 0, operator: DIdentity, values: ["world", "reserved:kube-apiserver", "16777217", "256"]}
      - index: 0
        operator: DLabels
        labelSelector:
          matchLabels: {app: db, "k8s:io.kubernetes.pod.namespace": prod}
          matchExpressions: [{key: tier, operator: In, values: [backend]}, {key: canary, operator: DoesNotExist}]
`);
  assert.equal(render(ok.errors), '');
  assert.equal(render(ok.warnings), '');
  const f = ok.policy?.spec.kprobes?.[0].selectors?.[0].matchArgs ?? [];
  assert.deepEqual(f[1], {
    index: 0, operator: 'DLabels', values: [],
    labelSelector: { matchLabels: { app: 'db', 'k8s:io.kubernetes.pod.namespace': 'prod' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend'] }, { key: 'canary', operator: 'DoesNotExist' }] },
  });
  assert.deepEqual(['world', 'host', 'reserved:kube-apiserver', '48213', '0', 'unknown', 'internet', '4294967296'].map(parseIdentityValue), [2, 1, 7, 48213, undefined, undefined, undefined, undefined]);

  const empty = parsePolicy(`${base}      - {index: 0, operator: SLabels, labelSelector: {}}\n`);
  assert.equal(render(empty.errors), '');
  assert.match(render(empty.warnings), /empty labelSelector matches every endpoint/);

  // sockaddr: a single address, the "S" side in Tetragon's convention.
  const sa = `${head()}spec:
  kprobes:
  - call: sys_connect
    args: [{index: 1, type: sockaddr}]
    selectors:
    - matchArgs: [{index: 1, operator: OP, labelSelector: {matchLabels: {app: db}}}]
`;
  assert.equal(render(parsePolicy(sa.replace('OP', 'SLabels')).errors), '');
  assert.match(render(parsePolicy(sa.replace('OP', 'DLabels')).errors), /DLabels does not apply to a sockaddr arg.*use SLabels/);
});

test('actions: parameters, rate limits, per-hook rules', () => {
  assert.deepEqual(['5', '30s', '1m', '2H', '0', '4294967295h', '1.5m', '', 'm', '-1'].map(parseRateLimit), [5000, 30000, 60000, 7200000, 0, 4294967295, undefined, undefined, undefined, undefined]);
  const text = `${head()}spec:
  kprobes:
  - call: sys_openat
    args: [{index: 0, type: int}]
    selectors:
    - matchActions:
      - {action: Post, rateLimit: "1m", rateLimitScope: global, argSig: 9}
      - {action: Override, argError: 1}
      - {action: DnsLookup, argFqdn: "canary.example.com"}
  uprobes:
  - path: /usr/bin/app
    symbols: [check]
    selectors:
    - matchActions: [{action: Override, argRegs: ["rax=0", "bogus"]}]
`;
  const r = parsePolicy(text);
  assert.deepEqual(r.errors.map((e) => `${e.path}: ${e.message}`), ['spec.uprobes[0].selectors[0].matchActions[0].argRegs[1]: "bogus" is not a register assignment']);
  assert.match(render(r.warnings), /argSig is ignored by the Post action/);
  assert.match(render(r.warnings), /argError 1 is positive.*did you mean -1/);
  const ok = parsePolicy(text.replace(', "bogus"', ''));
  const acts = ok.policy?.spec.kprobes?.[0].selectors?.[0].matchActions ?? [];
  assert.equal(acts[0].rateLimitMs, 60000);
  assert.equal(acts[0].rateLimitScope, 'global');
});

test('TracingPolicyNamespaced rules', () => {
  const ns = `apiVersion: cilium.io/v1alpha1\nkind: TracingPolicyNamespaced\nmetadata: {name: p}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  kprobes: [{call: sys_openat}]\n`;
  const r = parsePolicy(ns);
  assert.equal(render(r.errors), '');
  assert.match(render(r.warnings), /without metadata.namespace/);
  const host = parsePolicy(ns.replace('spec:\n', 'spec:\n  hostSelector: {}\n'));
  assert.equal(find(host.errors, 'spec.hostSelector')?.message.includes('null hostSelector'), true);
  // null hostSelector is the same as none
  assert.equal(render(parsePolicy(ns.replace('spec:\n', 'spec:\n  hostSelector: null\n')).errors), '');
});

test('list references: call, enforcer, InMap', () => {
  const text = `${head()}spec:
  lists:
  - {name: sc, type: syscalls, values: [sys_dup, "__x64_sys_dup2", "i386/sys_dup3", sys_uname]}
  - {name: fns, type: generated_ftrace, pattern: "^vfs_(read|write)$"}
  enforcers: [{calls: ["list:sc"]}]
  kprobes:
  - call: "list:sc"
    args: [{index: 0, type: int}]
    selectors: [{matchActions: [{action: NotifyEnforcer, argSig: 9}]}]
  - call: "list:fns"
    syscall: false
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    args: [{index: 4, type: syscall64}]
    selectors: [{matchArgs: [{index: 4, operator: NotInMap, values: ["list:sc", "0:3", "60"]}]}]
`;
  const r = parsePolicy(text);
  assert.equal(render(r.errors), '');
  // uname(2) is implemented by sys_newuname on x86_64
  assert.deepEqual(r.warnings.map((w) => w.path), ['spec.lists[0].values[3]']);
  assert.match(r.warnings[0].hint ?? '', /sys_newuname/);
});

test('duplicate names across documents are an error on the later document', () => {
  const r = parsePolicies(`${SEED}---\n${SEED}`, 'dup.yaml');
  assert.ok(r[0].policy);
  assert.equal(r[1].policy, undefined);
  assert.equal(r[1].errors[0].path, 'metadata.name');
  assert.equal(r[1].errors[0].line, 14);
  // Same name, different kinds/namespaces: distinct objects.
  const ns = SEED.replace('kind: TracingPolicy', 'kind: TracingPolicyNamespaced').replace('metadata: {name: "process-monitoring"}', 'metadata: {name: "process-monitoring", namespace: a}');
  assert.ok(parsePolicies(`${SEED}---\n${ns}---\n${ns.replace('namespace: a', 'namespace: b')}`).every((x) => x.policy));
});

test('map keys are data: __proto__ in labels does not touch prototypes', () => {
  const text = `apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: p\n  annotations: {"__proto__": "x", "constructor": "y"}\nspec:\n  kprobes: [{call: sys_openat}]\n`;
  const r = parsePolicy(text);
  assert.equal(({} as Record<string, unknown>).x, undefined);
  // "__proto__" is not a valid label key (must start alphanumeric): reported, not assigned.
  assert.match(render(r.errors), /label key name "__proto__"/);
});

// ---------------------------------------------------------------------------
// robustness

function mustNotThrow(input: unknown, label: string): ParseResult[] {
  let out: ParseResult[] = [];
  assert.doesNotThrow(() => {
    out = parsePolicies(input as string);
  }, label);
  assert.ok(out.length >= 1, label);
  for (const r of out) assert.ok(r.policy !== undefined || r.errors.length > 0, `${label}: neither policy nor errors`);
  return out;
}

test('never throws on hostile or odd input', () => {
  const inputs: unknown[] = [
    undefined, null, 42, {}, [], '', ' ', '\n\n', '---', '--- \n---\n', '[]', '{}', 'null', '~', '"str"', '- - -', '{{{', ']]]',
    '\u0000\u0001', '\uFEFFapiVersion: x', 'a: *undefined_alias', '!!binary aGk=', '!<tag:x> y', 'key: !!js/function "f"',
    '['.repeat(100000), '{a:'.repeat(5000), 'a:\n'.repeat(1000), `${'x'.repeat(3 * 1024 * 1024)}`,
    `${head()}spec: {kprobes: [{call: sys_openat, args: [{index: 1e400}, {index: -0}, {index: .nan}, {index: 99999999999999999999}]}]}`,
    `${head()}spec: {kprobes: [{call: sys_openat, tags: [[[[]]]], message: {a: 1}, selectors: [[], null, 1, "x", {matchArgs: [null, [], {}]}]}]}`,
    `${head()}spec: {kprobes: [{call: sys_openat, args: [{index: 0, type: int}], selectors: [{matchArgs: [{index: 0, operator: InMap, values: ["0:99999999999999999999999"]}]}]}]}`,
    `${head()}spec: {selectorsMacros: [1, 2], kprobes: {call: x}, lists: "no", options: [{name: 1}], enforcers: [null]}`,
    `${head()}spec:\n  kprobes:\n  - call: sys_openat\n    selectors:\n    - matchArgs: [{index: 0, operator: CelExpr, values: ["(((arg0", ")", "arg0 ** 2"]}]`,
    `${head()}spec:\n  kprobes: [{call: "sys_openat"}]\n  x: &a 2001-12-14\n  y: !!set {a, b}\n`,
    'apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: p}\nspec: {kprobes: [{call: sys_openat}]}\n<<: {a: 1}\n',
  ];
  for (const [i, input] of inputs.entries()) mustNotThrow(input, `input #${i}`);
  assert.match(mustNotThrow('x'.repeat(3 * 1024 * 1024), 'big')[0].errors[0].message, /bytes; the limit is/);
  assert.match(mustNotThrow('['.repeat(100000), 'deep')[0].errors[0].message, /YAML syntax error.*nesting exceeded/);
});

test('alias fan-out is bounded by the validator budget', () => {
  // 4 levels × 50 aliases: under the alias limit, but 50^4 = 6 250 000 nodes if walked.
  const many = (ref: string): string => `[${Array(50).fill(ref).join(', ')}]`;
  const text = `${head()}spec:
  v: &v "1"
  a: &arg {index: 4, operator: Equal, values: ${many('*v')}}
  s: &sel {matchArgs: ${many('*arg')}}
  h: &hook {subsystem: raw_syscalls, event: sys_enter, args: [{index: 4, type: int}], selectors: ${many('*sel')}}
  tracepoints: ${many('*hook')}
`;
  const t0 = Date.now();
  const r = parsePolicies(text, 'fanout.yaml');
  const ms = Date.now() - t0;
  assert.ok(ms < 5000, `took ${ms} ms`);
  assert.match(render(r[0].errors), /too large to check/);
  assert.ok(r[0].errors.length <= 202, `${r[0].errors.length} errors`);
});

/** Small deterministic PRNG (mulberry32) for the mutation fuzz. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('mutation fuzz: random edits of a valid policy never throw and never pass silently broken', () => {
  const base = parsePolicy(`${head()}spec:
  lists: [{name: l, type: syscalls, values: [sys_dup]}]
  kprobes:
  - call: tcp_connect
    syscall: false
    return: true
    returnArg: {index: 0, type: int}
    args: [{index: 0, type: sock}, {index: 1, type: int}]
    selectors:
    - matchArgs: [{index: 0, operator: DPort, values: ["443"]}, {index: 1, operator: InRange, values: ["1:5"]}]
      matchBinaries: [{operator: In, values: [/bin/sh], followChildren: true}]
      matchPIDs: [{operator: NotIn, values: [1]}]
      matchCapabilities: [{operator: In, values: [CAP_NET_RAW]}]
      matchReturnArgs: [{index: 0, operator: Equal, values: ["0"]}]
      matchActions: [{action: Post, rateLimit: "1m"}, {action: Signal, argSig: 9}]
`).policy;
  assert.ok(base);
  const rand = rng(12345);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const junk: unknown[] = [null, 0, -1, 1e400, 'x', '', true, [], {}, [1, 'a'], { a: { b: [] } }, 'list:nope', 'In', 'sock', 4294967296];
  const mutate = (v: unknown): unknown => {
    if (Array.isArray(v)) {
      if (v.length && rand() < 0.2) return v.filter(() => rand() < 0.7);
      if (rand() < 0.1) return [...v, ...v];
      return v.map(mutate);
    }
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        const roll = rand();
        if (roll < 0.05) continue; // drop a field
        if (roll < 0.1) out[`${k}x`] = x; // misspell it
        else if (roll < 0.2) out[k] = pick(junk); // wrong type/value
        else out[k] = mutate(x);
      }
      return out;
    }
    return rand() < 0.1 ? pick(junk) : v;
  };
  let rejected = 0;
  for (let i = 0; i < 400; i++) {
    const m = mutate(JSON.parse(JSON.stringify(base)));
    const [r] = mustNotThrow(JSON.stringify(m), `mutation ${i}`);
    if (!r.policy) rejected++;
  }
  assert.ok(rejected > 100, `only ${rejected} mutations rejected`);
});

test('macros are checked in each using hook: hook-specific rules and the per-selector filter budget', () => {
  const text = `${head()}spec:
  selectorsMacros:
    skip-check: {matchActions: [{action: Override, argRegs: ["rax=0"]}]}
    three: {matchArgs: [{index: 0, operator: Equal, values: ["1"]}, {index: 0, operator: Equal, values: ["2"]}, {index: 0, operator: Equal, values: ["3"]}]}
  uprobes:
  - path: /usr/bin/app
    symbols: [check_license]
    selectors: [{macros: [skip-check]}]
  kprobes:
  - call: sys_openat
    args: [{index: 0, type: int}]
    data: [{index: 0, type: int, source: current_task}]
    selectors:
    - macros: [three]
      matchData: []
    - macros: [three, skip-check]
      matchData: [{index: 0, operator: NotEqual, values: ["4"]}, {index: 0, operator: NotEqual, values: ["5"]}, {index: 0, operator: NotEqual, values: ["6"]}]
`;
  const r = parsePolicy(text);
  assert.deepEqual(r.errors.map((e) => `${e.path}: ${e.message}`), [
    // the same macro on a kprobe: register overrides are uprobe-only
    'spec.selectorsMacros.skip-check.matchActions[0].argRegs: argRegs is only for uprobe Override',
    'spec.selectorsMacros.skip-check.matchActions[0].argError: the Override action needs argError (the value to return)',
    'spec.kprobes[0].selectors[1].macros: too many argument filters: matchArgs + matchData = 6 (at most 5 per selector)',
  ]);
});
