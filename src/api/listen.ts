// Binds one gRPC server on several addresses ("unix:///path" and "host:port").
// Stale unix sockets are removed first; parent directories are created.
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface BoundServer {
  server: grpc.Server;
  /** Addresses actually bound (TCP ports resolved). */
  addresses: string[];
  close(): Promise<void>;
}

export function unixPath(address: string): string | undefined {
  if (address.startsWith('unix://')) return address.slice('unix://'.length);
  if (address.startsWith('unix:')) return address.slice('unix:'.length);
  return undefined;
}

/** Server options shared by every API: bounded message sizes and keepalive. */
export const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.max_send_message_length': 16 * 1024 * 1024,
  'grpc.keepalive_time_ms': 60_000,
  'grpc.keepalive_timeout_ms': 20_000,
  'grpc.max_concurrent_streams': 256,
};

export async function bindAll(server: grpc.Server, addresses: string[]): Promise<BoundServer> {
  const bound: string[] = [];
  for (const addr of addresses) {
    const p = unixPath(addr);
    if (p) {
      fs.mkdirSync(path.dirname(p), { recursive: true });
      try {
        if (fs.statSync(p).isSocket()) fs.unlinkSync(p);
      } catch {
        /* absent */
      }
    }
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(new Error(`cannot listen on ${addr}: ${err.message}`)) : resolve(port))),
    );
    if (p) {
      fs.chmodSync(p, 0o660);
      bound.push(addr);
    } else {
      const host = addr.slice(0, addr.lastIndexOf(':'));
      bound.push(`${host}:${port}`);
    }
  }
  return {
    server,
    addresses: bound,
    close: () =>
      new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      }).then(() => {
        for (const a of bound) {
          const p = unixPath(a);
          if (p) fs.rmSync(p, { force: true });
        }
      }),
  };
}
