/**
 * `fn` with its results for the last distinct inputs remembered (up to `max`;
 * then the oldest is forgotten, one for each new input: never one just remembered). For pure functions called with the same few inputs
 * many times: the alerts of one wave share their `startsAt` and `endsAt`.
 * A call that throws is not remembered. Results are shared: never mutate one.
 */
export function rememberingRecent<R>(fn: (input: string) => R, max: number): (input: string) => R {
  const results = new Map<string, R>();
  return (input) => {
    let result = results.get(input);
    if (result === undefined) {
      result = fn(input);
      // A Map keeps insertion order: its first key is the oldest input.
      if (results.size >= max) results.delete(results.keys().next().value!);
      results.set(input, result);
    }
    return result;
  };
}
