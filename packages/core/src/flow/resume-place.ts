import type { StepRef } from './group-states.js';
import type { PluginStep } from './run-plugins.js';

/**
 * Where a run goes on in a flow whose plugins may have changed since it stopped (a reload, a restart
 * on a new configuration): found by the plugin it stopped at and the plugins it already called, so
 * that no plugin that acted is called again.
 */

/** What a step calls. */
export const nameOf = (step: PluginStep): string => step.plugin.name;

/** The step at `next` of `steps`, by what it calls, for a run that passed `passed`; undefined past the end. */
export function stepOf(steps: readonly PluginStep[], next: number, passed: readonly string[]): StepRef | undefined {
  const plugin = steps[next]?.plugin.name;
  if (plugin === undefined) return undefined;
  return { plugin, occurrence: passed.filter((p) => p === plugin).length, passed: [...passed] };
}

/** The plugins a run at `next` of `steps` passed: as it recorded them, or (a journal of format 3 or 2) the steps before it. */
export function passedBy(steps: readonly PluginStep[], next: number, at: StepRef | undefined): readonly string[] {
  return at?.passed ?? steps.slice(0, next).map(nameOf);
}

/** The step at `next` of `steps` for a run that stopped at `at` ({@link stepOf}, with the plugins {@link passedBy} it). */
export function stepFor(steps: readonly PluginStep[], next: number, at: StepRef | undefined): StepRef | undefined {
  return stepOf(steps, next, passedBy(steps, next, at));
}

/** How many times each name is in `names`. */
function tally(names: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
  return counts;
}

/**
 * A plugin that going on at `place` of `steps` would call more often than the flow does, counting
 * `called` (how often the run called each plugin, the one it goes on with counted once more):
 * one that already acted, called again.
 */
function repeatedFrom(steps: readonly PluginStep[], place: number, called: ReadonlyMap<string, number>): string | undefined {
  const listed = tally(steps.slice(0, place + 1).map(nameOf));
  return steps.slice(place + 1).map(nameOf).find((name) => (listed.get(name) ?? 0) < (called.get(name) ?? 0));
}

/** Why a run found no place in its changed flow. */
const NO_LONGER_CALLS = (flow: string, at: StepRef): string => `flow ${flow} no longer calls ${at.plugin}, the plugin it was to go on with`;

/** Where a run goes on in its flow, or why it cannot. */
export type Place = { next: number } | { reason: string };

/**
 * Where in `steps` (flow `flow`) a run goes on that stopped at `at`, at index `next` of the flow as
 * it was then (its plugins may have changed since: a reload, a restart on a new configuration): at
 * a step calling `at.plugin` from which no plugin the run already called is called again, `next`
 * when it is one, else the first. A run journalled by format 3 (no `passed`) goes on at `next` while
 * that step calls its plugin, else at that plugin's `occurrence`-th call or its last.
 */
export function goOnAt(flow: string, steps: readonly PluginStep[], next: number, at: StepRef | undefined): Place {
  if (!at) return { next };
  const positions = steps.flatMap((step, index) => (step.plugin.name === at.plugin ? [index] : []));
  if (positions.length === 0) return { reason: NO_LONGER_CALLS(flow, at) };
  if (!at.passed) return { next: steps[next]?.plugin.name === at.plugin ? next : positions[Math.min(at.occurrence, positions.length - 1)]! };
  const called = tally([...at.passed, at.plugin]);
  const fits = (place: number): boolean => repeatedFrom(steps, place, called) === undefined;
  if (positions.includes(next) && fits(next)) return { next };
  const place = positions.find(fits);
  if (place !== undefined) return { next: place };
  const again = repeatedFrom(steps, positions.at(-1)!, called);
  return { reason: `going on with ${at.plugin} in flow ${flow} as it is now would call ${again} again, which the run already called` };
}
