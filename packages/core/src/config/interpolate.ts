/** Thrown when a `${VAR}` names a variable that is not set. */
export class MissingEnvError extends Error {
  constructor(readonly variable: string, readonly line: number) {
    super(`line ${line}: environment variable ${variable} is not set (write \${${variable}:-default} for a default)`);
  }
}

const REFERENCE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${VAR}` and `${VAR:-default}` with values from `env`; `$$` writes a
 * literal `$`. Runs on the raw text before YAML parsing, so secrets never need
 * to be written into the file.
 */
export function interpolateEnv(text: string, env: NodeJS.ProcessEnv): string {
  return text.replace(REFERENCE, (match, name: string | undefined, fallback: string | undefined, offset: number) => {
    if (match === '$$') return '$';
    const value = env[name!];
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    throw new MissingEnvError(name!, text.slice(0, offset).split('\n').length);
  });
}
