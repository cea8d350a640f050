// Syscall-name rules for `syscall: true` hooks, enforcer calls and `type: syscalls`
// lists, checked against the x86_64 table (syscalls_x86_64.ts).
//
// Tetragon prepends the arch prefix (`__x64_`) unless one is present, and refuses a
// foreign-arch prefix; a syscall list element must be `sys_<name>` or carry the
// prefix, optionally behind an ABI tag (`i386/sys_dup`).
import { SYSCALLS_X86_64, SYSCALL_FUNCTION_ALIASES_X86_64 } from './syscalls_x86_64';
import { suggest } from './reader';

export type SyscallCheck =
  | { ok: true; /** unistd name */ name: string; nr: number; /** set when spelled in a way that works but is suspicious */ warning?: string; hint?: string }
  | { ok: false; reason: string; hint?: string };

const FOREIGN_PREFIXES: ReadonlyArray<readonly [string, string]> = [['__arm64_', 'arm64'], ['__ia32_', 'i386 (32-bit compat)'], ['__s390x_', 's390x'], ['__riscv_', 'riscv']];

/** The syscall implemented by kernel function `sys_<fn>`, if any. */
export function lookupSyscall(fn: string): { name: string; nr: number } | undefined {
  const nr = SYSCALLS_X86_64.get(fn);
  if (nr !== undefined) return { name: fn, nr };
  const alias = SYSCALL_FUNCTION_ALIASES_X86_64.get(fn);
  if (alias !== undefined) {
    const n = SYSCALLS_X86_64.get(alias);
    if (n !== undefined) return { name: alias, nr: n };
  }
  return undefined;
}

const FUNCTION_FOR: ReadonlyMap<string, string> = new Map([...SYSCALL_FUNCTION_ALIASES_X86_64].map(([fn, name]) => [name, fn]));

function closest(fn: string): string | undefined {
  const s = suggest(fn, [...SYSCALLS_X86_64.keys(), ...SYSCALL_FUNCTION_ALIASES_X86_64.keys()]);
  return s === undefined ? undefined : `did you mean "sys_${s}"?`;
}

function checkFn(fn: string, spelled: string): SyscallCheck {
  const found = lookupSyscall(fn);
  if (!found) return { ok: false, reason: `${JSON.stringify(spelled)} is not an x86_64 syscall`, hint: closest(fn) };
  const kfn = FUNCTION_FOR.get(fn);
  if (kfn !== undefined) {
    return {
      ok: true, ...found,
      warning: `on x86_64 the kernel implements ${fn}(2) as sys_${kfn}; __x64_sys_${fn} may not exist`,
      hint: `use "sys_${kfn}"`,
    };
  }
  return { ok: true, ...found };
}

/** A hook `call` / enforcer call with `syscall: true`. */
export function checkSyscallSymbol(sym: string): SyscallCheck {
  if (sym.startsWith('__x64_sys_')) return checkFn(sym.slice('__x64_sys_'.length), sym);
  if (sym.startsWith('__x64_')) return { ok: false, reason: `${JSON.stringify(sym)} is not a syscall entry point`, hint: 'syscall symbols look like sys_<name> or __x64_sys_<name>' };
  for (const [prefix, arch] of FOREIGN_PREFIXES) {
    if (sym.startsWith(prefix)) {
      return {
        ok: false,
        reason: `${JSON.stringify(sym)} carries the ${arch} prefix; on x86_64 Tetragon refuses a foreign-arch prefix`,
        hint: `write "${sym.slice(prefix.length)}" (Tetragon adds __x64_ itself)`,
      };
    }
  }
  if (sym.startsWith('sys_')) return checkFn(sym.slice(4), sym);
  if (lookupSyscall(sym)) {
    return {
      ok: false,
      reason: `${JSON.stringify(sym)} lacks the sys_ prefix: Tetragon would hook __x64_${sym}, which does not exist`,
      hint: `write "sys_${sym}"`,
    };
  }
  return { ok: false, reason: `${JSON.stringify(sym)} is not an x86_64 syscall`, hint: closest(sym.replace(/^_+/, '')) };
}

const ABIS = ['x64', 'i386', 'arm64', 'arm32'] as const;

/** An element of a `type: syscalls` list (`sys_dup`, `__x64_sys_dup`, `i386/sys_dup`). */
export function checkSyscallListValue(v: string): SyscallCheck {
  const slash = v.indexOf('/');
  if (slash >= 0) {
    const abi = v.slice(0, slash);
    const rest = v.slice(slash + 1);
    if (!(ABIS as readonly string[]).includes(abi)) return { ok: false, reason: `unknown syscall ABI ${JSON.stringify(abi)}`, hint: `use x64/ or i386/ (or no ABI tag)` };
    if (abi === 'arm64' || abi === 'arm32') return { ok: false, reason: `ABI ${abi} is not valid on x86_64`, hint: 'use x64/ or i386/' };
    if (abi === 'i386') {
      // No i386 table here: check the spelling only.
      return /^(__ia32_)?sys_[a-z0-9_]+$/.test(rest)
        ? { ok: true, name: rest.replace(/^(__ia32_)?sys_/, ''), nr: -1 }
        : { ok: false, reason: `${JSON.stringify(v)} is not a syscall list element`, hint: 'write i386/sys_<name>' };
    }
    return checkSyscallSymbol(rest);
  }
  return checkSyscallSymbol(v);
}

export function syscallCount(): number {
  return SYSCALLS_X86_64.size;
}
