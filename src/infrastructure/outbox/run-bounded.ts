/** Runs `task` over `items` with at most `limit` in flight; results keep the items' order. */
export async function runBounded<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  // Without this, a limit below 1 (or NaN) would start no worker and return holes, which a
  // caller reading `undefined` as success would take for work done.
  if (!(limit >= 1)) throw new RangeError(`runBounded needs a limit of at least 1, got ${limit}`);
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
