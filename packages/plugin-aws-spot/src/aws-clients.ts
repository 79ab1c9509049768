import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client, type EC2ClientConfig } from '@aws-sdk/client-ec2';
import type { PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import { retryStrategy, type RetryOptions } from './retry-strategy.js';

/** Static credentials or a provider, as the SDK clients accept them. */
export type AwsCredentials = NonNullable<EC2ClientConfig['credentials']>;

/** The two SDK clients the plugin uses, for one region. */
export interface AwsClients {
  readonly ec2: EC2Client;
  readonly autoScaling: AutoScalingClient;
}

/** How to build {@link AwsClients}. Unset fields fall back to the SDK's default chains. */
export interface AwsClientSettings {
  region: string | undefined;
  endpoint: string | undefined;
  credentials: AwsCredentials | undefined;
  retry: RetryOptions;
  /** Connections each client keeps to its endpoint; more calls wait for one. */
  maxSockets: number;
  /** Told when calls have waited for a connection for a while (the SDK's "socket usage at capacity"). */
  logger: Logger;
}

/** How long calls may wait for a connection before the SDK's socket-capacity warning is checked. */
const SOCKET_WARNING_AFTER_MS = 1_000;

/**
 * Builds the EC2 and Auto Scaling clients with the same region, endpoint,
 * credentials and retry settings; each has its own retry quota, and keeps up
 * to `maxSockets` keep-alive connections (the SDK's default is 50). When calls
 * queue behind a full pool the SDK's warning reaches the plugin's log, with
 * the service, instead of the SDK's bare console line.
 */
export function createAwsClients(settings: AwsClientSettings): AwsClients {
  const config = (service: string) => ({
    ...(settings.region !== undefined && { region: settings.region }),
    ...(settings.endpoint !== undefined && { endpoint: settings.endpoint }),
    ...(settings.credentials !== undefined && { credentials: settings.credentials }),
    maxAttempts: settings.retry.maxAttempts ?? 4,
    retryStrategy: retryStrategy(settings.retry),
    requestHandler: {
      httpAgent: { keepAlive: true, maxSockets: settings.maxSockets },
      httpsAgent: { keepAlive: true, maxSockets: settings.maxSockets },
      socketAcquisitionWarningTimeout: SOCKET_WARNING_AFTER_MS,
      logger: {
        debug: () => undefined,
        info: () => undefined,
        warn: (message: unknown) =>
          settings.logger.warn('AWS SDK: socket usage at capacity, calls are waiting for a connection (raise --max-sockets)', {
            service,
            max_sockets: settings.maxSockets,
            sdk_message: String(message).split('\n')[0],
          }),
        error: () => undefined,
      },
    },
  });
  return { ec2: new EC2Client(config('ec2')), autoScaling: new AutoScalingClient(config('autoscaling')) };
}
