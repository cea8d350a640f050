// --tracing-policy-dir: every *.yaml / *.yml / *.json file of the directory
// (not recursive, hidden files and editor temporaries skipped) is a policy
// source. fs.watch tells us something changed; a periodic rescan is the
// safety net (fs.watch misses events on some filesystems and across a
// directory that is replaced). Changes are debounced so an editor's
// write-rename dance is seen once. A file is re-read only when its size,
// mtime or inode moved, and re-applied only when its text changed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PolicyManager } from './manager';

export interface PolicyDirOptions {
  /** Quiet time after a change before the rescan (default 150 ms). */
  debounceMs?: number;
  /** Safety-net rescan period (default 5 s; 0 = none). */
  rescanMs?: number;
  /** Most files considered (default 256); the rest are reported. */
  maxFiles?: number;
  /** Largest file read (default 1 MiB). */
  maxFileBytes?: number;
  log?: { info(m: string): void; warn(m: string): void; error(m: string): void };
}

const POLICY_FILE = /^[^.].*\.(ya?ml|json)$/i;

interface Seen {
  sig: string;
  text: string;
}

export class PolicyDirWatcher {
  private readonly seen = new Map<string, Seen>();
  private watcher?: fs.FSWatcher;
  private debounce?: NodeJS.Timeout;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  /** Rescans completed (tests wait on it). */
  scans = 0;
  /** Problems of the last scan that are not about one file (unreadable directory, too many files). */
  dirError?: string;

  constructor(
    readonly dir: string,
    private readonly manager: PolicyManager,
    private readonly opts: PolicyDirOptions = {},
  ) {}

  /** First scan (awaited), then watching. */
  async start(): Promise<void> {
    await this.rescan();
    this.watch();
    const every = this.opts.rescanMs ?? 5000;
    if (every > 0) this.timer = setInterval(() => void this.rescan(), every).unref();
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.debounce) clearTimeout(this.debounce);
    if (this.timer) clearInterval(this.timer);
  }

  private watch(): void {
    if (this.watcher || this.stopped) return;
    try {
      this.watcher = fs.watch(this.dir, { persistent: false }, () => this.poke());
      this.watcher.on('error', () => {
        // The directory went away (or was replaced): drop the watch, the rescan re-arms it.
        this.watcher?.close();
        this.watcher = undefined;
        this.poke();
      });
    } catch {
      this.watcher = undefined;
    }
  }

  /** A change was seen: rescan after a quiet period. */
  poke(): void {
    if (this.stopped) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.rescan(), this.opts.debounceMs ?? 150);
    this.debounce.unref();
  }

  /** One pass over the directory; overlapping calls are folded into one more pass. */
  rescan(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.scanOnce();
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
      this.scans++;
    });
    return this.running;
  }

  private async scanOnce(): Promise<void> {
    if (this.stopped) return;
    const log = this.opts.log;
    let names: string[];
    try {
      names = fs.readdirSync(this.dir).filter((n) => POLICY_FILE.test(n)).sort();
      this.dirError = undefined;
      this.watch();
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (e as Error).message;
      if (this.dirError === undefined) log?.warn(`tracing policy directory ${this.dir} ${why}; watching for it`);
      this.dirError = `tracing policy directory ${this.dir} ${why}`;
      names = [];
    }
    const max = this.opts.maxFiles ?? 256;
    if (names.length > max) {
      this.dirError = `tracing policy directory ${this.dir} has ${names.length} policy files; only the first ${max} are read`;
      log?.warn(this.dirError);
      names = names.slice(0, max);
    }
    const present = new Set<string>();
    for (const n of names) {
      const file = path.join(this.dir, n);
      let st: fs.Stats;
      try {
        st = fs.statSync(file);
      } catch {
        continue; // removed between readdir and stat
      }
      if (!st.isFile()) continue;
      present.add(file);
      const sig = `${st.ino}:${st.size}:${st.mtimeMs}`;
      const prev = this.seen.get(file);
      if (prev && prev.sig === sig) continue;
      const limit = this.opts.maxFileBytes ?? 1024 * 1024;
      let text: string;
      if (st.size > limit) {
        this.seen.set(file, { sig, text: `\u0000too-large:${st.size}` });
        await this.apply(file, `\u0000too-large:${st.size}`, limit);
        continue;
      }
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (e) {
        log?.warn(`tracing policy file ${file}: cannot read: ${(e as Error).message}`);
        continue;
      }
      this.seen.set(file, { sig, text });
      if (prev && prev.text === text) continue;
      await this.apply(file, text, limit);
    }
    for (const file of [...this.seen.keys()]) {
      if (present.has(file)) continue;
      this.seen.delete(file);
      log?.info(`tracing policy file ${file} removed`);
      await this.apply(file, undefined, 0);
    }
  }

  private async apply(file: string, text: string | undefined, limit: number): Promise<void> {
    const log = this.opts.log;
    try {
      if (text !== undefined && text.startsWith('\u0000too-large:')) {
        const msg = `${file}: policy file is ${text.slice(11)} bytes; the limit is ${limit}`;
        this.manager.refuseFile(file, msg);
        log?.error(`tracing policy file ${msg}`);
        return;
      }
      await this.manager.syncFile(file, text, 'dir');
    } catch (e) {
      log?.error(`tracing policy file ${file}: ${(e as Error).message}`);
    }
  }
}
