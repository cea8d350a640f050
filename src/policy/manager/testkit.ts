// Test helpers for the policy manager and its clients (gRPC, CLI): a
// recording PolicyLoader that loads nothing in the kernel, and policy texts.
// Not a test file itself.
import type { ActionCounters, LoadedPolicy, LoadOptions, PolicyLoader, PolicyMode, PolicyPlan } from '../engine/types';
import { PolicyLoadError, zeroCounters } from '../engine/types';
import type { TracingPolicy } from '../types';

export interface FakeLoaded extends LoadedPolicy {
  name: string;
  mode: PolicyMode;
  enabled: boolean;
  closed: boolean;
  c: ActionCounters;
}

export class FakeLoader implements PolicyLoader {
  loaded: FakeLoaded[] = [];
  /** Policy names whose load fails. */
  failing = new Set<string>();
  plan(_p: TracingPolicy, _o: LoadOptions): PolicyPlan {
    return { hooks: [], maps: [], kernelMemoryBytes: 0, errors: [] };
  }
  async load(p: TracingPolicy, o: LoadOptions): Promise<LoadedPolicy> {
    if (this.failing.has(p.metadata.name)) {
      throw new PolicyLoadError('verifier: R1 invalid mem access', {
        hooks: [{ section: 'kprobes[0]', call: 'sys_execve', attachedAs: 'tracepoint syscalls/sys_enter_execve', state: 'error', reason: 'verifier rejected', inKernel: [], inUserSpace: [], actions: [] }],
        maps: [],
        kernelMemoryBytes: 0,
        errors: [],
      });
    }
    const calls = (p.spec.kprobes ?? []).map((k) => k.call);
    const l: FakeLoaded = {
      name: p.metadata.name,
      mode: o.mode,
      enabled: true,
      closed: false,
      c: { ...zeroCounters(), post: 3 },
      hooks: calls.map((call, i) => ({ section: `kprobes[${i}]`, call, attachedAs: `tracepoint syscalls/sys_enter_${call.replace(/^sys_/, '')}`, state: 'loaded', inKernel: [], inUserSpace: [], actions: ['Post'] })),
      kernelMemoryBytes: 4096,
      counters: () => l.c,
      setMode: async (m) => {
        l.mode = m;
      },
      setEnabled: async (on) => {
        l.enabled = on;
      },
      close: async () => {
        l.closed = true;
      },
    };
    this.loaded.push(l);
    return l;
  }
  live(): FakeLoaded[] {
    return this.loaded.filter((l) => !l.closed);
  }
}

export function policyYaml(name: string, opts: { call?: string; sigkill?: boolean; mode?: 'monitor' | 'enforce'; kind?: string; namespace?: string } = {}): string {
  const actions = opts.sigkill ? '\n      matchActions: [{action: Sigkill}]' : '';
  const options = opts.mode ? `\n  options: [{name: policy-mode, value: ${opts.mode}}]` : '';
  const ns = opts.namespace ? `\n  namespace: ${opts.namespace}` : '';
  return `apiVersion: cilium.io/v1alpha1
kind: ${opts.kind ?? 'TracingPolicy'}
metadata:
  name: ${name}${ns}
spec:${options}
  kprobes:
  - call: ${opts.call ?? 'sys_execve'}
    syscall: true
    args: [{index: 0, type: string}]
    selectors:
    - matchBinaries: [{operator: In, values: [/bin/sh]}]${actions}
`;
}

