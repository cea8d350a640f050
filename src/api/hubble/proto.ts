// Loads the Hubble, health, peer and tetrahub protos once with protobufjs and
// exposes the message Types (looked up once) plus grpc-js service definitions.
// Google well-known types (Timestamp, Any, Struct, FieldMask, wrappers) come
// from protobufjs's bundled common definitions, so no copies live in proto/.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';

const PROTO_FILES = [
  'hubble/flow.proto',
  'hubble/relay.proto',
  'hubble/observer.proto',
  'hubble/peer.proto',
  'grpc/health/v1/health.proto',
  'tetrahub/observe.proto',
  // Not imported by any of ours, but extensions carry a packed Struct.
  'google/protobuf/struct.proto',
];

/** Finds `<repo>/proto` from both src/ (ts-node) and dist/src/ (compiled) locations. */
export function findProtoDir(start = __dirname): string {
  let dir = start;
  for (let i = 0; i < 8; i++) {
    const candidate = path.join(dir, 'proto');
    if (fs.existsSync(path.join(candidate, 'hubble', 'flow.proto'))) return candidate;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`cannot find proto/hubble/flow.proto above ${start}`);
}

export function loadHubbleRoot(protoDir = findProtoDir()): protobuf.Root {
  const root = new protobuf.Root();
  // Imports are written relative to proto/; google/protobuf/* resolve to the
  // bundled common types (protobufjs matches them by their path suffix).
  root.resolvePath = (_origin: string, target: string): string =>
    target.startsWith('google/protobuf/') || path.isAbsolute(target) ? target : path.join(protoDir, target);
  root.loadSync(PROTO_FILES, { keepCase: true });
  root.resolveAll();
  return root;
}

let cached: HubbleProtos | undefined;

export interface HubbleProtos {
  root: protobuf.Root;
  Flow: protobuf.Type;
  FlowFilter: protobuf.Type;
  LostEvent: protobuf.Type;
  AgentEvent: protobuf.Type;
  GetFlowsRequest: protobuf.Type;
  GetFlowsResponse: protobuf.Type;
  GetAgentEventsRequest: protobuf.Type;
  GetAgentEventsResponse: protobuf.Type;
  GetDebugEventsRequest: protobuf.Type;
  GetDebugEventsResponse: protobuf.Type;
  ServerStatusRequest: protobuf.Type;
  ServerStatusResponse: protobuf.Type;
  GetNodesRequest: protobuf.Type;
  GetNodesResponse: protobuf.Type;
  GetNamespacesRequest: protobuf.Type;
  GetNamespacesResponse: protobuf.Type;
  NotifyRequest: protobuf.Type;
  ChangeNotification: protobuf.Type;
  HealthCheckRequest: protobuf.Type;
  HealthCheckResponse: protobuf.Type;
  RuntimeFilter: protobuf.Type;
  Struct: protobuf.Type;
  Any: protobuf.Type;
  Observer: protobuf.Service;
  Peer: protobuf.Service;
  Health: protobuf.Service;
}

/** The process-wide protos, loaded on first use. */
export function protos(): HubbleProtos {
  if (cached) return cached;
  const root = loadHubbleRoot();
  const t = (name: string): protobuf.Type => root.lookupType(name);
  const s = (name: string): protobuf.Service => root.lookupService(name);
  cached = {
    root,
    Flow: t('flow.Flow'),
    FlowFilter: t('flow.FlowFilter'),
    LostEvent: t('flow.LostEvent'),
    AgentEvent: t('flow.AgentEvent'),
    GetFlowsRequest: t('observer.GetFlowsRequest'),
    GetFlowsResponse: t('observer.GetFlowsResponse'),
    GetAgentEventsRequest: t('observer.GetAgentEventsRequest'),
    GetAgentEventsResponse: t('observer.GetAgentEventsResponse'),
    GetDebugEventsRequest: t('observer.GetDebugEventsRequest'),
    GetDebugEventsResponse: t('observer.GetDebugEventsResponse'),
    ServerStatusRequest: t('observer.ServerStatusRequest'),
    ServerStatusResponse: t('observer.ServerStatusResponse'),
    GetNodesRequest: t('observer.GetNodesRequest'),
    GetNodesResponse: t('observer.GetNodesResponse'),
    GetNamespacesRequest: t('observer.GetNamespacesRequest'),
    GetNamespacesResponse: t('observer.GetNamespacesResponse'),
    NotifyRequest: t('peer.NotifyRequest'),
    ChangeNotification: t('peer.ChangeNotification'),
    HealthCheckRequest: t('grpc.health.v1.HealthCheckRequest'),
    HealthCheckResponse: t('grpc.health.v1.HealthCheckResponse'),
    RuntimeFilter: t('tetrahub.v1.RuntimeFilter'),
    Struct: t('google.protobuf.Struct'),
    Any: t('google.protobuf.Any'),
    Observer: s('observer.Observer'),
    Peer: s('peer.Peer'),
    Health: s('grpc.health.v1.Health'),
  };
  return cached;
}

export const RUNTIME_FILTER_TYPE_URL = 'type.googleapis.com/tetrahub.v1.RuntimeFilter';
export const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct';

/**
 * Decoding options for requests: proto field names (keepCase), enums as numbers,
 * 64-bit integers as decimal strings (exact, e.g. number = 2^64-1 from `--all`).
 */
export const DECODE_OPTIONS: protobuf.IConversionOptions = { longs: String, enums: Number, defaults: false, arrays: false };

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * Server-side definition: requests decode to plain objects; responses must be
 * pre-encoded bytes, so one encoding can be shared by every stream.
 */
export function serverDefinition(service: protobuf.Service): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<unknown, Uint8Array>> = {};
  for (const m of service.methodsArray) {
    m.resolve();
    const req = m.resolvedRequestType;
    if (!req) throw new Error(`unresolved request type of ${service.fullName}.${m.name}`);
    def[m.name] = {
      path: `/${service.fullName.replace(/^\./, '')}/${m.name}`,
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
      requestSerialize: (v: unknown) => toBuffer(req.encode(req.fromObject(v as Record<string, unknown>)).finish()),
      requestDeserialize: (b: Buffer) => req.toObject(req.decode(b), DECODE_OPTIONS),
      responseSerialize: toBuffer,
      responseDeserialize: (b: Buffer) => b,
    };
  }
  return def;
}

/** Client-side definition (tests, tetrahub CLI): plain objects both ways. */
export function clientDefinition(service: protobuf.Service, decode: protobuf.IConversionOptions = DECODE_OPTIONS): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const m of service.methodsArray) {
    m.resolve();
    const req = m.resolvedRequestType;
    const res = m.resolvedResponseType;
    if (!req || !res) throw new Error(`unresolved types of ${service.fullName}.${m.name}`);
    def[m.name] = {
      path: `/${service.fullName.replace(/^\./, '')}/${m.name}`,
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
      requestSerialize: (v: unknown) => toBuffer(req.encode(req.fromObject(v as Record<string, unknown>)).finish()),
      requestDeserialize: (b: Buffer) => req.toObject(req.decode(b), decode),
      responseSerialize: (v: unknown) => toBuffer(res.encode(res.fromObject(v as Record<string, unknown>)).finish()),
      responseDeserialize: (b: Buffer) => res.toObject(res.decode(b), decode),
    };
  }
  return def;
}
