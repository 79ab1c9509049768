/** What this package's unit tests share: an AWS stand-in per test, with the plugin's own clients on it. */
import { jsonLogger, type PluginLogger } from '@hollowtrees/grpcplugin';
import { startAwsStandIn, type AwsStandIn } from '@hollowtrees/testkit';
import { afterEach, beforeEach } from 'vitest';
import { createAwsClients, type AwsClients } from '../aws-clients.js';
import type { RetryOptions } from '../retry-strategy.js';

/** The stand-in and clients of the current test (set by the hooks {@link useAwsStandIn} registers). */
export interface AwsFixture {
  aws: AwsStandIn;
  clients: AwsClients;
  /** The logger the clients were given, for the code under test. */
  logger: PluginLogger;
  /** More clients on the same stand-in, e.g. with other retries; closed after the test. */
  clientsWith(retry: RetryOptions): AwsClients;
}

/** Starts a stand-in before each test and stops it after; the clients make one try per call unless told otherwise. */
export function useAwsStandIn(logger: PluginLogger = jsonLogger({ service: 'test', level: 'silent' })): AwsFixture {
  const opened: AwsClients[] = [];
  const fixture = { logger } as AwsFixture;
  const clientsWith = (retry: RetryOptions): AwsClients => {
    const clients = createAwsClients({ region: 'us-east-1', endpoint: fixture.aws.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, retry, maxSockets: 8, logger });
    opened.push(clients);
    return clients;
  };
  beforeEach(async () => {
    fixture.aws = await startAwsStandIn();
    fixture.clientsWith = clientsWith;
    fixture.clients = clientsWith({ maxAttempts: 1 });
  });
  afterEach(async () => {
    for (const c of opened.splice(0)) {
      c.ec2.destroy();
      c.autoScaling.destroy();
    }
    await fixture.aws.close();
  });
  return fixture;
}
