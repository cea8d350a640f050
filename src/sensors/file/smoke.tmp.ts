import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { startStack } from './testkit';
import { FileSensor } from './sensor';
async function main() {
  const st = await startStack('smoke');
  const fsn = new FileSensor({ ...st, options: { ioReportIntervalMs: 0 } });
  await fsn.start();
  fs.mkdirSync('/tmp/smk/x', { recursive: true });
  fs.writeFileSync('/tmp/smk/x/a', 'hello');
  execFileSync('bash', ['-c', 'cd /tmp/smk/x && cat ./a >/dev/null && mv a b && chmod 600 b && rm b && mkdir d && rmdir d && head -c 12345 /dev/zero > w; sleep 0.2; cat /proc/self/status > /dev/null']);
  await new Promise((r) => setTimeout(r, 800)); fsn.sweepIo(true); await new Promise((r) => setTimeout(r, 300));
  for (const e of st.fileEvents()) if (e.path.startsWith('/tmp/smk') || e.path.startsWith('/proc')) console.log(e.op, e.syscall, e.path, e.path2 ?? '', e.ret, e.flags.toString(8), e.mode?.toString(8), e.bytesRead, e.bytesWritten, e.truncated, e.process.pid, e.process.binary, e.process.execId.slice(0,12));
  console.log(fsn.counters(), fsn.status());
  await fsn.stop();
  await st.close();
}
main().catch((e) => { console.error(e); process.exit(1); });
