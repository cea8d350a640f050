// Agent configuration: embedded defaults, then a config file (YAML or JSON), then flags.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as yaml from 'js-yaml';
import { defaultNodeName } from '../enrich/process/execId';

export interface AgentConfig {
  nodeName: string;
  /** Hubble observer API listeners. */
  hubbleAddresses: string[];
  /** Tetragon FineGuidanceSensors listeners. */
  tetragonAddresses: string[];
  /** Prometheus /metrics and /status over HTTP; "" disables. */
  metricsAddress: string;
  /** Admin socket (HTTP /status) used by `tetrahub status`. */
  adminSocket: string;
  /** bpffs directory where the agent pins its maps. */
  bpfDir: string;
  /** Where tetra-style clients discover the Tetragon API. */
  infoFile: string;
  ringBufferBytes: number;
  processMapEntries: number;
  processCacheSize: number;
  processCacheGraceMs: number;
  hubbleHistorySize: number;
  /** Per-subscriber queue bound (API streams, exporters). */
  eventQueueSize: number;
  sensors: { process: boolean; file: boolean; net: boolean; dns: boolean; syscall: boolean };
  /** File sensor: path prefixes never reported (compared in the kernel). */
  fileExcludePrefixes: string[];
  /** DNS sensor: ports whose traffic is parsed as DNS. */
  dnsPorts: number[];
  /** Syscall sensor (opt-in): syscall names to trace, filtered in the kernel. */
  syscalls: string[];
  /** cgroup-v2 directory the socket hooks attach to; "" = the cgroup2 mount root. */
  cgroupRoot: string;
  /** Look up Cilium identities from Cilium's pinned maps (when present). */
  ciliumIdentity: boolean;
  /** Directory of Cilium's global pinned maps. */
  ciliumBpfDir: string;
  /** Cilium agent API for identity labels and endpoints; "" = none. */
  ciliumApiSocket: string;
  /** Identity of remote addresses no ipcache entry covers: a number or "by-family". */
  ciliumWorldIdentity: string;
  /** ClusterMesh cluster id in Cilium's map keys. */
  ciliumClusterId: number;
  /** BTF check of Cilium's maps: auto, require or off. */
  ciliumMapsBtf: string;
  /** Cilium's Hubble observer to follow and merge into our stream; "" = none. */
  ciliumHubbleAddress: string;
  /** Drop our own connection flows for connections Cilium's Hubble already reported. */
  ciliumHubbleDedupe: boolean;
  /** TracingPolicy files loaded at start (YAML or JSON). */
  tracingPolicies: string[];
  /** Directory of TracingPolicy files, watched: add, change and remove take effect live; "" = none. */
  tracingPolicyDir: string;
  /** Refuse a policy when any of its hooks cannot be had on this kernel (default: load it, hook marked unsupported). */
  policyStrict: boolean;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export const DEFAULT_CONFIG_FILE = '/etc/tetrahub/config.yaml';

export function defaultConfig(env = process.env): AgentConfig {
  return {
    nodeName: defaultNodeName(env, os.hostname()),
    hubbleAddresses: ['unix:///var/run/tetrahub/hubble.sock', '127.0.0.1:4244'],
    tetragonAddresses: ['127.0.0.1:54321', 'unix:///var/run/tetrahub/tetragon.sock'],
    metricsAddress: '127.0.0.1:2112',
    adminSocket: '/var/run/tetrahub/admin.sock',
    bpfDir: '/sys/fs/bpf/tetrahub',
    infoFile: '/var/run/tetrahub/tetragon-info.json',
    ringBufferBytes: 8 * 1024 * 1024,
    processMapEntries: 32768,
    processCacheSize: 65536,
    processCacheGraceMs: 30_000,
    hubbleHistorySize: 4095,
    eventQueueSize: 10_000,
    sensors: { process: true, file: true, net: true, dns: true, syscall: false },
    fileExcludePrefixes: ['/proc', '/sys', '/dev'],
    dnsPorts: [53],
    syscalls: [],
    cgroupRoot: '',
    ciliumIdentity: true,
    ciliumBpfDir: '/sys/fs/bpf/tc/globals',
    ciliumApiSocket: env.CILIUM_SOCK ?? 'unix:///var/run/cilium/cilium.sock',
    ciliumWorldIdentity: '2',
    ciliumClusterId: 0,
    ciliumMapsBtf: 'auto',
    ciliumHubbleAddress: 'unix:///var/run/cilium/hubble.sock',
    ciliumHubbleDedupe: true,
    tracingPolicies: [],
    tracingPolicyDir: '',
    policyStrict: false,
    logLevel: 'info',
  };
}

/** Flag name (kebab-case) → config key; list-valued flags accept commas and repetition. */
const FLAGS: Record<string, keyof AgentConfig> = {
  'node-name': 'nodeName',
  'hubble-address': 'hubbleAddresses',
  'tetragon-address': 'tetragonAddresses',
  'server-address': 'tetragonAddresses',
  'metrics-address': 'metricsAddress',
  'admin-socket': 'adminSocket',
  'bpf-dir': 'bpfDir',
  'info-file': 'infoFile',
  'ring-buffer-bytes': 'ringBufferBytes',
  'process-map-entries': 'processMapEntries',
  'process-cache-size': 'processCacheSize',
  'process-cache-grace-ms': 'processCacheGraceMs',
  'hubble-history-size': 'hubbleHistorySize',
  'event-queue-size': 'eventQueueSize',
  'log-level': 'logLevel',
  'file-exclude-prefix': 'fileExcludePrefixes',
  'dns-port': 'dnsPorts',
  syscall: 'syscalls',
  'cgroup-root': 'cgroupRoot',
  'cilium-identity': 'ciliumIdentity',
  'cilium-bpf-dir': 'ciliumBpfDir',
  'cilium-api-socket': 'ciliumApiSocket',
  'cilium-world-identity': 'ciliumWorldIdentity',
  'cilium-cluster-id': 'ciliumClusterId',
  'cilium-maps-btf': 'ciliumMapsBtf',
  'cilium-hubble-address': 'ciliumHubbleAddress',
  'cilium-hubble-dedupe': 'ciliumHubbleDedupe',
  'tracing-policy': 'tracingPolicies',
  'tracing-policy-dir': 'tracingPolicyDir',
  'policy-strict': 'policyStrict',
};

export class ConfigError extends Error {}

function coerce(key: keyof AgentConfig, value: unknown, where: string, base: AgentConfig): unknown {
  const def = base[key];
  if (Array.isArray(def)) {
    const list = (Array.isArray(value) ? value : String(value).split(',')).map((v) => String(v).trim()).filter((v) => v !== '');
    if (key === 'dnsPorts') {
      return list.map((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 65535) throw new ConfigError(`${where}: expected ports (1-65535), got ${JSON.stringify(v)}`);
        return n;
      });
    }
    return list;
  }
  if (typeof def === 'number') {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${where}: expected a non-negative integer, got ${JSON.stringify(value)}`);
    return n;
  }
  if (typeof def === 'boolean') {
    if (value === true || value === 'true') return true;
    if (value === false || value === 'false') return false;
    throw new ConfigError(`${where}: expected true or false, got ${JSON.stringify(value)}`);
  }
  if (typeof def === 'string') {
    if (key === 'ciliumWorldIdentity' && !/^(by-family|\d+)$/.test(String(value))) {
      throw new ConfigError(`${where}: expected an identity number or "by-family", got ${JSON.stringify(value)}`);
    }
    if (key === 'ciliumMapsBtf' && !['auto', 'require', 'off'].includes(String(value))) {
      throw new ConfigError(`${where}: expected one of auto, require, off, got ${JSON.stringify(value)}`);
    }
    if (key === 'logLevel' && !['debug', 'info', 'warn', 'error'].includes(String(value))) {
      throw new ConfigError(`${where}: expected one of debug, info, warn, error, got ${JSON.stringify(value)}`);
    }
    return String(value);
  }
  return value;
}

/** Merges a config file's object into cfg, naming the file and key on any error. */
export function applyFile(cfg: AgentConfig, file: string): AgentConfig {
  let doc: unknown;
  try {
    doc = yaml.load(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(`config file ${file}: ${(e as Error).message}`);
  }
  if (doc == null) return cfg;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${file}: expected a mapping at the top level`);
  const out = { ...cfg };
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    const key = (FLAGS[k] ?? (k in cfg ? k : undefined)) as keyof AgentConfig | undefined;
    if (!key) throw new ConfigError(`config file ${file}: unknown key "${k}"`);
    if (key === 'sensors') {
      if (typeof v !== 'object' || v === null) throw new ConfigError(`config file ${file}: sensors: expected a mapping`);
      for (const [name, on] of Object.entries(v as Record<string, unknown>)) {
        if (!(name in cfg.sensors)) throw new ConfigError(`config file ${file}: sensors.${name}: unknown sensor (known: ${Object.keys(cfg.sensors).join(', ')})`);
        if (typeof on !== 'boolean') throw new ConfigError(`config file ${file}: sensors.${name}: expected true or false`);
      }
      out.sensors = { ...cfg.sensors, ...(v as Partial<AgentConfig['sensors']>) };
      continue;
    }
    (out as Record<string, unknown>)[key] = coerce(key, v, `config file ${file}: ${k}`, cfg);
  }
  return out;
}

/** Parses agent flags (`--name value` or `--name=value`); returns the config. */
export function parseAgentArgs(argv: string[], env = process.env): AgentConfig {
  let cfg = defaultConfig(env);
  const explicitFile = argv.findIndex((a) => a === '--config' || a.startsWith('--config='));
  let file: string | undefined;
  if (explicitFile >= 0) {
    file = argv[explicitFile].includes('=') ? argv[explicitFile].split('=')[1] : argv[explicitFile + 1];
    if (!file) throw new ConfigError('--config needs a file');
    cfg = applyFile(cfg, file);
  } else if (fs.existsSync(DEFAULT_CONFIG_FILE)) {
    cfg = applyFile(cfg, DEFAULT_CONFIG_FILE);
  }
  const lists = new Set<keyof AgentConfig>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new ConfigError(`unexpected argument "${a}"`);
    let [name, value] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (name === 'config') {
      if (value === undefined) i++;
      continue;
    }
    const m = /^(enable|disable)-sensor$/.exec(name);
    const key = FLAGS[name];
    if (!key && !m) throw new ConfigError(`unknown flag --${name}`);
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new ConfigError(`--${name} needs a value`);
    }
    if (m) {
      if (!(value in cfg.sensors)) throw new ConfigError(`--${name}: unknown sensor "${value}" (known: ${Object.keys(cfg.sensors).join(', ')})`);
      cfg.sensors = { ...cfg.sensors, [value]: m[1] === 'enable' };
      continue;
    }
    const v = coerce(key, value, `--${name}`, cfg);
    if (Array.isArray(v)) {
      // The first use of a list flag replaces the default, later uses append.
      const prev = lists.has(key) ? (cfg[key] as string[]) : [];
      (cfg as unknown as Record<string, unknown>)[key] = [...prev, ...v];
      lists.add(key);
    } else {
      (cfg as unknown as Record<string, unknown>)[key] = v;
    }
  }
  return cfg;
}
