/**
 * Hollowtrees action plugin: replace a reclaimed AWS spot instance, by
 * detaching it from its Auto Scaling group (which launches a replacement at
 * once) or by launching one with an instant EC2 Fleet; in pool mode (a flow's
 * config `mode: pool`), replace every spot instance of a surging pool with
 * running capacity in other pools before the drain.
 *
 * Run it with the `hollowtrees-aws-spot` bin, or serve the handler yourself:
 * `await serve(9001, new AwsSpotReplaceHandler({ region: 'eu-west-1' }))`.
 *
 * @packageDocumentation
 */
export {
  AwsSpotReplaceHandler,
  REPLACEMENT_STRATEGIES,
  type AwsSpotReplaceOptions,
  type ReplacementStrategy,
} from './replace-handler.js';
export type { PoolOptions } from './pool-settings.js';
export type { AwsCredentials } from './aws-clients.js';
export type { RetryOptions } from './retry-strategy.js';
export { grpcCodeFor } from './aws-error.js';
export { siblingInstanceTypes } from './instance-types.js';
export { REPLACES_TAG, DETACHED_FROM_TAG } from './tags.js';
