// Plain-object shapes of the Hubble messages as this module builds and reads
// them: proto field names (keepCase), enums as numbers. Built objects go to
// protobufjs Type.encode as is; decoded requests come from Type.toObject with
// DECODE_OPTIONS (64-bit integers as decimal strings).

/** Timestamp as built (numbers) or decoded (seconds as a decimal string). */
export interface Timestamp {
  seconds: number | string;
  nanos?: number;
}

export interface Workload {
  name?: string;
  kind?: string;
}

export interface Endpoint {
  ID?: number;
  identity?: number;
  cluster_name?: string;
  namespace?: string;
  labels?: string[];
  pod_name?: string;
  workloads?: Workload[];
}

export interface IP {
  source?: string;
  source_xlated?: string;
  destination?: string;
  ipVersion?: number;
  encrypted?: boolean;
}

export interface Ports {
  source_port?: number;
  destination_port?: number;
}

export interface TCPFlags {
  FIN?: boolean;
  SYN?: boolean;
  RST?: boolean;
  PSH?: boolean;
  ACK?: boolean;
  URG?: boolean;
  ECE?: boolean;
  CWR?: boolean;
  NS?: boolean;
}

export interface Layer4 {
  TCP?: Ports & { flags?: TCPFlags };
  UDP?: Ports;
  SCTP?: Ports;
  ICMPv4?: { type?: number; code?: number };
  ICMPv6?: { type?: number; code?: number };
  VRRP?: { type?: number; vrid?: number; priority?: number };
  IGMP?: { type?: number; group_address?: string };
}

export interface HTTPHeader {
  key?: string;
  value?: string;
}

export interface Layer7 {
  type?: number;
  latency_ns?: number | string;
  dns?: { query?: string; ips?: string[]; ttl?: number; cnames?: string[]; observation_source?: string; rcode?: number; qtypes?: string[]; rrtypes?: string[] };
  http?: { code?: number; method?: string; url?: string; protocol?: string; headers?: HTTPHeader[] };
  kafka?: { error_code?: number; api_version?: number; api_key?: string; correlation_id?: number; topic?: string };
}

export interface Service {
  name?: string;
  namespace?: string;
}

export interface CiliumEventType {
  type?: number;
  sub_type?: number;
}

export interface AnyMessage {
  type_url: string;
  value: Uint8Array;
}

/** flow.Flow. Runtime events fill a subset; network flows will fill more. */
export interface Flow {
  time?: Timestamp;
  uuid?: string;
  emitter?: { name?: string; version?: string };
  verdict?: number;
  drop_reason?: number;
  auth_type?: number;
  ethernet?: { source?: string; destination?: string };
  IP?: IP;
  l4?: Layer4;
  tunnel?: { protocol?: number; IP?: IP; l4?: Layer4; vni?: number };
  source?: Endpoint;
  destination?: Endpoint;
  Type?: number;
  node_name?: string;
  node_labels?: string[];
  source_names?: string[];
  destination_names?: string[];
  l7?: Layer7;
  reply?: boolean;
  event_type?: CiliumEventType;
  source_service?: Service;
  destination_service?: Service;
  traffic_direction?: number;
  policy_match_type?: number;
  trace_observation_point?: number;
  trace_reason?: number;
  file?: { name?: string; line?: number };
  ip_trace_id?: { trace_id?: number | string; ip_option_type?: number };
  drop_reason_desc?: number;
  is_reply?: { value?: boolean };
  debug_capture_point?: number;
  interface?: { index?: number; name?: string };
  proxy_port?: number;
  trace_context?: { parent?: { trace_id?: string } };
  sock_xlate_point?: number;
  socket_cookie?: number | string;
  cgroup_id?: number | string;
  Summary?: string;
  extensions?: AnyMessage;
  egress_allowed_by?: unknown[];
  ingress_allowed_by?: unknown[];
  egress_denied_by?: unknown[];
  ingress_denied_by?: unknown[];
  policy_log?: string[];
  aggregate?: { ingress_flow_count?: number; egress_flow_count?: number; unknown_direction_flow_count?: number };
}

export interface LostEvent {
  source: number;
  num_events_lost: number;
  cpu?: { value: number };
  first?: Timestamp;
  last?: Timestamp;
}

export interface EventTypeFilter {
  type?: number;
  match_sub_type?: boolean;
  sub_type?: number;
}

/** flow.FlowFilter as decoded from a request. */
export interface FlowFilter {
  uuid?: string[];
  source_ip?: string[];
  source_ip_xlated?: string[];
  source_pod?: string[];
  source_fqdn?: string[];
  source_label?: string[];
  source_service?: string[];
  source_workload?: Workload[];
  source_cluster_name?: string[];
  destination_ip?: string[];
  destination_pod?: string[];
  destination_fqdn?: string[];
  destination_label?: string[];
  destination_service?: string[];
  destination_workload?: Workload[];
  destination_cluster_name?: string[];
  traffic_direction?: number[];
  verdict?: number[];
  drop_reason_desc?: number[];
  interface?: { index?: number; name?: string }[];
  event_type?: EventTypeFilter[];
  http_status_code?: string[];
  protocol?: string[];
  source_port?: string[];
  destination_port?: string[];
  reply?: boolean[];
  dns_query?: string[];
  source_identity?: number[];
  destination_identity?: number[];
  http_method?: string[];
  http_path?: string[];
  http_url?: string[];
  http_header?: HTTPHeader[];
  tcp_flags?: TCPFlags[];
  node_name?: string[];
  node_labels?: string[];
  ip_version?: number[];
  trace_id?: string[];
  ip_trace_id?: (string | number)[];
  encrypted?: boolean[];
  experimental?: { cel_expression?: string[] };
}

export interface FieldMask {
  paths?: string[];
}

/** observer.GetFlowsRequest as decoded. */
export interface GetFlowsRequest {
  number?: string | number;
  follow?: boolean;
  blacklist?: FlowFilter[];
  whitelist?: FlowFilter[];
  since?: Timestamp;
  until?: Timestamp;
  first?: boolean;
  field_mask?: FieldMask;
  experimental?: { field_mask?: FieldMask };
  extensions?: { type_url?: string; value?: Uint8Array };
}

/** observer.GetAgentEventsRequest / GetDebugEventsRequest as decoded. */
export interface GetEventsRequest {
  number?: string | number;
  first?: boolean;
  follow?: boolean;
  since?: Timestamp;
  until?: Timestamp;
}

/** tetrahub.v1.RuntimeFilter as decoded. */
export interface RuntimeFilter {
  binary_regex?: string[];
  pid?: number[];
  arguments_regex?: string[];
  parent_binary_regex?: string[];
}

// Enum values used by the encoder and server (numbers from hubble-api.md §4.3).
export const Verdict = { VERDICT_UNKNOWN: 0, FORWARDED: 1, DROPPED: 2, ERROR: 3, AUDIT: 4, REDIRECTED: 5, TRACED: 6, TRANSLATED: 7 } as const;
export const FlowType = { UNKNOWN_TYPE: 0, L3_L4: 1, L7: 2, SOCK: 3 } as const;
export const IPVersion = { IP_NOT_USED: 0, IPv4: 1, IPv6: 2 } as const;
export const LostEventSource = { UNKNOWN_LOST_EVENT_SOURCE: 0, PERF_EVENT_RING_BUFFER: 1, OBSERVER_EVENTS_QUEUE: 2, HUBBLE_RING_BUFFER: 3 } as const;
export const AgentEventType = { AGENT_EVENT_UNKNOWN: 0, AGENT_STARTED: 2 } as const;
export const NodeState = { UNKNOWN_NODE_STATE: 0, NODE_CONNECTED: 1, NODE_UNAVAILABLE: 2, NODE_GONE: 3, NODE_ERROR: 4 } as const;
export const ChangeNotificationType = { UNKNOWN: 0, PEER_ADDED: 1, PEER_DELETED: 2, PEER_UPDATED: 3 } as const;
export const ServingStatus = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;

/** CiliumEventType.type for tetrahub runtime events: private range, unused by Cilium. */
export const RUNTIME_EVENT_TYPE = 200;
/** CiliumEventType.sub_type = Tetragon EventType number of the event. */
export const TetragonEventType = { PROCESS_EXEC: 1, PROCESS_EXIT: 5, PROCESS_KPROBE: 9, PROCESS_TRACEPOINT: 10, PROCESS_UPROBE: 12, PROCESS_LSM: 28 } as const;
