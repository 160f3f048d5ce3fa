// A bounded pool of async work: reconcile checks many independent actors at once, not all at once.

/** Runs `work` on every item, at most `limit` at a time; rejects with the first failure. */
export async function inBatches<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
