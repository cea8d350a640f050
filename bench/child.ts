// Entry of the benchmarks' child processes: `node dist/bench/child.js ROLE ...`.
// Each role reports to the parent over the IPC channel (see common.ts).
import { toParent } from './common';

const ROLES: Record<string, () => Promise<(args: string[]) => Promise<void>>> = {
  memory: async () => (await import('./memory')).memoryChild,
  'fanout-server': async () => (await import('./fanout')).serverChild,
  'fanout-sub': async () => (await import('./fanout')).subscriberChild,
  'grpc-raw-client': async () => (await import('./fanout')).rawClientChild,
};

async function main(): Promise<void> {
  const [role, ...args] = process.argv.slice(2);
  const load = ROLES[role];
  if (!load) throw new Error(`unknown child role ${role}`);
  await (await load())(args);
}

main().catch((e: unknown) => {
  toParent({ type: 'error', message: e instanceof Error ? e.stack ?? e.message : String(e) });
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 200).unref();
});
