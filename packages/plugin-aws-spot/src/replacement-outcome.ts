import type { PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import type { AwsClients } from './aws-clients.js';
import type { SpentClientTokens } from './client-token.js';
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
  /** The region's client tokens whose fleet launched nothing. */
  readonly spentTokens: SpentClientTokens;
}
