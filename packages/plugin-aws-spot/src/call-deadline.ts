import { wallAheadOf, type Clock } from '@hollowtrees/grpcplugin';

/**
 * A served call's deadline (a wall-clock `Date`, as the SDK hands it) as a time on `clock`, Infinity for none: on
 * `steadyClock` the steps of the wall clock since start are taken off, so the time left to it is what the caller gave.
 */
export function deadlineOn(clock: Clock, deadline: Date | undefined): number {
  return deadline === undefined ? Infinity : deadline.getTime() - wallAheadOf(clock)();
}
