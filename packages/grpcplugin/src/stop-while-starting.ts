/**
 * Makes a SIGTERM or SIGINT that arrives while a bin is starting (resolving its region, checking
 * its cluster access, finding its cloud: before it serves) end the process at once, with status 0,
 * since nothing is in flight yet. Node installs no listener of its own for them, and the kernel
 * drops a signal sent to PID 1 (node in a container) that has none: the pod would wait out its
 * grace period for a SIGKILL. Call the returned function once the bin serves, where it installs
 * its own graceful stop.
 */
export function exitOnStopWhileStarting(): () => void {
  const exit = (): never => process.exit(0);
  process.once('SIGTERM', exit).once('SIGINT', exit);
  return () => void process.off('SIGTERM', exit).off('SIGINT', exit);
}
