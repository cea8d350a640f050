// GetEventsRequest allow_list / deny_list → one predicate over RuntimeEvent.
//
// Semantics (Tetragon pkg/filters): an event passes when it matches at least
// one allow filter (an empty allow list allows everything) and no deny
// filter. Inside one Filter every set field must match (AND); the values of a
// repeated field are alternatives (OR). A Filter with nothing set matches
// everything — `tetra getevents` always sends one such Filter.
//
// Compilation happens once per stream; every bad input is reported as a
// FilterError naming the request field, which the server turns into
// INVALID_ARGUMENT.
import type { ProcessInfo, RuntimeEvent } from '../../model/event';
import { inInitTree, SENSOR_POLICY } from './json';
import { LabelSelectorError, parseLabelSelector, type LabelMatcher } from './labels';
import { EventType, type PFilter, type PGetEventsRequest } from './protos';
import { compileRe2, Re2Error } from './re2';

export class FilterError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'FilterError';
  }
}

type Pred = (ev: RuntimeEvent) => boolean;

export interface CompiledEventFilter {
  /**
   * Sees every event in bus order (pid_set trackers learn descendants here)
   * and answers whether the stream should get it.
   */
  (ev: RuntimeEvent): boolean;
}

/** Bound on exec_ids remembered per pid_set filter; oldest are forgotten first. */
export const PID_SET_TRACK_LIMIT = 65536;

/** The GetEventsResponse member the event is sent as (see json.ts: sensor events are kprobes / tracepoints). */
function eventType(ev: RuntimeEvent): number {
  switch (ev.kind) {
    case 'exec':
      return EventType.PROCESS_EXEC;
    case 'exit':
      return EventType.PROCESS_EXIT;
    case 'syscall':
      return EventType.PROCESS_TRACEPOINT;
    case 'policy':
      return ev.hook === 'tracepoint' ? EventType.PROCESS_TRACEPOINT : ev.hook === 'lsm' ? EventType.PROCESS_LSM : ev.hook === 'uprobe' ? EventType.PROCESS_UPROBE : EventType.PROCESS_KPROBE;
    default:
      return EventType.PROCESS_KPROBE;
  }
}

/** policy_name of the event; exec and exit come from the base sensor and carry none. */
function policyName(ev: RuntimeEvent): string {
  return ev.kind === 'exec' || ev.kind === 'exit' ? '' : ev.kind === 'policy' ? ev.policyName : SENSOR_POLICY[ev.kind];
}

function regexes(list: string[], field: string): RegExp[] {
  return list.map((pattern, i) => {
    try {
      return compileRe2(pattern);
    } catch (e) {
      const why = e instanceof Re2Error ? e.message : String(e);
      throw new FilterError(`${field}[${i}]`, `invalid regex ${JSON.stringify(pattern)}: ${why}`);
    }
  });
}

function anyMatch(res: RegExp[], s: string): boolean {
  for (const re of res) if (re.test(s)) return true;
  return false;
}

/** The pid inside an exec_id (base64 of "node:ktime:pid"), or -1. */
export function pidOfExecId(execId: string): number {
  if (!execId) return -1;
  const s = Buffer.from(execId, 'base64').toString('latin1');
  const n = Number(s.slice(s.lastIndexOf(':') + 1));
  return Number.isInteger(n) ? n : -1;
}

/**
 * pid_set: the listed pids and everything started below them. Descendants are
 * learnt from exec events through the exec_id chain: a child's exec carries
 * its pre-exec image as parent, whose parent_exec_id names the forking
 * process (and encodes its pid, which covers roots that exec'd before the
 * stream began).
 */
class PidSetTracker {
  private readonly tracked = new Set<string>();

  constructor(private readonly pids: Set<number>) {}

  private descends(p: ProcessInfo): boolean {
    return (
      this.pids.has(p.pid) ||
      this.tracked.has(p.execId) ||
      (p.parentExecId !== '' && (this.tracked.has(p.parentExecId) || this.pids.has(pidOfExecId(p.parentExecId))))
    );
  }

  private remember(execId: string): void {
    if (!execId || this.tracked.has(execId)) return;
    if (this.tracked.size >= PID_SET_TRACK_LIMIT) {
      const oldest = this.tracked.values().next().value;
      if (oldest !== undefined) this.tracked.delete(oldest);
    }
    this.tracked.add(execId);
  }

  observe(ev: RuntimeEvent): void {
    if (ev.kind !== 'exec') return;
    if (this.descends(ev.process) || (ev.parent !== undefined && this.descends(ev.parent))) {
      this.remember(ev.process.execId);
      if (ev.parent) this.remember(ev.parent.execId);
    }
  }

  match(ev: RuntimeEvent): boolean {
    return this.descends(ev.process) || (ev.parent !== undefined && this.descends(ev.parent));
  }
}

interface CompiledFilter {
  preds: Pred[];
  trackers: PidSetTracker[];
}

function set<T>(v: T[] | undefined): v is T[] {
  return Array.isArray(v) && v.length > 0;
}

function compileOne(f: PFilter, where: string): CompiledFilter {
  const preds: Pred[] = [];
  const trackers: PidSetTracker[] = [];
  const field = (name: string): string => `${where}.${name}`;

  // Fields we do not evaluate: refuse rather than silently match everything.
  if (set(f.cel_expression)) throw new FilterError(field('cel_expression'), 'CEL expressions are not supported by tetrahub');
  if (f.capabilities) throw new FilterError(field('capabilities'), 'capability filters are not supported by tetrahub');
  if (f.health_check) throw new FilterError(field('health_check'), 'health_check filters are not supported by tetrahub');

  if (set(f.binary_regex)) {
    const res = regexes(f.binary_regex, field('binary_regex'));
    preds.push((ev) => anyMatch(res, ev.process.binary));
  }
  if (set(f.namespace)) {
    const ns = new Set(f.namespace);
    // "" selects host processes (no pod).
    preds.push((ev) => ns.has(ev.process.pod ? ev.process.pod.namespace : ''));
  }
  if (set(f.pid)) {
    const pids = new Set(f.pid);
    preds.push((ev) => pids.has(ev.process.pid));
  }
  if (set(f.pid_set)) {
    const t = new PidSetTracker(new Set(f.pid_set));
    trackers.push(t);
    preds.push((ev) => t.match(ev));
  }
  if (set(f.event_set)) {
    const types = new Set(f.event_set);
    preds.push((ev) => types.has(eventType(ev)));
  }
  if (set(f.pod_regex)) {
    const res = regexes(f.pod_regex, field('pod_regex'));
    preds.push((ev) => ev.process.pod !== undefined && anyMatch(res, ev.process.pod.name));
  }
  if (set(f.arguments_regex)) {
    const res = regexes(f.arguments_regex, field('arguments_regex'));
    preds.push((ev) => anyMatch(res, ev.process.arguments));
  }
  if (set(f.labels)) {
    const matchers: LabelMatcher[] = f.labels.map((sel, i) => {
      try {
        return parseLabelSelector(sel);
      } catch (e) {
        const why = e instanceof LabelSelectorError ? e.message : String(e);
        throw new FilterError(`${field('labels')}[${i}]`, `invalid label selector: ${why}`);
      }
    });
    // Host processes have no labels and never match.
    preds.push((ev) => {
      const pod = ev.process.pod;
      return pod !== undefined && matchers.some((m) => m(pod.labels));
    });
  }
  if (set(f.policy_names)) {
    const names = new Set(f.policy_names);
    preds.push((ev) => {
      const name = policyName(ev);
      return name !== '' && names.has(name);
    });
  }
  if (set(f.parent_binary_regex)) {
    const res = regexes(f.parent_binary_regex, field('parent_binary_regex'));
    preds.push((ev) => ev.parent !== undefined && anyMatch(res, ev.parent.binary));
  }
  if (set(f.parent_arguments_regex)) {
    const res = regexes(f.parent_arguments_regex, field('parent_arguments_regex'));
    preds.push((ev) => ev.parent !== undefined && anyMatch(res, ev.parent.arguments));
  }
  if (set(f.container_id)) {
    const res = regexes(f.container_id, field('container_id'));
    preds.push((ev) => anyMatch(res, ev.process.docker));
  }
  if (f.in_init_tree) {
    const want = f.in_init_tree.value === true;
    preds.push((ev) => inInitTree(ev.process) === want);
  }
  if (set(f.ancestor_binary_regex)) {
    // Validated, but events carry no ancestors yet, so nothing matches (as
    // upstream when ancestors are disabled).
    regexes(f.ancestor_binary_regex, field('ancestor_binary_regex'));
    preds.push(() => false);
  }
  if (set(f.container_name_regex)) {
    const res = regexes(f.container_name_regex, field('container_name_regex'));
    preds.push((ev) => {
      const c = ev.process.pod?.container;
      return c !== undefined && anyMatch(res, c.name);
    });
  }
  if (set(f.namespace_regex)) {
    const res = regexes(f.namespace_regex, field('namespace_regex'));
    preds.push((ev) => ev.process.pod !== undefined && anyMatch(res, ev.process.pod.namespace));
  }
  return { preds, trackers };
}

function all(preds: Pred[]): Pred {
  if (preds.length === 0) return () => true;
  if (preds.length === 1) return preds[0];
  return (ev) => {
    for (const p of preds) if (!p(ev)) return false;
    return true;
  };
}

/** Compiles allow/deny lists; throws FilterError for anything invalid or unsupported. */
export function compileEventFilter(req: PGetEventsRequest): CompiledEventFilter {
  const trackers: PidSetTracker[] = [];
  const build = (list: PFilter[] | undefined, name: string): Pred[] =>
    (list ?? []).map((f, i) => {
      const c = compileOne(f ?? {}, `${name}[${i}]`);
      trackers.push(...c.trackers);
      return all(c.preds);
    });
  const allow = build(req.allow_list, 'allow_list');
  const deny = build(req.deny_list, 'deny_list');
  return (ev) => {
    for (const t of trackers) t.observe(ev);
    if (allow.length > 0) {
      let ok = false;
      for (const p of allow) {
        if (p(ev)) {
          ok = true;
          break;
        }
      }
      if (!ok) return false;
    }
    for (const p of deny) if (p(ev)) return false;
    return true;
  };
}
