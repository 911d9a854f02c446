import { InputError } from '../errors.js';

/** `egret bench`: the benchmark suites of `npm run bench` (see docs/BENCHMARKS.md); exit 1 when a suite failed. */
export async function benchCommand(args: string[]): Promise<number> {
  const { runBench, UsageError } = await import('../bench/run.js');
  return runBench(args).catch((e: unknown) => {
    throw e instanceof UsageError ? new InputError(`${e.message} (egret bench --list shows the suites and options)`) : e;
  });
}
