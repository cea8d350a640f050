// Real gRPC clients of the agent's two APIs, built from our protos the way the
// stock CLIs build theirs (tetra: GetEvents with one Filter; hubble: GetFlows).
import * as grpc from '@grpc/grpc-js';
import { clientDefinition, protos } from '../src/api/hubble/proto';
import { tetragonServiceDefinition } from '../src/api/tetragon/server';
import { tetragonEventOf } from '../src/cli/observe';
import type { TetragonJsonEvent } from '../src/api/tetragon/json';

export type Plain = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- decoded test payloads

const OPTS = { longs: String, enums: String, defaults: false } as const;

export function tetragonClient(address: string): grpc.Client & Record<string, any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const C = grpc.makeGenericClientConstructor(tetragonServiceDefinition('client'), 'FineGuidanceSensors');
  return new C(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function hubbleClient(address: string): grpc.Client & Record<string, any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const C = grpc.makeGenericClientConstructor(clientDefinition(protos().Observer, OPTS), 'Observer');
  return new C(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function healthClient(address: string): grpc.Client & Record<string, any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const C = grpc.makeGenericClientConstructor(clientDefinition(protos().Health, OPTS), 'Health');
  return new C(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function unary<T = Plain>(client: grpc.Client & Record<string, any>, method: string, req: Plain): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) =>
    client[method](req, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
  );
}

/** A live GetEvents stream collecting every response. */
export function getEvents(address: string, req: Plain = { allow_list: [{}] }): { events: Plain[]; call: grpc.ClientReadableStream<Plain>; close(): void; error?: Error } {
  const client = tetragonClient(address);
  const call = client.GetEvents(req) as grpc.ClientReadableStream<Plain>;
  const out = { events: [] as Plain[], call, error: undefined as Error | undefined, close: () => { call.cancel(); client.close(); } };
  call.on('data', (r: Plain) => out.events.push(r));
  call.on('error', (e: grpc.ServiceError) => {
    if (e.code !== grpc.status.CANCELLED) out.error = e;
  });
  return out;
}

/** Runs GetFlows to its end (non-follow) and returns all responses. */
export function getFlows(address: string, req: Plain): Promise<Plain[]> {
  const client = hubbleClient(address);
  const call = client.GetFlows(req) as grpc.ClientReadableStream<Plain>;
  const out: Plain[] = [];
  return new Promise((resolve, reject) => {
    call.on('data', (r: Plain) => out.push(r));
    call.on('error', (e) => {
      client.close();
      reject(e);
    });
    call.on('end', () => {
      client.close();
      resolve(out);
    });
  });
}

/** The Tetragon-shaped event inside a runtime flow's extensions. */
export function runtimeOf(resp: Plain): TetragonJsonEvent | undefined {
  return resp.flow ? tetragonEventOf(resp.flow) : undefined;
}
