import type { Clock, PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import { createAwsClients, type AwsClients, type AwsClientSettings } from './aws-clients.js';
import { SpentClientTokens } from './client-token.js';
import { ExpiringMap } from './expiring-map.js';
import { GroupDetacher } from './group-detacher.js';
import { InstanceLookup } from './instance-lookup.js';
import type { ReplacementOutcome } from './replacement-outcome.js';

/** A replacement that was requested, as it was answered. */
export interface RequestedReplacement {
  readonly strategy: 'asg-detach' | 'fleet';
  readonly outcome: ReplacementOutcome;
}

/** How a region's work is batched and remembered. */
export interface RegionalSettings extends Omit<AwsClientSettings, 'region'> {
  readonly region: string | undefined;
  readonly logger: Logger;
  readonly dryRun: boolean;
  /** How long a look-up or a detach waits for others to share its call. */
  readonly coalesceMs: number;
  /** How long an instance's description and a requested replacement are remembered. */
  readonly rememberMs: number;
  readonly detachConcurrency: number;
  readonly replyMarginMs: number;
  /** Where the `rememberMs` windows read time. */
  readonly clock: Clock;
}

/**
 * What the replacements of one region share: the SDK clients, the batched
 * look-ups, one {@link GroupDetacher} per Auto Scaling group, and the
 * replacements already requested (so a retried or repeated call is answered
 * without calling AWS again).
 */
export class RegionalReplacer {
  readonly clients: AwsClients;
  readonly lookup: InstanceLookup;
  readonly requested: ExpiringMap<string, RequestedReplacement>;
  /**
   * The replacements pool mode launched, by instance, for the pool calls after it. Kept apart from {@link requested}:
   * an interruption of a member of an Auto Scaling group still detaches it, as without a pool call before.
   */
  readonly launchedForPools: ExpiringMap<string, RequestedReplacement>;
  /** The CreateFleet client tokens whose fleet launched nothing, so a retry asks anew. */
  readonly spentTokens: SpentClientTokens;
  /** Replacements being requested now, by instance: a second call about one of them waits for it. */
  readonly inFlight = new Map<string, Promise<RequestedReplacement>>();
  private readonly detachers = new Map<string, GroupDetacher>();
  /** The region asked, or undefined for the SDK's default chain. */
  readonly region: string | undefined;

  constructor(private readonly settings: RegionalSettings) {
    this.region = settings.region;
    this.clients = createAwsClients(settings);
    const now = (): number => settings.clock.now();
    this.lookup = new InstanceLookup(this.clients, { windowMs: settings.coalesceMs, cacheMs: settings.rememberMs }, now);
    this.requested = new ExpiringMap(settings.rememberMs, now);
    this.launchedForPools = new ExpiringMap(settings.rememberMs, now);
    this.spentTokens = new SpentClientTokens(now);
  }

  /** Auto Scaling groups with a detacher held: those busy, and the last one used. */
  get detacherGroups(): string[] {
    return [...this.detachers.keys()];
  }

  /**
   * The detacher of `groupName`, made on first use. Idle ones of other groups are dropped then: groups
   * come and go (a node group recreated with a new name on each upgrade), and one held per name ever
   * seen would grow for the life of the process.
   */
  detacher(groupName: string): GroupDetacher {
    let detacher = this.detachers.get(groupName);
    if (!detacher) {
      for (const [name, other] of this.detachers) if (other.idle) this.detachers.delete(name);
      const { logger, dryRun, coalesceMs, detachConcurrency, replyMarginMs } = this.settings;
      detacher = new GroupDetacher(groupName, {
        clients: this.clients,
        logger,
        dryRun,
        coalesceMs,
        detachConcurrency,
        replyMarginMs,
        onTagged: (id, key, value) => this.lookup.tagged(id, key, value),
        clock: this.settings.clock,
      });
      this.detachers.set(groupName, detacher);
    }
    return detacher;
  }

  /** Lets the detachers finish their MinSize restores (see {@link GroupDetacher.close}), then releases the clients' connections. */
  async close(): Promise<void> {
    await Promise.all([...this.detachers.values()].map((d) => d.close()));
    this.clients.ec2.destroy();
    this.clients.autoScaling.destroy();
  }
}
