// Test helpers for the Hubble API tests: synthetic events, CLI-like gRPC
// clients built from the same protos, and a tiny protojson-like renderer.
// (Not named *.test.ts / test-*.ts so the test runner does not execute it.)
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import type { ExecEvent, ExitEvent, LossNotice, ProcessInfo, WallTime } from '../../model/event';
import { connectHubble, structToJson, type HubbleClients } from './client';
import { protos } from './proto';

let pidSeq = 1000;

export function wall(sec: number, nsec = 0): WallTime {
  return { sec, nsec };
}

export function proc(over: Partial<ProcessInfo> = {}): ProcessInfo {
  const pid = over.pid ?? ++pidSeq;
  return {
    execId: Buffer.from(`node1:${pid * 1000}:${pid}`).toString('base64'),
    parentExecId: Buffer.from(`node1:1000:1`).toString('base64'),
    pid,
    tid: pid,
    ktime: BigInt(pid * 1000),
    creds: { uid: 0, gid: 0, euid: 0, egid: 0 },
    auid: 4294967295,
    cwd: '/',
    binary: '/usr/bin/curl',
    args: ['-s', 'https://ebpf.io'],
    arguments: '-s https://ebpf.io',
    flags: 'execve rootcwd',
    startTime: wall(1700000000, 5),
    cgroupId: 1n,
    docker: '',
    refcnt: 1,
    ...over,
  };
}

export function execEvent(over: Partial<ExecEvent> = {}, p: Partial<ProcessInfo> = {}): ExecEvent {
  return {
    kind: 'exec',
    seq: 0,
    time: wall(1700000100, 123456789),
    nodeName: 'node1',
    process: proc(p),
    parent: proc({ binary: '/bin/bash', arguments: '-c "curl https://ebpf.io"', pid: 1 }),
    wire: new Map(),
    ...over,
  };
}

export function exitEvent(over: Partial<ExitEvent> = {}, p: Partial<ProcessInfo> = {}): ExitEvent {
  return {
    kind: 'exit',
    seq: 0,
    time: wall(1700000101),
    nodeName: 'node1',
    process: proc(p),
    status: 0,
    signal: '',
    wire: new Map(),
    ...over,
  };
}

export function lossNotice(over: Partial<LossNotice> = {}): LossNotice {
  return { kind: 'lost', seq: 0, time: wall(1700000102), nodeName: 'node1', source: 'kernel_ring', count: 7, cpu: 3, wire: new Map(), ...over };
}

/** A pod-bearing process, as enrichment would fill it. */
export function podProcess(ns: string, name: string, labels: Record<string, string> = { app: name }): Partial<ProcessInfo> {
  return { pod: { namespace: ns, name, labels, workload: name, workloadKind: 'Deployment' } };
}

// ------------------------------------------------------------------ clients

type Obj = Record<string, unknown>;

export type Clients = HubbleClients;
export const connect = connectHubble;
export { structToJson };

type StreamMethod = (req: Obj) => grpc.ClientReadableStream<Obj>;
type UnaryMethod = (req: Obj, cb: (err: grpc.ServiceError | null, res: Obj) => void) => grpc.ClientUnaryCall;

export function openStream(client: grpc.Client, method: string, req: Obj): grpc.ClientReadableStream<Obj> {
  const fn = (client as unknown as Record<string, StreamMethod>)[method];
  return fn.call(client, req);
}

/** Collects a finite stream: all messages and the final error (undefined on OK). */
export function collect(client: grpc.Client, method: string, req: Obj): Promise<{ msgs: Obj[]; error?: grpc.ServiceError; headers?: grpc.Metadata }> {
  return new Promise((resolve) => {
    const msgs: Obj[] = [];
    let headers: grpc.Metadata | undefined;
    const s = openStream(client, method, req);
    s.on('metadata', (md: grpc.Metadata) => (headers = md));
    s.on('data', (m: Obj) => msgs.push(m));
    s.on('error', (error: grpc.ServiceError) => resolve({ msgs, error, headers }));
    s.on('end', () => resolve({ msgs, headers }));
  });
}

export function unaryCall(client: grpc.Client, method: string, req: Obj = {}): Promise<Obj> {
  const fn = (client as unknown as Record<string, UnaryMethod>)[method];
  return new Promise((resolve, reject) => fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res))));
}

/**
 * Reads messages from an open stream until `n` arrived (or timeout). The
 * stream is paused in between so no message is emitted without a listener.
 */
export function take(s: grpc.ClientReadableStream<Obj>, n: number, timeoutMs = 3000): Promise<Obj[]> {
  return new Promise((resolve, reject) => {
    const got: Obj[] = [];
    const finish = () => {
      clearTimeout(t);
      s.pause();
      s.off('data', on);
    };
    const t = setTimeout(() => {
      finish();
      reject(new Error(`timeout: got ${got.length}/${n} messages: ${JSON.stringify(got).slice(0, 500)}`));
    }, timeoutMs);
    const on = (m: Obj) => {
      got.push(m);
      if (got.length >= n) {
        finish();
        resolve(got);
      }
    };
    s.on('data', on);
    s.resume();
  });
}

export async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ----------------------------------------------------------- JSON rendering

/**
 * Renders a decoded message the way Go protojson does for the hubble CLI
 * (proto names, enum names, 64-bit ints as strings, unpopulated fields left
 * out, Timestamps as RFC 3339, Any(Struct) as {"@type", "value"}).
 */
export function protojson(type: protobuf.Type, msg: protobuf.Message<Obj> | Obj): Obj {
  const out: Obj = {};
  const m = msg as Obj;
  for (const field of type.fieldsArray) {
    const v = m[field.name];
    if (v === undefined || v === null) continue;
    field.resolve();
    const render = (x: unknown): unknown => {
      const rt = field.resolvedType;
      if (rt instanceof protobuf.Enum) return rt.valuesById[x as number] ?? x;
      if (rt instanceof protobuf.Type) {
        if (rt.fullName === '.google.protobuf.Timestamp') {
          const t = x as { seconds: number | { toNumber(): number }; nanos?: number };
          const sec = typeof t.seconds === 'number' ? t.seconds : t.seconds.toNumber();
          return new Date(sec * 1000).toISOString().replace(/\.\d+Z$/, `.${String(t.nanos ?? 0).padStart(9, '0')}Z`);
        }
        if (rt.fullName === '.google.protobuf.Any') {
          const a = x as { type_url: string; value: Uint8Array };
          const S = protos().Struct;
          return { '@type': a.type_url, value: structToJson(S.toObject(S.decode(a.value)) as Obj) };
        }
        if (rt.fullName.startsWith('.google.protobuf.') && rt.fullName.endsWith('Value')) return (x as Obj).value;
        return protojson(rt, x as Obj);
      }
      if (['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64'].includes(field.type)) return String(x);
      return x;
    };
    if (field.repeated) {
      const arr = v as unknown[];
      if (arr.length > 0) out[field.name] = arr.map(render);
      continue;
    }
    if (!field.resolvedType || field.resolvedType instanceof protobuf.Enum) {
      // Implicit presence: zero values are not printed.
      if (v === 0 || v === '' || v === false || (typeof v === 'object' && 'low' in (v as Obj) && String(v) === '0')) continue;
      if (v instanceof Uint8Array && v.length === 0) continue;
    }
    out[field.name] = render(v);
  }
  return out;
}
