// A small leveled logger writing one line per message to stderr.
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export class Logger {
  constructor(public level: Level = 'info', private readonly sink: (line: string) => void = (l) => process.stderr.write(l + '\n')) {}

  private log(level: Level, msg: string): void {
    if (ORDER[level] < ORDER[this.level]) return;
    this.sink(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}`);
  }
  debug(msg: string): void {
    this.log('debug', msg);
  }
  info(msg: string): void {
    this.log('info', msg);
  }
  warn(msg: string): void {
    this.log('warn', msg);
  }
  error(msg: string): void {
    this.log('error', msg);
  }
}
