// DLabels and podSelector for the connect backend: CiliumNetworkPolicy-style
// label selectors resolved to Cilium identity numbers (and pod network
// namespaces), kept current while identities appear and vanish.
//
// Sources, all through the Cilium agent API (the stand-in speaks the same
// JSON): GET /v1/identity (every identity the agent knows, with labels),
// GET /v1/identity/{id} for identity numbers the ipcache holds that the
// listing did not have (bounded per round), GET /v1/endpoint for local pods.
// Reserved identities match by their reserved:<name> labels without the API.
import * as fs from 'node:fs';
import * as http from 'node:http';
import { socketPathOf } from '../../enrich/cilium/api';
import { RESERVED_NAMES, reservedLabels } from '../../enrich/cilium/reserved';
import type { LabelSelector } from '../types';

/** `source:key=value` (or `key=value`, `source:key`) → its parts. */
export function splitLabel(label: string): { source: string; key: string; value: string } {
  const eq = label.indexOf('=');
  const kv = eq >= 0 ? label.slice(0, eq) : label;
  const value = eq >= 0 ? label.slice(eq + 1) : '';
  const colon = kv.indexOf(':');
  // A key may itself contain '/', never ':' (Kubernetes label keys).
  return colon >= 0 ? { source: kv.slice(0, colon), key: kv.slice(colon + 1), value } : { source: 'any', key: kv, value };
}

/** Values of `key` (with optional source prefix: `k8s:app`; none or `any:` = every source) among labels. */
function valuesOf(labels: readonly string[], selKey: string): string[] {
  const s = splitLabel(selKey);
  const out: string[] = [];
  for (const l of labels) {
    const p = splitLabel(l);
    if (p.key !== s.key) continue;
    if (s.source !== 'any' && p.source !== s.source) continue;
    out.push(p.value);
  }
  return out;
}

/** Kubernetes LabelSelector semantics over Cilium label strings (`k8s:app=db`). */
export function selectorMatches(sel: LabelSelector, labels: readonly string[]): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
    if (!valuesOf(labels, k).includes(v)) return false;
  }
  for (const e of sel.matchExpressions ?? []) {
    const vals = valuesOf(labels, e.key);
    switch (e.operator) {
      case 'In':
        if (!vals.some((x) => (e.values ?? []).includes(x))) return false;
        break;
      case 'NotIn':
        if (vals.some((x) => (e.values ?? []).includes(x))) return false;
        break;
      case 'Exists':
        if (vals.length === 0) return false;
        break;
      case 'DoesNotExist':
        if (vals.length > 0) return false;
        break;
    }
  }
  return true;
}

export interface LabeledIdentity {
  id: number;
  labels: readonly string[];
}

export interface IdentitySourceOptions {
  /** Cilium agent API socket (`unix:///…` or a path). */
  socket: string;
  timeoutMs?: number;
  maxBytes?: number;
}

export class IdentityListError extends Error {}

/** One GET on the agent API; rejects with IdentityListError naming what went wrong. */
export function apiGet(opts: IdentitySourceOptions, pathname: string): Promise<{ status: number; body: unknown }> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const maxBytes = opts.maxBytes ?? 16 << 20;
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: socketPathOf(opts.socket), path: pathname, headers: { Accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > maxBytes) {
          req.destroy(new IdentityListError(`GET ${pathname}: response over ${maxBytes} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode === 404) return resolve({ status: 404, body: undefined });
        if (res.statusCode !== 200) return reject(new IdentityListError(`GET ${pathname}: HTTP ${res.statusCode}`));
        try {
          resolve({ status: 200, body: JSON.parse(text) as unknown });
        } catch {
          reject(new IdentityListError(`GET ${pathname}: not JSON`));
        }
      });
      res.on('error', (e) => reject(new IdentityListError(`GET ${pathname}: ${e.message}`)));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new IdentityListError(`GET ${pathname}: no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => reject(e instanceof IdentityListError ? e : new IdentityListError(`GET ${pathname}: ${e.message}`)));
  });
}

function asIdentity(v: unknown): LabeledIdentity | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as { id?: unknown; labels?: unknown };
  if (typeof o.id !== 'number' || !Number.isInteger(o.id) || o.id < 0 || o.id > 0xffffffff) return undefined;
  const labels = Array.isArray(o.labels) && o.labels.every((x) => typeof x === 'string') ? (o.labels as string[]) : [];
  return { id: o.id, labels };
}

/** GET /v1/identity: every identity with labels. */
export async function listIdentities(opts: IdentitySourceOptions): Promise<LabeledIdentity[]> {
  const r = await apiGet(opts, '/v1/identity');
  if (r.status === 404) throw new IdentityListError('GET /v1/identity: 404 (agent API without identity listing)');
  if (!Array.isArray(r.body)) throw new IdentityListError('GET /v1/identity: not a list');
  const out: LabeledIdentity[] = [];
  for (const x of r.body) {
    const id = asIdentity(x);
    if (id) out.push(id);
  }
  return out;
}

/** GET /v1/identity/{id}; undefined on 404. */
export async function fetchIdentity(opts: IdentitySourceOptions, id: number): Promise<LabeledIdentity | undefined> {
  const r = await apiGet(opts, `/v1/identity/${id}`);
  return r.status === 404 ? undefined : asIdentity(r.body);
}

/** Reserved identities with their labels (matchable without the API). */
export function reservedIdentities(): LabeledIdentity[] {
  const out: LabeledIdentity[] = [];
  for (const id of RESERVED_NAMES.keys()) {
    const l = reservedLabels(id);
    if (l) out.push({ id, labels: l });
  }
  return out;
}

/** Network namespace inodes of running processes, with one pid each (for /proc/<pid>/net). Bounded. */
export async function netnsOfProcesses(limit = 65536, procRoot = '/proc'): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  let names: string[];
  try {
    names = await fs.promises.readdir(procRoot);
  } catch {
    return out;
  }
  let seen = 0;
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    if (++seen > limit) break;
    try {
      const st = await fs.promises.stat(`${procRoot}/${n}/ns/net`);
      if (!out.has(st.ino)) out.set(st.ino, Number(n));
    } catch {
      /* gone */
    }
  }
  return out;
}
