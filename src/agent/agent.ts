// The agent: probes the kernel, starts the sensors, the enrichment and the APIs,
// and says plainly what runs, what fell back and what is off.
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { EventBus } from '../bus/bus';
import type { AgentConfig } from '../config/config';
import { BootClock } from '../enrich/process/clock';
import { ProcessCache } from '../enrich/process/cache';
import { loadNative } from '../kernel/native';
import type { FeatureProbe, NativeBinding } from '../kernel/types';
import { ProcessSensor } from '../sensors/process/sensor';
import { FileSensor } from '../sensors/file/sensor';
import { NetKernel } from '../sensors/net/kernel';
import { startCiliumIdentity, type CiliumIdentity } from '../sensors/net/identity';
import { NetSensor } from '../sensors/net/sensor';
import { DnsSensor } from '../sensors/dns/sensor';
import { SyscallSensor } from '../sensors/syscall/sensor';
import { DnsNameCache } from '../enrich/dns/cache';
import type { Sensor } from '../sensors/sensor';
import { startHubbleServer } from '../api/hubble/server';
import { createCiliumHubble, type CiliumHubble } from '../api/hubble/upstream';
import { ApiError, startTetragonServer, writeInfoFile, type PolicyApi } from '../api/tetragon/server';
import { policyApiOf } from '../api/tetragon/policies';
import { PolicyDirWatcher, PolicyManager, resolvePolicyLoader } from '../policy/manager';
import * as grpc from '@grpc/grpc-js';
import * as path from 'node:path';
import { startAdminServers, type AdminServers } from './admin';
import { Logger } from './log';
import { summarizeHooks, type PolicyStatus, type StatusProvider, type StatusSnapshot } from './status';
import { VERSION } from './version';

export class AgentStartError extends Error {}

interface Closable {
  close(): Promise<void>;
}

export class Agent implements StatusProvider {
  readonly bus = new EventBus();
  readonly log: Logger;
  private native!: NativeBinding;
  private features!: FeatureProbe;
  private clock!: BootClock;
  cache!: ProcessCache;
  private sensors: Sensor[] = [];
  private servers: Closable[] = [];
  private admin?: AdminServers;
  private timers: NodeJS.Timeout[] = [];
  private notes: string[] = [];
  private listeners: Record<string, string[]> = {};
  private readonly startedAt = Date.now();
  private readonly startHr = process.hrtime.bigint();
  private counterSources: (() => Record<string, number>)[] = [];
  /** IP → DNS names learnt from answers; connect events and Hubble flows carry them. */
  dnsNames?: DnsNameCache;
  /** Cilium identity source of the network hooks (when enabled). */
  identity?: CiliumIdentity;
  /** Cilium's Hubble followed and merged into our GetFlows stream (ciliumHubbleAddress). */
  ciliumHubble?: CiliumHubble;
  /** TracingPolicies (--tracing-policy, --tracing-policy-dir, the Sensors gRPC methods). */
  policies?: PolicyManager;
  private policyDir?: PolicyDirWatcher;

  constructor(readonly config: AgentConfig, log?: Logger) {
    this.log = log ?? new Logger(config.logLevel);
  }

  async start(): Promise<void> {
    const cfg = this.config;
    if (process.getuid && process.getuid() !== 0) {
      throw new AgentStartError('tetrahub agent must run as root: loading BPF programs needs CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN');
    }
    try {
      this.native = loadNative();
    } catch (e) {
      throw new AgentStartError((e as Error).message);
    }
    this.features = this.native.probeFeatures();
    if (!this.features.btf) throw new AgentStartError('this kernel has no BTF (/sys/kernel/btf/vmlinux missing): CO-RE BPF programs cannot be loaded');
    if (!this.features.ringbuf) throw new AgentStartError('this kernel has no BPF ring buffer (needs Linux 5.8 or later)');
    this.ensureBpffs();
    this.describeFeatures();

    this.clock = new BootClock(() => this.native.clocks());
    this.cache = new ProcessCache({
      nodeName: cfg.nodeName,
      clock: this.clock,
      capacity: cfg.processCacheSize,
      graceMs: cfg.processCacheGraceMs,
    });
    this.timers.push(
      setInterval(() => this.cache.gc(), 5_000).unref(),
      setInterval(() => this.clock.refresh(), 10_000).unref(),
    );
    this.counterSources.push(() => {
      const s = this.cache.stats();
      return {
        process_cache_size: s.size,
        process_cache_live: s.live,
        process_cache_capacity: s.capacity,
        process_cache_evictions: s.evictions,
        process_cache_misses: s.misses,
        process_cache_procfs_seeded: s.procfsSeeded,
        events_published: this.bus.published,
        subscriber_drops: this.bus.subscriberDrops,
        subscribers: this.bus.subscriberCount,
      };
    });

    // The APIs start first so that the Hubble history holds the very first events.
    // The merged feed exists before the server (its history reads it); the follower connects once the server listens.
    const cilium = cfg.ciliumHubbleAddress
      ? (this.ciliumHubble = createCiliumHubble({ address: cfg.ciliumHubbleAddress, bus: this.bus, nodeName: cfg.nodeName, dedupe: cfg.ciliumHubbleDedupe }))
      : undefined;
    const hubble = await startHubbleServer({
      addresses: cfg.hubbleAddresses,
      bus: this.bus,
      status: this,
      version: VERSION,
      nodeName: cfg.nodeName,
      historySize: cfg.hubbleHistorySize,
      queueLimit: cfg.eventQueueSize,
      upstream: cilium && { feed: cilium.feed, node: () => cilium.node() },
    });
    this.servers.push(hubble);
    this.listeners.hubble = hubble.addresses;
    this.log.info(`Hubble API (observer.Observer) listening on ${hubble.addresses.join(', ')}`);
    if (cilium) {
      cilium.start();
      this.counterSources.push(() => cilium.counters());
      this.log.info(`following Cilium Hubble at ${cfg.ciliumHubbleAddress} (reconnects with backoff while absent); its flows are merged into ours, enriched with processes${cfg.ciliumHubbleDedupe ? ', our duplicate connection flows left out' : ''}`);
    }

    const tetragon = await startTetragonServer({
      addresses: cfg.tetragonAddresses,
      bus: this.bus,
      status: this,
      version: VERSION,
      queueLimit: cfg.eventQueueSize,
      policies: this.lazyPolicyApi(),
    });
    this.servers.push(tetragon);
    this.listeners.tetragon = tetragon.addresses;
    this.log.info(`Tetragon API (tetragon.FineGuidanceSensors) listening on ${tetragon.addresses.join(', ')}`);
    try {
      writeInfoFile(cfg.infoFile, { server_address: tetragon.addresses[0], pid: process.pid });
    } catch (e) {
      this.notes.push(`could not write ${cfg.infoFile}: ${(e as Error).message}`);
    }

    this.sensors.push(...this.buildSensors());
    for (const s of this.sensors) {
      try {
        await s.start();
      } catch (e) {
        this.log.error(`sensor ${s.name} failed to start: ${(e as Error).message}`);
      }
      const st = s.status();
      this.log.info(`sensor ${st.name}: ${st.state}${st.hooks.length ? ` [${summarizeHooks(st.hooks)}]` : ''}${st.note ? ` — ${st.note}` : ''}`);
    }
    if (!this.sensors.some((s) => s.status().state === 'running' || s.status().state === 'fallback')) {
      throw new AgentStartError('no sensor could start; see the errors above');
    }

    await this.startPolicies();

    this.admin = await startAdminServers({ status: this, adminSocket: cfg.adminSocket, metricsAddress: cfg.metricsAddress });
    this.listeners.admin = this.admin.addresses;
    this.log.info(`status and metrics on ${this.admin.addresses.join(', ')}`);
    for (const n of this.notes) this.log.warn(n);
  }

  /**
   * The policy API the Tetragon server gets at start: the server listens
   * before the sensors run, so calls that come before the manager exists are
   * answered UNAVAILABLE (clients retry) rather than refused.
   */
  private lazyPolicyApi(): PolicyApi {
    let api: PolicyApi | undefined;
    const get = (): PolicyApi => {
      if (!this.policies) throw new ApiError(grpc.status.UNAVAILABLE, 'tracing policies are not ready yet: the agent is starting');
      return (api ??= policyApiOf(this.policies));
    };
    return {
      add: (y, o) => get().add(y, o),
      delete: (n, o) => get().delete(n, o),
      list: (o) => get().list(o),
      configure: (n, o) => get().configure(n, o),
      domains: () => get().domains?.() ?? ['grpc'],
      sensors: () => (this.policies ? (get().sensors?.() ?? []) : []),
    };
  }

  /**
   * The policy manager (after the sensors: the loader shares their process
   * map and the Cilium identity source), then --tracing-policy files and the
   * watched --tracing-policy-dir. A refused policy is logged and listed; the
   * agent keeps running.
   */
  private async startPolicies(): Promise<void> {
    const cfg = this.config;
    const { loader, reason } = resolvePolicyLoader({
      native: this.native,
      bus: this.bus,
      cache: this.cache,
      clock: this.clock,
      config: cfg,
      log: this.log,
      features: this.features,
      ...(this.identity ? { identity: this.identity } : {}),
    });
    const manager = (this.policies = new PolicyManager({ loader, unavailableReason: reason, strict: cfg.policyStrict, log: this.log }));
    if (!loader) this.notes.push(`tracing policies: ${reason}`);
    this.counterSources.push(() => manager.counters());
    for (const f of cfg.tracingPolicies) {
      const file = path.resolve(f);
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (e) {
        manager.refuseFile(file, `cannot read ${file}: ${(e as Error).message}`);
        this.log.error(`--tracing-policy ${file}: ${(e as Error).message}`);
        continue;
      }
      await manager.syncFile(file, text, 'file').catch((e: unknown) => this.log.error(`--tracing-policy ${file}: ${(e as Error).message}`));
    }
    if (cfg.tracingPolicyDir) {
      this.policyDir = new PolicyDirWatcher(path.resolve(cfg.tracingPolicyDir), manager, { log: this.log });
      await this.policyDir.start();
      this.log.info(`watching ${this.policyDir.dir} for tracing policies (*.yaml, *.yml, *.json)`);
    }
    for (const p of manager.list()) this.log.info(`tracing policy "${p.name}": ${p.state}, mode ${p.mode}${p.hooks.length ? ` [${summarizeHooks(p.hooks.map((h) => `${h.attachedAs || h.call}${h.state === 'loaded' ? '' : ` (${h.state})`}`))}]` : ''}`);
  }

  private policyStatus(): PolicyStatus[] | undefined {
    if (!this.policies) return undefined;
    return this.policies.list().map((p) => {
      const out: PolicyStatus = {
        id: p.id,
        name: p.name,
        namespace: p.namespace,
        state: p.state,
        mode: p.mode,
        source: p.source,
        kernelMemoryBytes: p.kernelMemoryBytes,
        hooks: p.hooks.map((h) => ({ section: h.section, call: h.call, attachedAs: h.attachedAs, state: h.state, ...(h.fallback ? { fallback: h.fallback } : {}), ...(h.reason ? { reason: h.reason } : {}) })),
        counters: { ...p.counters },
      };
      if (p.file) out.file = p.file;
      if (p.error) out.error = p.error;
      return out;
    });
  }

  /** The configured sensors, process first: the others reuse its pinned process map. */
  private buildSensors(): Sensor[] {
    const cfg = this.config;
    const base = { native: this.native, bus: this.bus, cache: this.cache, clock: this.clock, config: cfg, log: this.log };
    const out: Sensor[] = [];
    // A sensor whose options are wrong is reported failed; the others still run.
    const add = (name: string, make: () => Sensor): void => {
      try {
        out.push(make());
      } catch (e) {
        out.push(failedSensor(name, (e as Error).message));
      }
    };
    if (cfg.sensors.process) add('process', () => new ProcessSensor(base));
    if (cfg.sensors.file) add('file', () => new FileSensor({ ...base, options: { excludePrefixes: cfg.fileExcludePrefixes } }));
    if (cfg.sensors.net || cfg.sensors.dns) {
      // Network and DNS share one object and ring, so a connect is never decoded before the answer it used.
      let kernel: NetKernel | undefined;
      try {
        const identity = this.startIdentity();
        kernel = new NetKernel({ ...base, identity }, { cgroupRoot: cfg.cgroupRoot || undefined });
      } catch (e) {
        if (cfg.sensors.net) out.push(failedSensor('net', (e as Error).message));
        if (cfg.sensors.dns) out.push(failedSensor('dns', (e as Error).message));
      }
      if (kernel) {
        const k = kernel;
        const names = (this.dnsNames = new DnsNameCache({}));
        if (cfg.sensors.net) add('net', () => new NetSensor({ ...base, kernel: k, dnsNames: names }));
        if (cfg.sensors.dns) add('dns', () => new DnsSensor({ ...base, kernel: k, dnsNames: names }, { ports: cfg.dnsPorts }));
      }
    }
    if (cfg.sensors.syscall) {
      if (cfg.syscalls.length === 0) out.push(failedSensor('syscall', 'enabled without --syscall names: it stays off (never an unfiltered firehose)', 'off'));
      else add('syscall', () => new SyscallSensor({ ...base, options: { events: cfg.syscalls, counts: cfg.syscalls } }));
    }
    return out;
  }

  /** Cilium identities for the network hooks; absent Cilium is a status line, never an error. */
  private startIdentity(): CiliumIdentity | undefined {
    const cfg = this.config;
    if (!cfg.ciliumIdentity) return undefined;
    const world = cfg.ciliumWorldIdentity === 'by-family' ? 'by-family' : Number(cfg.ciliumWorldIdentity);
    this.identity = startCiliumIdentity({
      native: this.native,
      log: this.log,
      bpfDir: cfg.ciliumBpfDir,
      apiSocket: cfg.ciliumApiSocket,
      worldIdentity: world,
      clusterId: cfg.ciliumClusterId,
      btf: cfg.ciliumMapsBtf as 'auto' | 'require' | 'off',
    });
    return this.identity;
  }

  private ensureBpffs(): void {
    const mounts = fs.readFileSync('/proc/mounts', 'utf8');
    if (!/ \/sys\/fs\/bpf bpf /.test(mounts)) {
      try {
        fs.mkdirSync('/sys/fs/bpf', { recursive: true });
        execFileSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf'], { stdio: 'ignore' });
        this.notes.push('mounted the BPF filesystem at /sys/fs/bpf (it was not mounted)');
      } catch (e) {
        this.notes.push(`the BPF filesystem is not mounted and mounting it failed (${(e as Error).message}): maps are not pinned`);
      }
    }
    fs.mkdirSync(this.config.bpfDir, { recursive: true });
  }

  private describeFeatures(): void {
    const f = this.features;
    const have = Object.entries(f.attach).filter(([, v]) => v).map(([k]) => k);
    const missing = Object.entries(f.attach).filter(([, v]) => !v).map(([k]) => k);
    this.log.info(`kernel hooks available: ${have.join(', ') || 'none'}`);
    for (const k of missing) {
      const why = f.reasons[`attach.${k}`] ?? 'not available';
      this.notes.push(`kernel feature ${k} unavailable: ${why}`);
    }
    if (!f.lsmActive) this.notes.push(`BPF-LSM is not active${f.reasons.lsmActive ? `: ${f.reasons.lsmActive}` : ''}`);
  }

  snapshot(): StatusSnapshot {
    const counters: Record<string, number> = {};
    for (const src of this.counterSources) Object.assign(counters, src());
    for (const s of this.sensors) for (const [k, v] of Object.entries(s.counters())) counters[k] = v;
    const features: Record<string, boolean> = {};
    if (this.features) {
      features.btf = this.features.btf;
      features.ringbuf = this.features.ringbuf;
      features.lsm_active = this.features.lsmActive;
      for (const [k, v] of Object.entries(this.features.attach)) features[k] = v;
    }
    return {
      version: VERSION,
      nodeName: this.config.nodeName,
      startTime: { sec: Math.floor(this.startedAt / 1000), nsec: (this.startedAt % 1000) * 1e6 },
      uptimeNs: Number(process.hrtime.bigint() - this.startHr),
      sensors: this.sensors.map((s) => s.status()),
      features,
      notes: [
        ...this.notes,
        ...this.sensors.flatMap((s) => (s.status().note ? [`${s.name}: ${s.status().note}`] : [])),
        ...(this.policyDir?.dirError ? [this.policyDir.dirError] : []),
        ...[...(this.policies?.fileErrors ?? new Map<string, string>())].map(([f, e]) => `tracing policy file ${f} refused: ${e}`),
      ],
      counters,
      listeners: this.listeners,
      ...(this.policies ? { policies: this.policyStatus() } : {}),
    };
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.policyDir?.stop();
    for (const s of this.servers.reverse()) await s.close().catch(() => undefined);
    // Policies before the sensors: their hooks share the sensors' process map.
    await this.policies?.close().catch(() => undefined);
    await this.admin?.close().catch(() => undefined);
    for (const s of this.sensors) await s.stop().catch(() => undefined);
    this.identity?.close();
    this.ciliumHubble?.close();
    try {
      fs.rmSync(this.config.infoFile, { force: true });
    } catch {
      /* best effort */
    }
  }
}

/** Stands in the sensor list for a sensor that could not even be built, so status names it and why. */
function failedSensor(name: string, note: string, state: 'failed' | 'off' = 'failed'): Sensor {
  return {
    name,
    start: async () => undefined,
    stop: async () => undefined,
    status: () => ({ name, state, hooks: [], note }),
    counters: () => ({}),
  };
}
