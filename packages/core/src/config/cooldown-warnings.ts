import { compileTypePatterns } from '../flow/event-matcher.js';
import { ALERT_TYPE_PREFIX } from '../receiver/alert-to-event.js';
import { SPOT_PRICE_TYPES } from '../sources/spot-price/crossing-event.js';
import { NOTICE_TYPES } from '../sources/sqs/notice-to-events.js';
import type { Config } from './schema.js';

/**
 * The `allowedEvents` patterns of a flow that take Prometheus alerts, firing (`prometheus.server.alert.<name>`)
 * or resolved (`prometheus.server.alert.<name>.resolved`): each is tried on an alert type whose name is
 * its own segment at that place, its `*`s filled in.
 */
function alertPatterns(allowedEvents: readonly string[], resolved: boolean): string[] {
  const nameAt = ALERT_TYPE_PREFIX.split('.').length - 1;
  return allowedEvents.filter((pattern) => {
    const segments = pattern.split('.');
    if (segments.length !== nameAt + (resolved ? 2 : 1)) return false;
    return compileTypePatterns([pattern])(`${ALERT_TYPE_PREFIX}${segments[nameAt]!.replaceAll('*', 'x')}${resolved ? '.resolved' : ''}`);
  });
}

/** How long Prometheus sends a resolved alert again after it resolved (its `resolvedRetention`). */
const RESOLVED_RESENT_MS = 15 * 60_000;

/**
 * A warning for each flow that takes a signal its sender hands out again without a cooldown that outlasts
 * the repeats: only a cooldown holding the group makes the repeat a duplicate; without one the flow runs
 * again once its run ended (a second drain, a second replacement request).
 * - SQS hands a message out at least once: one whose delete was lost before a restart (the source remembers
 *   what it settled until then), or that waited for the run of another
 *   replica, comes back after its run succeeded.
 * - The spot-price source announces again, after a restart, a surge still going on and the end of the latest
 *   one: it cannot know whether it did before it stopped.
 * - Prometheus re-sends every firing alert each `resend_delay` (1 minute) for as long as it fires, and
 *   Alertmanager at its `repeat_interval`.
 * - Prometheus re-sends a resolved alert each `resend_delay` for 15 minutes after it resolved: a cooldown
 *   shorter than that lets the later re-sends run the flow again.
 */
export function cooldownWarnings(config: Config, file: string): string[] {
  return Object.entries(config.flows).flatMap(([name, flow]) => {
    const warnings: string[] = [];
    const resolutions = flow.cooldown < RESOLVED_RESENT_MS ? alertPatterns(flow.allowedEvents, true) : [];
    if (resolutions.length > 0) {
      const cooldown = flow.cooldown > 0 ? `a ${flow.cooldown / 1000}s cooldown` : 'no cooldown';
      warnings.push(`${file}: flow ${name} takes resolved Prometheus alerts (${resolutions.join(', ')}) with ${cooldown}: Prometheus sends a resolved alert again every minute for 15 minutes after it resolved, and each one after the cooldown ended runs the flow again; set flows.${name}.cooldown to 20m, say`);
    }
    if (flow.cooldown > 0) return warnings;
    const takes = compileTypePatterns(flow.allowedEvents);
    const notices = config.sources.sqs.length === 0 ? [] : Object.values(NOTICE_TYPES).filter((type) => takes(type));
    if (notices.length > 0) {
      warnings.push(`${file}: flow ${name} takes notices of an SQS queue (${notices.join(', ')}) with no cooldown: a notice SQS hands out again after its run succeeded (its delete lost before a restart, a run on another replica) runs it again; set flows.${name}.cooldown (10m, say)`);
    }
    const prices = config.sources.spotPrice.length === 0 ? [] : Object.values(SPOT_PRICE_TYPES).filter((type) => takes(type));
    if (prices.length > 0) {
      warnings.push(`${file}: flow ${name} takes Spot price events of sources.spotPrice (${prices.join(', ')}) with no cooldown: after a restart the source announces a surge still going on, and the end of the latest one, again (it cannot know whether it did before), and each runs the flow again; set flows.${name}.cooldown (1h, say)`);
    }
    const alerts = alertPatterns(flow.allowedEvents, false);
    if (alerts.length > 0) {
      warnings.push(`${file}: flow ${name} takes firing Prometheus alerts (${alerts.join(', ')}) with no cooldown: Prometheus sends a firing alert again every minute (Alertmanager at its repeat_interval), and each one after the run ended runs it again; set flows.${name}.cooldown (10m, say)`);
    }
    return warnings;
  });
}
