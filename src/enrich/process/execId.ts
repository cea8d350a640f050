// Tetragon's process identity: base64("<node>:<ktime>:<pid>"), standard alphabet with padding.
export function execIdOf(nodeName: string, ktime: bigint, pid: number): string {
  return Buffer.from(`${nodeName}:${ktime}:${pid}`, 'utf8').toString('base64');
}

/** Inverse of execIdOf, for debugging and tests; undefined when it is not one. */
export function parseExecId(execId: string): { nodeName: string; ktime: bigint; pid: number } | undefined {
  const s = Buffer.from(execId, 'base64').toString('utf8');
  const m = /^(.*):(\d+):(\d+)$/.exec(s);
  if (!m) return undefined;
  return { nodeName: m[1], ktime: BigInt(m[2]), pid: Number(m[3]) };
}

/** The node name Tetragon uses: HUBBLE_NODE_NAME, then NODE_NAME, then the hostname. */
export function defaultNodeName(env: NodeJS.ProcessEnv, hostname: string): string {
  return env.HUBBLE_NODE_NAME || env.NODE_NAME || hostname;
}
