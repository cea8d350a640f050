// `connect-policy`: what a loaded connect policy (src/policy/connect,
// bpf/policy_connect.bpf.c at cgroup connect4/6) costs a loopback connect
// storm. Same run, rounds alternating: no policy / the policy loaded. The
// policy has five selectors (Tetragon's limit per hook) that all get evaluated and none matches (the
// storm must keep running): DLabels + DPort + NotIn binaries, DIdentity
// world + DPort, NotDAddr + DPort, DPortPriv + NotIn, DIdentity world +
// NotDPort — the last forces the peer identity lookup (cilium_lxc miss +
// ipcache LPM in STAND-IN Cilium 1.18 maps, 1000 /32s and 0.0.0.0/0) on every
// connect. The storm runs in a network namespace of its own (a veth "pod")
// and connects to its own address there, so the destination is not loopback
// (loopback is host without any lookup).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Logger } from '../src/agent/log';
import { EventBus } from '../src/bus/bus';
import { defaultConfig, type AgentConfig } from '../src/config/config';
import { ProcessCache } from '../src/enrich/process/cache';
import { BootClock } from '../src/enrich/process/clock';
import { loadNative } from '../src/kernel/native';
import { parsePolicy } from '../src/policy';
import { createConnectBackend } from '../src/policy/connect';
import { zeroCounters } from '../src/policy/engine/types';
import type { TracingPolicy } from '../src/policy/types';
import { startCiliumIdentity } from '../src/sensors/net/identity';
import { createVethPair, netnsSkipReason } from '../integration/netns';
import { CiliumMapsFixture, fixtureUnavailable } from '../integration/standins/cilium-maps';
import { kernelSkipReason, median, nowS, OUT_DIR, ROOT, rows, section, skipped, type BenchResult } from './common';

const NAME = 'connect-policy';

const STORM_C = String.raw`// Loopback connect storm for bench/connect-policy.ts (generated; do not edit).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	const char *ip = argc > 2 ? argv[2] : "127.0.0.1";
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof a;
	struct linger lg = { 1, 0 };
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
	long n = 0, fail = 0;
	inet_pton(AF_INET, ip, &a.sin_addr);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 128) || getsockname(l, (struct sockaddr *)&a, &alen)) { perror("listen"); return 1; }
	double t0 = now();
	for (;;) {
		if ((n & 31) == 0 && now() - t0 >= secs) break;
		int c = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		if (connect(c, (struct sockaddr *)&a, sizeof a)) { fail++; close(c); if (fail > 1000) break; continue; }
		int s = accept(l, NULL, NULL);
		if (s >= 0) { setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg); close(s); }
		close(c);
		n++;
	}
	printf("{\"conns\":%ld,\"failures\":%ld,\"seconds\":%.6f}\n", n, fail, now() - t0);
	return 0;
}
`;

const POLICY = `
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: bench-connect}
spec:
  kprobes:
  - call: "tcp_connect"
    syscall: false
    args: [{index: 0, type: "sock"}]
    selectors:
    - matchArgs:
      - {index: 0, operator: DLabels, labelSelector: {matchLabels: {app: db}}}
      - {index: 0, operator: DPort, values: ["5432"]}
      matchBinaries: [{operator: NotIn, values: ["/usr/bin/psql"]}]
      matchActions: [{action: Override, argError: -1}]
    - matchArgs:
      - {index: 0, operator: DIdentity, values: ["world"]}
      - {index: 0, operator: DPort, values: ["25", "465", "587"]}
      matchActions: [{action: Sigkill}]
    - matchArgs:
      - {index: 0, operator: NotDAddr, values: ["127.0.0.0/8", "10.0.0.0/8"]}
      - {index: 0, operator: DPort, values: ["443"]}
    - matchArgs:
      - {index: 0, operator: DPortPriv}
      matchBinaries: [{operator: NotIn, values: ["/usr/sbin/sshd"]}]
    - matchArgs:
      - {index: 0, operator: DIdentity, values: ["world"]}
      - {index: 0, operator: NotDPort, values: ["443"]}
`;

export async function run(opts: { rounds?: number; seconds?: number } = {}): Promise<BenchResult> {
  const t0 = nowS();
  const why = kernelSkipReason() ?? netnsSkipReason() ?? fixtureUnavailable() ?? (fs.existsSync(path.join(ROOT, 'bpf/.output/policy_connect.bpf.o')) ? undefined : 'bpf/.output/policy_connect.bpf.o not built');
  if (why) return skipped(NAME, why);
  const src = path.join(OUT_DIR, 'connect-policy-storm.c');
  fs.mkdirSync(OUT_DIR, { recursive: true });
  if (!fs.existsSync(src) || fs.readFileSync(src, 'utf8') !== STORM_C) fs.writeFileSync(src, STORM_C);
  const bin = path.join(OUT_DIR, 'connect-policy-storm');
  if (!fs.existsSync(bin) || fs.statSync(bin).mtimeMs < fs.statSync(src).mtimeMs) {
    const cc = spawnSync('cc', ['-O2', '-Wall', '-o', bin, src], { encoding: 'utf8' });
    if (cc.status !== 0) return skipped(NAME, `cc connect-policy-storm.c failed: ${(cc.stderr || cc.error?.message || '').trim()}`);
  }
  const veth = createVethPair();
  const storm = (secs: number): number => {
    const r = spawnSync('ip', ['netns', 'exec', veth.nsA, bin, String(secs), veth.addrA], { encoding: 'utf8', timeout: (secs + 30) * 1000 });
    if (r.status !== 0) throw new Error(`storm failed: ${(r.stderr || r.stdout).trim()}`);
    const s = JSON.parse(r.stdout) as { conns: number; failures: number; seconds: number };
    if (s.failures > 0) throw new Error(`storm: ${s.failures} connects failed (the policy must not refuse them)`);
    return s.conns / s.seconds;
  };

  const native = loadNative();
  const clock = new BootClock(() => native.clocks());
  const pinRoot = `/sys/fs/bpf/tetrahub-bench-pc-${process.pid}`;
  const config: AgentConfig = { ...defaultConfig(), nodeName: 'bench', bpfDir: pinRoot };
  const log = new Logger('warn');
  const bus = new EventBus();
  const cache = new ProcessCache({ nodeName: config.nodeName, clock });
  const fixture = CiliumMapsFixture.create({ generation: '1.18' });
  for (let i = 0; i < 1000; i++) fixture.addIpcache(`10.${(i >> 8) & 255}.${i & 255}.7/32`, { identity: 70000 + i });
  fixture.addIpcache('0.0.0.0/0', { identity: 2 });
  fixture.addIpcache(`${veth.addrA}/32`, { identity: 54321 });
  const identity = startCiliumIdentity({ native, log, bpfDir: fixture.dir, apiSocket: '', recheckMs: 1000, probeNetns: false });
  const parsed = parsePolicy(POLICY);
  if (!parsed.policy) return { name: NAME, status: 'failed', reason: `bench policy: ${parsed.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, seconds: nowS() - t0, figures: {} };
  const policy = parsed.policy;
  const backend = createConnectBackend();
  const deps = { native, bus, cache, clock, config, log, features: native.probeFeatures(), identity };
  const rounds = opts.rounds ?? 5;
  const secs = opts.seconds ?? 2;
  const off: number[] = [];
  const on: number[] = [];
  let matched = 0;
  let checked = 0;
  // BPF run time of the connect4 program (kernel.bpf_stats_enabled on for the run, restored after).
  const STATS = '/proc/sys/kernel/bpf_stats_enabled';
  let statsWas: string | undefined;
  try {
    statsWas = fs.readFileSync(STATS, 'utf8').trim();
    fs.writeFileSync(STATS, '1');
  } catch {
    statsWas = undefined;
  }
  const runNs: number[] = [];
  const progStats = (): { ns: number; cnt: number } | undefined => {
    const r = spawnSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8', timeout: 10_000, maxBuffer: 64 << 20 });
    if (r.status !== 0) return undefined;
    try {
      const list = JSON.parse(r.stdout) as { name?: string; run_time_ns?: number; run_cnt?: number }[];
      const p = list.filter((x) => x.name === 'th_pc_connect4');
      if (p.length !== 1) return undefined;
      return { ns: p[0].run_time_ns ?? 0, cnt: p[0].run_cnt ?? 0 };
    } catch {
      return undefined;
    }
  };
  try {
    storm(0.5); // warm-up
    for (let r = 0; r < rounds; r++) {
      off.push(storm(secs));
      const hook = await backend.load(policy, { list: 'kprobes', index: 0 }, { deps, mode: 'enforce', policyId: 1, counters: zeroCounters() });
      try {
        const before = progStats();
        on.push(storm(secs));
        const after = progStats();
        if (before && after && after.cnt > before.cnt) runNs.push((after.ns - before.ns) / (after.cnt - before.cnt));
        const st = (hook as unknown as { stats(): { checked: number; matched: number } | undefined }).stats();
        checked += st?.checked ?? 0;
        matched += st?.matched ?? 0;
      } finally {
        await hook.close();
      }
    }
  } catch (e) {
    return { name: NAME, status: 'failed', reason: (e as Error).message, seconds: nowS() - t0, figures: {} };
  } finally {
    if (statsWas !== undefined) fs.writeFileSync(STATS, statsWas);
    identity.close();
    fixture.close();
    veth.destroy();
    fs.rmSync(pinRoot, { recursive: true, force: true });
  }
  const mOff = median(off);
  const mOn = median(on);
  const slower = (1 - mOn / mOff) * 100;
  section(`${NAME}: connect storm in a pod netns to its own address, no policy vs a 5-selector connect policy (identity lookup on every connect)`);
  rows([
    ['no policy', `${Math.round(mOff).toLocaleString('en-US')} connects/s (median of ${rounds})`],
    ['policy loaded', `${Math.round(mOn).toLocaleString('en-US')} connects/s (${slower.toFixed(1)} % slower)`],
    ['connect4 program', runNs.length ? `${median(runNs).toFixed(0)} ns per connect (bpf_stats run time, median of ${runNs.length})` : 'run time not measurable (bpftool or bpf_stats missing)'],
    ['kernel decisions', `${checked.toLocaleString('en-US')} connects evaluated, ${matched} matched`],
  ]);
  return {
    name: NAME,
    status: 'ok',
    value: `${Math.round(mOn).toLocaleString('en-US')} connects/s with the policy`,
    baseline: `${Math.round(mOff).toLocaleString('en-US')} connects/s without`,
    ratio: `${slower.toFixed(1)} % slower${runNs.length ? `; ${median(runNs).toFixed(0)} ns/connect in BPF` : ''}`,
    seconds: nowS() - t0,
    figures: { off, on, checked, matched, rounds, secondsPerRound: secs, connect4RunNs: runNs },
    notes: ['connect rates on a shared 2-core machine vary by several % between rounds; the program run time is the precise figure'],
  };
}
