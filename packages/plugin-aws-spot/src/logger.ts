/** Where the plugin reports what it does (and, in dry-run, what it would do). */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

const line = (level: string, message: string, fields?: Record<string, unknown>): void => {
  process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), msg: message, ...fields })}\n`);
};

/** Structured JSON lines on stderr: the default {@link Logger}. */
export const stderrLogger: Logger = {
  info: (message, fields) => line('info', message, fields),
  warn: (message, fields) => line('warn', message, fields),
};
