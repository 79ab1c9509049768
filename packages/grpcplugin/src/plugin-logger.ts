/** Where a plugin reports what it does (and, in dry-run, what it would do). */
export interface PluginLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** Loggers with lines not yet written, flushed at exit whatever happened. */
const unflushed = new Set<() => void>();
let exitHookInstalled = false;

/**
 * A logger writing one JSON object a line, `{time, level, msg, ...fields}`, the
 * shape core's logs have too. Default stream: stderr, leaving stdout to the program.
 *
 * The lines of one turn of the event loop go out in one write: a plugin busy
 * with a wave logs thousands of lines a second, and stderr to a pipe is written
 * synchronously, a system call per write. Lines still buffered when the
 * process exits are written then.
 */
export function jsonLogger(stream: NodeJS.WritableStream = process.stderr): PluginLogger {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const flush of [...unflushed]) flush();
    });
  }
  let lines: string[] = [];
  const flush = (): void => {
    unflushed.delete(flush);
    if (lines.length === 0) return;
    const text = lines.join('');
    lines = [];
    stream.write(text);
  };
  const write = (level: string, msg: string, fields?: Record<string, unknown>): void => {
    lines.push(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
    if (!unflushed.has(flush)) {
      unflushed.add(flush);
      setImmediate(flush);
    }
  };
  return { info: (m, f) => write('info', m, f), warn: (m, f) => write('warn', m, f) };
}
