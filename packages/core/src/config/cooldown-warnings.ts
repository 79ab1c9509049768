import { compileTypePatterns } from '../flow/event-matcher.js';
import { ALERT_TYPE_PREFIX } from '../receiver/alert-to-event.js';
import { NOTICE_TYPES } from '../sources/sqs/notice-to-events.js';
import type { Config } from './schema.js';

/**
 * The `allowedEvents` patterns of a flow that take firing Prometheus alerts (`prometheus.server.alert.<name>`,
 * not `.resolved`): each is tried on an alert type whose name is its own last segment, its `*`s filled in.
 */
function firingAlertPatterns(allowedEvents: readonly string[]): string[] {
  return allowedEvents.filter((pattern) => {
    const segments = pattern.split('.');
    if (segments.length !== ALERT_TYPE_PREFIX.split('.').length) return false;
    return compileTypePatterns([pattern])(`${ALERT_TYPE_PREFIX}${segments.at(-1)!.replaceAll('*', 'x')}`);
  });
}

/**
 * A warning for each flow that takes a signal its sender hands out again without a cooldown: only a cooldown
 * holding the group makes the repeat a duplicate; without one the flow runs again once its run ended (a second
 * drain, a second replacement request).
 * - SQS hands a message out at least once: one whose delete was lost, or that waited for the run of another
 *   replica, comes back after its run succeeded.
 * - Prometheus re-sends every firing alert each `resend_delay` (1 minute) for as long as it fires, and
 *   Alertmanager at its `repeat_interval`.
 */
export function cooldownWarnings(config: Config, file: string): string[] {
  return Object.entries(config.flows).flatMap(([name, flow]) => {
    if (flow.cooldown > 0) return [];
    const warnings: string[] = [];
    const takes = compileTypePatterns(flow.allowedEvents);
    const notices = config.sources.sqs.length === 0 ? [] : Object.values(NOTICE_TYPES).filter((type) => takes(type));
    if (notices.length > 0) {
      warnings.push(`${file}: flow ${name} takes notices of an SQS queue (${notices.join(', ')}) with no cooldown: a notice SQS hands out again after its run succeeded (a delete lost, a run on another replica) runs it again; set flows.${name}.cooldown (10m, say)`);
    }
    const alerts = firingAlertPatterns(flow.allowedEvents);
    if (alerts.length > 0) {
      warnings.push(`${file}: flow ${name} takes firing Prometheus alerts (${alerts.join(', ')}) with no cooldown: Prometheus sends a firing alert again every minute (Alertmanager at its repeat_interval), and each one after the run ended runs it again; set flows.${name}.cooldown (10m, say)`);
    }
    return warnings;
  });
}
