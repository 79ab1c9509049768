/**
 * `fn` with its results for the last distinct inputs remembered (up to `max`;
 * then it starts over). For pure functions called with the same few inputs
 * many times: the alerts of one wave share their `startsAt` and `endsAt`.
 * A call that throws is not remembered. Results are shared: never mutate one.
 */
export function rememberingRecent<R>(fn: (input: string) => R, max: number): (input: string) => R {
  const results = new Map<string, R>();
  return (input) => {
    let result = results.get(input);
    if (result === undefined) {
      result = fn(input);
      if (results.size >= max) results.clear();
      results.set(input, result);
    }
    return result;
  };
}
