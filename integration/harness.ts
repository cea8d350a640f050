// Starts a real agent (the built CLI, as a child process) with private sockets,
// pin directory and info file, and waits until it serves. Tests that cannot run
// here (not root, no BTF, not built) get a reason to skip with.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { StatusSnapshot } from '../src/agent/status';
import { fetchStatus } from '../src/cli/status';
import { repoRoot } from '../src/kernel/native';
import { AGENT_NODE_FLAGS } from '../src/agent/node-flags';

export const ROOT = repoRoot();

/** Why kernel tests cannot run here, or undefined when they can. */
export function kernelSkipReason(): string | undefined {
  if (process.getuid && process.getuid() !== 0) return 'needs root to load BPF programs';
  if (!fs.existsSync('/sys/kernel/btf/vmlinux')) return 'kernel has no BTF (/sys/kernel/btf/vmlinux)';
  if (!fs.existsSync(path.join(ROOT, 'native/build/Release/tetrahub_native.node'))) return 'native addon not built (npm run build)';
  if (!fs.existsSync(path.join(ROOT, 'bpf/.output/process.bpf.o'))) return 'BPF objects not built (npm run build)';
  return undefined;
}

export interface RunningAgent {
  dir: string;
  hubble: string;
  tetragon: string;
  adminSocket: string;
  proc: ChildProcess;
  /** Everything the agent logged so far. */
  logs(): string;
  status(): Promise<StatusSnapshot>;
  stop(): Promise<number | null>;
}

export async function startAgent(extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<RunningAgent> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tetrahub-it-'));
  const hubble = `unix://${dir}/hubble.sock`;
  const tetragon = `unix://${dir}/tetragon.sock`;
  const adminSocket = `${dir}/admin.sock`;
  const bpfDir = `/sys/fs/bpf/tetrahub-it-${process.pid}-${path.basename(dir)}`;
  const args = [
    path.join(ROOT, 'bin/tetrahub.js'), 'agent',
    '--hubble-address', hubble,
    '--tetragon-address', tetragon,
    '--metrics-address', '',
    '--admin-socket', adminSocket,
    '--info-file', `${dir}/tetragon-info.json`,
    '--bpf-dir', bpfDir,
    ...extraArgs,
  ];
  const proc = spawn(process.execPath, [...AGENT_NODE_FLAGS, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`agent exited with ${proc.exitCode}:\n${out}`);
    try {
      const s = await fetchStatus(adminSocket);
      if (s.listeners.hubble && s.listeners.tetragon) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`agent did not become ready within 60 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    dir,
    hubble,
    tetragon,
    adminSocket,
    proc,
    logs: () => out,
    status: () => fetchStatus(adminSocket),
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(t);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(bpfDir, { recursive: true, force: true });
      return code;
    },
  };
}

/** Polls fn until it returns a value or the timeout passes. */
export async function waitFor<T>(fn: () => T | undefined | Promise<T | undefined>, ms = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
