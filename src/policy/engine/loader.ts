// The generic kernel side of policies: plan() and load() over
// bpf/policy.bpf.o, one object instance per hook (its maps hold that hook's
// selectors only, so policies and hooks never share state and close() frees
// exactly one policy), one ring consumer per policy.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../../kernel/native';
import type { BpfLink, BpfMap, BpfObject, FeatureProbe, RingConsumer } from '../../kernel/types';
import type { BusItem, PolicyAction, PolicyEvent, ProcessInfo } from '../../model/event';
import { ProcessResolver } from '../../sensors/file/resolve';
import type { TracingPolicy } from '../types';
import { ALL_PROGRAMS, binaryMatches, compileHook, hookRefs, overrideNotEnforced, type CompiledHook } from './compile';
import { decodeArgs, decodePolicyBatch, retArg, type DecodeErrors, type PolicyRecord } from './decode';
import * as L from './layout.gen';
import {
  PolicyLoadError, zeroCounters,
  type ActionCounters, type HookBackend, type HookLoadContext, type HookRef, type HookStatusInfo, type LoadedHook, type LoadedPolicy,
  type LoadOptions, type PolicyLoader, type PolicyLoaderDeps, type PolicyMapPlan, type PolicyMode, type PolicyPlan,
} from './types';

let nextPolicyId = 1;

interface PlannedHook {
  ref: HookRef;
  backend?: HookBackend;
  compiled?: CompiledHook;
  status: HookStatusInfo;
  maps: PolicyMapPlan[];
}

function cpuCount(): number {
  try {
    const t = fs.readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
    let n = 0;
    for (const part of t.split(',')) {
      const [a, b] = part.split('-').map(Number);
      n += b === undefined ? 1 : b - a + 1;
    }
    return n || os.cpus().length;
  } catch {
    return os.cpus().length;
  }
}

function planHooks(policy: TracingPolicy, opts: LoadOptions, features: FeatureProbe, backends: readonly HookBackend[]): { hooks: PlannedHook[]; errors: string[] } {
  const errors: string[] = [];
  const hooks: PlannedHook[] = [];
  const cpus = cpuCount();
  for (const ref of hookRefs(policy)) {
    const b = backends.find((x) => x.claims(policy, ref, features));
    if (b) {
      const p = b.plan(policy, ref, features);
      hooks.push({ ref, backend: b, status: p.status, maps: p.maps });
      continue;
    }
    const c = compileHook(policy, ref, features, errors, cpus);
    hooks.push({ ref, compiled: c, status: c.status, maps: c.maps });
  }
  if (opts.strict) {
    for (const h of hooks) {
      if (h.status.state !== 'loaded') errors.push(`${h.status.section} (${h.status.call}): ${h.status.state}${h.status.reason ? `: ${h.status.reason}` : ''} (strict mode)`);
      else if (h.compiled && overrideNotEnforced(h.compiled)) errors.push(`${h.status.section} (${h.status.call}): Override cannot be enforced on ${h.status.attachedAs} (strict mode)`);
    }
  }
  if (hooks.length === 0) errors.push('the policy has no hooks (kprobes, tracepoints, lsmhooks, uprobes or usdts)');
  return { hooks, errors };
}

function toPlan(hooks: PlannedHook[], errors: string[]): PolicyPlan {
  const maps = hooks.flatMap((h) => h.maps);
  return { hooks: hooks.map((h) => h.status), maps, kernelMemoryBytes: maps.reduce((a, m) => a + m.bytes, 0), errors };
}

function policyMode(policy: TracingPolicy, opts: LoadOptions): PolicyMode {
  const o = policy.spec.options?.find((x) => x.name === 'policy-mode');
  if (o && (o.value === 'monitor' || o.value === 'enforce')) return opts.mode === 'monitor' ? 'monitor' : (o.value as PolicyMode);
  return opts.mode;
}

/** One loaded generic hook. */
class GenericHook implements LoadedHook {
  readonly status: HookStatusInfo;
  readonly kernelMemoryBytes: number;
  private links: BpfLink[] = [];
  private cfgMap?: BpfMap;
  countersMap?: BpfMap;
  ring?: BpfMap;
  private cfg: Buffer;
  private mode: PolicyMode;
  private enabled = true;
  obj?: BpfObject;

  constructor(
    readonly c: CompiledHook,
    private readonly deps: PolicyLoaderDeps,
    private readonly policyId: number,
    readonly hookId: number,
    mode: PolicyMode,
  ) {
    this.status = { ...c.status, inKernel: [...c.status.inKernel], inUserSpace: [...c.status.inUserSpace], actions: [...c.status.actions] };
    this.kernelMemoryBytes = c.kernelMemoryBytes;
    this.cfg = Buffer.from(c.kernel!.cfg);
    this.mode = mode;
  }

  open(objPath: string): void {
    const k = this.c.kernel!;
    const { native, config } = this.deps;
    fs.mkdirSync(config.bpfDir, { recursive: true });
    const load = (programs: string[]): BpfObject => {
      const want = new Set(programs);
      const obj = native.openObject(objPath, {
        pinRoot: config.bpfDir,
        mapSizes: { ...k.mapSizes, tetrahub_procs: config.processMapEntries },
        rodata: { agent_tgid: process.pid },
        skipPrograms: ALL_PROGRAMS.filter((p) => !want.has(p)),
      });
      try {
        obj.load();
      } catch (e) {
        obj.close();
        throw e;
      }
      return obj;
    };
    let attach = k.attach;
    try {
      this.obj = load(k.programs);
    } catch (e) {
      // The helper probe can say yes where the kprobe program type still refuses
      // bpf_override_return (no CONFIG_BPF_KPROBE_OVERRIDE): load without it, say so.
      const msg = (e as Error).message;
      if (!/cannot use helper bpf_override_return|unknown func bpf_override_return/.test(msg)) throw e;
      const plain = (p: string): string => p.replace(/_ovr$/, '');
      this.obj = load(k.programs.map(plain));
      attach = k.attach.map((a) => ({ ...a, program: plain(a.program) }));
      this.status.actions = this.status.actions.map((a) => (a.startsWith('Override') ? `${a.split(':')[0]}: NOT enforced — this kernel refuses bpf_override_return in kprobe programs (CONFIG_BPF_KPROBE_OVERRIDE off)` : a));
      this.status.reason = 'Override cannot be enforced on this attachment (see actions)';
    }
    const obj = this.obj;
    this.cfgMap = obj.map('th_pol_cfg');
    this.countersMap = obj.map('th_pol_counters');
    this.ring = obj.map('th_pol_events');
    for (const s of k.strings) obj.map(s.map).update(s.key, Buffer.from([1]));
    this.cfg.writeUInt32LE(this.policyId, L.th_pol_cfg.policy_id);
    this.cfg.writeUInt32LE(this.hookId, L.th_pol_cfg.hook_id);
    this.writeCfg();
    if (k.needsTasks) {
      // Hooks first, then the /proc scan: an exec in between is seen by the hook.
      this.links.push(obj.attach('pol_exec'), obj.attach('pol_fork'), obj.attach('pol_exit'));
      this.seedTasks(obj.map('th_pol_tasks'));
    }
    for (const a of attach) this.links.push(obj.attach(a.program, a.opts));
  }

  /** Processes running at load: matchBinaries bits from the process cache (or /proc/PID/exe). */
  private seedTasks(m: BpfMap): void {
    const k = this.c.kernel!;
    if (!k.binRules.length) return;
    const key = Buffer.alloc(4);
    const val = Buffer.alloc(L.th_pol_task.SIZE);
    for (const ent of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(ent)) continue;
      const pid = Number(ent);
      let bin = this.deps.cache.current(pid)?.binary;
      if (!bin) {
        try {
          bin = fs.readlinkSync(`/proc/${ent}/exe`);
        } catch {
          continue;
        }
      }
      let bits = 0;
      for (const r of k.binRules) if (binaryMatches(r.op, r.values, bin)) bits |= 1 << r.sel;
      if (bits === k.binDefault) continue;
      key.writeUInt32LE(pid);
      val.writeUInt32LE(bits, L.th_pol_task.bin_bits);
      try {
        m.update(key, val, 1);
      } catch {
        /* exists (exec'd since the hook attached) or full */
      }
    }
  }

  private writeCfg(): void {
    let f = this.cfg.readUInt32LE(L.th_pol_cfg.flags) & ~(L.TH_CF_ENABLED | L.TH_CF_MONITOR);
    if (this.enabled) f |= L.TH_CF_ENABLED;
    if (this.mode === 'monitor') f |= L.TH_CF_MONITOR;
    this.cfg.writeUInt32LE(f, L.th_pol_cfg.flags);
    this.cfgMap?.update(Buffer.alloc(4), this.cfg);
  }

  async setMode(mode: PolicyMode): Promise<void> {
    this.mode = mode;
    this.writeCfg();
  }

  async setEnabled(on: boolean): Promise<void> {
    this.enabled = on;
    this.writeCfg();
  }

  counters(): { c: ActionCounters; dropped: number } {
    const c = zeroCounters();
    let dropped = 0;
    const v = this.countersMap?.lookup(Buffer.alloc(4));
    if (!v) return { c, dropped };
    const stride = (L.th_pol_counters.SIZE + 7) & ~7;
    const C = L.th_pol_counters;
    for (let off = 0; off + stride <= v.length; off += stride) {
      const g = (f: number): number => Number(v.readBigUInt64LE(off + f));
      c.post += g(C.post);
      c.signal += g(C.signal);
      c.monitorSignal += g(C.monitor_signal);
      c.override += g(C.override);
      c.monitorOverride += g(C.monitor_override);
      c.nopost += g(C.nopost);
      dropped += g(C.dropped);
    }
    return { c, dropped };
  }

  /** Detaches the programs (maps stay until close). */
  detach(): void {
    for (const l of this.links) {
      try {
        l.destroy();
      } catch {
        /* already gone */
      }
    }
    this.links = [];
  }

  async close(): Promise<void> {
    for (const l of this.links) {
      try {
        l.destroy();
      } catch {
        /* already gone */
      }
    }
    this.links = [];
    this.cfgMap?.close();
    this.countersMap?.close();
    this.ring?.close();
    this.cfgMap = this.countersMap = this.ring = undefined;
    this.obj?.close();
    this.obj = undefined;
  }
}

type Item = { rec: PolicyRecord; pid: number; procKtime: bigint };

function actionOf(flags: number, acts: number): PolicyAction {
  if (flags & L.TH_EF_KILLED) return 'sigkill';
  if (flags & L.TH_EF_SIGNALED) return 'signal';
  if (flags & L.TH_EF_OVERRIDE) return 'override';
  if (acts & L.TH_ACT_NOPOST) return 'nopost';
  return 'post';
}

class Loaded implements LoadedPolicy {
  readonly hooks: HookStatusInfo[];
  readonly kernelMemoryBytes: number;
  private consumer?: RingConsumer;
  private resolver?: ProcessResolver<Item>;
  private out: BusItem[] = [];
  private closed = false;
  private timer?: NodeJS.Timeout;
  private lastDropped = 0;
  readonly decodeErrors: DecodeErrors = { malformed: 0, unknownType: 0, badVersion: 0 };
  /** Records received from the kernel (all hooks). */
  records = 0;

  constructor(
    private readonly policy: TracingPolicy,
    private readonly deps: PolicyLoaderDeps,
    private readonly generic: GenericHook[],
    private readonly others: LoadedHook[],
    statuses: HookStatusInfo[],
    private readonly backendCounters: ActionCounters,
  ) {
    this.hooks = statuses;
    this.kernelMemoryBytes = [...generic, ...others].reduce((a, h) => a + h.kernelMemoryBytes, 0);
  }

  start(): void {
    if (!this.generic.length) return;
    this.resolver = new ProcessResolver<Item>(this.deps.cache, this.deps.clock, (it, proc, parent) => this.build(it.rec, proc, parent), 500, 65536, () => this.publish());
    const batch: PolicyRecord[] = [];
    this.consumer = this.deps.native.createRingConsumer(this.generic.map((g) => g.ring!), {
      onBatch: (buf, count) => {
        batch.length = 0;
        decodePolicyBatch(buf, count, batch, this.decodeErrors);
        this.records += batch.length;
        if (batch.length) this.resolver?.push(batch.map((rec) => ({ rec, pid: rec.pid, procKtime: rec.procKtime })));
      },
    });
    this.consumer.start();
    // Records the kernel could not reserve in a full ring travel the bus as loss notices.
    this.timer = setInterval(() => this.pollDrops(), 1000);
    this.timer.unref();
  }

  private pollDrops(): void {
    const d = this.droppedInKernel();
    if (d <= this.lastDropped) return;
    const count = d - this.lastDropped;
    this.lastDropped = d;
    this.deps.bus.publish([{ kind: 'lost', seq: 0, time: this.deps.clock.now(), nodeName: this.deps.config.nodeName, source: 'kernel_ring', count, wire: new Map() }]);
  }

  private build(r: PolicyRecord, proc: ProcessInfo, parent: ProcessInfo | undefined): void {
    const g = this.generic[r.ring];
    const k = g?.c.kernel;
    if (!k) return;
    const monitor = (r.flags & L.TH_EF_MONITOR) !== 0;
    let enforcement: PolicyEvent['enforcement'];
    if (r.flags & L.TH_EF_KILLED) enforcement = { kind: 'killed', monitor, signal: r.sig };
    else if (r.flags & L.TH_EF_SIGNALED) enforcement = { kind: 'signaled', monitor, signal: r.sig };
    else if (r.flags & L.TH_EF_OVERRIDE) enforcement = { kind: 'denied', monitor, errno: r.err };
    const ev: PolicyEvent = {
      kind: 'policy',
      seq: 0,
      time: this.deps.clock.toWall(r.ktime),
      nodeName: this.deps.config.nodeName,
      process: proc,
      ...(parent ? { parent } : {}),
      wire: new Map(),
      hook: k.hookKind,
      functionName: k.functionName,
      ...(k.subsys ? { subsys: k.subsys, event: k.event } : {}),
      args: decodeArgs(r.args, k.args),
      ...(k.ret && r.flags & L.TH_EF_RET ? { ret: retArg(k.ret, BigInt(r.ret)) } : {}),
      policyName: this.policy.metadata.name,
      ...(this.policy.metadata.namespace ? { policyNamespace: this.policy.metadata.namespace } : {}),
      action: actionOf(r.flags, r.actions),
      ...(enforcement ? { enforcement } : {}),
      ...(k.message ? { message: k.message } : {}),
      ...(k.tags ? { tags: k.tags } : {}),
    };
    this.out.push(ev);
  }

  private publish(): void {
    if (!this.out.length) return;
    const items = this.out;
    this.out = [];
    this.deps.bus.publish(items);
  }

  counters(): ActionCounters {
    const c = { ...this.backendCounters };
    for (const g of this.generic) {
      const x = g.counters().c;
      for (const key of Object.keys(c) as Array<keyof ActionCounters>) c[key] += x[key];
    }
    return c;
  }

  /** Records the kernel could not put in a ring (full). */
  droppedInKernel(): number {
    return this.generic.reduce((a, g) => a + g.counters().dropped, 0);
  }

  async setMode(mode: PolicyMode): Promise<void> {
    for (const h of [...this.generic, ...this.others]) await h.setMode(mode);
  }

  async setEnabled(on: boolean): Promise<void> {
    for (const h of [...this.generic, ...this.others]) await h.setEnabled(on);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const g of this.generic) g.detach();
    this.consumer?.stop();
    this.resolver?.drain(true);
    this.publish();
    for (const h of [...this.generic, ...this.others]) {
      try {
        await h.close();
      } catch (e) {
        this.deps.log.warn(`policy ${this.policy.metadata.name}: closing ${h.status.section}: ${(e as Error).message}`);
      }
    }
  }
}

export interface PolicyLoaderOptions {
  /** bpf/.output/policy.bpf.o by default. */
  objectPath?: string;
}

export function createGenericLoader(deps: PolicyLoaderDeps, backends: HookBackend[], o: PolicyLoaderOptions = {}): PolicyLoader {
  const objPath = o.objectPath ?? path.join(repoRoot(), 'bpf/.output/policy.bpf.o');
  return {
    plan(policy: TracingPolicy, opts: LoadOptions): PolicyPlan {
      const { hooks, errors } = planHooks(policy, opts, deps.features, backends);
      return toPlan(hooks, errors);
    },

    async load(policy: TracingPolicy, opts: LoadOptions): Promise<LoadedPolicy> {
      const { hooks, errors } = planHooks(policy, opts, deps.features, backends);
      const plan = toPlan(hooks, errors);
      if (errors.length) throw new PolicyLoadError(`policy ${policy.metadata.name}: ${errors.join('; ')}`, plan);
      const mode = policyMode(policy, opts);
      const policyId = nextPolicyId++;
      const counters = zeroCounters();
      const ctx: HookLoadContext = { deps, mode, policyId, counters };
      const generic: GenericHook[] = [];
      const others: LoadedHook[] = [];
      const statuses: HookStatusInfo[] = [];
      try {
        for (const h of hooks) {
          if (h.backend) {
            const lh = await h.backend.load(policy, h.ref, ctx);
            others.push(lh);
            statuses.push(lh.status);
            continue;
          }
          const c = h.compiled!;
          if (!c.kernel || c.status.state !== 'loaded') {
            statuses.push(c.status);
            continue;
          }
          const g = new GenericHook(c, deps, policyId, generic.length, mode);
          try {
            g.open(objPath);
          } catch (e) {
            await g.close();
            const err = e as Error & { verifierLog?: string };
            if (err.verifierLog) deps.log.debug(`policy ${policy.metadata.name} ${c.status.section}: verifier log:\n${err.verifierLog}`);
            throw new PolicyLoadError(`policy ${policy.metadata.name}: ${c.status.section} (${c.status.call}): ${err.message}`, plan);
          }
          generic.push(g);
          statuses.push(g.status);
        }
      } catch (e) {
        for (const g of generic) await g.close();
        for (const x of others) await x.close().catch(() => undefined);
        if (e instanceof PolicyLoadError) throw e;
        throw new PolicyLoadError(`policy ${policy.metadata.name}: ${(e as Error).message}`, plan);
      }
      const lp = new Loaded(policy, deps, generic, others, statuses, counters);
      lp.start();
      deps.log.info(`policy ${policy.metadata.name}: ${statuses.map((s) => `${s.section} ${s.state === 'loaded' ? s.attachedAs : `${s.state} (${s.reason})`}`).join('; ')}`);
      return lp;
    },
  };
}
