// Checks a generated layout.gen.ts against its header (regenerated in memory)
// and against the BTF of the compiled object, for the file and syscall
// sensors' layout tests.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StructLayout } from './layout.gen';

interface ParsedField {
  name: string;
  offset: number;
  size: number;
}
interface ParsedStruct {
  name: string;
  size: number;
  fields: ParsedField[];
}
interface Target {
  header: string;
  output: string;
}
interface Generator {
  targets(): Target[];
  generateTarget(t: Target): string;
  parseHeader(text: string, opts?: { file?: string; imports?: unknown }): { structs: ParsedStruct[] };
  importsOf(text: string): unknown;
}

export function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'bpf/include/tetrahub_events.h'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`repository root not found from ${__dirname}`);
    dir = up;
  }
  return dir;
}

function generator(root: string): Generator {
  return require(path.join(root, 'scripts/gen-layouts.js')) as Generator;
}

/** Fails when layout.gen.ts of the header is not what the generator writes now. */
export function checkFresh(headerName: string): void {
  const root = repoRoot();
  const gen = generator(root);
  const t = gen.targets().find((x) => path.basename(x.header) === headerName);
  assert.ok(t, `scripts/gen-layouts.js does not generate ${headerName} (layout:output directive missing?)`);
  assert.equal(fs.readFileSync(t.output, 'utf8'), gen.generateTarget(t), `stale ${path.relative(root, t.output)}: run node scripts/gen-layouts.js`);
}

/** The header's structs as the generator parses them. */
export function headerStructs(headerName: string): ParsedStruct[] {
  const root = repoRoot();
  const gen = generator(root);
  const text = fs.readFileSync(path.join(root, 'bpf/include', headerName), 'utf8');
  return gen.parseHeader(text, { file: headerName, imports: gen.importsOf(text) }).structs;
}

/** The compiled module's LAYOUTS agree with the header. */
export function checkModule(headerName: string, layouts: Readonly<Record<string, StructLayout>>): void {
  const structs = headerStructs(headerName);
  assert.deepEqual(Object.keys(layouts).sort(), structs.map((s) => s.name).sort());
  for (const s of structs) {
    assert.equal(layouts[s.name].size, s.size, s.name);
    for (const f of s.fields) assert.equal(layouts[s.name].fields[f.name].offset, f.offset, `${s.name}.${f.name}`);
  }
}

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number; bitfield_size?: number }[];
}

function btfSize(types: Map<number, BtfType>, id: number): number {
  for (let depth = 0; depth < 32; depth++) {
    const t = types.get(id);
    if (!t) throw new Error(`BTF type ${id} missing`);
    if (t.kind === 'PTR') return 8;
    if (t.kind === 'ARRAY') return (t.nr_elems ?? 0) * btfSize(types, t.type_id ?? 0);
    if (t.size !== undefined && ['INT', 'STRUCT', 'UNION', 'ENUM', 'ENUM64'].includes(t.kind)) return t.size;
    id = t.type_id ?? 0;
  }
  throw new Error('BTF type chain too deep');
}

/**
 * Every exported struct of the header has, in the object's BTF, the same
 * size and member offsets. Returns a skip reason when it cannot check.
 */
export function checkBtf(headerName: string, objName: string): string | undefined {
  const root = repoRoot();
  const obj = path.join(root, 'bpf/.output', objName);
  if (!fs.existsSync(obj)) return `${objName} not built (make -C bpf)`;
  const r = spawnSync('bpftool', ['-j', 'btf', 'dump', 'file', obj, 'format', 'raw'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) return `bpftool not runnable: ${r.error.message}`;
  if (r.status !== 0) return `bpftool failed: ${r.stderr}`;
  const types = new Map<number, BtfType>((JSON.parse(r.stdout) as { types: BtfType[] }).types.map((t) => [t.id, t]));
  const byName = new Map<string, BtfType>();
  for (const t of types.values()) if (t.kind === 'STRUCT') byName.set(t.name, t);
  for (const s of headerStructs(headerName)) {
    const bt = byName.get(s.name);
    assert.ok(bt, `struct ${s.name} is not in the BTF of ${objName}`);
    assert.equal(bt.size, s.size, `sizeof(struct ${s.name})`);
    const members = bt.members ?? [];
    assert.deepEqual(members.map((m) => m.name), s.fields.map((f) => f.name), `members of ${s.name}`);
    for (const f of s.fields) {
      const m = members.find((x) => x.name === f.name)!;
      assert.ok(!m.bitfield_size, `${s.name}.${f.name} is a bitfield`);
      assert.equal(m.bits_offset / 8, f.offset, `offset of ${s.name}.${f.name}`);
      assert.equal(btfSize(types, m.type_id), f.size, `size of ${s.name}.${f.name}`);
    }
  }
  return undefined;
}
