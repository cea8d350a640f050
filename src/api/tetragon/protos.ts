// Loads proto/tetragon/*.proto once and hands out the protobufjs Types the API
// needs. Types are looked up at start-up so the per-event path is a plain
// `Type.encode(obj).finish()`.
//
// Plain-object shapes below are the keepCase (snake_case) objects protobufjs
// encodes from and decodes to; they are ours, so nothing at a module boundary
// is `any`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';

// ---------------------------------------------------------------- plain message shapes

export type PTimestamp = { seconds: number; nanos: number };
export type PUInt32 = { value: number };
export type PBool = { value: boolean };

export type PImage = { id?: string; name?: string };
export type PContainer = { id?: string; name?: string; image?: PImage; start_time?: PTimestamp; pid?: PUInt32 };
export type PPod = {
  namespace?: string;
  name?: string;
  uid?: string;
  container?: PContainer;
  pod_labels?: Record<string, string>;
  workload?: string;
  workload_kind?: string;
};

export type PProcess = {
  exec_id?: string;
  pid?: PUInt32;
  uid?: PUInt32;
  cwd?: string;
  binary?: string;
  arguments?: string;
  flags?: string;
  start_time?: PTimestamp;
  auid?: PUInt32;
  pod?: PPod;
  docker?: string;
  parent_exec_id?: string;
  refcnt?: number;
  tid?: PUInt32;
  in_init_tree?: PBool;
};

export type PProcessExec = { process?: PProcess; parent?: PProcess };
export type PProcessExit = { process?: PProcess; parent?: PProcess; signal?: string; status?: number; time?: PTimestamp };

export type PGetEventsResponse = {
  process_exec?: PProcessExec;
  process_exit?: PProcessExit;
  node_name?: string;
  time?: PTimestamp;
};

/** A decoded message as toObject() returns it (longs as strings, enums as numbers). */
export type ProtoValue = string | number | boolean | null | undefined | Uint8Array | ProtoValue[] | ProtoObject;
export type ProtoObject = { [key: string]: ProtoValue };

export type PCapFilterSet = { any?: number[]; all?: number[]; exactly?: number[]; none?: number[] };
export type PCapFilter = { permitted?: PCapFilterSet; effective?: PCapFilterSet; inheritable?: PCapFilterSet };

export type PFilter = {
  binary_regex?: string[];
  namespace?: string[];
  health_check?: { value?: boolean };
  pid?: number[];
  pid_set?: number[];
  event_set?: number[];
  pod_regex?: string[];
  arguments_regex?: string[];
  labels?: string[];
  policy_names?: string[];
  capabilities?: PCapFilter;
  parent_binary_regex?: string[];
  cel_expression?: string[];
  parent_arguments_regex?: string[];
  container_id?: string[];
  in_init_tree?: { value?: boolean };
  ancestor_binary_regex?: string[];
  container_name_regex?: string[];
  namespace_regex?: string[];
};

export type PFieldFilter = {
  event_set?: number[];
  fields?: { paths?: string[] };
  action?: number;
  invert_event_set?: { value?: boolean };
};

export type PGetEventsRequest = {
  allow_list?: PFilter[];
  deny_list?: PFilter[];
  aggregation_options?: { window_size?: { seconds?: string; nanos?: number }; channel_buffer_size?: string };
  field_filters?: PFieldFilter[];
};

// ---------------------------------------------------------------- enums used in code

export const EventType = {
  UNDEF: 0,
  PROCESS_EXEC: 1,
  PROCESS_EXIT: 5,
  PROCESS_KPROBE: 9,
  PROCESS_TRACEPOINT: 10,
  PROCESS_LOADER: 11,
  PROCESS_UPROBE: 12,
  PROCESS_THROTTLE: 27,
  PROCESS_LSM: 28,
  PROCESS_USDT: 29,
  TEST: 40000,
  RATE_LIMIT_INFO: 40001,
} as const;

/** GetEventsResponse oneof member → EventType number (they are equal by design). */
export const EVENT_FIELD_TYPE: Record<string, number> = {
  process_exec: 1,
  process_exit: 5,
  process_kprobe: 9,
  process_tracepoint: 10,
  process_loader: 11,
  process_uprobe: 12,
  process_throttle: 27,
  process_lsm: 28,
  process_usdt: 29,
  test: 40000,
  rate_limit_info: 40001,
};

export const FieldFilterAction = { INCLUDE: 0, EXCLUDE: 1 } as const;

// ---------------------------------------------------------------- loading

const FILES = ['capabilities.proto', 'bpf.proto', 'tetragon.proto', 'events.proto', 'sensors.proto'];

/** proto/ at the repository root, found from both src/ (ts) and dist/src/ (compiled). */
export function protoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 8; i++) {
    const candidate = path.join(dir, 'proto');
    if (fs.existsSync(path.join(candidate, 'tetragon', 'sensors.proto'))) return candidate;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`proto/tetragon not found above ${__dirname}`);
}

export interface TetragonTypes {
  root: protobuf.Root;
  GetEventsRequest: protobuf.Type;
  GetEventsResponse: protobuf.Type;
  GetHealthStatusRequest: protobuf.Type;
  GetHealthStatusResponse: protobuf.Type;
  Process: protobuf.Type;
  service: protobuf.Service;
  /** Any message of package tetragon by short name. */
  type(name: string): protobuf.Type;
}

let cached: TetragonTypes | undefined;

/** Loads (once) and returns the tetragon package. */
export function tetragonTypes(): TetragonTypes {
  if (cached) return cached;
  const base = protoRoot();
  const root = new protobuf.Root();
  // Imports are written "tetragon/x.proto" (protoc -I proto); google/protobuf/*
  // resolve to protobufjs's bundled well-known types.
  root.resolvePath = (origin, target) => {
    if (target.startsWith('google/protobuf/')) return target;
    if (target.startsWith('tetragon/')) return path.join(base, target);
    return path.isAbsolute(target) ? target : path.join(path.dirname(origin), target);
  };
  root.loadSync(
    FILES.map((f) => path.join(base, 'tetragon', f)),
    { keepCase: true },
  );
  root.resolveAll();
  const type = (name: string): protobuf.Type => root.lookupType(`tetragon.${name}`);
  cached = {
    root,
    GetEventsRequest: type('GetEventsRequest'),
    GetEventsResponse: type('GetEventsResponse'),
    GetHealthStatusRequest: type('GetHealthStatusRequest'),
    GetHealthStatusResponse: type('GetHealthStatusResponse'),
    Process: type('Process'),
    service: root.lookupService('tetragon.FineGuidanceSensors'),
    type,
  };
  return cached;
}

/** toObject options used for every decoded request: strings for 64-bit, numbers for enums. */
export const DECODE_OPTIONS: protobuf.IConversionOptions = { longs: String, enums: Number, bytes: Buffer, defaults: false, arrays: true };

/** Decodes bytes into a plain object of the given type. */
export function decodePlain(type: protobuf.Type, bytes: Uint8Array): ProtoObject {
  return type.toObject(type.decode(bytes), DECODE_OPTIONS) as ProtoObject;
}
