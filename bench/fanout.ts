import { type BenchResult, skipped } from './common';
export async function run(): Promise<BenchResult> {
  return skipped('fanout', 'todo');
}
