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
  if (s.policies) lines.push(...policyMetrics(s.policies));
  return lines.join('\n') + '\n';
}

function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Per-policy metrics, named after Tetragon's where it has one (tetragon-api.md §14). */
function policyMetrics(policies: NonNullable<StatusSnapshot['policies']>): string[] {
  const out: string[] = [];
  const id = (p: { name: string; namespace: string }): string => `policy="${labelValue(p.name)}",policy_namespace="${labelValue(p.namespace)}"`;
  out.push('# HELP tetrahub_tracingpolicy_loaded TracingPolicies by state.', '# TYPE tetrahub_tracingpolicy_loaded gauge');
  const states = ['enabled', 'disabled', 'load_error', 'error', 'loading', 'unloading'];
  for (const st of states) out.push(`tetrahub_tracingpolicy_loaded{state="${st}"} ${policies.filter((p) => p.state === st).length}`);
  out.push('# HELP tetrahub_tracingpolicy_kernel_memory_bytes Kernel memory of each TracingPolicy (map estimates).', '# TYPE tetrahub_tracingpolicy_kernel_memory_bytes gauge');
  for (const p of policies) out.push(`tetrahub_tracingpolicy_kernel_memory_bytes{${id(p)}} ${p.kernelMemoryBytes}`);
  out.push('# HELP tetrahub_policy_actions_total Actions taken (or, monitor_*, audited) by each TracingPolicy.', '# TYPE tetrahub_policy_actions_total counter');
  for (const p of policies) {
    for (const [action, n] of Object.entries(p.counters)) {
      const a = action.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      out.push(`tetrahub_policy_actions_total{${id(p)},action="${a}"} ${n}`);
    }
  }
  return out;
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
