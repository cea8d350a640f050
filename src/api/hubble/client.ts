// Client-side helpers for tetrahub's own CLI (and tests): gRPC clients built
// from the same protos, the private RuntimeFilter packing, and decoding of the
// Tetragon JSON that runtime flows carry in `extensions`.
import * as grpc from '@grpc/grpc-js';
import type * as protobuf from 'protobufjs';
import { clientDefinition, protos, RUNTIME_FILTER_TYPE_URL, STRUCT_TYPE_URL } from './proto';
import type { AnyMessage, RuntimeFilter } from './types';

export interface HubbleClients {
  observer: grpc.Client;
  health: grpc.Client;
  peer: grpc.Client;
  close(): void;
}

/**
 * Observer, Health and Peer clients for one target (`unix:///path` or
 * `host:port`). Responses decode to plain objects with proto field names,
 * enums as numbers and 64-bit integers as decimal strings.
 */
export function connectHubble(address: string, creds: grpc.ChannelCredentials = grpc.credentials.createInsecure()): HubbleClients {
  const P = protos();
  const make = (svc: protobuf.Service) => new (grpc.makeGenericClientConstructor(clientDefinition(svc), svc.name))(address, creds);
  const observer = make(P.Observer);
  const health = make(P.Health);
  const peer = make(P.Peer);
  return {
    observer,
    health,
    peer,
    close: () => {
      observer.close();
      health.close();
      peer.close();
    },
  };
}

/** Packs a RuntimeFilter for GetFlowsRequest.extensions. */
export function packRuntimeFilter(rf: RuntimeFilter): AnyMessage {
  const T = protos().RuntimeFilter;
  return { type_url: RUNTIME_FILTER_TYPE_URL, value: T.encode(T.fromObject(rf)).finish() };
}

type Obj = Record<string, unknown>;

/** google.protobuf.Struct (decoded by protobufjs, camelCase Value fields) → plain JSON. */
export function structToJson(s: Obj): Obj {
  const out: Obj = {};
  const fields = (s.fields ?? {}) as Record<string, Obj>;
  for (const k of Object.keys(fields)) out[k] = valueToJson(fields[k]);
  return out;
}

function valueToJson(v: Obj): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.numberValue !== undefined) return v.numberValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.structValue !== undefined) return structToJson(v.structValue as Obj);
  if (v.listValue !== undefined) return (((v.listValue as Obj).values ?? []) as Obj[]).map(valueToJson);
  return null;
}

/** The Tetragon JSON event carried by a runtime flow's `extensions`, or undefined. */
export function extensionJson(ext: { type_url?: string; value?: Uint8Array } | undefined): Obj | undefined {
  if (!ext || ext.type_url !== STRUCT_TYPE_URL || !ext.value) return undefined;
  const S = protos().Struct;
  return structToJson(S.toObject(S.decode(ext.value)) as Obj);
}
