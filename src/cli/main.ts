// `tetrahub` command line: agent, observe, status, policy, version.
import { Agent, AgentStartError } from '../agent/agent';
import { ConfigError, parseAgentArgs } from '../config/config';
import { VERSION } from '../agent/version';
import { runObserve } from './observe';
import { runStatus } from './status';
import { runPolicy } from './policy';

const USAGE = `Usage: tetrahub <command> [flags]

Commands:
  agent     run the agent in the foreground (what \`npm start\` runs)
  observe   show events (like tetra getevents / hubble observe); --help for flags
  status    sensors, kernel features, fallbacks, counters of a running agent
  policy    TracingPolicies: add | delete | list | enable | disable | mode | check FILE; --help for more
  version   print the version

Agent flags (defaults in brackets; also settable in /etc/tetrahub/config.yaml or --config FILE):
  --hubble-address ADDR      [unix:///var/run/tetrahub/hubble.sock,127.0.0.1:4244]
  --tetragon-address ADDR    [127.0.0.1:54321,unix:///var/run/tetrahub/tetragon.sock]
  --metrics-address ADDR     [127.0.0.1:2112] ("" disables)
  --admin-socket PATH        [/var/run/tetrahub/admin.sock]
  --node-name NAME           [$HUBBLE_NODE_NAME, $NODE_NAME or the hostname]
  --bpf-dir DIR              [/sys/fs/bpf/tetrahub]
  --info-file PATH           [/var/run/tetrahub/tetragon-info.json]
  --ring-buffer-bytes N      [8388608]
  --process-map-entries N    [32768]
  --process-cache-size N     [65536]
  --process-cache-grace-ms N [30000]
  --hubble-history-size N    [4095]
  --event-queue-size N       [10000]
  --enable-sensor NAME / --disable-sensor NAME
  --tracing-policy FILE      TracingPolicy file loaded at start (repeatable)
  --tracing-policy-dir DIR   directory of policy files (*.yaml, *.yml, *.json), watched: add, change, remove live
  --policy-strict            refuse a policy when any of its hooks is unsupported on this kernel
  --log-level LEVEL          [info]
`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'agent':
      return runAgent(rest);
    case 'observe':
      return runObserve(rest);
    case 'status':
      return runStatus(rest);
    case 'policy':
    case 'tracingpolicy':
    case 'tp':
      return runPolicy(rest);
    case 'version':
    case '--version':
      process.stdout.write(`tetrahub ${VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return cmd === undefined ? 1 : 0;
    default:
      process.stderr.write(`tetrahub: unknown command "${cmd}"\n\n${USAGE}`);
      return 2;
  }
}

async function runAgent(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let agent: Agent;
  try {
    agent = new Agent(parseAgentArgs(argv));
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`tetrahub: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  try {
    await agent.start();
  } catch (e) {
    const msg = e instanceof AgentStartError ? e.message : (e as Error).stack ?? String(e);
    agent.log.error(msg);
    await agent.stop().catch(() => undefined);
    return 1;
  }
  agent.log.info(`tetrahub ${VERSION} running on node ${agent.config.nodeName}; Ctrl-C to stop`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      agent.log.info(`${sig}: stopping`);
      agent.stop().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
}
