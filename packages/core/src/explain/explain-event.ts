import type { CloudEvent } from '@hollowtrees/grpcplugin';
import type { FlowConfig } from '../config/schema.js';
import { compileMatcher, describeMismatch } from '../flow/event-matcher.js';
import { compileGroupKey } from '../flow/group-key.js';

/** What one flow would do with an event. */
export type FlowVerdict =
  | { flow: string; matched: true; groupKey: string; plugins: readonly string[] }
  | { flow: string; matched: false; reason: string };

/**
 * Asks every flow, with the engine's own matcher and group key, whether it
 * would take the event, and if so in which group and with which plugins.
 * What holds a group now (a run, a cooldown) is only known to the running process.
 */
export function explainEvent(event: CloudEvent, flows: Readonly<Record<string, FlowConfig>>): FlowVerdict[] {
  return Object.entries(flows).map(([flow, config]) => {
    const mismatch = compileMatcher(config.allowedEvents, config.filters)(event);
    if (mismatch) return { flow, matched: false, reason: describeMismatch(mismatch) };
    return { flow, matched: true, groupKey: compileGroupKey(flow, config.groupBy)(event), plugins: config.plugins.map((step) => step.plugin) };
  });
}

/** The verdicts for a person, one flow a line, under a line naming the event. */
export function formatExplanation(event: CloudEvent, verdicts: readonly FlowVerdict[]): string {
  const lines = [`event ${event.type} (id ${event.id}, source ${event.source})`];
  for (const v of verdicts) {
    lines.push(v.matched ? `  ${v.flow}: runs, group ${v.groupKey}, plugins ${v.plugins.join(' → ')}` : `  ${v.flow}: not taken: ${v.reason}`);
  }
  if (!verdicts.some((v) => v.matched)) lines.push('  no flow takes this event');
  return `${lines.join('\n')}\n`;
}
