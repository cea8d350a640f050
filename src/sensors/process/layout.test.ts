// The generated layout must match the header (re-generated in memory) and the
// BTF of the compiled BPF objects (when built and bpftool is available), so
// that a layout change that is not regenerated fails a test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

import { LAYOUTS, TH_EXEC_RECORD_MAX, TH_FILENAME_MAX, TH_ARGS_MAX, TH_CWD_MAX, TH_CGROUP_NAME_MAX, th_exec } from './layout.gen';

interface ParsedField {
  name: string;
  offset: number;
  size: number;
  elemSize: number;
  count: number;
  type: string;
  array: boolean;
  nested?: string;
}
interface ParsedStruct {
  name: string;
  size: number;
  align: number;
  fields: ParsedField[];
}
interface Generator {
  parseHeader(text: string): { defines: { name: string; value: number }[]; structs: ParsedStruct[] };
  generate(text: string): string;
}

/** The repository root: the nearest ancestor (of this file, else of the cwd) holding the header. */
function repoRoot(): string {
  for (const start of [__dirname, process.cwd()]) {
    let dir = start;
    for (;;) {
      if (fs.existsSync(path.join(dir, 'bpf/include/tetrahub_events.h'))) return dir;
      const up = path.dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  throw new Error(`repository root not found from ${__dirname} or ${process.cwd()}`);
}

const root = repoRoot();
const headerPath = path.join(root, 'bpf/include/tetrahub_events.h');
const gen: Generator = require(path.join(root, 'scripts/gen-layouts.js'));
const header = fs.readFileSync(headerPath, 'utf8');

test('layout.gen.ts is up to date with tetrahub_events.h', () => {
  const want = gen.generate(header);
  const have = fs.readFileSync(path.join(root, 'src/sensors/process/layout.gen.ts'), 'utf8');
  assert.equal(have, want, 'stale src/sensors/process/layout.gen.ts: run `node scripts/gen-layouts.js`');
});

test('compiled layout module matches the header', () => {
  const { structs } = gen.parseHeader(header);
  assert.deepEqual(Object.keys(LAYOUTS).sort(), structs.map((s) => s.name).sort());
  for (const s of structs) {
    const l = LAYOUTS[s.name];
    assert.equal(l.size, s.size, s.name);
    for (const f of s.fields) {
      assert.equal(l.fields[f.name].offset, f.offset, `${s.name}.${f.name}`);
      assert.equal(l.fields[f.name].size, f.size, `${s.name}.${f.name}`);
    }
  }
  assert.equal(TH_EXEC_RECORD_MAX, th_exec.SIZE + TH_FILENAME_MAX + TH_ARGS_MAX + TH_CWD_MAX + TH_CGROUP_NAME_MAX);
});

test('generator rejects what it cannot lay out safely', () => {
  const wrap = (body: string) => `/* layout:begin */\n${body}\n/* layout:end */\n`;
  assert.throws(() => gen.parseHeader(wrap('struct a { __u8 x; __u32 y; };')), /implicit padding/);
  assert.throws(() => gen.parseHeader(wrap('struct a { __u64 x; __u8 y; };')), /tail padding/);
  assert.throws(() => gen.parseHeader(wrap('struct a { int x; int y; };')), /unsupported type/);
  assert.throws(() => gen.parseHeader(wrap('#define X (1 << 2)')), /unsupported #define/);
  assert.throws(() => gen.parseHeader(wrap('struct a { struct b x; };')), /unknown struct/);
  assert.throws(() => gen.parseHeader('struct a { __u64 x; };'), /markers/);
  const ok = gen.parseHeader(wrap('#define N 2\nstruct a { __u32 x[N]; };\nstruct b { struct a a; __u64 z; };'));
  assert.deepEqual(
    ok.structs.map((s) => [s.name, s.size]),
    [
      ['a', 8],
      ['b', 16],
    ],
  );
});

// ---- BTF cross-check ----

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number; bitfield_size?: number }[];
}

function loadBtf(obj: string): Map<number, BtfType> | string {
  const r = spawnSync('bpftool', ['-j', 'btf', 'dump', 'file', obj, 'format', 'raw'], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) return `bpftool not runnable: ${r.error.message}`;
  if (r.status !== 0) return `bpftool failed: ${r.stderr}`;
  const types: BtfType[] = JSON.parse(r.stdout).types;
  return new Map(types.map((t) => [t.id, t]));
}

function btfSize(types: Map<number, BtfType>, id: number): number {
  for (let depth = 0; depth < 32; depth++) {
    const t = types.get(id);
    if (!t) throw new Error(`BTF type ${id} missing`);
    switch (t.kind) {
      case 'INT':
      case 'STRUCT':
      case 'UNION':
      case 'ENUM':
      case 'ENUM64':
      case 'FLOAT':
        return t.size!;
      case 'PTR':
        return 8;
      case 'ARRAY':
        return t.nr_elems! * btfSize(types, t.type_id!);
      case 'TYPEDEF':
      case 'VOLATILE':
      case 'CONST':
      case 'RESTRICT':
      case 'TYPE_TAG':
        id = t.type_id!;
        continue;
      default:
        throw new Error(`unexpected BTF kind ${t.kind}`);
    }
  }
  throw new Error('BTF type chain too deep');
}

for (const objName of ['process.bpf.o', 'bench.bpf.o']) {
  const obj = path.join(root, 'bpf/.output', objName);
  test(`layouts match the BTF of bpf/.output/${objName}`, (t) => {
    if (!fs.existsSync(obj)) {
      t.skip(`${objName} not built (make -C bpf)`);
      return;
    }
    const types = loadBtf(obj);
    if (typeof types === 'string') {
      t.skip(types);
      return;
    }
    const { structs } = gen.parseHeader(header);
    const byName = new Map<string, BtfType>();
    for (const bt of types.values()) if (bt.kind === 'STRUCT') byName.set(bt.name, bt);
    for (const s of structs) {
      const bt = byName.get(s.name);
      assert.ok(bt, `struct ${s.name} is not in ${objName}'s BTF (the th_btf_anchor global keeps it there)`);
      assert.equal(bt.size, s.size, `sizeof(struct ${s.name})`);
      const members = bt.members ?? [];
      assert.deepEqual(
        members.map((m) => m.name),
        s.fields.map((f) => f.name),
        `members of struct ${s.name}`,
      );
      for (const f of s.fields) {
        const m = members.find((x) => x.name === f.name)!;
        assert.ok(!m.bitfield_size, `${s.name}.${f.name} is a bitfield`);
        assert.equal(m.bits_offset / 8, f.offset, `offset of ${s.name}.${f.name}`);
        assert.equal(btfSize(types, m.type_id), f.size, `size of ${s.name}.${f.name}`);
      }
    }
  });
}
