// `tetrahub policy …`: TracingPolicies of a running agent over its Tetragon
// API (what `tetra tracingpolicy` does), and `check FILE`, which needs no
// agent: it validates the file and prints the plan for this kernel.
//
// Exit codes: 0 ok, 1 the agent or the policy said no (or was unreachable), 2 usage.
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as yaml from 'js-yaml';
import { tetragonServiceDefinition } from '../api/tetragon/server';
import type { ProtoObject } from '../api/tetragon/protos';
import { defaultConfig } from '../config/config';
import { describePolicy, formatIssue, parsePolicies, type TracingPolicy } from '../policy';
import type { PolicyLoader, PolicyPlan } from '../policy/engine/types';

const HELP = `Usage: tetrahub policy <command> [flags]

Commands (talk to a running agent over its Tetragon API):
  add FILE [--mode enforce|monitor]   load the policies of FILE (one per YAML document)
  delete NAME [-n NS]                 unload a policy
  list [-o text|json]                 policies with state, mode, hooks, memory, counters
  enable NAME [-n NS]                 resume a disabled policy (retries a failed load)
  disable NAME [-n NS]                stop a policy's events and enforcement, keep it loaded
  mode NAME enforce|monitor [-n NS]   switch enforcement live

Without an agent:
  check FILE [--strict] [-o text|json]  validate FILE and print the plan for this kernel:
                                        hook by hook what attaches where, fallbacks,
                                        selectors in the kernel, actions, maps and memory

Flags:
  --server-address ADDR   Tetragon API of the agent [--server-address, else server_address of
                          /var/run/tetrahub/tetragon-info.json, else 127.0.0.1:54321]
  -n, --namespace NS      namespace of a TracingPolicyNamespaced
  --timeout SECONDS       per call [30]

Exit codes: 0 ok, 1 refused or unreachable (the reason is printed), 2 usage.
`;

class UsageError extends Error {}

interface Opts {
  server?: string;
  namespace: string;
  output: 'text' | 'json';
  mode?: 'enforce' | 'monitor';
  strict: boolean;
  timeoutMs: number;
  positional: string[];
}

function parseArgs(argv: string[]): Opts {
  const o: Opts = { namespace: '', output: 'text', strict: false, timeoutMs: 30_000, positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = (): string => inline ?? value();
    switch (flag) {
      case '--server-address':
      case '--server':
        o.server = val();
        break;
      case '-n':
      case '--namespace':
        o.namespace = val();
        break;
      case '-o':
      case '--output': {
        const v = val();
        if (v !== 'text' && v !== 'json') throw new UsageError(`-o: expected text or json, got "${v}"`);
        o.output = v;
        break;
      }
      case '-m':
      case '--mode': {
        const v = val();
        if (v !== 'enforce' && v !== 'monitor') throw new UsageError(`--mode: expected enforce or monitor, got "${v}"`);
        o.mode = v;
        break;
      }
      case '--strict':
        o.strict = true;
        break;
      case '--timeout': {
        const v = Number(val());
        if (!(v > 0)) throw new UsageError('--timeout: expected a positive number of seconds');
        o.timeoutMs = v * 1000;
        break;
      }
      default:
        if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown flag "${a}"`);
        o.positional.push(a);
    }
  }
  return o;
}

/** Where the agent's Tetragon API is: the flag, the info file, tetra's default. */
export function serverAddress(flag: string | undefined, infoFile = defaultConfig().infoFile): string {
  if (flag) return flag;
  try {
    const info = JSON.parse(fs.readFileSync(infoFile, 'utf8')) as { server_address?: unknown };
    if (typeof info.server_address === 'string' && info.server_address) return info.server_address;
  } catch {
    /* no agent info: the default */
  }
  return '127.0.0.1:54321';
}

// ------------------------------------------------------------------ gRPC

type Reply = (err: grpc.ServiceError | null, res: ProtoObject) => void;

class Api {
  private readonly client: grpc.Client;
  constructor(
    readonly address: string,
    private readonly timeoutMs: number,
  ) {
    const Client = grpc.makeGenericClientConstructor(tetragonServiceDefinition('client'), 'FineGuidanceSensors');
    this.client = new Client(address, grpc.credentials.createInsecure());
  }
  call(method: string, req: ProtoObject): Promise<ProtoObject> {
    const fn = (this.client as unknown as Record<string, (req: ProtoObject, md: grpc.Metadata, o: grpc.CallOptions, cb: Reply) => void>)[method];
    return new Promise((resolve, reject) => {
      fn.call(this.client, req, new grpc.Metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }
  close(): void {
    this.client.close();
  }
}

function grpcMessage(e: unknown, address: string): string {
  const se = e as Partial<grpc.ServiceError>;
  if (se.code === grpc.status.UNAVAILABLE) return `cannot reach the agent at ${address}: ${se.details || se.message} (is it running? --server-address)`;
  if (se.code === grpc.status.DEADLINE_EXCEEDED) return `the agent at ${address} did not answer in time`;
  return se.details || se.message || String(e);
}

// ------------------------------------------------------------------ add

/** The documents of a file, each as its own YAML text; --mode rewrites policy-mode as tetra does. */
export function policyDocuments(text: string, mode?: 'enforce' | 'monitor'): { name: string; yaml: string }[] {
  const docs = yaml.loadAll(text, null, { schema: yaml.CORE_SCHEMA }).filter((d) => d !== null && d !== undefined);
  const out: { name: string; yaml: string }[] = [];
  const items: unknown[] = [];
  for (const d of docs) {
    const r = d as Record<string, unknown>;
    if (r && typeof r === 'object' && Array.isArray(r.items) && /List$/.test(String(r.kind ?? ''))) items.push(...r.items);
    else items.push(d);
  }
  for (const d of items) {
    const r = (d && typeof d === 'object' ? d : {}) as Record<string, unknown>;
    const meta = (r.metadata && typeof r.metadata === 'object' ? r.metadata : {}) as Record<string, unknown>;
    if (mode) {
      const spec = (r.spec && typeof r.spec === 'object' ? r.spec : (r.spec = {})) as Record<string, unknown>;
      const opts = Array.isArray(spec.options) ? (spec.options as Record<string, unknown>[]).filter((x) => x?.name !== 'policy-mode') : [];
      opts.push({ name: 'policy-mode', value: mode });
      spec.options = opts;
    }
    out.push({ name: typeof meta.name === 'string' ? meta.name : '', yaml: items.length === 1 && !mode ? text : yaml.dump(d, { noRefs: true, lineWidth: -1 }) });
  }
  return out;
}

// ------------------------------------------------------------------ list

/** go-humanize IBytes, which `tetra tp list` uses for KERNELMEMORY. */
export function humanizeIBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const sizes = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  const e = Math.floor(Math.log(n) / Math.log(1024));
  const val = Math.floor((n / Math.pow(1024, e)) * 10 + 0.5) / 10;
  return `${val < 10 ? val.toFixed(1) : val.toFixed(0)} ${sizes[e]}`;
}

/** Go tabwriter with padding 3: every column but the last padded to its widest cell + 3. */
export function tabulate(rows: string[][], indent = ''): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i] - [...c].length + 3))).join(''));
}

function enumName(v: unknown, prefix: string): string {
  return String(v ?? `${prefix}UNKNOWN`).toLowerCase().replace(prefix.toLowerCase(), '');
}

function num(v: unknown): number {
  const n = Number(v ?? 0);
  return Number.isFinite(n) ? n : 0;
}

/**
 * `tetra tp list -o text` (main: with DOMAIN), then per policy its hooks
 * (tetra shows that sub-table only for partially enabled policies; tetrahub
 * always does, with what each hook attached as) and the error, if any.
 */
export function formatPolicyList(policies: ProtoObject[]): string {
  const header = ['ID', 'NAME', 'DOMAIN', 'STATE', 'FILTERID', 'NAMESPACE', 'SENSORS', 'KERNELMEMORY', 'MODE', 'NPOST', 'NENFORCE', 'NMONITOR'];
  const lines: string[] = [];
  const rows: string[][] = [header];
  for (const p of policies) {
    const c = ((p.stats as ProtoObject | undefined)?.action_counters ?? {}) as ProtoObject;
    rows.push([
      String(p.id ?? 0),
      String(p.name ?? ''),
      String(p.domain ?? ''),
      enumName(p.state, 'TP_STATE_'),
      String(p.filter_id ?? 0),
      p.namespace ? String(p.namespace) : '(global)',
      ((p.sensors as string[] | undefined) ?? []).join(','),
      humanizeIBytes(num(p.kernel_memory_bytes)),
      enumName(p.mode, 'TP_MODE_'),
      String(num(c.post)),
      String(num(c.signal) + num(c.override) + num(c.notify_enforcer) + num(c.set)),
      String(num(c.monitor_signal) + num(c.monitor_override) + num(c.monitor_notify_enforcer) + num(c.monitor_set)),
    ]);
  }
  const table = tabulate(rows);
  lines.push(table[0]);
  policies.forEach((p, i) => {
    lines.push(table[i + 1]);
    const hooks = (p.hook_statuses as ProtoObject[] | undefined) ?? [];
    if (hooks.length) {
      const sub = [['SECTION', 'CFGIDX', 'DESCRIPTION', 'STATUS'], ...hooks.map((h) => [String(h.section ?? ''), String(h.hook_idx ?? 0), String(h.hook_description ?? ''), enumName(h.state, 'STATUS_')])];
      lines.push(...tabulate(sub, '    '));
    }
    if (p.error) lines.push(`    error: ${String(p.error).split('\n').join('\n           ')}`);
  });
  return lines.join('\n') + '\n';
}

// ------------------------------------------------------------------ check

/** The kernel plan of a policy as text: hook by hook, then the maps. */
export function formatPlan(plan: PolicyPlan): string {
  const out: string[] = ['  kernel plan (this kernel):'];
  for (const h of plan.hooks) {
    out.push(`    ${h.section} ${h.call}: ${h.state === 'loaded' ? 'attaches as' : h.state} ${h.attachedAs || '-'}`);
    if (h.fallback) out.push(`      fallback: ${h.fallback}`);
    if (h.reason) out.push(`      reason: ${h.reason}`);
    if (h.inKernel.length) out.push(`      in the kernel: ${h.inKernel.join('; ')}`);
    if (h.inUserSpace.length) out.push(`      in user space: ${h.inUserSpace.join('; ')}`);
    if (h.actions.length) out.push(`      actions: ${h.actions.join('; ')}`);
  }
  if (plan.maps.length) {
    out.push('    maps:');
    for (const m of plan.maps) out.push(`      ${m.name.padEnd(28)} ${humanizeIBytes(m.bytes)}`);
  }
  out.push(`    kernel memory: ${humanizeIBytes(plan.kernelMemoryBytes)} (estimate: key+value × max entries)`);
  for (const e of plan.errors) out.push(`    would not load: ${e}`);
  return out.join('\n');
}

/** The loader for planning (no agent): real kernel features, nothing loaded. Undefined with why when unavailable. */
async function planningLoader(): Promise<{ loader?: PolicyLoader; reason?: string }> {
  try {
    const [{ loadNative }, { EventBus }, { BootClock }, { ProcessCache }, { Logger }, { resolvePolicyLoader }] = await Promise.all([
      import('../kernel/native'),
      import('../bus/bus'),
      import('../enrich/process/clock'),
      import('../enrich/process/cache'),
      import('../agent/log'),
      import('../policy/manager'),
    ]);
    const native = loadNative();
    const features = native.probeFeatures();
    const config = defaultConfig();
    const clock = new BootClock(() => native.clocks());
    const cache = new ProcessCache({ nodeName: config.nodeName, clock });
    const log = new Logger('error');
    return resolvePolicyLoader({ native, bus: new EventBus(), cache, clock, config, log, features });
  } catch (e) {
    return { reason: `cannot probe this kernel: ${(e as Error).message}` };
  }
}

async function runCheck(o: Opts): Promise<number> {
  const file = o.positional[1];
  if (!file || o.positional.length > 2) throw new UsageError('check needs exactly one FILE');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    process.stderr.write(`tetrahub policy check: cannot read ${file}: ${(e as Error).message}\n`);
    return 1;
  }
  const results = parsePolicies(text, file);
  const errors = results.flatMap((r) => r.errors);
  const warnings = results.flatMap((r) => r.warnings);
  if (errors.length) {
    if (o.output === 'json') process.stdout.write(JSON.stringify({ file, ok: false, errors, warnings }, null, 2) + '\n');
    else {
      for (const e of errors) process.stderr.write(`error: ${formatIssue(e)}\n`);
      for (const w of warnings) process.stderr.write(`warning: ${formatIssue(w)}\n`);
      process.stderr.write(`${file}: ${errors.length} error${errors.length === 1 ? '' : 's'}; the policy would be refused\n`);
    }
    return 1;
  }
  const policies = results.map((r) => r.policy).filter((p): p is TracingPolicy => p !== undefined);
  const { loader, reason } = await planningLoader();
  let failed = false;
  let hooks = 0;
  let unsupported = 0;
  const json: unknown[] = [];
  for (const p of policies) {
    let plan: PolicyPlan | undefined;
    let planError: string | undefined;
    if (loader) {
      try {
        plan = loader.plan(p, { mode: p.spec.options?.find((x) => x.name === 'policy-mode')?.value === 'monitor' ? 'monitor' : 'enforce', strict: o.strict });
        if (plan.errors.length) failed = true;
        hooks += plan.hooks.length;
        unsupported += plan.hooks.filter((h) => h.state !== 'loaded').length;
      } catch (e) {
        planError = (e as Error).message;
        failed = true;
      }
    }
    if (o.output === 'json') {
      json.push({ name: p.metadata.name, namespace: p.metadata.namespace, plan, planError, planUnavailable: loader ? undefined : reason });
      continue;
    }
    process.stdout.write(describePolicy(p) + '\n');
    if (plan) process.stdout.write(formatPlan(plan) + '\n');
    else if (planError) process.stdout.write(`  kernel plan: failed: ${planError}\n`);
    else process.stdout.write(`  kernel plan: unavailable (${reason})\n`);
  }
  if (o.output === 'json') process.stdout.write(JSON.stringify({ file, ok: !failed, warnings, policies: json }, null, 2) + '\n');
  else {
    for (const w of warnings) process.stderr.write(`warning: ${formatIssue(w)}\n`);
    const n = `${policies.length} polic${policies.length === 1 ? 'y' : 'ies'}`;
    if (failed) process.stdout.write(`${file}: valid, but would not load on this kernel (see "would not load" above)\n`);
    else if (unsupported) process.stdout.write(`${file}: ok (${n}); ${unsupported} of ${hooks} hook${hooks === 1 ? '' : 's'} unsupported on this kernel and would be skipped (--strict refuses instead)\n`);
    else process.stdout.write(`${file}: ok (${n})\n`);
  }
  return failed ? 1 : 0;
}

// ------------------------------------------------------------------ main

export async function runPolicy(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(HELP);
    return argv.length === 0 ? 2 : 0;
  }
  let o: Opts;
  try {
    o = parseArgs(argv);
    const cmd = o.positional[0];
    if (cmd === 'check') return await runCheck(o);
    const need = (n: number, what: string): void => {
      if (o.positional.length !== n + 1) throw new UsageError(`${cmd} needs ${what}`);
    };
    switch (cmd) {
      case 'add':
        need(1, 'FILE');
        break;
      case 'delete':
      case 'enable':
      case 'disable':
        need(1, 'NAME');
        break;
      case 'mode':
        need(2, 'NAME and enforce|monitor');
        if (o.positional[2] !== 'enforce' && o.positional[2] !== 'monitor') throw new UsageError(`mode: expected enforce or monitor, got "${o.positional[2]}"`);
        break;
      case 'list':
        need(0, 'no arguments');
        break;
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`tetrahub policy: ${e.message}\n\n${HELP}`);
      return 2;
    }
    throw e;
  }
  const [cmd, arg, arg2] = o.positional;
  const api = new Api(serverAddress(o.server), o.timeoutMs);
  const ns = o.namespace;
  const say = (s: string): void => void process.stdout.write(s + '\n');
  try {
    switch (cmd) {
      case 'add': {
        let text: string;
        try {
          text = fs.readFileSync(arg, 'utf8');
        } catch (e) {
          process.stderr.write(`tetrahub policy add: cannot read ${arg}: ${(e as Error).message}\n`);
          return 1;
        }
        let docs: { name: string; yaml: string }[];
        try {
          docs = policyDocuments(text, o.mode);
        } catch {
          // Not YAML the client can read: send it as is; the agent names the problem.
          docs = [{ name: '', yaml: text }];
        }
        if (docs.length === 0) docs = [{ name: '', yaml: text }];
        let status = 0;
        for (const d of docs) {
          try {
            await api.call('AddTracingPolicy', { yaml: d.yaml });
            say(`tracing policy "${d.name}" added`);
          } catch (e) {
            process.stderr.write(`tetrahub policy add: ${d.name ? `"${d.name}": ` : ''}${grpcMessage(e, api.address)}\n`);
            status = 1;
            if ((e as grpc.ServiceError).code === grpc.status.UNAVAILABLE) break;
          }
        }
        return status;
      }
      case 'delete':
        await api.call('DeleteTracingPolicy', { name: arg, namespace: ns });
        say(`tracing policy "${arg}" deleted`);
        return 0;
      case 'enable':
      case 'disable':
        await api.call('ConfigureTracingPolicy', { name: arg, namespace: ns, enable: cmd === 'enable' });
        say(`tracing policy "${arg}" ${cmd}d`);
        return 0;
      case 'mode':
        await api.call('ConfigureTracingPolicy', { name: arg, namespace: ns, mode: arg2 === 'enforce' ? 1 : 2 });
        say(`tracing policy "${arg}" set to mode "${arg2}"`);
        return 0;
      case 'list': {
        const res = await api.call('ListTracingPolicies', {});
        const policies = (res.policies as ProtoObject[] | undefined) ?? [];
        process.stdout.write(o.output === 'json' ? JSON.stringify({ policies }, null, 2) + '\n' : formatPolicyList(policies));
        return 0;
      }
    }
    return 2;
  } catch (e) {
    process.stderr.write(`tetrahub policy ${cmd}: ${grpcMessage(e, api.address)}\n`);
    return 1;
  } finally {
    api.close();
  }
}
