/**
 * How the reclaimed instance is replaced:
 * - `auto`: `asg-detach` for Auto Scaling group members (present or former), `fleet` otherwise;
 * - `asg-detach`: only group members; anything else fails with FAILED_PRECONDITION;
 * - `fleet`: always an EC2 Fleet, group member or not.
 */
export type ReplacementStrategy = 'auto' | 'asg-detach' | 'fleet';

/** The strategies {@link ReplacementStrategy} allows, for validating input. */
export const REPLACEMENT_STRATEGIES: readonly ReplacementStrategy[] = ['auto', 'asg-detach', 'fleet'];
