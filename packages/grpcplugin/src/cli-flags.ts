import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDuration } from './duration.js';
import { TlsFiles, type TlsFilePaths } from './tls-files.js';

/** Bad command-line usage: a Hollowtrees bin prints it (with a pointer to `--help`) and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The flags a bin takes, in `node:util` `parseArgs` form. */
export type FlagOptions = NonNullable<Parameters<typeof parseArgs>[0]>['options'] & {};

/** The values {@link parseFlags} returns for `T`: strings and booleans by flag name, unset flags absent. */
export type FlagValues<T extends FlagOptions> = ReturnType<typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>>['values'];

/**
 * Refuses a flag given an empty value (`--config ""`, `--kubeconfig "$UNSET"`): no Hollowtrees
 * flag takes one, and reading it as "not given" would quietly fall back to a default (an embedded
 * configuration, another kubeconfig) instead of what the caller meant to name.
 * @throws UsageError naming the flag.
 */
export function refuseEmptyFlags(values: Readonly<Record<string, unknown>>): void {
  for (const [flag, value] of Object.entries(values)) {
    const given = Array.isArray(value) ? value : [value];
    if (given.includes('')) throw new UsageError(`--${flag} needs a value, got ""`);
  }
}

/** The values and the positional arguments (a command, a file) {@link parseCommandLine} returns for `T`. */
export type CommandLine<T extends FlagOptions> = Pick<ReturnType<typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: true }>>, 'values' | 'positionals'>;

/**
 * Parses a bin's arguments (without `node` and the script) the one way every Hollowtrees bin does:
 * strict (an unknown flag, a flag without its value or with an empty one is an error); with
 * positional arguments, for a bin that takes a command.
 * @throws UsageError naming the flag.
 */
export function parseCommandLine<const T extends FlagOptions>(argv: readonly string[], options: T): CommandLine<T> {
  let parsed: CommandLine<T>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
  } catch (err) {
    // Node adds how to pass a positional argument starting with '-', which none of ours is: an unknown flag is a mistake.
    const message = err instanceof Error ? err.message : String(err);
    throw new UsageError((err as { code?: unknown }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? message.replace(/\. To specify a positional argument[^]*$/, '') : message);
  }
  refuseEmptyFlags(parsed.values);
  return parsed;
}

/**
 * Parses a bin's arguments (without `node` and the script) the one way every Hollowtrees bin does:
 * strict (an unknown flag, a flag without its value or with an empty one is an error), no
 * positional arguments.
 * @throws UsageError naming the flag or the argument.
 */
export function parseFlags<const T extends FlagOptions>(argv: readonly string[], options: T): FlagValues<T> {
  let values: FlagValues<T>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  refuseEmptyFlags(values);
  return values;
}

/**
 * An integer flag's value: `fallback` when unset.
 * @throws UsageError when it is no integer from `min` to `max`.
 */
export function integerFlag(flag: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}

/**
 * A duration flag's value in ms, undefined when unset. `min` (default none) and `max` are durations as
 * the message shows them (`1s`, `24h`); `example` is shown as what one looks like.
 * @throws UsageError when it is no duration, or one out of those bounds.
 */
export function durationFlag(flag: string, value: string | undefined, bounds: { min?: string; max: string; example: string }): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  const minMs = bounds.min === undefined ? 0 : parseDuration(bounds.min)!;
  const maxMs = parseDuration(bounds.max)!;
  if (ms === undefined || ms < minMs || ms > maxMs) {
    const range = bounds.min === undefined ? `up to ${bounds.max}` : `from ${bounds.min} to ${bounds.max}`;
    throw new UsageError(`--${flag} must be a duration ${range} (e.g. ${bounds.example}), got "${value}"`);
  }
  return ms;
}

/**
 * The contents of the file a flag names (a certificate, a token).
 * @throws UsageError naming the flag and the file when it cannot be read.
 */
export function readFlagFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`--${flag}: cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * The TLS files a bin's flags name, read now and again every `--tls-refresh` (see {@link TlsFiles}).
 * @param files each file's flag (without `--`) and path.
 * @param refresh the `--tls-refresh` value, a duration from 1s to 24h; default 1m.
 * @throws UsageError naming the flag when a file cannot be read, the files do not fit together, or the refresh is out of range.
 */
export function tlsFlagFiles(files: Partial<Record<keyof TlsFilePaths, { flag: string; path: string }>>, refresh: string | undefined): TlsFiles {
  const refreshMs = durationFlag('tls-refresh', refresh, { min: '1s', max: '24h', example: '1m' }) ?? 60_000;
  const paths: TlsFilePaths = {};
  const labels: Partial<Record<keyof TlsFilePaths, string>> = {};
  for (const [field, given] of Object.entries(files) as Array<[keyof TlsFilePaths, { flag: string; path: string }]>) {
    paths[field] = given.path;
    labels[field] = `--${given.flag} ${given.path}`;
  }
  try {
    return new TlsFiles(paths, { refreshMs, labels });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
