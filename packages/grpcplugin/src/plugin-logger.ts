/** Where a plugin reports what it does (and, in dry-run, what it would do). */
export interface PluginLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/**
 * A logger writing one JSON object a line, `{time, level, msg, ...fields}`, the
 * shape core's logs have too. Default stream: stderr, leaving stdout to the program.
 */
export function jsonLogger(stream: NodeJS.WritableStream = process.stderr): PluginLogger {
  const write = (level: string, msg: string, fields?: Record<string, unknown>): void => {
    stream.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
  return { info: (m, f) => write('info', m, f), warn: (m, f) => write('warn', m, f) };
}
