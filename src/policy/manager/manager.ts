// PolicyManager: the TracingPolicies the agent holds, by (namespace, name),
// whatever their source (--tracing-policy files, the watched directory, the
// Sensors gRPC methods). It parses and validates, hands valid policies to the
// kernel-side PolicyLoader, and keeps Tetragon's view of each: id, state,
// mode, hooks, kernel memory, action counters, error.
//
// Rules (Tetragon's where it has one):
// - a policy that does not parse or validate is refused with every problem
//   named (file:line:col: yaml.path: message); nothing changes;
// - a name already held is refused (ALREADY_EXISTS), whatever its source;
// - a policy the kernel side cannot load stays listed as load_error with the
//   reason (so `tetra tp list` shows why); enable retries the load, delete
//   removes it;
// - every operation runs one at a time (a queue), so states never interleave.
import type { PolicyLoader, HookStatusInfo, LoadedPolicy, PolicyMode, ActionCounters } from '../engine/types';
import { PolicyLoadError, zeroCounters } from '../engine/types';
import { formatIssue, parsePolicies } from '../parse';
import { summarizePolicy } from '../check';
import type { TracingPolicy } from '../types';

/** Tetragon's TracingPolicyState, by meaning. */
export type PolicyState = 'enabled' | 'disabled' | 'load_error' | 'error' | 'loading' | 'unloading';
export type PolicySource = 'file' | 'dir' | 'grpc' | 'cli';
/** Reported mode: monitor_only = the policy has no enforcement action (Tetragon v1.7). */
export type ReportedMode = PolicyMode | 'monitor_only';

export type PolicyErrorCode = 'invalid' | 'exists' | 'not_found' | 'limit' | 'load' | 'state' | 'unavailable';

/** A refused operation; `code` picks the gRPC status in the API adapter. */
export class PolicyManagerError extends Error {
  constructor(
    readonly code: PolicyErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PolicyManagerError';
  }
}

export interface ManagedPolicyView {
  id: number;
  name: string;
  /** "" for cluster-wide TracingPolicy. */
  namespace: string;
  kind: TracingPolicy['kind'];
  state: PolicyState;
  mode: ReportedMode;
  source: PolicySource;
  /** File it came from (file and dir sources). */
  file?: string;
  error?: string;
  hooks: HookStatusInfo[];
  kernelMemoryBytes: number;
  counters: ActionCounters;
  /** Sensor names in Tetragon's style, one per hook kind used (generic_kprobe, generic_tracepoint, …). */
  sensors: string[];
}

export interface PolicyManagerOptions {
  /** The kernel side; absent = policies are accepted, listed and reported as load_error with `unavailableReason`. */
  loader?: PolicyLoader;
  unavailableReason?: string;
  /** Refuse a policy when any hook is unsupported here (--policy-strict). */
  strict?: boolean;
  /** Most policies held at once (default 128). */
  maxPolicies?: number;
  /** Largest policy text accepted, bytes (default 1 MiB). */
  maxTextBytes?: number;
  log?: { info(m: string): void; warn(m: string): void; error(m: string): void };
}

export const DEFAULT_MAX_POLICIES = 128;
export const DEFAULT_MAX_TEXT_BYTES = 1024 * 1024;

interface Entry {
  id: number;
  key: string;
  policy: TracingPolicy;
  /** Canonical JSON of the validated policy: a changed file replaces the policy only when this differs. */
  canonical: string;
  state: PolicyState;
  mode: PolicyMode;
  /** No enforcement action in the policy. */
  observeOnly: boolean;
  source: PolicySource;
  file?: string;
  error?: string;
  hooks: HookStatusInfo[];
  kernelMemoryBytes: number;
  loaded?: LoadedPolicy;
  /** Counters of earlier loads (a reload or replacement keeps the totals). */
  pastCounters: ActionCounters;
}

export interface AddOrigin {
  source: PolicySource;
  file?: string;
}

function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function label(namespace: string, name: string): string {
  return namespace ? `"${name}" in namespace "${namespace}"` : `"${name}"`;
}

function modeOf(p: TracingPolicy): PolicyMode {
  return p.spec.options?.find((o) => o.name === 'policy-mode')?.value === 'monitor' ? 'monitor' : 'enforce';
}

function addCounters(a: ActionCounters, b: ActionCounters): ActionCounters {
  const out = zeroCounters();
  for (const k of Object.keys(out) as (keyof ActionCounters)[]) out[k] = (a[k] ?? 0) + (b[k] ?? 0);
  return out;
}

const SENSOR_BY_SECTION: Record<string, string> = {
  kprobes: 'generic_kprobe',
  fentries: 'generic_fentry',
  tracepoints: 'generic_tracepoint',
  lsmhooks: 'generic_lsm',
  uprobes: 'generic_uprobe',
  usdts: 'generic_usdt',
};

function sensorsOf(p: TracingPolicy): string[] {
  const out: string[] = [];
  for (const [k, name] of Object.entries(SENSOR_BY_SECTION)) {
    const list = (p.spec as Record<string, unknown>)[k];
    if (Array.isArray(list) && list.length) out.push(name);
  }
  return out;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class PolicyManager {
  private readonly entries = new Map<string, Entry>();
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly maxPolicies: number;
  private readonly maxTextBytes: number;
  private closed = false;
  /** Files whose current text is refused (dir/file sources), with why. */
  readonly fileErrors = new Map<string, string>();

  constructor(private readonly opts: PolicyManagerOptions = {}) {
    this.maxPolicies = opts.maxPolicies ?? DEFAULT_MAX_POLICIES;
    this.maxTextBytes = opts.maxTextBytes ?? DEFAULT_MAX_TEXT_BYTES;
  }

  get available(): boolean {
    return this.opts.loader !== undefined;
  }

  /** Runs operations one at a time, in call order. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  // ------------------------------------------------------------------ parsing

  /** Parses text into validated policies or throws 'invalid' naming every problem. */
  parse(text: string, source?: string): TracingPolicy[] {
    if (typeof text !== 'string' || text.trim() === '') throw new PolicyManagerError('invalid', `${source ? `${source}: ` : ''}empty policy: expected a TracingPolicy or TracingPolicyNamespaced document`);
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > this.maxTextBytes) throw new PolicyManagerError('limit', `${source ? `${source}: ` : ''}policy text is ${bytes} bytes; the limit is ${this.maxTextBytes}`);
    const results = parsePolicies(text, source, { maxBytes: this.maxTextBytes });
    const problems = results.flatMap((r) => r.errors.map(formatIssue));
    if (problems.length) {
      const n = problems.length;
      throw new PolicyManagerError('invalid', `invalid tracing policy (${n} problem${n === 1 ? '' : 's'}):\n  ${problems.slice(0, 50).join('\n  ')}${n > 50 ? `\n  … ${n - 50} more` : ''}`);
    }
    for (const r of results) for (const w of r.warnings) this.opts.log?.warn(`policy warning: ${formatIssue(w)}`);
    return results.map((r) => r.policy).filter((p): p is TracingPolicy => p !== undefined);
  }

  private namespaceOf(p: TracingPolicy): string {
    return p.kind === 'TracingPolicyNamespaced' ? (p.metadata.namespace ?? '') : '';
  }

  // ------------------------------------------------------------------ operations

  /**
   * Adds every policy of the text (several documents are accepted from files;
   * pass single for the gRPC path, which takes one like Tetragon). All or
   * nothing for parse errors, duplicates and limits; a kernel load failure
   * keeps that policy as load_error and throws 'load' after the others loaded.
   */
  add(text: string, origin: AddOrigin, opts: { single?: boolean } = {}): Promise<ManagedPolicyView[]> {
    return this.serial(async () => {
      this.ensureOpen();
      const policies = this.parse(text, origin.file);
      if (opts.single && policies.length !== 1) throw new PolicyManagerError('invalid', `expected exactly one policy, found ${policies.length}`);
      for (const p of policies) {
        const ns = this.namespaceOf(p);
        const have = this.entries.get(keyOf(ns, p.metadata.name));
        if (have) throw new PolicyManagerError('exists', `tracing policy ${label(ns, p.metadata.name)} already exists (id ${have.id}, from ${have.file ?? have.source}); delete it first`);
      }
      if (this.entries.size + policies.length > this.maxPolicies) {
        throw new PolicyManagerError('limit', `too many tracing policies: ${this.entries.size} loaded, ${policies.length} more would pass the limit of ${this.maxPolicies}`);
      }
      const out: Entry[] = [];
      const failures: string[] = [];
      for (const p of policies) {
        const e = this.newEntry(p, origin);
        this.entries.set(e.key, e);
        out.push(e);
        await this.loadEntry(e);
        if (e.state === 'load_error') failures.push(`tracing policy ${label(e.key.split('/')[0], p.metadata.name)} failed to load: ${e.error}`);
      }
      if (failures.length) throw new PolicyManagerError('load', failures.join('\n'));
      return out.map((e) => this.view(e));
    });
  }

  delete(name: string, namespace = ''): Promise<void> {
    return this.serial(async () => {
      const e = this.find(name, namespace);
      await this.unload(e);
      this.entries.delete(e.key);
    });
  }

  /** enable / mode changes, mode first (Tetragon: the two are not atomic). */
  configure(name: string, namespace: string, change: { enable?: boolean; mode?: PolicyMode }): Promise<ManagedPolicyView> {
    return this.serial(async () => {
      const e = this.find(name, namespace);
      if (change.mode !== undefined) await this.setMode(e, change.mode);
      if (change.enable === true) await this.enable(e);
      if (change.enable === false) await this.disable(e);
      return this.view(e);
    });
  }

  list(): ManagedPolicyView[] {
    return [...this.entries.values()].sort((a, b) => a.id - b.id).map((e) => this.view(e));
  }

  get(name: string, namespace = ''): ManagedPolicyView | undefined {
    const e = this.entries.get(keyOf(namespace, name));
    return e && this.view(e);
  }

  /** Totals over all policies, for the metrics endpoint. */
  counters(): Record<string, number> {
    const out: Record<string, number> = { policies_loaded: 0, policies_in_error: 0, policy_kernel_memory_bytes: 0 };
    for (const e of this.entries.values()) {
      if (e.state === 'enabled') out.policies_loaded++;
      if (e.state === 'load_error' || e.state === 'error') out.policies_in_error++;
      out.policy_kernel_memory_bytes += e.kernelMemoryBytes;
    }
    out.policy_file_errors = this.fileErrors.size;
    return out;
  }

  /**
   * Brings the policies of one file in line with its text (undefined = the
   * file is gone). A file that no longer parses keeps its previous policies
   * loaded and running, each marked with the error (an edit with a typo must
   * not silently drop enforcement); the file error is also kept in
   * fileErrors and thrown.
   */
  syncFile(file: string, text: string | undefined, source: PolicySource = 'dir'): Promise<void> {
    return this.serial(async () => {
      this.ensureOpen();
      const mine = [...this.entries.values()].filter((e) => e.file === file);
      if (text === undefined) {
        this.fileErrors.delete(file);
        for (const e of mine) {
          await this.unload(e);
          this.entries.delete(e.key);
        }
        return;
      }
      let policies: TracingPolicy[];
      try {
        policies = this.parse(text, file);
      } catch (err) {
        const msg = errorText(err);
        this.fileErrors.set(file, msg);
        for (const e of mine) e.error = `${file} was changed and is now refused; the previous version stays loaded: ${msg}`;
        throw err;
      }
      const problems: string[] = [];
      const wanted = new Map<string, TracingPolicy>();
      for (const p of policies) {
        const k = keyOf(this.namespaceOf(p), p.metadata.name);
        const other = this.entries.get(k);
        if (other && other.file !== file) {
          problems.push(`tracing policy ${label(this.namespaceOf(p), p.metadata.name)} already exists (id ${other.id}, from ${other.file ?? other.source}); ${file} skips it`);
          continue;
        }
        wanted.set(k, p);
      }
      // Gone from the file.
      for (const e of mine) {
        if (wanted.has(e.key)) continue;
        await this.unload(e);
        this.entries.delete(e.key);
      }
      for (const [k, p] of wanted) {
        const have = this.entries.get(k);
        const canonical = JSON.stringify(p);
        if (have) {
          if (have.canonical === canonical) {
            have.error = have.state === 'load_error' ? have.error : undefined;
            continue;
          }
          await this.replace(have, p);
          if (have.state === 'load_error' || have.error) problems.push(`tracing policy ${label(this.namespaceOf(p), p.metadata.name)}: ${have.error}`);
          continue;
        }
        if (this.entries.size >= this.maxPolicies) {
          problems.push(`tracing policy ${label(this.namespaceOf(p), p.metadata.name)} skipped: the limit of ${this.maxPolicies} policies is reached`);
          continue;
        }
        const e = this.newEntry(p, { source, file });
        this.entries.set(k, e);
        await this.loadEntry(e);
        if (e.state === 'load_error') problems.push(`tracing policy ${label(this.namespaceOf(p), p.metadata.name)} failed to load: ${e.error}`);
      }
      if (problems.length) {
        this.fileErrors.set(file, problems.join('; '));
        throw new PolicyManagerError('load', problems.join('\n'));
      }
      this.fileErrors.delete(file);
    });
  }

  /** Records that a file's current content is refused without reading it (e.g. too large); its earlier policies stay. */
  refuseFile(file: string, message: string): void {
    this.fileErrors.set(file, message);
    for (const e of this.entries.values()) if (e.file === file) e.error = `${file} was changed and is now refused; the previous version stays loaded: ${message}`;
  }

  /** Files that currently hold policies (for the directory watcher's bookkeeping). */
  filesHeld(): Set<string> {
    const out = new Set<string>();
    for (const e of this.entries.values()) if (e.file) out.add(e.file);
    for (const f of this.fileErrors.keys()) out.add(f);
    return out;
  }

  /** Unloads everything; later operations are refused. */
  close(): Promise<void> {
    return this.serial(async () => {
      this.closed = true;
      for (const e of [...this.entries.values()]) {
        await this.unload(e);
      }
      this.entries.clear();
    });
  }

  // ------------------------------------------------------------------ internals

  private ensureOpen(): void {
    if (this.closed) throw new PolicyManagerError('unavailable', 'the agent is stopping');
  }

  private find(name: string, namespace: string): Entry {
    if (!name) throw new PolicyManagerError('invalid', 'name: a tracing policy name is required');
    const e = this.entries.get(keyOf(namespace, name));
    if (!e) {
      // A cluster-wide lookup of a name held only in one namespace: say so.
      const elsewhere = !namespace ? [...this.entries.values()].find((x) => x.policy.metadata.name === name) : undefined;
      const hint = elsewhere ? ` (a policy of that name exists in namespace "${this.namespaceOf(elsewhere.policy)}"; pass --namespace)` : '';
      throw new PolicyManagerError('not_found', `tracing policy ${label(namespace, name)} not found${hint}`);
    }
    return e;
  }

  private newEntry(p: TracingPolicy, origin: AddOrigin): Entry {
    const ns = this.namespaceOf(p);
    const e: Entry = {
      id: this.nextId++,
      key: keyOf(ns, p.metadata.name),
      policy: p,
      canonical: JSON.stringify(p),
      state: 'loading',
      mode: modeOf(p),
      observeOnly: !summarizePolicy(p).enforces,
      source: origin.source,
      hooks: [],
      kernelMemoryBytes: 0,
      pastCounters: zeroCounters(),
    };
    if (origin.file !== undefined) e.file = origin.file;
    return e;
  }

  private async loadEntry(e: Entry): Promise<void> {
    const loader = this.opts.loader;
    e.state = 'loading';
    e.error = undefined;
    if (!loader) {
      e.state = 'load_error';
      e.error = this.opts.unavailableReason ?? 'policy engine not available in this agent';
      return;
    }
    try {
      const loaded = await loader.load(e.policy, { mode: e.mode, strict: this.opts.strict ?? false });
      e.loaded = loaded;
      e.hooks = loaded.hooks;
      e.kernelMemoryBytes = loaded.kernelMemoryBytes;
      e.state = 'enabled';
      const bad = loaded.hooks.filter((h) => h.state !== 'loaded');
      if (bad.length) this.opts.log?.warn(`tracing policy "${e.policy.metadata.name}": ${bad.map((h) => `${h.section} ${h.call} ${h.state}${h.reason ? `: ${h.reason}` : ''}`).join('; ')}`);
      this.opts.log?.info(`tracing policy "${e.policy.metadata.name}" loaded (id ${e.id}, mode ${e.mode}, ${loaded.hooks.length} hook${loaded.hooks.length === 1 ? '' : 's'})`);
    } catch (err) {
      e.state = 'load_error';
      e.error = errorText(err);
      if (err instanceof PolicyLoadError && err.plan) {
        // The plan's hooks, none of them attached now.
        e.hooks = err.plan.hooks.map((h) => (h.state === 'loaded' ? { ...h, state: 'error' as const, reason: h.reason ?? 'not attached: the policy failed to load' } : h));
        if (err.plan.errors.length && !e.error.includes(err.plan.errors[0])) e.error += `: ${err.plan.errors.join('; ')}`;
      }
      this.opts.log?.error(`tracing policy "${e.policy.metadata.name}" failed to load: ${e.error}`);
    }
  }

  private async unload(e: Entry): Promise<void> {
    const l = e.loaded;
    if (!l) return;
    e.state = 'unloading';
    e.pastCounters = addCounters(e.pastCounters, safeCounters(l));
    e.loaded = undefined;
    try {
      await l.close();
    } catch (err) {
      this.opts.log?.warn(`tracing policy "${e.policy.metadata.name}": unloading failed: ${errorText(err)}`);
    }
    e.kernelMemoryBytes = 0;
  }

  /** Loads the new version first and only then closes the old: no gap in enforcement. */
  private async replace(e: Entry, p: TracingPolicy): Promise<void> {
    const loader = this.opts.loader;
    const mode = modeOf(p);
    if (!loader) {
      e.policy = p;
      e.canonical = JSON.stringify(p);
      e.mode = mode;
      return;
    }
    try {
      const next = await loader.load(p, { mode, strict: this.opts.strict ?? false });
      const old = e.loaded;
      const wasDisabled = e.state === 'disabled';
      if (old) e.pastCounters = addCounters(e.pastCounters, safeCounters(old));
      e.loaded = next;
      e.policy = p;
      e.canonical = JSON.stringify(p);
      e.mode = mode;
      e.observeOnly = !summarizePolicy(p).enforces;
      e.hooks = next.hooks;
      e.kernelMemoryBytes = next.kernelMemoryBytes;
      e.error = undefined;
      e.state = 'enabled';
      if (wasDisabled) await this.disable(e);
      if (old) await old.close().catch((err: unknown) => this.opts.log?.warn(`tracing policy "${p.metadata.name}": closing the previous version failed: ${errorText(err)}`));
      this.opts.log?.info(`tracing policy "${p.metadata.name}" replaced from ${e.file ?? e.source}`);
    } catch (err) {
      if (e.loaded) {
        e.error = `the new version failed to load; the previous version stays loaded: ${errorText(err)}`;
      } else {
        e.policy = p;
        e.canonical = JSON.stringify(p);
        e.mode = mode;
        e.state = 'load_error';
        e.error = errorText(err);
      }
      this.opts.log?.error(`tracing policy "${p.metadata.name}": ${e.error}`);
    }
  }

  private async setMode(e: Entry, mode: PolicyMode): Promise<void> {
    if (mode === 'enforce' && e.observeOnly) {
      throw new PolicyManagerError('state', `tracing policy "${e.policy.metadata.name}" has no enforcement action (mode monitor_only); it cannot be set to enforce`);
    }
    if (e.mode === mode) return;
    if (e.loaded) {
      try {
        await e.loaded.setMode(mode);
      } catch (err) {
        e.state = 'error';
        e.error = `switching to ${mode} failed: ${errorText(err)}`;
        throw new PolicyManagerError('load', `tracing policy "${e.policy.metadata.name}": ${e.error}`);
      }
    }
    e.mode = mode;
    this.opts.log?.info(`tracing policy "${e.policy.metadata.name}" set to mode ${mode}`);
  }

  private async enable(e: Entry): Promise<void> {
    if (e.state === 'enabled') throw new PolicyManagerError('state', `tracing policy "${e.policy.metadata.name}" is already enabled`);
    if (e.state === 'loading' || e.state === 'unloading') throw new PolicyManagerError('state', `tracing policy "${e.policy.metadata.name}" is ${e.state}`);
    if (e.loaded) {
      try {
        await e.loaded.setEnabled(true);
        e.state = 'enabled';
        e.error = undefined;
      } catch (err) {
        e.state = 'error';
        e.error = `enabling failed: ${errorText(err)}`;
        throw new PolicyManagerError('load', `tracing policy "${e.policy.metadata.name}": ${e.error}`);
      }
      return;
    }
    // load_error (or disabled without programs): try the load again.
    await this.loadEntry(e);
    if (e.state === 'load_error') throw new PolicyManagerError('load', `tracing policy "${e.policy.metadata.name}" failed to load: ${e.error}`);
  }

  private async disable(e: Entry): Promise<void> {
    if (e.state === 'disabled') throw new PolicyManagerError('state', `tracing policy "${e.policy.metadata.name}" is already disabled`);
    if (e.loaded) {
      try {
        await e.loaded.setEnabled(false);
      } catch (err) {
        e.state = 'error';
        e.error = `disabling failed: ${errorText(err)}`;
        throw new PolicyManagerError('load', `tracing policy "${e.policy.metadata.name}": ${e.error}`);
      }
    }
    e.state = 'disabled';
  }

  private view(e: Entry): ManagedPolicyView {
    const counters = e.loaded ? addCounters(e.pastCounters, safeCounters(e.loaded)) : { ...e.pastCounters };
    const v: ManagedPolicyView = {
      id: e.id,
      name: e.policy.metadata.name,
      namespace: this.namespaceOf(e.policy),
      kind: e.policy.kind,
      state: e.state,
      mode: e.observeOnly ? 'monitor_only' : e.mode,
      source: e.source,
      hooks: e.loaded ? e.loaded.hooks : e.hooks,
      kernelMemoryBytes: e.loaded ? e.loaded.kernelMemoryBytes : e.kernelMemoryBytes,
      counters,
      sensors: sensorsOf(e.policy),
    };
    if (e.file !== undefined) v.file = e.file;
    if (e.error) v.error = e.error;
    return v;
  }
}

function safeCounters(l: LoadedPolicy): ActionCounters {
  try {
    return l.counters();
  } catch {
    return zeroCounters();
  }
}
