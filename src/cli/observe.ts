// `tetrahub observe`: a client of the agent's Hubble API (history + follow),
// printing runtime events the way `tetra getevents` does (compact or JSON).
// Filters travel to the server: event kinds as Hubble FlowFilter.event_type,
// binary/pid/argument regexes in our private RuntimeFilter extension.
import * as grpc from '@grpc/grpc-js';
import { clientDefinition, protos } from '../api/hubble/proto';
import { extensionJson, packRuntimeFilter } from '../api/hubble/client';
import { formatCompact } from '../api/tetragon/compact';
import type { TetragonJsonEvent } from '../api/tetragon/json';

/** Hubble event type 200 carries runtime events; sub_type = Tetragon's EventType. */
export const RUNTIME_EVENT_TYPE = 200;
export const EVENT_SUBTYPES: Record<string, number> = {
  exec: 1,
  process_exec: 1,
  exit: 5,
  process_exit: 5,
  kprobe: 9,
  process_kprobe: 9,
  tracepoint: 10,
  process_tracepoint: 10,
  lsm: 28,
  process_lsm: 28,
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
  --type KIND          exec | exit | kprobe | tracepoint | lsm (repeatable)
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
  types: number[];
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
        const t = EVENT_SUBTYPES[v];
        if (t === undefined) throw new UsageError(`--type: unknown event kind "${v}" (known: exec, exit, kprobe, tracepoint, lsm)`);
        o.types.push(t);
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
    req.whitelist = [{ event_type: o.types.map((t) => ({ type: RUNTIME_EVENT_TYPE, match_sub_type: true, sub_type: t })) }];
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

interface FlowLike {
  time?: { seconds?: string | number; nanos?: number };
  Summary?: string;
  verdict?: string | number;
  extensions?: { type_url?: string; value?: Uint8Array };
  source?: { pod_name?: string; namespace?: string };
  destination?: { pod_name?: string; namespace?: string };
  IP?: { source?: string; destination?: string };
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

export function formatResponse(r: ResponseLike, o: ObserveOptions): { out?: string; err?: string } {
  if (r.lost_events) {
    const l = r.lost_events;
    return { err: `EVENTS LOST: ${l.source} CPU(${l.cpu?.value ?? 0}) ${l.num_events_lost}` };
  }
  const flow = r.flow;
  if (!flow) return {};
  const ev = tetragonEventOf(flow);
  if (ev) return { out: o.output === 'json' ? JSON.stringify(ev) : formatCompact(ev, { color: o.color, timestamps: o.timestamps }) };
  // A flow without runtime context (e.g. a network flow): Hubble-like one-liner.
  if (o.output === 'json') return { out: JSON.stringify(r) };
  const t = flow.time ? new Date(Number(flow.time.seconds ?? 0) * 1000 + Math.floor((flow.time.nanos ?? 0) / 1e6)).toISOString() : 'N/A';
  const src = flow.source?.pod_name ? `${flow.source.namespace}/${flow.source.pod_name}` : flow.IP?.source ?? '';
  const dst = flow.destination?.pod_name ? `${flow.destination.namespace}/${flow.destination.pod_name}` : flow.IP?.destination ?? '';
  return { out: `${t}: ${src} -> ${dst} ${flow.verdict ?? ''} (${flow.Summary ?? ''})` };
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
