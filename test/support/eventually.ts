/**
 * Resolves once `check` holds (returns true, or returns without throwing an assertion), polled
 * every 20 ms: for what arrives on a connection of its own (a NOTIFY, a Redis invalidation). After
 * `ms` it fails with the check's own last failure.
 */
export async function eventually(
  check: () => Promise<unknown> | unknown,
  what = 'the check',
  ms = 5000,
): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    let failure: unknown;
    try {
      if ((await check()) !== false) return;
      failure = new Error(`never happened: ${what}`);
    } catch (err) {
      failure = err;
    }
    if (Date.now() > until) throw failure;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
