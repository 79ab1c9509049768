/** Runs tasks one at a time per key; tasks of different keys run in parallel. */
export class KeyedSerial {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    // Forget the key once its queue drains, so the map does not grow with every group ever seen.
    void tail.then(() => this.tails.get(key) === tail && this.tails.delete(key));
    return result;
  }
}
