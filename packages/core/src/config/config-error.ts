import type { InputProblem } from '../validation-issues.js';

/** One thing wrong in a configuration file, at a path such as `flows.spot.plugins[1]`. */
export type ConfigProblem = InputProblem;

/** A configuration that cannot be used. The message names the file, each path and what was expected. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(problems.map((p) => `${file}: ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n'));
  }
}
