import { createHash } from 'node:crypto';
import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { ExpiringMap } from './expiring-map.js';

/**
 * A CreateFleet client token derived from what the request is for: `scope` (see
 * {@link eventScope}, {@link instanceScope}) and `purpose`. A request re-sent for
 * the same scope gets the same token, so EC2 answers with the fleet it already
 * launched instead of launching another. `purpose` keeps the tokens of
 * different requests apart (the spot and the on-demand attempt), since EC2
 * refuses one token with different parameters.
 *
 * `gone` names the replacements of the instance that are no longer pending or
 * running (terminated, stopped): each one gone makes a new token, since the
 * old one would get the fleet of the dead replacement back from EC2. Retries
 * that see the same replacements gone share a token, so they still launch once.
 */
export function clientToken(scope: string, purpose: string, gone: readonly string[] = []): string {
  // Without any gone, an event-scoped token is what it was before replacements were counted, so a pool launch in flight across an
  // upgrade is not repeated (instance-scoped tokens are newer: there the replacement's REPLACES_TAG, found first, guards such a launch).
  const generation = gone.length === 0 ? '' : `\nafter ${[...gone].sort().join(',')}`;
  return tokenOf(`${scope}\n${purpose}${generation}`);
}

/** The scope of requests made for one event (its `source` and `id`): a re-sent event gets the same tokens. */
export const eventScope = (event: Pick<CloudEvent, 'source' | 'id'>): string => `${event.source}\n${event.id}`;

/**
 * The scope of requests made to replace one instance, whichever event asked: two
 * events about it (an alert and an interruption notice) handled by two
 * processes at once get the same tokens, and one fleet.
 */
export const instanceScope = (instanceId: string): string => `replacement of ${instanceId}`;

// EC2 accepts up to 64 ASCII characters.
const tokenOf = (seed: string): string => `hollowtrees-${createHash('sha256').update(seed).digest('hex').slice(0, 40)}`;

/** How long EC2 keeps a client token's answer: at least 24 hours. */
const TOKEN_VALIDITY_MS = 24 * 60 * 60 * 1000;

/**
 * The {@link clientToken}s whose instant fleet launched nothing (no capacity,
 * say), and the token to ask with instead. EC2 answers a repeated token with
 * the response it gave first, so a retry with the token of a fleet that
 * launched nothing gets that empty fleet back for a day, however much capacity
 * there is by then. The next generation of the token is used instead; a
 * request whose answer was lost spent nothing, so its retry keeps its token
 * and gets its fleet back. Kept in this process: after a restart the first
 * retry gets the empty fleet back once, and the one after asks anew.
 */
export class SpentClientTokens {
  private readonly spent: ExpiringMap<string, number>;
  /** By spot token base: whether its request was refused whole and the on-demand fallback that followed got no answer. */
  private readonly fallbackUnanswered: ExpiringMap<string, boolean>;

  constructor(now: () => number) {
    this.spent = new ExpiringMap(TOKEN_VALIDITY_MS, now);
    this.fallbackUnanswered = new ExpiringMap(TOKEN_VALIDITY_MS, now);
  }

  /**
   * Whether the spot request of `spotBase` was refused whole (EC2 keeps no answer for its token) and the
   * on-demand request after it got no answer: that one may be launching still, and spot asked again
   * with the same token would launch a second replacement once spot is back. A retry asks on-demand
   * again first, with its token, and gets that fleet.
   */
  onDemandUnanswered(spotBase: string): boolean {
    return this.fallbackUnanswered.get(spotBase) === true;
  }

  /** Records whether an on-demand fallback after the spot request of `spotBase` was refused whole is still unanswered. */
  setOnDemandUnanswered(spotBase: string, unanswered: boolean): void {
    this.fallbackUnanswered.set(spotBase, unanswered);
  }

  /** The token to ask with now for requests whose token is `base`. */
  current(base: string): string {
    const spent = this.spent.get(base) ?? 0;
    return spent === 0 ? base : tokenOf(`${base}\nafter ${spent} empty fleets`);
  }

  /** Records that the fleet asked for with `token`, {@link current} for `base`, launched nothing. */
  spend(base: string, token: string): void {
    // Two calls may both have asked with it: it moves on once.
    if (token === this.current(base)) this.spent.set(base, (this.spent.get(base) ?? 0) + 1);
  }
}
