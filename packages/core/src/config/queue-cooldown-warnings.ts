import { compileTypePatterns } from '../flow/event-matcher.js';
import { NOTICE_TYPES } from '../sources/sqs/notice-to-events.js';
import type { Config } from './schema.js';

/**
 * A warning for each flow that takes the notices of an SQS queue without a cooldown. SQS hands
 * a message out at least once: one whose delete was lost, or that waited for the run of another
 * replica, comes back after its run succeeded, and only a cooldown holding the group makes it a
 * duplicate; without one the flow runs again (a second drain, a second replacement request).
 */
export function queueCooldownWarnings(config: Config, file: string): string[] {
  if (config.sources.sqs.length === 0) return [];
  return Object.entries(config.flows).flatMap(([name, flow]) => {
    if (flow.cooldown > 0) return [];
    const takes = compileTypePatterns(flow.allowedEvents);
    const notices = Object.values(NOTICE_TYPES).filter((type) => takes(type));
    if (notices.length === 0) return [];
    return [
      `${file}: flow ${name} takes notices of an SQS queue (${notices.join(', ')}) with no cooldown: a notice SQS hands out again after its run succeeded (a delete lost, a run on another replica) runs it again; set flows.${name}.cooldown (10m, say)`,
    ];
  });
}
