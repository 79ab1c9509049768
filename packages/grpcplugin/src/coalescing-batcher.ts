/** Settles what one key of a batch asked for: its value, or the error that stands for it. */
export type BatchResults<K, V> = ReadonlyMap<K, V | Error>;

/** How a {@link CoalescingBatcher} forms batches. */
export interface CoalescingOptions {
  /** How long the first key of a batch waits for others. */
  readonly windowMs: number;
  /** Keys in one batch; a full batch goes at once. */
  readonly maxBatch: number;
}

interface Waiting<V> {
  resolve(value: V): void;
  reject(err: unknown): void;
}

/**
 * Coalesces single-key requests that arrive within a short window into one
 * call for many keys (DescribeInstances takes many ids): a wave of N look-ups
 * costs N / maxBatch calls instead of N. A key asked for twice in one window
 * is asked for once. The batch call must answer every key; a key it leaves out
 * is rejected, and a batch that throws rejects every key with that error.
 */
export class CoalescingBatcher<K, V> {
  private pending = new Map<K, Waiting<V>[]>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly run: (keys: readonly K[]) => Promise<BatchResults<K, V>>,
    private readonly options: CoalescingOptions,
  ) {}

  /** Resolves with the value for `key` once its batch has been answered. */
  get(key: K): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      const waiting = this.pending.get(key);
      if (waiting) {
        waiting.push({ resolve, reject });
        return;
      }
      this.pending.set(key, [{ resolve, reject }]);
      if (this.pending.size >= this.options.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.windowMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = new Map();
    const keys = [...batch.keys()];
    // In a promise, so a run that throws before it returns one rejects every key of the batch, and
    // does not escape from the window's timer (an uncaught exception) or from one key's get().
    Promise.resolve(keys).then((batchKeys) => this.run(batchKeys)).then(
      (results) => {
        for (const [key, waiting] of batch) {
          const result = results.has(key) ? (results.get(key) as V | Error) : new Error(`the batch answered nothing for ${String(key)}`);
          for (const w of waiting) {
            if (result instanceof Error) w.reject(result);
            else w.resolve(result);
          }
        }
      },
      (err: unknown) => {
        for (const waiting of batch.values()) for (const w of waiting) w.reject(err);
      },
    );
  }
}
