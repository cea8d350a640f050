// Tetragon renders argv (after argv[0]) as one string: space-joined, and an
// argument containing a space is wrapped in double quotes.
export function joinArguments(args: readonly string[]): string {
  let out = '';
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (i > 0) out += ' ';
    out += a.includes(' ') ? `"${a}"` : a;
  }
  return out;
}

/** Resolves the exec filename against the cwd, as Tetragon does in user space. */
export function resolveBinary(filename: string, cwd: string): string {
  if (filename.startsWith('/') || filename === '') return filename;
  const base = cwd.endsWith('/') ? cwd : cwd + '/';
  const parts: string[] = [];
  for (const p of (base + filename).split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return '/' + parts.join('/');
}

const CONTAINER_ID = /(?:^|[-_:])([0-9a-f]{64})(?:\.scope)?$|^([0-9a-f]{64})$/;

/** Container id from a cgroup leaf name (docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>, <id>), cut to 31 chars like Tetragon. */
export function containerIdFromCgroup(name: string): string {
  const m = CONTAINER_ID.exec(name);
  const id = m ? m[1] ?? m[2] : '';
  return id ? id.slice(0, 31) : '';
}

const SIGNALS = [
  '', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL', 'SIGUSR1',
  'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP',
  'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS',
];

export function signalName(sig: number): string {
  if (sig <= 0) return '';
  return SIGNALS[sig] ?? `SIGRT${sig}`;
}
