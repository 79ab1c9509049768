import { createHash } from 'node:crypto';
import type { CloudEvent } from '@hollowtrees/grpcplugin';

/**
 * A CreateFleet client token derived from the event: a re-sent event (same
 * `source` and `id`) gets the same token, so EC2 answers with the fleet it
 * already launched instead of launching another. `purpose` keeps the tokens of
 * different requests for one event apart (the spot and the on-demand attempt),
 * since EC2 refuses one token with different parameters.
 *
 * `gone` names the replacements of the instance that are no longer pending or
 * running (terminated, stopped): each one gone makes a new token, since the
 * old one would get the fleet of the dead replacement back from EC2. Retries
 * that see the same replacements gone share a token, so they still launch once.
 */
export function clientToken(event: Pick<CloudEvent, 'source' | 'id'>, purpose: string, gone: readonly string[] = []): string {
  // Without any gone, the token is what it was before replacements were counted, so a launch in flight across an upgrade is not repeated.
  const generation = gone.length === 0 ? '' : `\nafter ${[...gone].sort().join(',')}`;
  const digest = createHash('sha256').update(`${event.source}\n${event.id}\n${purpose}${generation}`).digest('hex');
  // EC2 accepts up to 64 ASCII characters.
  return `hollowtrees-${digest.slice(0, 40)}`;
}
