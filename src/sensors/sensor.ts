// What the agent needs from every sensor: start, stop, and an honest status.
import type { SensorStatus } from '../agent/status';

export interface Sensor {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): SensorStatus;
  /** Named counters merged into the agent's status and metrics. */
  counters(): Record<string, number>;
}
