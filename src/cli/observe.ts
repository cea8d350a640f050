// `tetrahub observe`: a client of the agent's Hubble API (history + follow),
// printing runtime events the way `tetra getevents` does (compact or JSON) and
// network / DNS flows as Hubble-like lines with the process behind them.
// Filters travel to the server: event kinds as Hubble FlowFilter.event_type,
// binary/pid/argument regexes in our private RuntimeFilter extension.
import * as grpc from '@grpc/grpc-js';
import { clientDefinition, protos } from '../api/hubble/proto';
import { extensionJson, packRuntimeFilter } from '../api/hubble/client';
import { formatCompact, quoteIfNeeded } from '../api/tetragon/compact';
import type { TetragonJsonEvent, TetragonJsonProcess } from '../api/tetragon/json';

/** Hubble event type 200 carries runtime events; sub_type = Tetragon's EventType. */
export const RUNTIME_EVENT_TYPE = 200;
/** Cilium monitor types the agent uses for socket (trace-sock) and DNS (L7 access log) flows. */
export const TRACE_SOCK_EVENT_TYPE = 7;
export const L7_EVENT_TYPE = 129;
/** Cilium drop and policy-verdict types: enforced and audited policy denials. */
export const DROP_EVENT_TYPE = 1;
export const POLICY_VERDICT_EVENT_TYPE = 5;

export interface EventTypeSel {
  type: number;
  match_sub_type?: boolean;
  sub_type?: number;
}

const runtime = (sub: number): EventTypeSel => ({ type: RUNTIME_EVENT_TYPE, match_sub_type: true, sub_type: sub });

/**
 * --type values → FlowFilter.event_type. `file` is the kprobe sub type (file
 * events are sent as Tetragon kprobes; kprobe events of policies match too),
 * `syscall` the tracepoint one; `net` / `dns` select the flows' Cilium types.
 */
export const EVENT_TYPES: Record<string, EventTypeSel> = {
  exec: runtime(1),
  process_exec: runtime(1),
  exit: runtime(5),
  process_exit: runtime(5),
  kprobe: runtime(9),
  process_kprobe: runtime(9),
  file: runtime(9),
  tracepoint: runtime(10),
  process_tracepoint: runtime(10),
  syscall: runtime(10),
  lsm: runtime(28),
  process_lsm: runtime(28),
  net: { type: TRACE_SOCK_EVENT_TYPE },
  'trace-sock': { type: TRACE_SOCK_EVENT_TYPE },
  drop: { type: 1 },
  'policy-verdict': { type: 5 },
  dns: { type: L7_EVENT_TYPE },
  l7: { type: L7_EVENT_TYPE },
};

const HELP = `Usage: tetrahub observe [flags]

  --server ADDR        Hubble API of the agent [unix:///var/run/tetrahub/hubble.sock]
  -f, --follow         keep streaming new events
  --last N             show the last N matching events first [20; 0 with --follow]
  --all                show every event in the agent's history
  -o, --output FMT     compact | json [compact]
  --binary REGEX       only processes whose binary matches (repeatable)
  --pid PID            only these pids (repeatable)
  --args REGEX         only processes whose arguments match (repeatable)
  --parent-binary REGEX  only processes whose parent binary matches (repeatable)
  --type KIND          exec | exit | file | net | dns | syscall | kprobe | tracepoint | lsm | drop | policy-verdict
                       (repeatable)
  --timestamps         print the event time first
  --color always|never|auto [auto]
`;

export interface ObserveOptions {
  server: string;
  follow: boolean;
  number: number | bigint;
  output: 'compact' | 'json';
  binaryRegex: string[];
  pid: number[];
  argumentsRegex: string[];
  parentBinaryRegex: string[];
  types: EventTypeSel[];
  timestamps: boolean;
  color: boolean;
}

export class UsageError extends Error {}

export function parseObserveArgs(argv: string[], isTty = !!process.stdout.isTTY): ObserveOptions {
  const o: ObserveOptions = {
    server: 'unix:///var/run/tetrahub/hubble.sock',
    follow: false,
    number: -1,
    output: 'compact',
    binaryRegex: [],
    pid: [],
    argumentsRegex: [],
    parentBinaryRegex: [],
    types: [],
    timestamps: false,
    color: isTty,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--server':
        o.server = val();
        break;
      case '-f':
      case '--follow':
        o.follow = true;
        break;
      case '--last': {
        const n = Number(val());
        if (!Number.isInteger(n) || n < 0) throw new UsageError(`--last: expected a non-negative integer`);
        o.number = n;
        break;
      }
      case '--all':
        o.number = 18446744073709551615n;
        break;
      case '-o':
      case '--output': {
        const v = val();
        if (v !== 'compact' && v !== 'json') throw new UsageError(`--output: expected compact or json, got "${v}"`);
        o.output = v;
        break;
      }
      case '--binary':
        o.binaryRegex.push(checkRegex('--binary', val()));
        break;
      case '--args':
        o.argumentsRegex.push(checkRegex('--args', val()));
        break;
      case '--parent-binary':
        o.parentBinaryRegex.push(checkRegex('--parent-binary', val()));
        break;
      case '--pid': {
        const n = Number(val());
        if (!Number.isInteger(n) || n <= 0 || n > 0xffffffff) throw new UsageError(`--pid: expected a process id`);
        o.pid.push(n);
        break;
      }
      case '--type': {
        const v = val().toLowerCase();
        const t = EVENT_TYPES[v];
        if (t === undefined) throw new UsageError(`--type: unknown event kind "${v}" (known: exec, exit, file, net, dns, syscall, kprobe, tracepoint, lsm, drop, policy-verdict)`);
        if (!o.types.some((x) => x.type === t.type && x.sub_type === t.sub_type)) o.types.push(t);
        break;
      }
      case '--timestamps':
        o.timestamps = true;
        break;
      case '--color': {
        const v = val();
        if (v === 'always') o.color = true;
        else if (v === 'never') o.color = false;
        else if (v !== 'auto') throw new UsageError(`--color: expected always, never or auto`);
        break;
      }
      default:
        throw new UsageError(`unknown flag "${a}"`);
    }
  }
  if (o.number === -1) o.number = o.follow ? 0 : 20;
  return o;
}

function checkRegex(flag: string, re: string): string {
  try {
    new RegExp(re);
  } catch (e) {
    throw new UsageError(`${flag}: invalid regex "${re}": ${(e as Error).message}`);
  }
  return re;
}

/** The GetFlowsRequest (as a plain object for protobufjs) for these options. */
export function buildRequest(o: ObserveOptions): Record<string, unknown> {
  const req: Record<string, unknown> = { number: o.number.toString(), follow: o.follow };
  if (o.types.length) {
    req.whitelist = [{ event_type: o.types.map((t) => ({ ...t })) }];
  }
  if (o.binaryRegex.length || o.pid.length || o.argumentsRegex.length || o.parentBinaryRegex.length) {
    req.extensions = packRuntimeFilter({
      binary_regex: o.binaryRegex,
      pid: o.pid,
      arguments_regex: o.argumentsRegex,
      parent_binary_regex: o.parentBinaryRegex,
    });
  }
  return req;
}

interface EndpointLike {
  pod_name?: string;
  namespace?: string;
  identity?: number;
}

interface PortsLike {
  source_port?: number;
  destination_port?: number;
}

interface FlowLike {
  time?: { seconds?: string | number; nanos?: number };
  Summary?: string;
  verdict?: string | number;
  Type?: string | number;
  extensions?: { type_url?: string; value?: Uint8Array };
  source?: EndpointLike;
  destination?: EndpointLike;
  IP?: { source?: string; destination?: string };
  l4?: { TCP?: PortsLike; UDP?: PortsLike; SCTP?: PortsLike };
  l7?: { type?: string | number; dns?: { observation_source?: string } };
  is_reply?: { value?: boolean };
  event_type?: { type?: number; sub_type?: number };
  sock_xlate_point?: string | number;
  source_names?: string[];
  destination_names?: string[];
}

interface ResponseLike {
  flow?: FlowLike;
  lost_events?: { source?: string | number; num_events_lost?: string | number; cpu?: { value?: number } };
  node_name?: string;
}

/** The Tetragon-shaped event carried in a runtime flow's extensions, if any. */
export function tetragonEventOf(flow: FlowLike): TetragonJsonEvent | undefined {
  return extensionJson(flow.extensions) as TetragonJsonEvent | undefined;
}

/** L3/L4 and L7 flows print as Hubble lines; everything else through tetra's compact encoder. */
function isNetworkFlow(flow: FlowLike): boolean {
  const t = flow.Type;
  return t === 'L3_L4' || t === 'L7' || t === 1 || t === 2;
}

/** The process of a Tetragon event, whatever its kind. */
function processOf(ev: TetragonJsonEvent | undefined): TetragonJsonProcess | undefined {
  if (!ev) return undefined;
  const body = ev.process_kprobe ?? ev.process_tracepoint ?? ev.process_lsm ?? ev.process_uprobe ?? ev.process_exec ?? ev.process_exit;
  return body?.process;
}

/** Policy hook events (not the sensors' own tetrahub-* shapes): policy name, action, message. */
function policyOf(ev: TetragonJsonEvent | undefined): { name: string; action?: string; message?: string } | undefined {
  const body = ev?.process_kprobe ?? ev?.process_tracepoint ?? ev?.process_lsm ?? ev?.process_uprobe;
  const name = body?.policy_name;
  if (!body || !name || name.startsWith('tetrahub-')) return undefined;
  return { name, action: body.action, message: body.message };
}

/**
 * What `tetrahub observe` adds after a policy event's tetra line: the policy,
 * its action when it is not a plain Post, the verdict when the event was
 * enforced or audited, and the policy's message.
 */
export function policyTrailer(ev: TetragonJsonEvent | undefined, verdict: string | number | undefined): string {
  const p = policyOf(ev);
  if (!p) return '';
  const bits: string[] = [];
  const action = p.action?.replace(/^KPROBE_ACTION_/, '').toLowerCase();
  if (action && action !== 'post') bits.push(action);
  const v = String(verdict ?? '');
  if (v === 'DROPPED' || v === '2') bits.push('enforced');
  else if (v === 'AUDIT' || v === '4') bits.push('monitor mode: not enforced');
  return `  [policy ${p.name}${bits.length ? `: ${bits.join(', ')}` : ''}]${p.message ? ` ${quoteIfNeeded(p.message)}` : ''}`;
}

function isoTime(t: FlowLike['time']): string {
  if (!t) return 'N/A';
  const ms = Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : 'N/A';
}

// Hubble's printer (hubble/pkg/printer): pod or names or IP, ":port" for TCP/UDP/SCTP.
function host(ip: string | undefined, port: number | undefined, ep: EndpointLike | undefined, names: string[] | undefined): string {
  let h = ip ?? '';
  if (ep?.pod_name) h = ep.namespace ? `${ep.namespace}/${ep.pod_name}` : ep.pod_name;
  else if (names && names.length) h = names.join(',');
  return port ? `${h}:${port}` : h;
}

const RESERVED_IDENTITIES = ['unknown', 'host', 'world', 'unmanaged', 'health', 'init', 'remote-node', 'kube-apiserver', 'ingress', 'world-ipv4', 'world-ipv6'];

function identity(ep: EndpointLike | undefined): string {
  const id = ep?.identity ?? 0;
  return id < RESERVED_IDENTITIES.length && id !== 11 ? `(${RESERVED_IDENTITIES[id]})` : `(ID:${id})`;
}

const XLATE: Record<string, string> = {
  SOCK_XLATE_POINT_PRE_DIRECTION_FWD: 'pre-xlate-fwd',
  SOCK_XLATE_POINT_POST_DIRECTION_FWD: 'post-xlate-fwd',
  SOCK_XLATE_POINT_PRE_DIRECTION_REV: 'pre-xlate-rev',
  SOCK_XLATE_POINT_POST_DIRECTION_REV: 'post-xlate-rev',
  '1': 'pre-xlate-fwd',
  '2': 'post-xlate-fwd',
  '3': 'pre-xlate-rev',
  '4': 'post-xlate-rev',
};

function flowType(flow: FlowLike): string {
  if (flow.l7) {
    const t = String(flow.l7.type ?? 'UNKNOWN_L7_TYPE').toLowerCase();
    return flow.l7.dns ? `dns-${t} ${flow.l7.dns.observation_source ?? ''}`.trimEnd() : `l7-${t}`;
  }
  if (flow.event_type?.type === TRACE_SOCK_EVENT_TYPE) return XLATE[String(flow.sock_xlate_point ?? '')] ?? 'trace-sock';
  // Policy denials are Cilium drops (sub_type = drop code), audits policy verdicts.
  if (flow.event_type?.type === DROP_EVENT_TYPE) return flow.event_type.sub_type === 133 ? 'Policy denied' : 'drop';
  if (flow.event_type?.type === POLICY_VERDICT_EVENT_TYPE) return 'policy-verdict:none EGRESS';
  return 'UNKNOWN';
}

/**
 * A network flow as `hubble observe` prints it (compact), followed by the
 * process behind it as tetra shows one: `<ns/pod or node> <binary> pid <n>`.
 */
export function formatNetworkFlow(flow: FlowLike, nodeName: string | undefined, o: Pick<ObserveOptions, 'timestamps'>): string {
  const l4 = flow.l4?.TCP ?? flow.l4?.UDP ?? flow.l4?.SCTP;
  let src = host(flow.IP?.source, l4?.source_port, flow.source, flow.source_names);
  let dst = host(flow.IP?.destination, l4?.destination_port, flow.destination, flow.destination_names);
  let srcId = identity(flow.source);
  let dstId = identity(flow.destination);
  let arrow = '<>';
  if (flow.is_reply) {
    arrow = '->';
    if (flow.is_reply.value) {
      [src, dst, srcId, dstId] = [dst, src, dstId, srcId];
      arrow = '<-';
    }
  }
  let line = `${isoTime(flow.time)}: ${src} ${srcId} ${arrow} ${dst} ${dstId} ${flowType(flow)} ${flow.verdict ?? 'VERDICT_UNKNOWN'} (${flow.Summary ?? ''})`;
  if (!o.timestamps) line = line.slice(line.indexOf(': ') + 2);
  const proc = processOf(tetragonEventOf(flow));
  if (proc) {
    const where = proc.pod ? `${proc.pod.namespace ?? ''}/${proc.pod.name ?? ''}` : nodeName ?? '';
    line += ` ${quoteIfNeeded(where)} ${quoteIfNeeded(proc.binary ?? '')} pid ${proc.pid ?? 0}`;
  }
  return line;
}

export function formatResponse(r: ResponseLike, o: ObserveOptions): { out?: string; err?: string } {
  if (r.lost_events) {
    const l = r.lost_events;
    return { err: `EVENTS LOST: ${l.source} CPU(${l.cpu?.value ?? 0}) ${l.num_events_lost}` };
  }
  const flow = r.flow;
  if (!flow) return {};
  const ev = tetragonEventOf(flow);
  if (isNetworkFlow(flow)) {
    if (o.output === 'json') {
      // The whole response, with the extension decoded (raw bytes say nothing in JSON).
      const { extensions: _raw, ...rest } = flow;
      return { out: JSON.stringify({ ...r, flow: ev ? { ...rest, extensions: ev } : rest }) };
    }
    return { out: formatNetworkFlow(flow, r.node_name, o) };
  }
  if (ev) return { out: o.output === 'json' ? JSON.stringify(ev) : formatCompact(ev, { color: o.color, timestamps: o.timestamps }) + policyTrailer(ev, flow.verdict) };
  // A flow without runtime context: Hubble-like one-liner.
  if (o.output === 'json') return { out: JSON.stringify(r) };
  return { out: formatNetworkFlow(flow, r.node_name, { timestamps: true }) };
}

export async function runObserve(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  let o: ObserveOptions;
  try {
    o = parseObserveArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`tetrahub observe: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const p = protos();
  const Client = grpc.makeGenericClientConstructor(clientDefinition(p.Observer, { longs: String, enums: String, defaults: false }), 'Observer');
  const client = new Client(o.server, grpc.credentials.createInsecure());
  const call = client.makeServerStreamRequest(
    '/observer.Observer/GetFlows',
    (v: unknown) => Buffer.from(p.GetFlowsRequest.encode(p.GetFlowsRequest.fromObject(v as Record<string, unknown>)).finish()),
    (b: Buffer) => p.GetFlowsResponse.toObject(p.GetFlowsResponse.decode(b), { longs: String, enums: String, defaults: false }),
    buildRequest(o),
  );
  process.once('SIGINT', () => call.cancel());
  return new Promise<number>((resolve) => {
    call.on('data', (r: ResponseLike) => {
      const { out, err } = formatResponse(r, o);
      if (out !== undefined) process.stdout.write(out + '\n');
      if (err !== undefined) process.stderr.write(err + '\n');
    });
    call.on('error', (e: grpc.ServiceError) => {
      if (e.code === grpc.status.CANCELLED) return resolve(0);
      process.stderr.write(`tetrahub observe: ${o.server}: ${e.details || e.message}\n`);
      resolve(1);
    });
    call.on('end', () => {
      client.close();
      resolve(0);
    });
  });
}
