import type { PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import type { AwsClients } from './aws-clients.js';
import type { InstanceInfo } from './instance-lookup.js';

/** What a strategy hands back to the handler, before `strategy` and `duration_ms` are added. */
export interface ReplacementOutcome {
  readonly status: 'ok' | 'skipped';
  readonly message: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** What every strategy works with. */
export interface StrategyContext {
  readonly clients: AwsClients;
  readonly instance: InstanceInfo;
  readonly signal: AbortSignal;
  readonly dryRun: boolean;
  readonly logger: Logger;
  /**
   * Original MinSize by Auto Scaling group name, for groups whose MinSize this
   * process lowered for a detach and has not yet seen put back (one map per
   * region, owned by the handler). It is the evidence that a group's current
   * MinSize is a lowered one, not its original.
   */
  readonly loweredMinSizes: Map<string, number>;
}
