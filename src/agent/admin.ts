// HTTP for operators: /status (JSON, what `tetrahub status` prints) on the admin
// unix socket and the metrics address, and /metrics (Prometheus text) on both.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { StatusProvider, StatusSnapshot } from './status';

export interface AdminServers {
  addresses: string[];
  close(): Promise<void>;
}

function metricName(counter: string): string {
  return 'tetrahub_' + counter.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** Prometheus text exposition of the status snapshot. */
export function renderMetrics(s: StatusSnapshot): string {
  const lines: string[] = [];
  lines.push('# HELP tetrahub_build_info Build information.', '# TYPE tetrahub_build_info gauge');
  lines.push(`tetrahub_build_info{version="${s.version}",node_name="${s.nodeName}"} 1`);
  lines.push('# HELP tetrahub_uptime_seconds Seconds since the agent started.', '# TYPE tetrahub_uptime_seconds gauge');
  lines.push(`tetrahub_uptime_seconds ${(s.uptimeNs / 1e9).toFixed(3)}`);
  lines.push('# HELP tetrahub_sensor_up Sensor state (1 running or fallback, 0 off or failed).', '# TYPE tetrahub_sensor_up gauge');
  for (const sen of s.sensors) {
    lines.push(`tetrahub_sensor_up{sensor="${sen.name}",state="${sen.state}"} ${sen.state === 'running' || sen.state === 'fallback' ? 1 : 0}`);
  }
  lines.push('# HELP tetrahub_kernel_feature Kernel feature availability.', '# TYPE tetrahub_kernel_feature gauge');
  for (const [k, v] of Object.entries(s.features)) lines.push(`tetrahub_kernel_feature{feature="${k}"} ${v ? 1 : 0}`);
  for (const [k, v] of Object.entries(s.counters).sort()) {
    const name = metricName(k);
    lines.push(`# TYPE ${name} gauge`, `${name} ${v}`);
  }
  return lines.join('\n') + '\n';
}

function handler(status: StatusProvider): http.RequestListener {
  return (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    try {
      if (req.method !== 'GET') {
        res.writeHead(405, { 'content-type': 'text/plain' }).end('method not allowed\n');
      } else if (url === '/status') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(status.snapshot()) + '\n');
      } else if (url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(renderMetrics(status.snapshot()));
      } else if (url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /status or /metrics\n');
      }
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`error: ${(e as Error).message}\n`);
    }
  };
}

function listen(server: http.Server, target: string | { host: string; port: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'string' ? `unix://${a}` : a ? `http://${a.address}:${a.port}` : String(target));
    };
    if (typeof target === 'string') server.listen(target, done);
    else server.listen(target.port, target.host, done);
  });
}

export async function startAdminServers(opts: { status: StatusProvider; adminSocket: string; metricsAddress: string }): Promise<AdminServers> {
  const servers: http.Server[] = [];
  const addresses: string[] = [];
  if (opts.adminSocket) {
    fs.mkdirSync(path.dirname(opts.adminSocket), { recursive: true });
    fs.rmSync(opts.adminSocket, { force: true });
    const s = http.createServer(handler(opts.status));
    addresses.push(await listen(s, opts.adminSocket));
    servers.push(s);
  }
  if (opts.metricsAddress) {
    const i = opts.metricsAddress.lastIndexOf(':');
    const host = opts.metricsAddress.slice(0, i) || '127.0.0.1';
    const port = Number(opts.metricsAddress.slice(i + 1));
    if (!Number.isInteger(port)) throw new Error(`metrics address "${opts.metricsAddress}": expected host:port`);
    const s = http.createServer(handler(opts.status));
    addresses.push(await listen(s, { host, port }));
    servers.push(s);
  }
  for (const s of servers) s.headersTimeout = 5000;
  return {
    addresses,
    close: async () => {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
      if (opts.adminSocket) fs.rmSync(opts.adminSocket, { force: true });
    },
  };
}
