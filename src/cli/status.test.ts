// `tetrahub status` text and the metrics endpoint with tracing policies.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderMetrics } from '../agent/admin';
import type { StatusSnapshot } from '../agent/status';
import { formatStatus } from './status';

const snap: StatusSnapshot = {
  version: 'v',
  nodeName: 'n',
  startTime: { sec: 1, nsec: 0 },
  uptimeNs: 1e9,
  sensors: [],
  features: {},
  notes: [],
  counters: {},
  listeners: {},
  policies: [
    {
      id: 1,
      name: 'process-monitoring',
      namespace: '',
      state: 'enabled',
      mode: 'monitor_only',
      source: 'file',
      file: '/etc/tetrahub/seed.yaml',
      kernelMemoryBytes: 773120,
      hooks: [{ section: 'kprobes[0]', call: 'sys_execve', attachedAs: 'tracepoint syscalls/sys_enter_execve', state: 'loaded', fallback: 'kprobe __x64_sys_execve → syscall tracepoint' }],
      counters: { post: 12, signal: 0, monitorSignal: 2, override: 1, monitorOverride: 0, notifyEnforcer: 0, monitorNotifyEnforcer: 0, nopost: 0 },
    },
    { id: 2, name: 'say "hi"', namespace: 'prod', state: 'load_error', mode: 'enforce', source: 'grpc', kernelMemoryBytes: 0, hooks: [], counters: {}, error: 'verifier said no' },
  ],
};

test('status lists policies with state, mode, hooks and errors', () => {
  const text = formatStatus(snap);
  assert.match(text, /Tracing policies \(2\):/);
  assert.match(text, /process-monitoring +enabled +mode monitor_only +\/etc\/tetrahub\/seed\.yaml posted 12, enforced 1, audited 2, 755 KiB/);
  assert.match(text, /kprobes\[0\] sys_execve → tracepoint syscalls\/sys_enter_execve \(fallback: kprobe __x64_sys_execve → syscall tracepoint\)/);
  assert.match(text, /prod\/say "hi" +load_error/);
  assert.match(text, /error: verifier said no/);
});

test('metrics: per-policy action counters, kernel memory and states, labels escaped', () => {
  const m = renderMetrics(snap);
  assert.match(m, /^tetrahub_policy_actions_total\{policy="process-monitoring",policy_namespace="",action="post"\} 12$/m);
  assert.match(m, /^tetrahub_policy_actions_total\{policy="process-monitoring",policy_namespace="",action="monitor_signal"\} 2$/m);
  assert.match(m, /^tetrahub_tracingpolicy_kernel_memory_bytes\{policy="say \\"hi\\"",policy_namespace="prod"\} 0$/m);
  assert.match(m, /^tetrahub_tracingpolicy_loaded\{state="enabled"\} 1$/m);
  assert.match(m, /^tetrahub_tracingpolicy_loaded\{state="load_error"\} 1$/m);
});
