/**
 * How messages and logs show values of the configuration. A value that took
 * text from the environment (`${VAR}`) is shown as written in the file, never
 * as what it became. Every message or log line that names a configuration
 * value gets it from here.
 */
export class ValueDisplay {
  /** @param fromEnv YAML path → text as written, for every value that took text from the environment. */
  constructor(private readonly fromEnv: ReadonlyMap<string, string>) {}

  /** Whether the value at `path` took text from the environment. */
  isFromEnvironment(path: string): boolean {
    return this.fromEnv.has(path);
  }

  /** For a log field: the value itself, or the text as written (`${STATE_DIR}/runs.jsonl`). */
  plain(path: string, value: string): string {
    return this.fromEnv.get(path) ?? value;
  }

  /** For a message: `"5 minutes"`, or `"${COOLDOWN}" (from the environment, not shown)`. */
  quoted(path: string, value: string): string {
    const written = this.fromEnv.get(path);
    return written === undefined ? JSON.stringify(value) : `${JSON.stringify(written)} (from the environment, not shown)`;
  }
}
