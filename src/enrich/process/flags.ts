// Tetragon process flag bits and the order in which their names print (main/v1.4+).
export const FLAG = {
  execve: 0x1,
  procFS: 0x4,
  errorEnvs: 0x8,
  truncArgs: 0x10,
  miss: 0x40,
  errorFilename: 0x100,
  errorArgs: 0x200,
  nocwd: 0x800,
  rootcwd: 0x1000,
  errorCWD: 0x2000,
  clone: 0x4000,
  errorCgroupName: 0x10000,
  errorCgroupSubsysCgrp: 0x40000,
  errorCgroupSubsys: 0x80000,
  errorCgroups: 0x100000,
  errorCgroupID: 0x200000,
  errorPathResolutionCwd: 0x400000,
  dataFilename: 0x800000,
  dataArgs: 0x1000000,
  inInitTree: 0x2000000,
} as const;

const PRINT_ORDER: (keyof typeof FLAG)[] = [
  'execve', 'procFS', 'errorEnvs', 'truncArgs', 'miss', 'errorFilename', 'errorArgs', 'nocwd', 'rootcwd',
  'errorCWD', 'clone', 'errorCgroupName', 'errorCgroupID', 'errorCgroupSubsysCgrp', 'errorCgroupSubsys',
  'errorCgroups', 'errorPathResolutionCwd', 'dataFilename', 'dataArgs', 'inInitTree',
];

const cache = new Map<number, string>();

/** Space-separated flag names in Tetragon's print order (memoised: few distinct values occur). */
export function flagString(bits: number): string {
  let s = cache.get(bits);
  if (s !== undefined) return s;
  s = PRINT_ORDER.filter((n) => (bits & FLAG[n]) !== 0).join(' ');
  if (cache.size < 4096) cache.set(bits, s);
  return s;
}
