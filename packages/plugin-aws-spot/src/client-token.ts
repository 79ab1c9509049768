import { createHash } from 'node:crypto';
import type { CloudEvent } from '@hollowtrees/grpcplugin';

/**
 * A CreateFleet client token derived from the event: a re-sent event (same
 * `source` and `id`) gets the same token, so EC2 answers with the fleet it
 * already launched instead of launching another. `purpose` keeps the tokens of
 * different requests for one event apart (the spot and the on-demand attempt),
 * since EC2 refuses one token with different parameters.
 */
export function clientToken(event: Pick<CloudEvent, 'source' | 'id'>, purpose: string): string {
  const digest = createHash('sha256').update(`${event.source}\n${event.id}\n${purpose}`).digest('hex');
  // EC2 accepts up to 64 ASCII characters.
  return `hollowtrees-${digest.slice(0, 40)}`;
}
