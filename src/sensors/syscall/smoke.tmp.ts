import { execFileSync } from 'node:child_process';
import { startStack } from '../file/testkit';
import { SyscallSensor } from './sensor';
async function main() {
  const st = await startStack('smoke2');
  const s = new SyscallSensor({ ...st, options: { events: ['getppid', 'sched_yield', 'umask'], counts: ['getppid', 'sched_yield'], binaries: ['/usr/bin/python3'] } });
  await s.start();
  execFileSync('/usr/bin/python3', ['-c', 'import os\nfor i in range(3): os.getppid()\nos.sched_yield()\nos.umask(0o27)']);
  execFileSync('bash', ['-c', 'echo $PPID > /dev/null']);
  await new Promise((r) => setTimeout(r, 500));
  s.sweepCounts();
  await new Promise((r) => setTimeout(r, 300));
  for (const e of st.syscallEvents()) console.log(e.name, e.id, e.args.slice(0, 2), e.ret, e.count, e.process.pid, e.process.binary);
  console.log(s.counters(), s.status().hooks);
  await s.stop();
  await st.close();
}
main().catch((e) => { console.error(e); process.exit(1); });
