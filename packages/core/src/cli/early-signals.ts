/**
 * Imported first by the CLI: from here on a SIGHUP, SIGTERM or SIGINT that comes while the rest of the command loads
 * (hundreds of ms for the server stack) is kept rather than ending the process with the signal's default action.
 */
const signals: NodeJS.Signals[] = [];
const keep = (signal: NodeJS.Signals): void => void signals.push(signal);
process.on('SIGHUP', keep).on('SIGTERM', keep).on('SIGINT', keep);

/** The signals kept so far, and `release()`, which stops keeping them (the command's own listeners took over). */
export interface EarlySignals {
  readonly signals: readonly NodeJS.Signals[];
  release(): void;
}

export const earlySignals: EarlySignals = {
  signals,
  release(): void {
    process.off('SIGHUP', keep).off('SIGTERM', keep).off('SIGINT', keep);
  },
};

/** For a command that does not take them (validate, explain): released, and each kept signal sent again, to act as it would have. */
export function resendEarlySignals(): void {
  earlySignals.release();
  for (const signal of new Set(signals)) process.kill(process.pid, signal);
}
