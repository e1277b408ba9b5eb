/**
 * Undo steps for everything the benchmark creates (stream, database, connections). Steps run
 * last-registered first, each on its own: one failing or hanging never skips the others.
 */
export class Cleanup {
  private readonly steps: { label: string; run: () => Promise<unknown> }[] = [];
  private done?: Promise<void>;

  constructor(private readonly stepTimeoutMs = 15_000) {}

  add(label: string, run: () => Promise<unknown>): void {
    this.steps.push({ label, run });
  }

  /** Idempotent: a signal arriving while the normal path cleans up waits for the same run. */
  runAll(): Promise<void> {
    this.done ??= this.runSteps();
    return this.done;
  }

  private async runSteps(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${this.stepTimeoutMs} ms`)), this.stepTimeoutMs);
      });
      try {
        await Promise.race([step.run(), timeout]);
      } catch (err) {
        console.error(`cleanup: ${step.label} failed: ${(err as Error).message}`);
        process.exitCode = 1;
      } finally {
        clearTimeout(timer);
      }
    }
  }
}

/**
 * Runs a benchmark with its cleanup on every way out: success, failure, SIGINT and SIGTERM.
 * Once interrupted, whatever was in flight fails because its stream or database went away: that
 * failure is not reported.
 */
export function runBench(main: (cleanup: Cleanup) => Promise<void>): void {
  const cleanup = new Cleanup();
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      interrupted = true;
      console.error(`\n${signal}: cleaning up…`);
      void cleanup.runAll().finally(() => process.exit(130));
    });
  }
  main(cleanup)
    .catch((err: unknown) => {
      if (!interrupted) console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
      process.exitCode = 1;
    })
    .finally(() => cleanup.runAll());
}
