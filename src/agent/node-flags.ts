// Node/V8 flags the agent runs with (npm start, the Helm chart, the test
// harness and the memory benchmark use the same list). A 4 MB young
// generation instead of V8's 16 MB default keeps RSS about 30 MB lower; the
// agent's garbage is short-lived, so the extra scavenges are cheap.
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
