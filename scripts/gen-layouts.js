#!/usr/bin/env node
// Generates src/sensors/process/layout.gen.ts from the part of
// bpf/include/tetrahub_events.h between `/* layout:begin */` and
// `/* layout:end */`: #define integer constants and struct layouts (offsets,
// sizes), so that the TypeScript decoder never keeps offsets by hand.
//
// Other headers in bpf/include with a `/* layout:output <path> */` comment
// are generated the same way into <path> (relative to the package root);
// their exported part may use the structs and #defines of tetrahub_events.h
// (e.g. struct th_hdr) and of headers named by `/* layout:import <name> */`,
// which are not emitted again.
//
//   node scripts/gen-layouts.js           write the generated file
//   node scripts/gen-layouts.js --check   exit 1 when it is stale
//
// Plain Node, no dependencies. Also a module: { parseHeader, generate, paths }.
// The accepted C subset (anything else is an error, on purpose):
//   #define NAME <decimal or 0x hex integer>
//   struct NAME { TYPE member; TYPE member[N]; struct OTHER member; ... };
// with TYPE one of __u8 __u16 __u32 __u64 __s8 __s16 __s32 __s64, N an integer
// or a #define; no bitfields, one member per line, no implicit padding.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const paths = {
  header: path.join(ROOT, 'bpf/include/tetrahub_events.h'),
  output: path.join(ROOT, 'src/sensors/process/layout.gen.ts'),
};
const OUTPUT_RE = /\/\*\s*layout:output\s+(\S+)\s*\*\//;
const IMPORT_RE = /\/\*\s*layout:import\s+(\S+)\s*\*\//g;

/** Every header to generate: tetrahub_events.h first, then those with a layout:output directive. */
function targets() {
  const dir = path.dirname(paths.header);
  const list = [{ header: paths.header, output: paths.output }];
  for (const name of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    if (!name.endsWith('.h') || file === paths.header) continue;
    const m = OUTPUT_RE.exec(fs.readFileSync(file, 'utf8'));
    if (m) list.push({ header: file, output: path.join(ROOT, m[1]) });
  }
  return list;
}

const PRIMS = {
  __u8: { size: 1, ts: 'u8' },
  __u16: { size: 2, ts: 'u16' },
  __u32: { size: 4, ts: 'u32' },
  __u64: { size: 8, ts: 'u64' },
  __s8: { size: 1, ts: 's8' },
  __s16: { size: 2, ts: 's16' },
  __s32: { size: 4, ts: 's32' },
  __s64: { size: 8, ts: 's64' },
};

function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' ')).replace(/\/\/[^\n]*/g, '');
}

function lineOf(text, index) {
  return text.slice(0, index).split('\n').length;
}

/**
 * Parses the exported region of the header.
 * @returns {{defines: {name: string, value: number, literal: string, line: number}[], structs: object[]}}
 */
function parseHeader(text, opts = {}) {
  const file = opts.file ?? 'tetrahub_events.h';
  const imports = opts.imports;
  const begin = text.indexOf('/* layout:begin */');
  const end = text.indexOf('/* layout:end */');
  if (begin < 0 || end < 0 || end < begin) throw new Error('layout:begin / layout:end markers not found');
  const baseLine = lineOf(text, begin) - 1;
  const region = stripComments(text.slice(begin + '/* layout:begin */'.length, end));
  const defines = [];
  const defineMap = new Map();
  const structs = [];
  const structMap = new Map();
  const err = (idx, msg) => {
    throw new Error(`${file}:${baseLine + lineOf(region, idx)}: ${msg}`);
  };

  const tokenRe = /#define[^\n]*|struct\s+(\w+)\s*\{([^}]*)\}\s*;|\S+/g;
  let m;
  while ((m = tokenRe.exec(region))) {
    const tok = m[0];
    if (tok.startsWith('#define')) {
      const d = /^#define\s+([A-Za-z_]\w*)\s+(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\s*$/.exec(tok);
      if (!d) err(m.index, `unsupported #define: ${tok.trim()}`);
      const value = Number(d[2]);
      if (!Number.isSafeInteger(value)) err(m.index, `value out of range: ${tok.trim()}`);
      if (defineMap.has(d[1])) err(m.index, `duplicate #define ${d[1]}`);
      defineMap.set(d[1], value);
      defines.push({ name: d[1], value, literal: d[2].toLowerCase(), line: baseLine + lineOf(region, m.index) });
    } else if (m[1]) {
      const name = m[1];
      if (structMap.has(name)) err(m.index, `duplicate struct ${name}`);
      const fields = [];
      let offset = 0;
      let align = 1;
      const body = m[2];
      const bodyStart = m.index + m[0].indexOf('{') + 1;
      const memRe = /([^;]*);/g;
      let mm;
      while ((mm = memRe.exec(body))) {
        const decl = mm[1].trim();
        if (!decl) continue;
        const at = bodyStart + mm.index;
        const f = /^(struct\s+\w+|\w+)\s+([A-Za-z_]\w*)\s*(?:\[\s*(\w+)\s*\])?$/.exec(decl);
        if (!f) err(at, `unsupported member: ${decl}`);
        let count = 1;
        if (f[3] !== undefined) {
          count = /^\d+$/.test(f[3]) ? Number(f[3]) : defineMap.get(f[3]) ?? imports?.defines.get(f[3]);
          if (!count || count < 1) err(at, `bad array length ${f[3]}`);
        }
        let size;
        let falign;
        let type;
        let nested;
        if (f[1].startsWith('struct')) {
          const sname = f[1].replace(/^struct\s+/, '');
          nested = structMap.get(sname) ?? imports?.structs.get(sname);
          if (!nested) err(at, `unknown struct ${sname} (define exported structs before use)`);
          size = nested.size;
          falign = nested.align;
          type = sname;
        } else {
          const p = PRIMS[f[1]];
          if (!p) err(at, `unsupported type ${f[1]} (use fixed-width __u8..__s64)`);
          size = p.size;
          falign = p.size;
          type = p.ts;
        }
        if (offset % falign !== 0) {
          err(at, `implicit padding before ${name}.${f[2]} (offset ${offset}, alignment ${falign}): add an explicit pad member`);
        }
        if (fields.some((x) => x.name === f[2])) err(at, `duplicate member ${f[2]}`);
        fields.push({ name: f[2], offset, size: size * count, elemSize: size, count, type, array: f[3] !== undefined, nested: nested ? nested.name : undefined });
        offset += size * count;
        align = Math.max(align, falign);
      }
      if (offset % align !== 0) err(m.index, `implicit tail padding in struct ${name}: add an explicit pad member`);
      if (offset % 8 !== 0) err(m.index, `struct ${name} size ${offset} is not a multiple of 8`);
      const s = { name, size: offset, align, fields, line: baseLine + lineOf(region, m.index) };
      structs.push(s);
      structMap.set(name, s);
    } else {
      err(m.index, `unexpected text: ${tok}`);
    }
  }
  return { defines, structs };
}

/**
 * What a header may use from others: the #defines and structs, by name, of
 * tetrahub_events.h and of each header it names in a layout:import directive.
 */
function importsOf(headerText) {
  const dir = path.dirname(paths.header);
  const names = new Set([path.basename(paths.header)]);
  for (const m of headerText.matchAll(IMPORT_RE)) names.add(m[1]);
  const defines = new Map();
  const structs = new Map();
  for (const name of names) {
    const text = fs.readFileSync(path.join(dir, name), 'utf8');
    const opts = name === path.basename(paths.header) ? {} : { file: name };
    const r = parseHeader(text, opts);
    for (const d of r.defines) defines.set(d.name, d.value);
    for (const s of r.structs) structs.set(s.name, s);
  }
  return { defines, structs };
}

/**
 * Returns the text of layout.gen.ts for a header text. For a header other
 * than tetrahub_events.h pass opts.file (its name) and opts.imports.
 */
function generate(headerText, opts = {}) {
  const { defines, structs } = parseHeader(headerText, opts);
  const structMap = new Map([...(opts.imports?.structs ?? []), ...structs.map((s) => [s.name, s])]);
  const out = [];
  if (opts.file === undefined) {
    out.push('// GENERATED by scripts/gen-layouts.js from bpf/include/tetrahub_events.h. DO NOT EDIT.');
    out.push('// Regenerate with `node scripts/gen-layouts.js`; src/sensors/process/layout.test.ts');
    out.push('// fails when this file is stale or disagrees with the compiled objects\' BTF.');
  } else {
    out.push(`// GENERATED by scripts/gen-layouts.js from bpf/include/${opts.file}. DO NOT EDIT.`);
    out.push('// Regenerate with `node scripts/gen-layouts.js` (`--check` fails when it is stale).');
  }
  out.push('');
  out.push('/* eslint-disable */');
  out.push('');
  for (const d of defines) out.push(`export const ${d.name} = ${d.literal};`);
  out.push('');
  out.push('export type FieldType = \'u8\' | \'u16\' | \'u32\' | \'u64\' | \'s8\' | \'s16\' | \'s32\' | \'s64\' | string;');
  out.push('export interface FieldLayout {');
  out.push('  readonly offset: number;');
  out.push('  /** Bytes of the whole member (all elements for an array). */');
  out.push('  readonly size: number;');
  out.push('  readonly type: FieldType;');
  out.push('  /** Number of elements (1 unless an array). */');
  out.push('  readonly count: number;');
  out.push('}');
  out.push('export interface StructLayout {');
  out.push('  readonly size: number;');
  out.push('  readonly align: number;');
  out.push('  readonly fields: Readonly<Record<string, FieldLayout>>;');
  out.push('}');
  out.push('');
  // Flat offset objects: members of nested structs are flattened as outer_inner.
  const flat = (s, prefix, base, acc) => {
    for (const f of s.fields) {
      acc.push([prefix + f.name, base + f.offset]);
      if (f.nested && !f.array) flat(structMap.get(f.nested), `${prefix}${f.name}_`, base + f.offset, acc);
    }
    return acc;
  };
  for (const s of structs) {
    out.push(`/** struct ${s.name}: byte offsets of its members (nested members flattened as outer_inner), SIZE = sizeof. */`);
    out.push(`export const ${s.name} = {`);
    out.push(`  SIZE: ${s.size},`);
    for (const [n, off] of flat(s, '', 0, [])) out.push(`  ${n}: ${off},`);
    out.push('} as const;');
    out.push('');
  }
  out.push('/** Full layouts, for tests and tools. */');
  out.push('export const LAYOUTS: Readonly<Record<string, StructLayout>> = {');
  for (const s of structs) {
    out.push(`  ${s.name}: {`);
    out.push(`    size: ${s.size},`);
    out.push(`    align: ${s.align},`);
    out.push('    fields: {');
    for (const f of s.fields) {
      out.push(`      ${f.name}: { offset: ${f.offset}, size: ${f.size}, type: '${f.type}', count: ${f.count} },`);
    }
    out.push('    },');
    out.push('  },');
  }
  out.push('};');
  out.push('');
  return out.join('\n');
}

/** The generated text for one target of targets(). */
function generateTarget(t) {
  const text = fs.readFileSync(t.header, 'utf8');
  if (t.header === paths.header) return generate(text);
  return generate(text, { file: path.basename(t.header), imports: importsOf(text) });
}

function main(argv) {
  let rc = 0;
  for (const t of targets()) {
    const gen = generateTarget(t);
    if (argv.includes('--check')) {
      let cur = '';
      try {
        cur = fs.readFileSync(t.output, 'utf8');
      } catch {}
      if (cur !== gen) {
        console.error(`${path.relative(process.cwd(), t.output)} is stale: run node scripts/gen-layouts.js`);
        rc = 1;
      }
      continue;
    }
    fs.mkdirSync(path.dirname(t.output), { recursive: true });
    fs.writeFileSync(t.output, gen);
    console.log(`wrote ${path.relative(process.cwd(), t.output)}`);
  }
  return rc;
}

module.exports = { parseHeader, generate, paths, targets, generateTarget, importsOf };

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exitCode = 1;
  }
}
