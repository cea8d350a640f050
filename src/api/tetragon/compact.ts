// `tetra getevents -o compact`: one line per event, emoji + label, source
// (ns/pod or node), binary and event details. Table-driven: each oneof member
// (and each kprobe function) has one renderer; a new event kind plugs in by
// adding a row.
//
// Byte details kept from tetra: the label is padded to 7 columns; details are
// joined with single spaces even when empty (so an exec without arguments ends
// with a space); every renderer that shows a process runs through the caps
// trailer, which with colors on always pads the line to column 120 because
// the colored (empty) caps string is never empty. Timestamps use a fixed
// 9-digit fraction.
import type {
  TetragonJsonEvent,
  TetragonJsonKprobeArgument,
  TetragonJsonProcess,
  TetragonJsonProcessKprobe,
  TetragonJsonStackTraceEntry,
} from './json';
import { syscallName, syscallNumber } from '../../sensors/syscall/table';
import { SYSCALL_ARGS } from './syscallargs.gen';

export interface CompactOptions {
  color: boolean;
  timestamps: boolean;
  /** Print kernel/user stack traces under kprobe lines (tetra default: true). */
  stackTraces?: boolean;
  /** Print the IMA hash under LSM bprm/file lines (tetra default: true). */
  imaHash?: boolean;
}

/** tetra aborts on these; the CLI decides what to do. */
export class CompactEncodeError extends Error {
  override name = 'CompactEncodeError';
}

const ERR_NO_PROCESS = 'process field is not set';
const ERR_UNKNOWN = 'unknown event type';

// ---------------------------------------------------------------- colors

type Paint = (s: string) => string;

interface Palette {
  red: Paint;
  green: Paint;
  blue: Paint;
  cyan: Paint;
  magenta: Paint;
  yellow: Paint;
}

const ansi =
  (code: number): Paint =>
  (s) =>
    `\x1b[${code}m${s}\x1b[0m`;
const plain: Paint = (s) => s;

const COLORS: Palette = { red: ansi(31), green: ansi(32), yellow: ansi(33), blue: ansi(34), magenta: ansi(35), cyan: ansi(36) };
const NO_COLORS: Palette = { red: plain, green: plain, yellow: plain, blue: plain, magenta: plain, cyan: plain };

// ---------------------------------------------------------------- Go-style quoting

// Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols, ASCII space.
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
const NEEDS_QUOTE = /[^\p{L}\p{M}\p{N}\p{P}\p{S}]/u;

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** strconv.Quote semantics for one JS string. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (ch === ' ' || PRINTABLE.test(ch)) out += ch;
    else if (ch === '\x07') out += '\\a';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\v') out += '\\v';
    else if (cp < 0x20 || cp === 0x7f) out += '\\x' + hex(cp, 2);
    else if (cp < 0x10000) out += '\\u' + hex(cp, 4);
    else out += '\\U' + hex(cp, 8);
  }
  return out + '"';
}

/** Strings with a space or a non-printable rune are Go-quoted; others print as they are. */
export function quoteIfNeeded(s: string): string {
  return NEEDS_QUOTE.test(s) ? goQuote(s) : s;
}

// ---------------------------------------------------------------- pieces

interface Renderer {
  p: Palette;
  ev: TetragonJsonEvent;
}

interface Line {
  /** Colored "emoji label" prefix. */
  event: string;
  /** Process whose source/binary/caps are shown; absent for process-less kinds. */
  process?: TetragonJsonProcess;
  details: string[];
}

function prefix(emoji: string, label: string, sep = ' '): string {
  return emoji + sep + label.padEnd(7, ' ');
}

const CAPS_PAD = 120;
const CAP_SYS_ADMIN_INDEX = 21;

// tetra iterates the *indices* of cap.effective and prints CAP_SYS_ADMIN when
// index 21 exists; kept as is so lines match byte for byte.
function capsTrailer(proc: TetragonJsonProcess): string {
  const eff = proc.cap?.effective;
  return eff && eff.length > CAP_SYS_ADMIN_INDEX ? '🛑 CAP_SYS_ADMIN' : '';
}

function runeCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function withCapsTrailer(str: string, caps: string): string {
  if (caps.length === 0) return str;
  const bytes = Buffer.byteLength(str, 'utf8');
  const padding = bytes < CAPS_PAD ? CAPS_PAD - bytes : 0;
  const fill = padding - runeCount(caps);
  return str + ' ' + (fill > 0 ? ' '.repeat(fill) : '') + caps;
}

function render(r: Renderer, line: Line): string {
  const parts = [line.event];
  let caps = '';
  if (line.process) {
    const proc = line.process;
    const pod = proc.pod;
    const source = pod ? `${pod.namespace ?? ''}/${pod.name ?? ''}` : r.ev.node_name ?? '';
    parts.push(r.p.green(quoteIfNeeded(source)) + ' ' + r.p.magenta(quoteIfNeeded(proc.binary ?? '')));
    caps = r.p.magenta(capsTrailer(proc));
  }
  for (const d of line.details) parts.push(d);
  const str = parts.join(' ');
  return line.process ? withCapsTrailer(str, caps) : str;
}

function need<T extends { process?: TetragonJsonProcess }>(body: T): TetragonJsonProcess {
  if (!body.process) throw new CompactEncodeError(ERR_NO_PROCESS);
  return body.process;
}

function arg(args: TetragonJsonKprobeArgument[] | undefined, i: number): TetragonJsonKprobeArgument | undefined {
  return args && args.length > i ? args[i] : undefined;
}

const q = quoteIfNeeded;

function num(v: number | string | undefined): string {
  return v === undefined ? '0' : String(v);
}

// ---------------------------------------------------------------- kprobes

type KprobeRenderer = (kp: TetragonJsonProcessKprobe, r: Renderer) => { event: string; details: string[] };

function fileAt(kp: TetragonJsonProcessKprobe, i: number, r: Renderer): string {
  const p = arg(kp.args, i)?.file_arg?.path;
  return p === undefined ? '' : r.p.cyan(q(p));
}

function stringAt(kp: TetragonJsonProcessKprobe, i: number, r: Renderer): string {
  const a = arg(kp.args, i);
  return a ? r.p.cyan(q(a.string_arg ?? '')) : '';
}

function readWrite(emoji: string, label: string): KprobeRenderer {
  return (kp, r) => {
    const size = arg(kp.args, 2);
    const bytes = size ? r.p.cyan(`${size.size_arg ?? '0'} bytes`) : '';
    return { event: r.p.blue(prefix(emoji, label)), details: [fileAt(kp, 0, r), bytes] };
  };
}

function srcDst(emoji: string, label: string): KprobeRenderer {
  return (kp, r) => ({ event: r.p.blue(prefix(emoji, label)), details: [stringAt(kp, 0, r), stringAt(kp, 1, r)] });
}

function tcp(emoji: string, label: string, withBytes: boolean): KprobeRenderer {
  return (kp, r) => {
    const a = arg(kp.args, 0);
    let sock = '';
    if (a) {
      const s = a.sock_arg ?? {};
      sock = r.p.cyan(`tcp ${s.saddr ?? ''}:${num(s.sport)} -> ${s.daddr ?? ''}:${num(s.dport)}`);
    }
    const details = [sock];
    if (withBytes) details.push(`bytes ${num(arg(kp.args, 1)?.int_arg)}`);
    return { event: r.p.blue(prefix(emoji, label)), details };
  };
}

const CLONE_NS: Record<number, string> = {
  0: 'any',
  0x2000000: 'cgroup',
  0x8000000: 'ipc',
  0x40000000: 'net',
  0x20000: 'mnt',
  0x20000000: 'pid',
  0x80: 'time',
  0x10000000: 'user',
  0x4000000: 'uts',
};

function bpfMap(kp: TetragonJsonProcessKprobe, r: Renderer): { event: string; details: string[] } {
  const a = arg(kp.args, 0);
  let attr = '';
  if (a) {
    const m = a.bpf_map_arg ?? {};
    attr = r.p.cyan(
      `${m.MapType ?? ''} ${m.MapName ?? ''} key size ${num(m.KeySize)} value size ${num(m.ValueSize)} max entries ${num(m.MaxEntries)}`,
    );
  }
  return { event: r.p.blue(prefix('🗺', 'bpf_map_create')), details: [attr] };
}

function truncate(field: 'path_arg' | 'file_arg'): KprobeRenderer {
  return (kp, r) => {
    const a = arg(kp.args, 0);
    if (!a) return { event: r.p.blue(prefix('❓', `security_${field === 'path_arg' ? 'path' : 'file'}_truncate`)), details: [''] };
    return { event: r.p.blue(prefix('📝', 'truncate')), details: [r.p.cyan(q(a[field]?.path ?? ''))] };
  };
}

/** Keyed by function name with the arch syscall prefix removed. */
const KPROBES: Partial<Record<string, KprobeRenderer>> = {
  sys_write: readWrite('📝', 'write'),
  sys_read: readWrite('📚', 'read'),
  fd_install: (kp, r) => ({ event: r.p.blue(prefix('📬', 'open')), details: [fileAt(kp, 1, r)] }),
  sys_openat: (kp, r) => ({ event: r.p.blue(prefix('📬️', 'openat')), details: [stringAt(kp, 1, r)] }),
  sys_open: (kp, r) => ({ event: r.p.blue(prefix('📬️', 'open')), details: [stringAt(kp, 1, r)] }),
  sys_close: (kp, r) => ({ event: r.p.blue(prefix('📪', 'close')), details: [fileAt(kp, 0, r)] }),
  sys_mount: srcDst('💾', 'mount'),
  sys_pivot_root: srcDst('💾', 'pivot_root'),
  sys_setuid: (kp, r) => {
    const a = arg(kp.args, 0);
    return { event: r.p.blue(prefix('🔑', 'setuid')), details: [a ? r.p.cyan(num(a.int_arg)) : ''] };
  },
  sys_clock_settime: (_kp, r) => ({ event: r.p.blue(prefix('⏰', 'clock_settime')), details: [] }),
  proc_exec_connector: (_kp, r) => ({ event: r.p.blue(prefix('🔧', 'proc_exec_connector')), details: [] }),
  sys_setns: (kp, r) => {
    const a = arg(kp.args, 1);
    return { event: r.p.blue(prefix('🔧', 'setns')), details: [a ? CLONE_NS[a.int_arg ?? 0] ?? '' : ''] };
  },
  tcp_connect: tcp('🔌', 'connect', false),
  tcp_close: tcp('🧹', 'close', false),
  tcp_sendmsg: tcp('📤', 'sendmsg', true),
  bpf_check: (kp, r) => {
    const a = arg(kp.args, 0);
    let attr = '';
    if (a) {
      const b = a.bpf_attr_arg ?? {};
      attr = r.p.cyan(`${b.ProgType ?? ''} ${b.ProgName ?? ''} instruction count ${num(b.InsnCnt)}`);
    }
    return { event: r.p.blue(prefix('🐝', 'bpf_load')), details: [attr] };
  },
  security_perf_event_alloc: (kp, r) => {
    const a = arg(kp.args, 0);
    let attr = '';
    if (a) {
      const pe = a.perf_event_arg ?? {};
      attr = r.p.cyan(`${pe.Type ?? ''} ${pe.KprobeFunc ?? ''}`);
    }
    return { event: r.p.blue(prefix('🐝', 'perf_event_alloc')), details: [attr] };
  },
  security_bpf_map_alloc: bpfMap,
  security_bpf_map_create: bpfMap,
  security_file_permission: (kp, r) => {
    let event = r.p.blue(prefix('❓', 'security_file_permission'));
    let attr = '';
    const a0 = arg(kp.args, 0);
    const a1 = arg(kp.args, 1);
    if (a0 && a1) {
      if (a1.int_arg === 0x02) event = r.p.blue(prefix('📝', 'write'));
      else if (a1.int_arg === 0x04) event = r.p.blue(prefix('📚', 'read'));
      attr = r.p.cyan(q(a0.file_arg?.path ?? ''));
    }
    return { event, details: [attr] };
  },
  security_mmap_file: (kp, r) => {
    let event = r.p.blue(prefix('❓', 'security_mmap_file'));
    let attr = '';
    const a0 = arg(kp.args, 0);
    const a1 = arg(kp.args, 1);
    if (a0 && a1) {
      const prot = a1.uint_arg ?? 0;
      const tag = 'mmap-' + (prot & 1 ? 'r' : '') + (prot & 2 ? 'w' : '') + (prot & 4 ? 'x' : '');
      event = r.p.blue(prefix('📝', tag));
      attr = r.p.cyan(q(a0.file_arg?.path ?? ''));
    }
    return { event, details: [attr] };
  },
  security_path_truncate: truncate('path_arg'),
  security_file_truncate: truncate('file_arg'),
};

const SYSCALL_PREFIX = /^__(?:x64|ia32|arm64|riscv|s390x)_/;

// ---------------------------------------------------------------- raw syscalls

const DEFAULT_ABI = 'x64';

function knownSyscall(nr: number): string | undefined {
  if (!Number.isSafeInteger(nr) || nr < 0) return undefined;
  const name = syscallName(nr);
  return syscallNumber(name) === nr ? name : undefined;
}

/**
 * tetra's rawSyscallEnter: the id from args[0] (long_arg, or syscall_id with
 * its ABI), then `name(type name=value, …)` from the prototype table with the
 * size_arg values of args[1..] ("?" for anything else); "unknown" when the id
 * is not an x86_64 syscall (the only ABI with a table here).
 */
function rawSyscallEnter(args: TetragonJsonKprobeArgument[] | undefined): string {
  let id = -1;
  let abi = DEFAULT_ABI;
  const a0 = arg(args, 0);
  if (a0?.long_arg !== undefined) {
    id = Number(a0.long_arg);
  } else if (a0 && typeof a0.syscall_id === 'object' && a0.syscall_id !== null && !Array.isArray(a0.syscall_id)) {
    const sid = a0.syscall_id;
    id = typeof sid.id === 'number' ? sid.id : 0;
    abi = typeof sid.abi === 'string' ? sid.abi : '';
  }
  if (abi !== DEFAULT_ABI) return 'unknown';
  const name = knownSyscall(id);
  if (!name) return 'unknown';
  const proto = SYSCALL_ARGS[name];
  if (!proto) return name;
  const parts = proto.map(([type, argName], j) => {
    const size = arg(args, j + 1)?.size_arg;
    const ptr = type.endsWith('*');
    let v = '?';
    if (size !== undefined) {
      try {
        v = ptr ? '0x' + BigInt(size).toString(16) : BigInt(size).toString();
      } catch {
        v = '?';
      }
    }
    return ptr ? `${type}${argName}=${v}` : `${type} ${argName}=${v}`;
  });
  return `${name}(${parts.join(', ')})`;
}

// ---------------------------------------------------------------- event kinds

type KindRenderer = (ev: TetragonJsonEvent, r: Renderer) => string;

function hexFromBase64(b64: string): string {
  return Buffer.from(b64, 'base64').toString('hex');
}

const KINDS: Partial<Record<string, KindRenderer>> = {
  test: () => 'TEST EVENT',
  process_exec: (ev, r) => {
    const proc = need(ev.process_exec ?? {});
    return render(r, { event: r.p.blue(prefix('🚀', 'process')), process: proc, details: [r.p.cyan(q(proc.arguments ?? ''))] });
  },
  process_exit: (ev, r) => {
    const body = ev.process_exit ?? {};
    const proc = need(body);
    const status = body.signal ? body.signal : String(body.status ?? 0);
    return render(r, {
      event: r.p.blue(prefix('💥', 'exit')),
      process: proc,
      details: [r.p.cyan(q(proc.arguments ?? '')), r.p.red(status)],
    });
  },
  process_throttle: (ev, r) => {
    const t = ev.process_throttle ?? {};
    const typ = t.type === 'THROTTLE_START' ? r.p.red('START') : t.type === 'THROTTLE_STOP' ? r.p.green('STOP ') : '';
    return render(r, { event: r.p.red(prefix('🧬', 'throttle')), details: [typ, q(t.cgroup ?? '')] });
  },
  process_loader: (ev, r) => {
    const l = ev.process_loader ?? {};
    const proc = need(l);
    const buildid = l.buildid ? hexFromBase64(l.buildid) + ' ' : '';
    return render(r, { event: r.p.blue(prefix('🧬', 'loader')), process: proc, details: [buildid + r.p.yellow(q(l.path ?? ''))] });
  },
  process_kprobe: (ev, r) => {
    const kp = ev.process_kprobe ?? {};
    const proc = need(kp);
    const fn = kp.function_name ?? '';
    const row = KPROBES[fn.replace(SYSCALL_PREFIX, '')];
    if (row) return render(r, { ...row(kp, r), process: proc });
    return render(r, { event: r.p.blue(prefix('❓', 'syscall')), process: proc, details: [q(fn)] });
  },
  process_tracepoint: (ev, r) => {
    const tp = ev.process_tracepoint ?? {};
    const proc = need(tp);
    if (tp.subsys === 'raw_syscalls' && tp.event === 'sys_enter') {
      return render(r, { event: r.p.blue(prefix('☎', 'syscall', '  ')), process: proc, details: [rawSyscallEnter(tp.args)] });
    }
    return render(r, { event: r.p.blue(prefix('⁉️', 'tracepoint')), process: proc, details: [tp.subsys ?? '', tp.event ?? ''] });
  },
  process_uprobe: (ev, r) => {
    const u = ev.process_uprobe ?? {};
    const proc = need(u);
    return render(r, { event: r.p.blue(prefix('🕵️', 'uprobe')), process: proc, details: [q(u.path ?? ''), q(u.symbol ?? '')] });
  },
  process_usdt: (ev, r) => {
    const u = ev.process_usdt ?? {};
    const proc = need(u);
    return render(r, {
      event: r.p.blue(prefix('🕵️', 'usdt')),
      process: proc,
      details: [q(u.path ?? ''), q(u.provider ?? ''), q(u.name ?? '')],
    });
  },
  process_lsm: (ev, r) => {
    const l = ev.process_lsm ?? {};
    const proc = need(l);
    return render(r, { event: r.p.blue(prefix('🔒', 'LSM')), process: proc, details: [l.function_name ?? ''] });
  },
};

// ---------------------------------------------------------------- extra lines

function hexOf(v: string | undefined): string {
  try {
    return BigInt(v ?? '0').toString(16);
  } catch {
    return '0';
  }
}

function stackLines(ev: TetragonJsonEvent, p: Palette): string {
  const kp = ev.process_kprobe;
  if (!kp) return '';
  let out = '';
  const kernel: TetragonJsonStackTraceEntry[] | undefined = kp.kernel_stack_trace;
  if (kernel && kernel.length) {
    out += 'Kernel:\n';
    for (const st of kernel) {
      out += p.green(`   0x${hexOf(st.address)}:`) + p.blue(` ${st.symbol ?? ''}`) + '+' + p.yellow(`0x${hexOf(st.offset)}\n`);
    }
  }
  const user = kp.user_stack_trace;
  if (user && user.length) {
    out += 'User:\n';
    for (const st of user) {
      out += p.green(`   0x${hexOf(st.address)}:`);
      if (st.symbol) out += p.blue(` ${st.symbol}`);
      out += p.yellow(` (${st.module ?? ''}+0x${hexOf(st.offset)})\n`);
    }
  }
  return out;
}

const BPRM_HOOKS = new Set(['bprm_check_security', 'bprm_committed_creds', 'bprm_committing_creds', 'bprm_creds_for_exec', 'bprm_creds_from_file']);
const FILE_HOOKS = new Set(['file_ioctl', 'file_lock', 'file_open', 'file_post_open', 'file_receive', 'mmap_file']);

function imaLine(ev: TetragonJsonEvent, p: Palette): string {
  const lsm = ev.process_lsm;
  if (!lsm || !lsm.ima_hash) return '';
  const fn = lsm.function_name ?? '';
  const a0 = arg(lsm.args, 0);
  let path = '';
  if (BPRM_HOOKS.has(fn)) path = a0?.linux_binprm_arg?.path ?? '';
  else if (FILE_HOOKS.has(fn)) path = a0?.file_arg?.path ?? '';
  return path ? p.green(`   ${path}`) + p.blue(` ${lsm.ima_hash}\n`) : '';
}

// ---------------------------------------------------------------- entry point

/** Go's time.Format("2006-01-02T15:04:05.000000000Z07:00") of a protojson timestamp. */
export function compactTimestamp(time: string | undefined): string {
  const m = time ? /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(time) : null;
  if (!m) return '1970-01-01T00:00:00.000000000Z';
  return `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}Z`;
}

/**
 * One compact line (plus stack-trace / IMA lines below it, joined with "\n",
 * without a trailing newline). Throws CompactEncodeError where tetra errors.
 */
export function formatCompact(ev: TetragonJsonEvent, opts: CompactOptions): string {
  const p = opts.color ? COLORS : NO_COLORS;
  const r: Renderer = { p, ev };
  let kind: KindRenderer | undefined;
  for (const key in ev) {
    kind = KINDS[key];
    if (kind) break;
  }
  if (!kind) throw new CompactEncodeError(ERR_UNKNOWN);
  let line = kind(ev, r);
  if (opts.timestamps) line = compactTimestamp(ev.time) + ' ' + line;
  let extra = '';
  if (opts.stackTraces ?? true) extra += stackLines(ev, p);
  if (opts.imaHash ?? true) extra += imaLine(ev, p);
  return extra ? line + '\n' + extra.replace(/\n$/, '') : line;
}
