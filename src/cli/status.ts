// `tetrahub status`: asks a running agent (admin socket) what it runs and counts.
import * as http from 'node:http';
import { summarizeHooks, type StatusSnapshot } from '../agent/status';

export function fetchStatus(socketPath: string): Promise<StatusSnapshot> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: '/status', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as StatusSnapshot);
        } catch (e) {
          reject(new Error(`bad status answer: ${(e as Error).message}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

export function formatStatus(s: StatusSnapshot): string {
  const out: string[] = [];
  out.push(`tetrahub ${s.version} on node ${s.nodeName}, up ${(s.uptimeNs / 1e9).toFixed(0)} s`);
  out.push('', 'Sensors:');
  for (const sen of s.sensors) {
    out.push(`  ${sen.name.padEnd(12)} ${sen.state.padEnd(9)} ${summarizeHooks(sen.hooks)}${sen.note ? `\n  ${''.padEnd(12)} note: ${sen.note}` : ''}`);
  }
  if (s.policies) {
    out.push('', `Tracing policies (${s.policies.length}):`);
    if (s.policies.length === 0) out.push('  none (--tracing-policy, --tracing-policy-dir or `tetrahub policy add`)');
    for (const p of s.policies) {
      const name = p.namespace ? `${p.namespace}/${p.name}` : p.name;
      const c = p.counters;
      const enforced = (c.signal ?? 0) + (c.override ?? 0) + (c.notifyEnforcer ?? 0);
      const audited = (c.monitorSignal ?? 0) + (c.monitorOverride ?? 0) + (c.monitorNotifyEnforcer ?? 0);
      out.push(`  ${name.padEnd(24)} ${p.state.padEnd(10)} mode ${p.mode.padEnd(12)} ${(p.file ?? p.source).padEnd(10)} posted ${c.post ?? 0}, enforced ${enforced}, audited ${audited}, ${Math.round(p.kernelMemoryBytes / 1024)} KiB`);
      for (const h of p.hooks) {
        out.push(`    ${h.section} ${h.call} → ${h.attachedAs || '-'}${h.state === 'loaded' ? '' : ` [${h.state}${h.reason ? `: ${h.reason}` : ''}]`}${h.fallback ? ` (fallback: ${h.fallback})` : ''}`);
      }
      if (p.error) out.push(`    error: ${p.error.split('\n').join('\n           ')}`);
    }
  }
  out.push('', 'Kernel features:');
  out.push('  ' + Object.entries(s.features).map(([k, v]) => `${k}=${v ? 'yes' : 'no'}`).join('  '));
  if (s.notes.length) {
    out.push('', 'Notes:');
    for (const n of s.notes) out.push(`  - ${n}`);
  }
  out.push('', 'Listeners:');
  for (const [k, v] of Object.entries(s.listeners)) out.push(`  ${k.padEnd(9)} ${v.join(', ')}`);
  out.push('', 'Counters:');
  for (const [k, v] of Object.entries(s.counters).sort()) out.push(`  ${k.padEnd(34)} ${v}`);
  return out.join('\n') + '\n';
}

export async function runStatus(argv: string[]): Promise<number> {
  let socket = '/var/run/tetrahub/admin.sock';
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--admin-socket') socket = argv[++i];
    else if (argv[i] === '-o' && argv[i + 1] === 'json') {
      json = true;
      i++;
    } else {
      process.stderr.write(`tetrahub status: unknown flag "${argv[i]}" (flags: --admin-socket PATH, -o json)\n`);
      return 2;
    }
  }
  try {
    const s = await fetchStatus(socket);
    process.stdout.write(json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
    return 0;
  } catch (e) {
    process.stderr.write(`tetrahub status: cannot reach the agent at ${socket}: ${(e as Error).message}\n`);
    return 1;
  }
}
