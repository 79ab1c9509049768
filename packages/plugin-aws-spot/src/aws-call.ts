import { awsErrorCode, toPluginError } from './aws-error.js';

/** What every SDK `send` accepts as its second argument. */
export interface SendOptions {
  abortSignal: AbortSignal;
}

/**
 * Runs one SDK call with the handler's abort signal, and maps its failure to a
 * PluginError named after `operation` (e.g. `EC2 DescribeInstances`).
 */
export async function callAws<T>(operation: string, signal: AbortSignal, send: (options: SendOptions) => Promise<T>): Promise<T> {
  try {
    return await send({ abortSignal: signal });
  } catch (err) {
    throw toPluginError(err, operation, signal);
  }
}

/**
 * Runs an EC2 call that has `DryRun: true`: EC2 answers `DryRunOperation` when
 * the call would have succeeded (permissions and parameters checked), which
 * resolves; any other answer rejects as {@link callAws} does.
 */
export async function dryRunEc2(operation: string, signal: AbortSignal, send: (options: SendOptions) => Promise<unknown>): Promise<void> {
  try {
    await callAws(operation, signal, send);
  } catch (err) {
    if (awsErrorCode(err) === 'DryRunOperation') return;
    throw err;
  }
}
