// RuntimeEvent → Hubble Flow (hubble-api.md §8) and LossNotice → LostEvent.
//
//   exec, exit, file, syscall  runtime flow: event_type {200, Tetragon EventType
//                              (1, 5, 9 kprobe, 10 tracepoint)}, Type UNKNOWN, IP {}
//   net (connect, accept, …)   L3_L4 flow, event_type {7 trace-sock, xlate point}
//   dns (query, response)      L7 flow, event_type {129}, l7.dns
// All carry the event's Tetragon JSON in `extensions`.
//
// Each event's Flow object is built once (cached per event) and is what the
// filters look at; each GetFlowsResponse encoding is made once per event and
// field mask and cached in `ev.wire`, so every stream writes the same bytes.
import { randomUUID } from 'node:crypto';
import * as protobuf from 'protobufjs';
import type { DnsEvent, EndpointInfo, FileEvent, LossNotice, LossSource, NetEvent, PolicyArg, PolicyEvent, ProcessInfo, RuntimeEvent, SyscallEvent, WallTime } from '../../model/event';
import { dnsCnames, dnsIps, dnsSummary, dnsTtl, errnoName, eventToTetragonJson, formatResult, fqdn, hostPort, octalMode, openFlagNames } from '../tetragon/json';
import type { CompiledFieldMask } from './fieldmask';
import { protos, STRUCT_TYPE_URL } from './proto';
import type { AnyMessage, Endpoint, Flow, Layer4, LostEvent, TCPFlags, Timestamp } from './types';
import { FlowType, IPVersion, LostEventSource, RUNTIME_EVENT_TYPE, TetragonEventType, Verdict } from './types';

/** ev.wire key of the unmasked GetFlowsResponse; masked variants append `|<mask key>`. */
export const WIRE_KEY = 'hubble';

export function toTimestamp(t: WallTime): Timestamp {
  return { seconds: t.sec, nanos: t.nsec };
}

// ------------------------------------------------------------------ Struct

// google.protobuf.Struct is written straight from the JSON object with a
// protobufjs Writer: building the intermediate Struct/Value object tree and
// encoding it through reflection cost several times more per event.
//   Struct    { map<string, Value> fields = 1 }   entry { string key = 1; Value value = 2 }
//   Value     { null_value = 1 (varint), number_value = 2 (double), string_value = 3,
//               bool_value = 4, struct_value = 5, list_value = 6 }
//   ListValue { repeated Value values = 1 }
const TAG = {
  structField: (1 << 3) | 2,
  entryKey: (1 << 3) | 2,
  entryValue: (2 << 3) | 2,
  nullValue: (1 << 3) | 0,
  numberValue: (2 << 3) | 1,
  stringValue: (3 << 3) | 2,
  boolValue: (4 << 3) | 0,
  structValue: (5 << 3) | 2,
  listValue: (6 << 3) | 2,
  listItem: (1 << 3) | 2,
} as const;

/** Writes the Value's fields (without its own length prefix); false when the value is skipped. */
function writeValue(w: protobuf.Writer, v: unknown): boolean {
  switch (typeof v) {
    case 'string':
      w.uint32(TAG.stringValue).string(v);
      return true;
    case 'number':
      w.uint32(TAG.numberValue).double(v);
      return true;
    case 'boolean':
      w.uint32(TAG.boolValue).bool(v);
      return true;
    case 'bigint':
      // protojson prints 64-bit integers as strings; keep that shape.
      w.uint32(TAG.stringValue).string(v.toString());
      return true;
    case 'object':
      if (v === null) {
        w.uint32(TAG.nullValue).int32(0);
      } else if (Array.isArray(v)) {
        w.uint32(TAG.listValue).fork();
        for (const x of v) {
          w.uint32(TAG.listItem).fork();
          if (!writeValue(w, x)) w.uint32(TAG.nullValue).int32(0);
          w.ldelim();
        }
        w.ldelim();
      } else {
        w.uint32(TAG.structValue).fork();
        writeStructFields(w, v as Record<string, unknown>);
        w.ldelim();
      }
      return true;
    default:
      return false; // undefined and functions are left out, as JSON.stringify does
  }
}

function writeStructFields(w: protobuf.Writer, obj: Record<string, unknown>): void {
  for (const k in obj) {
    const v = obj[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    w.uint32(TAG.structField).fork();
    w.uint32(TAG.entryKey).string(k);
    w.uint32(TAG.entryValue).fork();
    writeValue(w, v);
    w.ldelim();
    w.ldelim();
  }
}

/** A JSON-like object encoded as a google.protobuf.Struct message. */
export function encodeStruct(obj: Record<string, unknown>): Uint8Array {
  const w = protobuf.Writer.create();
  writeStructFields(w, obj);
  return w.finish();
}

/** The Tetragon JSON of the event packed as Any(Struct), so `hubble observe -o json` can print it. */
export function tetragonExtensions(ev: RuntimeEvent): AnyMessage {
  // Exact-size copy: the cached Struct must not pin a pooled 8 KiB slab per event.
  return { type_url: STRUCT_TYPE_URL, value: Uint8Array.prototype.slice.call(encodeStruct(eventToTetragonJson(ev) as Record<string, unknown>)) };
}

// -------------------------------------------------------------------- Flow

interface FlowEntry {
  flow: Flow;
}

const flows = new WeakMap<RuntimeEvent, FlowEntry>();

/** Namespaces an event belongs to (for GetNamespaces), with the cluster when known. */
export function eventNamespaces(ev: RuntimeEvent): { cluster: string; namespace: string }[] {
  const out: { cluster: string; namespace: string }[] = [];
  const add = (ns: string | undefined): void => {
    if (ns && !out.some((o) => o.namespace === ns)) out.push({ cluster: '', namespace: ns });
  };
  add(ev.process.pod?.namespace || ev.process.endpoint?.namespace);
  if (ev.kind === 'net' || ev.kind === 'dns') {
    add(ev.source?.namespace);
    add(ev.destination?.namespace);
  }
  if (ev.kind === 'policy' && ev.net) {
    add(ev.net.source?.namespace);
    add(ev.net.destination?.namespace);
  }
  return out;
}

/** Cilium-style identity labels from pod labels, plus the namespace label Cilium adds. */
function podLabels(p: ProcessInfo): string[] {
  const pod = p.pod;
  if (!pod) return [];
  const out: string[] = [];
  for (const k of Object.keys(pod.labels).sort()) out.push(`k8s:${k}=${pod.labels[k]}`);
  if (pod.namespace && !('io.kubernetes.pod.namespace' in pod.labels)) out.push(`k8s:io.kubernetes.pod.namespace=${pod.namespace}`);
  return out;
}

/** The process as a Hubble source endpoint; identity stays 0 unless Cilium data is known. */
export function processEndpoint(p: ProcessInfo): Endpoint {
  const ep: Endpoint = {};
  const cep = p.endpoint;
  const pod = p.pod;
  if (cep) {
    if (cep.id) ep.ID = cep.id;
    if (cep.identity) ep.identity = cep.identity;
  }
  const namespace = pod?.namespace || cep?.namespace;
  const podName = pod?.name || cep?.podName;
  if (namespace) ep.namespace = namespace;
  const labels = cep && cep.labels.length > 0 ? cep.labels : podLabels(p);
  if (labels.length > 0) ep.labels = labels;
  if (podName) ep.pod_name = podName;
  if (pod?.workload) ep.workloads = [{ name: pod.workload, kind: pod.workloadKind ?? '' }];
  return ep;
}

/** A Cilium endpoint/identity as a Hubble Endpoint (empty fields left out). */
export function infoEndpoint(info: EndpointInfo | undefined): Endpoint {
  const ep: Endpoint = {};
  if (!info) return ep;
  if (info.id) ep.ID = info.id;
  if (info.identity) ep.identity = info.identity;
  if (info.namespace) ep.namespace = info.namespace;
  if (info.labels.length) ep.labels = [...info.labels];
  if (info.podName) ep.pod_name = info.podName;
  return ep;
}

/**
 * The local end of a socket: the process's pod/endpoint, completed with what
 * the kernel's identity lookup found for the local address (a host process
 * gets identity 1 "host" there; the process's own endpoint wins when known).
 */
function localEndpoint(p: ProcessInfo, info: EndpointInfo | undefined): Endpoint {
  const ep = processEndpoint(p);
  if (!info) return ep;
  if (ep.ID === undefined && info.id) ep.ID = info.id;
  if (ep.identity === undefined && info.identity) ep.identity = info.identity;
  if (ep.namespace === undefined && info.namespace) ep.namespace = info.namespace;
  if (ep.pod_name === undefined && info.podName) ep.pod_name = info.podName;
  if (ep.labels === undefined && info.labels.length) ep.labels = [...info.labels];
  return ep;
}

// ------------------------------------------------------------ summaries

function words(...parts: (string | undefined)[]): string {
  return parts.filter((p) => p !== undefined && p !== '').join(' ');
}

function uidText(id: number | undefined): string {
  return id === undefined || id === 0xffffffff ? '-1' : String(id);
}

/** `open /usr/bin/cat /etc/passwd O_RDONLY`, `rename /usr/bin/mv /a -> /b`, failures end in `= -1 ENOENT`. */
export function fileSummary(ev: FileEvent): string {
  const bin = ev.process.binary;
  const failed = ev.ret < 0 ? formatResult(ev.ret) : undefined;
  const bytes = `read ${ev.bytesRead ?? 0} written ${ev.bytesWritten ?? 0}`;
  switch (ev.op) {
    case 'open':
      if (ev.syscall === '') return words('io', bin, ev.path, bytes); // periodic report of a file still open
      return words('open', bin, ev.path, openFlagNames(ev.flags), ev.mode !== undefined ? octalMode(ev.mode) : undefined, failed);
    case 'close':
      return words('close', bin, ev.path, bytes, failed);
    case 'rename':
    case 'link':
      return words(ev.op, bin, ev.path, '->', ev.path2, failed);
    case 'symlink':
      return words('symlink', bin, ev.path2, '->', ev.path, failed);
    case 'mount':
      return words('mount', bin, ev.path, 'on', ev.path2, failed);
    case 'chmod':
    case 'mkdir':
      return words(ev.op, bin, ev.path, ev.mode !== undefined ? octalMode(ev.mode) : undefined, failed);
    case 'chown':
      return words('chown', bin, ev.path, `${uidText(ev.uid)}:${uidText(ev.gid)}`, failed);
    default:
      return words(ev.op, bin, ev.path, failed);
  }
}

/** A listening socket (its listen, or its close): no remote end. */
function peerless(ev: NetEvent): boolean {
  return ev.op === 'listen' || (ev.dport === 0 && (ev.daddr === '0.0.0.0' || ev.daddr === '::' || ev.daddr === ''));
}

/** `connect /usr/bin/curl 10.0.0.2:443`, `close /usr/bin/curl 10.0.0.2:443 sent 1234 received 5678`. */
export function netSummary(ev: NetEvent): string {
  const bin = ev.process.binary;
  const failed = ev.ret < 0 ? formatResult(ev.ret) : undefined;
  if (peerless(ev)) return words(ev.op, bin, hostPort(ev.saddr, ev.sport)); // listen, or a listener's close
  switch (ev.op) {
    case 'close':
      return words('close', bin, hostPort(ev.daddr, ev.dport), `sent ${ev.bytesSent ?? 0} received ${ev.bytesReceived ?? 0}`);
    case 'send':
    case 'receive': {
      const bytes = ev.op === 'send' ? ev.bytesSent : ev.bytesReceived;
      return words(ev.op, bin, hostPort(ev.daddr, ev.dport), ev.packets ? `${ev.packets} packets` : undefined, bytes !== undefined ? `${bytes} bytes` : undefined);
    }
    default:
      return words(ev.op, bin, hostPort(ev.daddr, ev.dport), failed);
  }
}

/** `syscall /usr/bin/python3 getppid = 1234`, count reports `… getppid count 42`. */
export function syscallSummary(ev: SyscallEvent): string {
  const bin = ev.process.binary;
  if (ev.count !== undefined) return words('syscall', bin, ev.name, `count ${ev.count}`);
  return words('syscall', bin, ev.name, ev.ret !== undefined ? formatResult(ev.ret) : undefined);
}

/** The SUMMARY column: `exec /usr/bin/curl -s …`, `exit /usr/bin/curl 0`, `open /usr/bin/cat /etc/passwd O_RDONLY`, … */
export function eventSummary(ev: RuntimeEvent): string {
  const p = ev.process;
  switch (ev.kind) {
    case 'exec':
      return p.arguments ? `exec ${p.binary} ${p.arguments}` : `exec ${p.binary}`;
    case 'exit':
      return `exit ${p.binary} ${ev.signal || String(ev.status)}`;
    case 'file':
      return fileSummary(ev);
    case 'net':
      return netSummary(ev);
    case 'dns':
      return dnsSummary(ev);
    case 'syscall':
      return syscallSummary(ev);
    case 'policy':
      return policySummary(ev);
  }
}

/** A short rendering of the args a reader cares about (strings, paths, peers), bounded. */
function policyArgText(a: PolicyArg): string | undefined {
  const cut = (t: string): string => (t.length > 96 ? `${t.slice(0, 95)}…` : t);
  switch (a.t) {
    case 'string':
      return a.v ? cut(a.v) : undefined;
    case 'file':
    case 'path':
    case 'linux_binprm':
      return a.path ? cut(a.path) : undefined;
    case 'sockaddr':
      return a.addr ? hostPort(a.addr, a.port) : undefined;
    case 'sock':
      return a.sock.daddr ? hostPort(a.sock.daddr, a.sock.dport) : undefined;
    case 'capability':
      return a.name || undefined;
    default:
      return undefined;
  }
}

/** What the hook is called in a summary: the call as written, or subsys/event for tracepoints. */
function policyHookName(ev: PolicyEvent): string {
  return ev.hook === 'tracepoint' ? `${ev.subsys ?? ''}/${ev.event ?? ''}` : ev.functionName;
}

/**
 * The SUMMARY of a policy event: what happened, to which binary, by which policy.
 *   connect denied /usr/bin/python3 → 10.0.1.5:5432 (policy psql-only-to-db)
 *   connect would be denied /usr/bin/python3 → 10.0.1.5:5432 (policy psql-only-to-db, monitor mode)
 *   killed /tmp/evil at sys_execve (policy no-evil)
 *   denied sys_openat /usr/bin/cat /etc/shadow: EPERM (policy protect-shadow)
 *   sys_execve /bin/sh /bin/true (policy process-monitoring)
 */
export function policySummary(ev: PolicyEvent): string {
  const bin = ev.process.binary;
  const enf = ev.enforcement;
  const mon = enf?.monitor === true;
  const tail = `(policy ${ev.policyNamespace ? `${ev.policyNamespace}/` : ''}${ev.policyName}${mon ? ', monitor mode' : ''})`;
  const hook = policyHookName(ev);
  if (ev.net) {
    const verb = /connect/.test(ev.functionName) ? 'connect' : hook;
    const peer = ev.net.daddr ? `→ ${hostPort(ev.net.daddr, ev.net.dport)}` : undefined;
    // Sigkill on a connect both refuses it and kills the caller.
    const kill = enf?.kind === 'denied' && enf.signal === 9 ? ' and killed' : '';
    const what = !enf ? verb : `${verb} ${mon ? 'would be ' : ''}${enf.kind === 'killed' ? 'killed' : enf.kind === 'signaled' ? 'signaled' : 'denied'}${kill}`;
    return words(what, bin, peer, enf?.errno && !mon ? `(${errnoName(enf.errno)})` : undefined, tail);
  }
  const args = ev.args.map(policyArgText).filter((x): x is string => x !== undefined).slice(0, 3);
  if (enf?.kind === 'killed') return words(mon ? 'would kill' : 'killed', bin, `at ${hook}`, args.length ? `(${args.join(' ')})` : undefined, tail);
  if (enf?.kind === 'signaled') return words(mon ? 'would signal' : 'signaled', bin, enf.signal !== undefined ? `with signal ${enf.signal}` : undefined, `at ${hook}`, tail);
  if (enf?.kind === 'denied') {
    const head = words(mon ? 'would deny' : 'denied', hook, bin, ...args);
    return words(enf.errno ? `${head}: ${errnoName(enf.errno)}` : head, tail);
  }
  const ret = ev.ret && (ev.ret.t === 'int' || ev.ret.t === 'long') ? formatResult(Number(ev.ret.v)) : undefined;
  return words(hook, bin, ...args, ret, ev.message ? `— ${ev.message}` : undefined, tail);
}

// ------------------------------------------------------------ flow building

/** Cilium monitor message types used as event_type.type (hubble-api.md §4.5). */
export const CiliumMessageType = { TRACE_SOCK: 7, ACCESS_LOG: 129 } as const;
export const TrafficDirection = { UNKNOWN: 0, INGRESS: 1, EGRESS: 2 } as const;
export const L7FlowType = { UNKNOWN: 0, REQUEST: 1, RESPONSE: 2 } as const;
export const SockXlatePoint = { UNKNOWN: 0, PRE_DIRECTION_FWD: 1, POST_DIRECTION_FWD: 2, PRE_DIRECTION_REV: 3, POST_DIRECTION_REV: 4 } as const;
/** The name in DNS.observation_source (Cilium: "proxy"); printed in the TYPE column (`dns-request tetrahub`). */
export const DNS_OBSERVATION_SOURCE = 'tetrahub';

function ipVersion(addr: string): number {
  return addr.includes(':') ? IPVersion.IPv6 : IPVersion.IPv4;
}

/** One end of a flow. */
interface End {
  ip: string;
  port: number;
  ep: Endpoint;
}

function ports(src: End, dst: End): { source_port?: number; destination_port?: number } {
  const p: { source_port?: number; destination_port?: number } = {};
  if (src.port) p.source_port = src.port;
  if (dst.port) p.destination_port = dst.port;
  return p;
}

function layer4(protocol: 'tcp' | 'udp', src: End, dst: End, flags?: TCPFlags): Layer4 {
  if (protocol === 'udp') return { UDP: ports(src, dst) };
  return { TCP: flags ? { ...ports(src, dst), flags } : ports(src, dst) };
}

const FIN_STATES = new Set(['TCP_FIN_WAIT1', 'TCP_FIN_WAIT2', 'TCP_CLOSING', 'TCP_LAST_ACK', 'TCP_TIME_WAIT']);
const RST_STATES = new Set(['TCP_ESTABLISHED', 'TCP_CLOSE_WAIT', 'TCP_SYN_SENT', 'TCP_SYN_RECV', 'TCP_NEW_SYN_RECV']);

/**
 * TCP flags that mark the socket event: SYN for connect/accept (the
 * handshake), for close FIN or RST from the state it left: a socket reaches
 * CLOSE from FIN_WAIT / CLOSING / LAST_ACK / TIME_WAIT after a FIN exchange,
 * straight from ESTABLISHED / CLOSE_WAIT / SYN_* only by a reset (sent or
 * received). A listener's close sends nothing.
 */
function tcpFlags(ev: NetEvent): TCPFlags | undefined {
  switch (ev.op) {
    case 'connect':
    case 'accept':
      return { SYN: true };
    case 'close':
      if (ev.state === 'TCP_LISTEN') return undefined;
      if (ev.state && RST_STATES.has(ev.state)) return { RST: true };
      if (!ev.state || FIN_STATES.has(ev.state)) return { FIN: true };
      return undefined;
    default:
      return undefined;
  }
}

const EINPROGRESS = 115;
const EPERM = 1;
const EACCES = 13;

/**
 * Observed connections are FORWARDED; a connect/accept refused locally
 * (EPERM/EACCES: a firewall or cgroup hook) is DROPPED as Hubble shows policy
 * drops; any other failure (refused, timed out, unreachable) is ERROR. A
 * non-blocking connect in progress is FORWARDED.
 */
function netVerdict(ev: NetEvent): number {
  if (ev.ret >= 0 || ev.ret === -EINPROGRESS) return Verdict.FORWARDED;
  if (ev.ret === -EPERM || ev.ret === -EACCES) return Verdict.DROPPED;
  return Verdict.ERROR;
}

function baseFlow(ev: RuntimeEvent): Flow {
  return { time: toTimestamp(ev.time), uuid: randomUUID(), verdict: Verdict.FORWARDED };
}

/**
 * A socket event as an L3/L4 flow (trace-sock). Orientation follows who
 * initiated: connect/send go local → remote (EGRESS), accept/receive and the
 * close of an accepted socket remote → local (INGRESS); is_reply is false on
 * all of them (each is the initiator's direction; socket events are not
 * packets, so there is no reply flow). A listen has no peer: only the local
 * end, as destination. UDP has no connection state here: the sensor's
 * send/receive stands for who initiated. Type is L3_L4 rather than Cilium's
 * SOCK for TraceSock: these stand for whole connections, and --type
 * trace-sock still selects them by event_type.
 */
function netFlow(ev: NetEvent, nodeName: string): Flow {
  const egress = ev.direction === 'egress';
  const local: End = { ip: ev.saddr, port: ev.sport, ep: localEndpoint(ev.process, ev.source) };
  const remote: End = peerless(ev) ? { ip: '', port: 0, ep: {} } : { ip: ev.daddr, port: ev.dport, ep: infoEndpoint(ev.destination) };
  const [src, dst] = egress ? [local, remote] : [remote, local];
  const flow = baseFlow(ev);
  flow.verdict = netVerdict(ev);
  flow.IP = { ...(src.ip ? { source: src.ip } : {}), ...(dst.ip ? { destination: dst.ip } : {}), ipVersion: ev.family === 6 ? IPVersion.IPv6 : IPVersion.IPv4 };
  flow.l4 = layer4(ev.protocol, src, dst, ev.protocol === 'tcp' ? tcpFlags(ev) : undefined);
  flow.source = src.ep;
  flow.destination = dst.ep;
  flow.Type = FlowType.L3_L4;
  flow.node_name = ev.nodeName || nodeName;
  // DNS names known for the remote address, on whichever side it is.
  const names = ev.destinationNames;
  if (names && names.length) {
    if (egress) flow.destination_names = [...names];
    else flow.source_names = [...names];
  }
  flow.is_reply = { value: false };
  // Cilium's TraceSock puts the translation point in sub_type; pre-xlate: the
  // addresses as the socket has them (tetrahub translates nothing).
  const xlate = egress ? SockXlatePoint.PRE_DIRECTION_FWD : SockXlatePoint.PRE_DIRECTION_REV;
  flow.event_type = { type: CiliumMessageType.TRACE_SOCK, sub_type: xlate };
  flow.traffic_direction = egress ? TrafficDirection.EGRESS : TrafficDirection.INGRESS;
  flow.sock_xlate_point = xlate;
  if (ev.socketCookie) flow.socket_cookie = ev.socketCookie.toString();
  if (ev.process.cgroupId) flow.cgroup_id = ev.process.cgroupId.toString();
  flow.Summary = netSummary(ev);
  return flow;
}

/**
 * A DNS message as an L7 flow, seen from the client (the querying process):
 * the query goes client → server, the response server → client with
 * is_reply; both are EGRESS, the client's connection direction, as Cilium's
 * DNS proxy reports them. source/destination_names stay empty: the answers
 * name the queried host, not either end of this flow.
 */
function dnsFlow(ev: DnsEvent, nodeName: string): Flow {
  // The client is the local end (the process, completed with its Cilium endpoint); the server's identity when known.
  const client: End = { ip: ev.clientAddr, port: ev.clientPort, ep: localEndpoint(ev.process, ev.source) };
  const server: End = { ip: ev.serverAddr, port: ev.serverPort, ep: infoEndpoint(ev.destination) };
  const [src, dst] = ev.isResponse ? [server, client] : [client, server];
  const flow = baseFlow(ev);
  flow.IP = { ...(src.ip ? { source: src.ip } : {}), ...(dst.ip ? { destination: dst.ip } : {}), ipVersion: ipVersion(ev.clientAddr || ev.serverAddr) };
  flow.l4 = layer4(ev.protocol, src, dst);
  flow.source = src.ep;
  flow.destination = dst.ep;
  flow.Type = FlowType.L7;
  flow.node_name = ev.nodeName || nodeName;
  const dns: NonNullable<NonNullable<Flow['l7']>['dns']> = { query: fqdn(ev.query) };
  if (ev.isResponse) {
    const ips = dnsIps(ev);
    if (ips.length) dns.ips = ips;
    const ttl = dnsTtl(ev);
    if (ttl) dns.ttl = ttl;
    const cnames = dnsCnames(ev);
    if (cnames.length) dns.cnames = cnames;
  }
  dns.observation_source = DNS_OBSERVATION_SOURCE;
  if (ev.rcode) dns.rcode = ev.rcode;
  if (ev.qtypes.length) dns.qtypes = [...ev.qtypes];
  if (ev.isResponse && ev.answers.length) dns.rrtypes = ev.answers.map((a) => a.type);
  flow.l7 = { type: ev.isResponse ? L7FlowType.RESPONSE : L7FlowType.REQUEST, ...(ev.latencyNs ? { latency_ns: ev.latencyNs } : {}), dns };
  flow.is_reply = { value: ev.isResponse };
  flow.event_type = { type: CiliumMessageType.ACCESS_LOG };
  flow.traffic_direction = TrafficDirection.EGRESS;
  flow.Summary = dnsSummary(ev);
  return flow;
}

/** Runtime kinds: the private event type 200 with Tetragon's EventType as sub_type (file → kprobe, syscall → tracepoint, policy → its hook's). */
function subType(ev: RuntimeEvent): number {
  switch (ev.kind) {
    case 'exec':
      return TetragonEventType.PROCESS_EXEC;
    case 'exit':
      return TetragonEventType.PROCESS_EXIT;
    case 'syscall':
      return TetragonEventType.PROCESS_TRACEPOINT;
    case 'policy':
      return POLICY_SUB_TYPE[ev.hook];
    default:
      return TetragonEventType.PROCESS_KPROBE;
  }
}

/** Tetragon EventType numbers of the policy hooks (tetragon-api.md §2.1). */
const POLICY_SUB_TYPE: Record<PolicyEvent['hook'], number> = { kprobe: 9, tracepoint: 10, uprobe: 12, lsm: 28 };

/** Enforced → DROPPED, audited (monitor mode) → AUDIT, observed → FORWARDED. */
function policyVerdict(ev: PolicyEvent): number {
  if (!ev.enforcement) return Verdict.FORWARDED;
  return ev.enforcement.monitor ? Verdict.AUDIT : Verdict.DROPPED;
}

/** Cilium's monitor types used for policy flows, and the drop code (hubble-api.md §4.4–4.5). */
const CILIUM_DROP = 1;
const CILIUM_POLICY_VERDICT = 5;
export const DROP_REASON_POLICY_DENIED = 133;

/**
 * A policy event on a connect-type hook as an L3/L4 flow from the process to
 * the peer: an enforced denial is a Cilium drop (event_type drop, sub_type
 * and drop_reason_desc POLICY_DENIED, egress_denied_by naming the
 * TracingPolicy), so `hubble observe --verdict DROPPED` and `--type drop`
 * find it; a monitor-mode one is an AUDIT policy verdict; one that only
 * posted is a FORWARDED trace-sock flow. The process context is in
 * extensions, like every runtime event.
 */
function policyNetFlow(ev: PolicyEvent, n: NonNullable<PolicyEvent['net']>, nodeName: string): Flow {
  const src: End = { ip: n.saddr, port: n.sport, ep: localEndpoint(ev.process, n.source) };
  const dst: End = { ip: n.daddr, port: n.dport, ep: infoEndpoint(n.destination) };
  const flow = baseFlow(ev);
  flow.verdict = policyVerdict(ev);
  flow.IP = { ...(src.ip ? { source: src.ip } : {}), ...(dst.ip ? { destination: dst.ip } : {}), ipVersion: n.family === 6 ? IPVersion.IPv6 : IPVersion.IPv4 };
  flow.l4 = layer4(n.protocol, src, dst, n.protocol === 'tcp' ? { SYN: true } : undefined);
  flow.source = src.ep;
  flow.destination = dst.ep;
  flow.Type = FlowType.L3_L4;
  flow.node_name = ev.nodeName || nodeName;
  flow.is_reply = { value: false };
  flow.traffic_direction = TrafficDirection.EGRESS;
  const policy = { name: ev.policyName, ...(ev.policyNamespace ? { namespace: ev.policyNamespace } : {}), kind: ev.policyNamespace ? 'TracingPolicyNamespaced' : 'TracingPolicy' };
  if (flow.verdict === Verdict.DROPPED) {
    flow.event_type = { type: CILIUM_DROP, sub_type: DROP_REASON_POLICY_DENIED };
    flow.drop_reason = DROP_REASON_POLICY_DENIED;
    flow.drop_reason_desc = DROP_REASON_POLICY_DENIED;
    flow.egress_denied_by = [policy];
  } else if (flow.verdict === Verdict.AUDIT) {
    flow.event_type = { type: CILIUM_POLICY_VERDICT, sub_type: 0 };
  } else {
    flow.event_type = { type: CiliumMessageType.TRACE_SOCK, sub_type: SockXlatePoint.PRE_DIRECTION_FWD };
    flow.sock_xlate_point = SockXlatePoint.PRE_DIRECTION_FWD;
  }
  if (ev.process.cgroupId) flow.cgroup_id = ev.process.cgroupId.toString();
  flow.Summary = policySummary(ev);
  return flow;
}

function runtimeFlow(ev: RuntimeEvent, nodeName: string): Flow {
  return {
    time: toTimestamp(ev.time),
    uuid: randomUUID(),
    // Policy events: killed / denied → DROPPED, monitor mode → AUDIT (hubble-api.md §8).
    verdict: ev.kind === 'policy' ? policyVerdict(ev) : Verdict.FORWARDED,
    // Must be non-nil or the CLI prints no pod names (hubble-api.md §1 #10).
    IP: { source: '', ipVersion: IPVersion.IP_NOT_USED },
    source: processEndpoint(ev.process),
    Type: FlowType.UNKNOWN_TYPE,
    node_name: ev.nodeName || nodeName,
    event_type: { type: RUNTIME_EVENT_TYPE, sub_type: subType(ev) },
    Summary: eventSummary(ev),
  };
}

function buildFlow(ev: RuntimeEvent, nodeName: string): Flow {
  switch (ev.kind) {
    case 'net':
      return netFlow(ev, nodeName);
    case 'dns':
      return dnsFlow(ev, nodeName);
    case 'policy':
      return ev.net ? policyNetFlow(ev, ev.net, nodeName) : runtimeFlow(ev, nodeName);
    default:
      return runtimeFlow(ev, nodeName);
  }
}

function entryOf(ev: RuntimeEvent, nodeName: string): FlowEntry {
  let e = flows.get(ev);
  if (!e) {
    e = { flow: buildFlow(ev, nodeName) };
    flows.set(ev, e);
  }
  return e;
}

/** The event's Flow without extensions, built once; this is what filters see. */
export function flowOf(ev: RuntimeEvent, nodeName = ''): Flow {
  return entryOf(ev, nodeName).flow;
}

/**
 * The complete Flow including extensions. The Struct is not kept on the
 * event: its bytes end up inside the cached response bytes, and a second
 * copy per history entry would cost megabytes for nothing.
 */
export function fullFlowOf(ev: RuntimeEvent, nodeName = ''): Flow {
  return { ...entryOf(ev, nodeName).flow, extensions: tetragonExtensions(ev) };
}

/** GetFlowsResponse{flow} bytes for this event, cached per field mask in ev.wire. */
export function flowResponseBytes(ev: RuntimeEvent, mask: CompiledFieldMask | undefined, nodeName = ''): Uint8Array {
  const key = mask ? `${WIRE_KEY}|${mask.key}` : WIRE_KEY;
  const cached = ev.wire.get(key);
  if (cached) return cached;
  let flow: Flow;
  if (!mask) flow = fullFlowOf(ev, nodeName);
  // Skip the Struct encoding when the mask strips extensions (1.19 default masks).
  else flow = mask.apply(mask.has('extensions') ? fullFlowOf(ev, nodeName) : flowOf(ev, nodeName));
  const base = flowOf(ev, nodeName);
  // An exact-size copy: protobufjs hands out slices of pooled buffers, and a cached
  // slice would keep its whole pool slab alive for as long as the event lives.
  const bytes = Uint8Array.prototype.slice.call(
    protos().GetFlowsResponse.encode({ flow, node_name: base.node_name, time: base.time }).finish(),
  );
  ev.wire.set(key, bytes);
  return bytes;
}

// --------------------------------------------------------------- lost events

const LOSS_SOURCE: Record<LossSource, number> = {
  kernel_ring: LostEventSource.PERF_EVENT_RING_BUFFER,
  subscriber_queue: LostEventSource.OBSERVER_EVENTS_QUEUE,
  history_ring: LostEventSource.HUBBLE_RING_BUFFER,
};

export interface LostEventInput {
  source: number;
  count: number;
  cpu?: number;
  first?: WallTime;
  last?: WallTime;
  time: WallTime;
  nodeName: string;
}

/** GetFlowsResponse{lost_events} bytes (not cached: each is specific to its reader or notice). */
export function lostResponseBytes(l: LostEventInput): Uint8Array {
  const lost: LostEvent = { source: l.source, num_events_lost: l.count };
  if (l.cpu !== undefined) lost.cpu = { value: l.cpu };
  if (l.first) lost.first = toTimestamp(l.first);
  if (l.last) lost.last = toTimestamp(l.last);
  return protos()
    .GetFlowsResponse.encode({ lost_events: lost, node_name: l.nodeName, time: toTimestamp(l.time) })
    .finish();
}

/** A bus LossNotice as GetFlowsResponse{lost_events}, cached in its wire map. */
export function lossNoticeBytes(n: LossNotice, nodeName = ''): Uint8Array {
  const cached = n.wire.get(WIRE_KEY);
  if (cached) return cached;
  const bytes = lostResponseBytes({
    source: LOSS_SOURCE[n.source] ?? LostEventSource.UNKNOWN_LOST_EVENT_SOURCE,
    count: n.count,
    cpu: n.cpu,
    first: n.first,
    last: n.last,
    time: n.time,
    nodeName: n.nodeName || nodeName,
  });
  n.wire.set(WIRE_KEY, bytes);
  return bytes;
}

export function wallNow(): WallTime {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}
