// Loads the N-API addon (native/) and gives it its TypeScript type.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NativeBinding } from './types';

const ADDON = path.join('native', 'build', 'Release', 'tetrahub_native.node');

/**
 * The repository root: the nearest directory above this file holding a
 * package.json. Works from src/kernel (ts-node) and dist/src/kernel alike.
 */
export function repoRoot(from: string = __dirname): string {
  let dir = path.resolve(from);
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${from}`);
    dir = up;
  }
}

/** Absolute path of the compiled addon (TETRAHUB_NATIVE overrides it). */
export function addonPath(): string {
  return process.env.TETRAHUB_NATIVE ?? path.join(repoRoot(), ADDON);
}

const FUNCTIONS = [
  'openObject',
  'openPinnedMap',
  'createRingConsumer',
  'probeFeatures',
  'clocks',
  'libbpfVersion',
] as const;

function isBinding(mod: unknown): mod is NativeBinding {
  if (typeof mod !== 'object' || mod === null) return false;
  const rec = mod as Record<string, unknown>;
  return FUNCTIONS.every((name) => typeof rec[name] === 'function');
}

let cached: NativeBinding | undefined;

/** The addon, loaded once. Throws a clear error when it has not been built. */
export function loadNative(): NativeBinding {
  if (cached) return cached;
  const file = addonPath();
  if (!fs.existsSync(file)) {
    throw new Error(`native addon not built: ${file} is missing (run npm run build)`);
  }
  const mod: unknown = require(file);
  if (!isBinding(mod)) {
    throw new Error(`${file} is not the tetrahub addon (missing ${FUNCTIONS.join('/')}); rebuild it with npm run build`);
  }
  cached = mod;
  return mod;
}

/** One record of a ring consumer batch; `data` is a view into the batch. */
export interface BatchRecord {
  ring: number;
  data: Buffer;
}

/**
 * Walks a batch handed to RingConsumerOptions.onBatch: records are
 * [u32 length][u32 ring index][bytes][pad to 8], little-endian. The views
 * share the batch's memory, valid only during onBatch.
 */
export function* batchRecords(batch: Buffer): Generator<BatchRecord> {
  let off = 0;
  while (off + 8 <= batch.length) {
    const len = batch.readUInt32LE(off);
    const ring = batch.readUInt32LE(off + 4);
    const start = off + 8;
    if (start + len > batch.length) throw new RangeError(`truncated record at offset ${off}`);
    yield { ring, data: batch.subarray(start, start + len) };
    off = start + ((len + 7) & ~7);
  }
}
