// Compiles Hubble FlowFilters (whitelist/blacklist) into predicates over the
// Flow object the encoder builds once per event, with the semantics of Cilium's
// server-side filters (hubble-api.md §4.6). Working on the Flow rather than the
// internal event means network flows (l4, IPs, L7) match through the same code.
//
// Within one FlowFilter every set field must match (AND); values inside one
// field are alternatives (OR). Result = (whitelist empty or any matches) and no
// blacklist entry matches. Build errors name the field and index, e.g.
// `whitelist[0].source_ip[1]: invalid IP or CIDR "10.0.0.999"`.
import * as net from 'node:net';
import type { RuntimeEvent } from '../../model/event';
import type { Endpoint, Flow, FlowFilter, HTTPHeader, RuntimeFilter, Service, TCPFlags, Workload } from './types';
import { Verdict } from './types';

export class FilterError extends Error {}

export type FlowPredicate = (flow: Flow) => boolean;
export type RuntimePredicate = (ev: RuntimeEvent) => boolean;

const matchAll: FlowPredicate = () => true;

// ---------------------------------------------------------------- helpers

/**
 * Compiles a Go-style (RE2) pattern as a JS RegExp. Go patterns often start with
 * inline flags such as `(?i)`, which Node 20 does not accept, so a leading flag
 * group is turned into RegExp flags. Matching is unanchored, like MatchString.
 */
export function compileGoRegex(src: string, label: string): RegExp {
  let pattern = src;
  let flags = '';
  const m = /^\(\?([imsU]+)\)/.exec(pattern);
  if (m) {
    for (const f of m[1]) if (f !== 'U' && !flags.includes(f)) flags += f;
    pattern = pattern.slice(m[0].length);
  }
  try {
    return new RegExp(pattern, flags);
  } catch (e) {
    throw new FilterError(`${label}: invalid regular expression ${JSON.stringify(src)}: ${(e as Error).message}`);
  }
}

function ipFamily(addr: string): 'ipv4' | 'ipv6' | undefined {
  const v = net.isIP(addr);
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : undefined;
}

/** Exact IPs and CIDRs; Go's ParseCIDR accepts host bits set ("10.0.0.1/8"). */
function ipMatcher(values: string[], label: string): (addr: string | undefined) => boolean {
  const list = new net.BlockList();
  values.forEach((v, i) => {
    const bad = () => new FilterError(`${label}[${i}]: invalid IP or CIDR ${JSON.stringify(v)}`);
    const slash = v.indexOf('/');
    if (slash < 0) {
      const fam = ipFamily(v);
      if (!fam || v.includes('%')) throw bad();
      list.addAddress(v, fam);
      return;
    }
    const addr = v.slice(0, slash);
    const bitsText = v.slice(slash + 1);
    const fam = ipFamily(addr);
    const bits = /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : -1;
    if (!fam || addr.includes('%') || bits < 0 || bits > (fam === 'ipv4' ? 32 : 128)) throw bad();
    list.addSubnet(addr, bits, fam);
  });
  return (addr) => {
    if (!addr) return false;
    const fam = ipFamily(addr);
    return fam !== undefined && list.check(addr, fam);
  };
}

interface NameFilter {
  namespace: string;
  prefix: string;
}

/** `ns/prefix`, bare `name` (namespace "default"), `ns/` (any name), `/name` (any namespace). */
function parseNamespacedNames(values: string[], label: string, what: string): NameFilter[] {
  return values.map((v, i) => {
    if (v === '') throw new FilterError(`${label}[${i}]: invalid empty ${what} filter`);
    const slash = v.indexOf('/');
    if (slash < 0) return { namespace: 'default', prefix: v };
    return { namespace: v.slice(0, slash), prefix: v.slice(slash + 1) };
  });
}

function namespacedNameMatcher(filters: NameFilter[], get: (f: Flow) => { namespace?: string; name?: string }): FlowPredicate {
  return (flow) => {
    const { namespace = '', name = '' } = get(flow);
    if (namespace === '' && name === '') return false;
    return filters.some((f) => (f.namespace === '' || f.namespace === namespace) && name.startsWith(f.prefix));
  };
}

/** FQDN wildcard pattern → anchored, case-insensitive regex; `*` matches within and across labels. */
function fqdnMatcher(values: string[], label: string): (names: string[] | undefined) => boolean {
  const res = values.map((v, i) => {
    const p = v.trim().toLowerCase().replace(/\.$/, '');
    if (!/^[-a-z0-9_.*]+$/.test(p)) {
      throw new FilterError(`${label}[${i}]: invalid FQDN pattern ${JSON.stringify(v)}: only alphanumeric ASCII characters, '-', '_', '.' and '*' are allowed`);
    }
    return new RegExp(`^${p.replace(/\./g, '\\.').replace(/\*/g, '[-a-z0-9_.]*')}$`);
  });
  return (names) => {
    if (!names || names.length === 0) return false;
    for (const n of names) {
      const name = n.toLowerCase().replace(/\.$/, '');
      if (res.some((r) => r.test(name))) return true;
    }
    return false;
  };
}

// ------------------------------------------------------- label selectors

type Requirement =
  | { op: 'exists' | 'notexists'; key: string }
  | { op: 'in' | 'notin'; key: string; values: Set<string> }
  | { op: 'gt' | 'lt'; key: string; value: number };

/**
 * Parses a Kubernetes label selector (`a=b,c!=d,e in (x,y),f notin (z),g,!h,i>3`).
 * With `sourced`, keys may carry a Cilium source prefix (`k8s:app`,
 * `reserved:host`); an unprefixed key matches a label from any source.
 */
export function parseLabelSelector(selector: string, label: string, sourced: boolean): Requirement[] {
  const reqs: Requirement[] = [];
  let pos = 0;
  const s = selector;
  const fail = (msg: string): never => {
    throw new FilterError(`${label}: invalid label selector ${JSON.stringify(selector)}: ${msg}`);
  };
  const ws = () => {
    while (pos < s.length && /\s/.test(s[pos])) pos++;
  };
  const KEY = /^[A-Za-z0-9._\-/:]+/;
  const VALUE = /^[A-Za-z0-9._\-]*/;
  const normKey = (k: string): string => {
    if (!sourced) return k;
    const c = k.indexOf(':');
    if (c < 0) return `any\u0000${k}`;
    const src = k.slice(0, c);
    const key = k.slice(c + 1);
    if (!key) fail(`empty key in ${JSON.stringify(k)}`);
    return `${src || 'any'}\u0000${key}`;
  };
  const readKey = (): string => {
    ws();
    const m = KEY.exec(s.slice(pos));
    if (!m) return fail(`expected a label key at position ${pos}`);
    pos += m[0].length;
    return normKey(m[0]);
  };
  const readValue = (): string => {
    ws();
    const m = VALUE.exec(s.slice(pos));
    pos += m ? m[0].length : 0;
    return m ? m[0] : '';
  };
  ws();
  if (pos === s.length) return reqs; // empty selector selects everything
  for (;;) {
    ws();
    if (s[pos] === '!') {
      pos++;
      reqs.push({ op: 'notexists', key: readKey() });
    } else {
      const key = readKey();
      ws();
      const rest = s.slice(pos);
      if (rest.startsWith('==') || rest.startsWith('=') || rest.startsWith('!=')) {
        const neg = rest.startsWith('!=');
        pos += rest.startsWith('=') && !rest.startsWith('==') ? 1 : 2;
        reqs.push({ op: neg ? 'notin' : 'in', key, values: new Set([readValue()]) });
      } else if (rest.startsWith('>') || rest.startsWith('<')) {
        pos++;
        const v = readValue();
        if (!/^-?\d+$/.test(v)) fail(`${JSON.stringify(v)} is not an integer`);
        reqs.push({ op: rest[0] === '>' ? 'gt' : 'lt', key, value: Number(v) });
      } else if (/^(in|notin)\s*\(/.test(rest)) {
        const op = rest.startsWith('in') ? 'in' : 'notin';
        pos += op.length;
        ws();
        pos++; // '('
        const values = new Set<string>();
        for (;;) {
          values.add(readValue());
          ws();
          if (s[pos] === ',') {
            pos++;
            continue;
          }
          if (s[pos] === ')') {
            pos++;
            break;
          }
          fail(`expected ',' or ')' at position ${pos}`);
        }
        reqs.push({ op, key, values });
      } else {
        reqs.push({ op: 'exists', key });
      }
    }
    ws();
    if (pos === s.length) break;
    if (s[pos] !== ',') fail(`unexpected ${JSON.stringify(s[pos])} at position ${pos}`);
    pos++;
  }
  return reqs;
}

/** Flow labels (`source:key=value`) → lookup map with both `source\0key` and `any\0key`. */
function sourcedLabelMap(labels: string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  if (!labels) return m;
  for (const l of labels) {
    const c = l.indexOf(':');
    const eq = l.indexOf('=', c + 1);
    const src = c >= 0 && (eq < 0 || c < eq) ? l.slice(0, c) : 'unspec';
    const kv = c >= 0 && (eq < 0 || c < eq) ? l.slice(c + 1) : l;
    const e = kv.indexOf('=');
    const key = e < 0 ? kv : kv.slice(0, e);
    const value = e < 0 ? '' : kv.slice(e + 1);
    m.set(`${src}\u0000${key}`, value);
    m.set(`any\u0000${key}`, value);
  }
  return m;
}

function plainLabelMap(labels: string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of labels ?? []) {
    const e = l.indexOf('=');
    m.set(e < 0 ? l : l.slice(0, e), e < 0 ? '' : l.slice(e + 1));
  }
  return m;
}

function selectorMatches(reqs: Requirement[], labels: Map<string, string>): boolean {
  for (const r of reqs) {
    const v = labels.get(r.key);
    switch (r.op) {
      case 'exists':
        if (v === undefined) return false;
        break;
      case 'notexists':
        if (v !== undefined) return false;
        break;
      case 'in':
        if (v === undefined || !r.values.has(v)) return false;
        break;
      case 'notin':
        if (v !== undefined && r.values.has(v)) return false;
        break;
      case 'gt':
      case 'lt': {
        if (v === undefined || !/^-?\d+$/.test(v)) return false;
        const n = Number(v);
        if (r.op === 'gt' ? !(n > r.value) : !(n < r.value)) return false;
        break;
      }
    }
  }
  return true;
}

function labelMatcher(values: string[], label: string, get: (f: Flow) => string[] | undefined, sourced: boolean): FlowPredicate {
  const selectors = values.map((v, i) => parseLabelSelector(v, `${label}[${i}]`, sourced));
  const toMap = sourced ? sourcedLabelMap : plainLabelMap;
  return (flow) => {
    const m = toMap(get(flow));
    return selectors.some((sel) => selectorMatches(sel, m));
  };
}

// ------------------------------------------------------------ node names

/**
 * `--node-name` glob over `cluster/node`: a flow name without `/` counts as
 * `default/<name>`; a pattern without `/` matches any cluster. `*` stays within
 * one DNS label, `**` spans one or more labels.
 */
function nodeNamePattern(p: string, label: string): RegExp {
  if (!/^[a-z0-9.\-/*]+$/.test(p) || p.split('/').length > 2) {
    throw new FilterError(`${label}: invalid node name pattern ${JSON.stringify(p)}: only lowercase letters, digits, '-', '.', '/' and '*' are allowed`);
  }
  const glob = (g: string): string =>
    g
      .split(/(\*\*|\*)/)
      .map((t) => (t === '**' ? '[a-z0-9-]+(?:\\.[a-z0-9-]+)*' : t === '*' ? '[a-z0-9-]*' : t.replace(/\./g, '\\.')))
      .join('');
  const slash = p.indexOf('/');
  const cluster = slash < 0 ? '[^/]+' : glob(p.slice(0, slash));
  const node = glob(slash < 0 ? p : p.slice(slash + 1));
  return new RegExp(`^${cluster}/${node}$`);
}

// ---------------------------------------------------------------- ports etc.

function parsePort(v: string, label: string): number {
  if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) throw new FilterError(`${label}: invalid port ${JSON.stringify(v)}`);
  return Number(v);
}

function l4Ports(flow: Flow): { source_port?: number; destination_port?: number } | undefined {
  const l4 = flow.l4;
  return l4 ? (l4.TCP ?? l4.UDP ?? l4.SCTP) : undefined;
}

const PROTOCOLS: Record<string, (f: Flow) => boolean> = {
  tcp: (f) => !!f.l4?.TCP,
  udp: (f) => !!f.l4?.UDP,
  sctp: (f) => !!f.l4?.SCTP,
  icmp: (f) => !!(f.l4?.ICMPv4 || f.l4?.ICMPv6),
  icmpv4: (f) => !!f.l4?.ICMPv4,
  icmpv6: (f) => !!f.l4?.ICMPv6,
  vrrp: (f) => !!f.l4?.VRRP,
  igmp: (f) => !!f.l4?.IGMP,
  dns: (f) => !!f.l7?.dns,
  http: (f) => !!f.l7?.http,
  kafka: (f) => !!f.l7?.kafka,
};

const TCP_FLAG_NAMES: (keyof TCPFlags)[] = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'];

function workloadMatcher(filters: Workload[], get: (f: Flow) => Endpoint | undefined): FlowPredicate {
  return (flow) => {
    const wls = get(flow)?.workloads;
    if (!wls || wls.length === 0) return false;
    return wls.some((w) => filters.some((f) => (!f.name || f.name === w.name) && (!f.kind || f.kind === w.kind)));
  };
}

function urlPath(u: string): string {
  try {
    return new URL(u, 'http://_/').pathname;
  } catch {
    return '';
  }
}

function setOf<T>(values: T[]): Set<T> {
  return new Set(values);
}

// ------------------------------------------------------------ compilation

type Builder = (values: never[], label: string) => FlowPredicate;

const src = (f: Flow) => f.source;
const dst = (f: Flow) => f.destination;
const svcName = (s: Service | undefined) => ({ namespace: s?.namespace, name: s?.name });

/** One builder per FlowFilter field; each receives the non-empty value list. */
const BUILDERS: { [K in keyof FlowFilter]-?: (values: NonNullable<FlowFilter[K]>, label: string) => FlowPredicate } = {
  uuid: (v) => {
    const s = setOf(v);
    return (f) => !!f.uuid && s.has(f.uuid);
  },
  source_ip: (v, l) => {
    const m = ipMatcher(v, l);
    return (f) => m(f.IP?.source);
  },
  source_ip_xlated: (v, l) => {
    const m = ipMatcher(v, l);
    return (f) => m(f.IP?.source_xlated);
  },
  destination_ip: (v, l) => {
    const m = ipMatcher(v, l);
    return (f) => m(f.IP?.destination);
  },
  source_pod: (v, l) => namespacedNameMatcher(parseNamespacedNames(v, l, 'pod name'), (f) => ({ namespace: f.source?.namespace, name: f.source?.pod_name })),
  destination_pod: (v, l) =>
    namespacedNameMatcher(parseNamespacedNames(v, l, 'pod name'), (f) => ({ namespace: f.destination?.namespace, name: f.destination?.pod_name })),
  source_service: (v, l) => namespacedNameMatcher(parseNamespacedNames(v, l, 'service name'), (f) => svcName(f.source_service)),
  destination_service: (v, l) => namespacedNameMatcher(parseNamespacedNames(v, l, 'service name'), (f) => svcName(f.destination_service)),
  source_fqdn: (v, l) => {
    const m = fqdnMatcher(v, l);
    return (f) => m(f.source_names);
  },
  destination_fqdn: (v, l) => {
    const m = fqdnMatcher(v, l);
    return (f) => m(f.destination_names);
  },
  source_label: (v, l) => labelMatcher(v, l, (f) => f.source?.labels, true),
  destination_label: (v, l) => labelMatcher(v, l, (f) => f.destination?.labels, true),
  node_labels: (v, l) => labelMatcher(v, l, (f) => f.node_labels, false),
  source_identity: (v) => {
    const s = setOf(v);
    return (f) => s.has(f.source?.identity ?? 0);
  },
  destination_identity: (v) => {
    const s = setOf(v);
    return (f) => s.has(f.destination?.identity ?? 0);
  },
  source_workload: (v) => workloadMatcher(v, src),
  destination_workload: (v) => workloadMatcher(v, dst),
  source_cluster_name: (v) => {
    const s = setOf(v);
    return (f) => s.has(f.source?.cluster_name ?? '');
  },
  destination_cluster_name: (v) => {
    const s = setOf(v);
    return (f) => s.has(f.destination?.cluster_name ?? '');
  },
  traffic_direction: (v) => {
    const s = setOf(v);
    return (f) => s.has(f.traffic_direction ?? 0);
  },
  verdict: (v) => {
    const s = setOf(v);
    return (f) => s.has(f.verdict ?? 0);
  },
  drop_reason_desc: (v) => {
    const s = setOf(v);
    return (f) => s.has(f.drop_reason_desc ?? 0);
  },
  interface: (v) => (f) => {
    const i = f.interface;
    if (!i) return false;
    return v.some((x) => (!x.index || x.index === i.index) && (!x.name || x.name === i.name));
  },
  event_type: (v) => (f) => {
    const et = f.event_type;
    if (!et) return false;
    return v.some((x) => (!x.type || x.type === (et.type ?? 0)) && (!x.match_sub_type || (x.sub_type ?? 0) === (et.sub_type ?? 0)));
  },
  http_status_code: (v, l) => {
    const full = new Set<string>();
    const prefixes: string[] = [];
    v.forEach((s, i) => {
      if (/^[1-5][0-9][0-9]$/.test(s)) full.add(s);
      else if (/^[1-5][0-9]?\+$/.test(s)) prefixes.push(s.slice(0, -1));
      else throw new FilterError(`${l}[${i}]: invalid status code prefix ${JSON.stringify(s)}`);
    });
    return (f) => {
      const code = f.l7?.http?.code;
      if (!code) return false;
      const c = String(code).padStart(3, '0');
      return full.has(c) || prefixes.some((p) => c.startsWith(p));
    };
  },
  protocol: (v, l) => {
    const preds = v.map((p, i) => {
      const fn = PROTOCOLS[p.toLowerCase()];
      if (!fn) throw new FilterError(`${l}[${i}]: unknown protocol ${JSON.stringify(p)}`);
      return fn;
    });
    return (f) => preds.some((p) => p(f));
  },
  source_port: (v, l) => {
    const s = setOf(v.map((p, i) => parsePort(p, `${l}[${i}]`)));
    return (f) => {
      const p = l4Ports(f);
      return !!p && s.has(p.source_port ?? 0);
    };
  },
  destination_port: (v, l) => {
    const s = setOf(v.map((p, i) => parsePort(p, `${l}[${i}]`)));
    return (f) => {
      const p = l4Ports(f);
      return !!p && s.has(p.destination_port ?? 0);
    };
  },
  reply: (v) => (f) => {
    // Drops have no direction; Cilium treats their unknown is_reply as false.
    const reply = f.is_reply ? !!f.is_reply.value : f.verdict === Verdict.DROPPED ? false : undefined;
    return reply !== undefined && v.includes(reply);
  },
  dns_query: (v, l) => {
    const res = v.map((p, i) => compileGoRegex(p, `${l}[${i}]`));
    return (f) => {
      const dns = f.l7?.dns;
      return !!dns && res.some((r) => r.test(dns.query ?? ''));
    };
  },
  http_method: (v) => {
    const s = setOf(v.map((m) => m.toUpperCase()));
    return (f) => {
      const http = f.l7?.http;
      return !!http && s.has((http.method ?? '').toUpperCase());
    };
  },
  http_path: (v, l) => {
    const res = v.map((p, i) => compileGoRegex(p, `${l}[${i}]`));
    return (f) => {
      const http = f.l7?.http;
      if (!http) return false;
      const p = urlPath(http.url ?? '');
      return res.some((r) => r.test(p));
    };
  },
  http_url: (v, l) => {
    const res = v.map((p, i) => compileGoRegex(p, `${l}[${i}]`));
    return (f) => {
      const http = f.l7?.http;
      return !!http && res.some((r) => r.test(http.url ?? ''));
    };
  },
  http_header: (v: HTTPHeader[]) => (f) => {
    const headers = f.l7?.http?.headers;
    if (!headers) return false;
    return headers.some((h) => v.some((x) => (x.key ?? '') === (h.key ?? '') && (x.value ?? '') === (h.value ?? '')));
  },
  tcp_flags: (v) => (f) => {
    const flags = f.l4?.TCP?.flags;
    if (!flags) return false;
    return v.some((want) => TCP_FLAG_NAMES.every((n) => !want[n] || !!flags[n]));
  },
  node_name: (v, l) => {
    const res = v.map((p, i) => nodeNamePattern(p, `${l}[${i}]`));
    return (f) => {
      const n = f.node_name;
      if (!n) return false;
      const full = n.includes('/') ? n : `default/${n}`;
      return res.some((r) => r.test(full));
    };
  },
  ip_version: (v) => {
    const s = setOf(v);
    return (f) => s.has(f.IP?.ipVersion ?? 0);
  },
  trace_id: (v) => {
    const s = setOf(v);
    return (f) => s.has(f.trace_context?.parent?.trace_id ?? '');
  },
  ip_trace_id: (v, l) => {
    const s = setOf(
      v.map((x, i) => {
        try {
          return BigInt(x).toString();
        } catch {
          throw new FilterError(`${l}[${i}]: invalid trace id ${JSON.stringify(x)}`);
        }
      }),
    );
    return (f) => !!f.ip_trace_id && s.has(String(f.ip_trace_id.trace_id ?? 0));
  },
  encrypted: (v) => {
    const s = setOf(v);
    return (f) => s.has(!!f.IP?.encrypted);
  },
  experimental: (v, l) => {
    if (v.cel_expression && v.cel_expression.length > 0) {
      throw new FilterError(`${l}.cel_expression: cel_expression is not supported by this server`);
    }
    return matchAll;
  },
};

/** Compiles one FlowFilter; `label` is its position, e.g. `whitelist[0]`. */
export function compileFlowFilter(filter: FlowFilter, label: string): FlowPredicate {
  const preds: FlowPredicate[] = [];
  for (const key of Object.keys(filter) as (keyof FlowFilter)[]) {
    const values = filter[key];
    if (values === undefined || values === null) continue;
    if (Array.isArray(values) && values.length === 0) continue;
    const build = BUILDERS[key] as Builder | undefined;
    if (!build) continue; // a field newer than this schema: decoders drop those anyway
    const p = build(values as never[], `${label}.${key}`);
    if (p !== matchAll) preds.push(p);
  }
  if (preds.length === 0) return matchAll;
  if (preds.length === 1) return preds[0];
  return (flow) => {
    for (const p of preds) if (!p(flow)) return false;
    return true;
  };
}

/** Whitelist (empty = all) minus blacklist. Throws FilterError on invalid input. */
export function compileFilterLists(whitelist: FlowFilter[] = [], blacklist: FlowFilter[] = []): FlowPredicate {
  const white = whitelist.map((f, i) => compileFlowFilter(f, `whitelist[${i}]`));
  const black = blacklist.map((f, i) => compileFlowFilter(f, `blacklist[${i}]`));
  if (white.length === 0 && black.length === 0) return matchAll;
  return (flow) => {
    if (white.length > 0 && !white.some((p) => p(flow))) return false;
    return !black.some((p) => p(flow));
  };
}

/** tetrahub.v1.RuntimeFilter over the internal event (set fields AND, values OR). */
export function compileRuntimeFilter(rf: RuntimeFilter, label = 'extensions'): RuntimePredicate | undefined {
  const preds: RuntimePredicate[] = [];
  const regexes = (v: string[] | undefined, field: string) => (v ?? []).map((p, i) => compileGoRegex(p, `${label}.${field}[${i}]`));
  const bin = regexes(rf.binary_regex, 'binary_regex');
  if (bin.length) preds.push((ev) => bin.some((r) => r.test(ev.process.binary)));
  const args = regexes(rf.arguments_regex, 'arguments_regex');
  if (args.length) preds.push((ev) => args.some((r) => r.test(ev.process.arguments)));
  const parent = regexes(rf.parent_binary_regex, 'parent_binary_regex');
  if (parent.length) preds.push((ev) => !!ev.parent && parent.some((r) => r.test(ev.parent!.binary)));
  if (rf.pid && rf.pid.length) {
    const pids = new Set(rf.pid);
    preds.push((ev) => pids.has(ev.process.pid));
  }
  if (preds.length === 0) return undefined;
  return (ev) => preds.every((p) => p(ev));
}
