import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client, type EC2ClientConfig } from '@aws-sdk/client-ec2';
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
}

/** Builds the EC2 and Auto Scaling clients with the same region, endpoint, credentials and retries. */
export function createAwsClients(settings: AwsClientSettings): AwsClients {
  const config = {
    ...(settings.region !== undefined && { region: settings.region }),
    ...(settings.endpoint !== undefined && { endpoint: settings.endpoint }),
    ...(settings.credentials !== undefined && { credentials: settings.credentials }),
    maxAttempts: settings.retry.maxAttempts ?? 4,
    retryStrategy: retryStrategy(settings.retry),
  };
  return { ec2: new EC2Client(config), autoScaling: new AutoScalingClient(config) };
}
