import { SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import type { Clock } from '../../clock.js';
import type { SqsQueueConfig } from '../../config/schema.js';
import type { SettlingSink } from './event-verdict.js';
import { QueueConsumer, type QueueStatus } from './queue-consumer.js';
import type { SqsMetrics } from './sqs-metrics.js';

/** The region an SQS URL names in its host (`sqs.<region>.amazonaws.com`, or the legacy `<region>.queue.amazonaws.com`). */
export function regionOfQueueUrl(url: string): string | undefined {
  const host = new URL(url).hostname;
  return /^sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(host)?.[1] ?? /^([a-z0-9-]+)\.queue\.amazonaws\.com(\.cn)?$/.exec(host)?.[1];
}

/** A queue whose region is in neither its entry, its URL, nor the SDK's chain (`AWS_REGION`, profile). */
export class SqsRegionMissing extends Error {
  override readonly name = 'SqsRegionMissing';
  constructor(readonly index: number) {
    super('no region: set it here, in AWS_REGION, or use a queue URL of the form https://sqs.<region>.amazonaws.com/...');
  }
}

export interface SqsSourceOptions {
  queues: readonly SqsQueueConfig[];
  metrics: SqsMetrics;
  logger: Logger;
  clock: Clock;
}

/**
 * The EventBridge → SQS source: one consumer per configured queue, each with
 * its own `@aws-sdk/client-sqs` client on the default credential chain
 * (environment, profile, web identity, container or instance role).
 */
export class SqsSource {
  private readonly consumers: QueueConsumer[] = [];
  private readonly clients: SQSClient[] = [];

  constructor(private readonly options: SqsSourceOptions) {}

  /** Starts receiving; events go to `sink`. */
  async start(sink: SettlingSink): Promise<void> {
    for (const [index, queue] of this.options.queues.entries()) {
      const configured = queue.region ?? regionOfQueueUrl(queue.url);
      const client = new SQSClient({ ...(configured ? { region: configured } : {}), ...(queue.endpoint ? { endpoint: queue.endpoint } : {}) });
      this.clients.push(client);
      // Without a region anywhere the SDK fails every call; asking now makes that a configuration error at start.
      const region = configured ?? (await client.config.region().catch(() => undefined));
      if (!region) throw new SqsRegionMissing(index);
      const consumer = new QueueConsumer(queue, region, client, sink, this.options.metrics, this.options.logger, this.options.clock);
      this.consumers.push(consumer);
      consumer.start();
      this.options.logger.info({ queue: consumer.name, region, pollers: queue.pollers, visibilityTimeoutMs: queue.visibilityTimeout }, 'receiving from SQS queue');
    }
  }

  /** Stops receiving new messages; those in progress go on. */
  async stopReceiving(): Promise<void> {
    await Promise.all(this.consumers.map((c) => c.stopReceiving()));
  }

  /** Waits up to `graceMs` for messages in progress, then stops extending them and closes the clients. */
  async close(graceMs: number): Promise<void> {
    await Promise.all(this.consumers.map((c) => c.close(graceMs)));
    for (const client of this.clients) client.destroy();
  }

  status(): QueueStatus[] {
    return this.consumers.map((c) => c.status());
  }
}
