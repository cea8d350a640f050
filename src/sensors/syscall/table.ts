// Syscall names ↔ numbers (x86_64, the only ABI the sensors read: they see
// the native syscall numbers; 32-bit compat calls are not translated).
import { SYSCALLS_X86_64 } from './syscalls_x86_64.gen';

const nameByNr = new Map<number, string>();
const nrByName = new Map<string, number>();
for (const [nr, name] of SYSCALLS_X86_64) {
  nameByNr.set(nr, name);
  nrByName.set(name, nr);
}
// Names people use for the calls whose kernel entry point is named otherwise.
const ALIASES: Record<string, string> = {
  newfstat: 'fstat',
  newstat: 'stat',
  newlstat: 'lstat',
  newuname: 'uname',
  sendfile64: 'sendfile',
  umount: 'umount2',
};

/** Name of a syscall number, or "syscall_<nr>" when unknown. */
export function syscallName(nr: number): string {
  return nameByNr.get(nr) ?? `syscall_${nr}`;
}

/** Number of a syscall name (also kernel entry names like "newfstat"), undefined when unknown. */
export function syscallNumber(name: string): number | undefined {
  return nrByName.get(name) ?? nrByName.get(ALIASES[name] ?? '');
}

/** Every known name, sorted by number. */
export function syscallNames(): string[] {
  return SYSCALLS_X86_64.map(([, n]) => n);
}
