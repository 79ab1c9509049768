/**
 * The stand-ins of a wave drill in a process of their own, so their CPU is
 * measured apart from the processes under test and their event loop does not
 * share one with the bench. Driven over the fork IPC channel (see StandInsRequest).
 */
import { awsLikeRateLimits, startAwsStandIn, startKubeApiServer } from '@hollowtrees/testkit';
import { collectRecords, type WaveRecords } from './records.js';
import { buildWave, type WaveInstance, type WaveScenario } from './scenario.js';

/** How the stand-ins answer. */
export interface StandInsSettings {
  readonly scenario: WaveScenario;
  readonly kubeLatencyMs: number;
  readonly awsLatencyMs: number;
  /** AWS-like token buckets (testkit's `awsLikeRateLimits`). */
  readonly rateLimits: boolean;
}

/** What the bench sends. */
export type StandInsRequest = { kind: 'start'; settings: StandInsSettings } | { kind: 'collect' };

/** What the stand-ins answer. */
export type StandInsReply =
  | { kind: 'started'; kubeUrl: string; kubeconfig: string; awsUrl: string; instances: WaveInstance[] }
  | { kind: 'collected'; records: WaveRecords }
  | { kind: 'failed'; error: string };

const reply = (message: StandInsReply): void => void process.send?.(message);

async function main(): Promise<void> {
  let collect: (() => WaveRecords) | undefined;
  process.on('message', (message: StandInsRequest) => {
    void (async () => {
      try {
        if (message.kind === 'start') {
          const { scenario, kubeLatencyMs, awsLatencyMs, rateLimits } = message.settings;
          const kube = await startKubeApiServer({ latencyMs: kubeLatencyMs });
          const aws = await startAwsStandIn({ latencyMs: awsLatencyMs, ...(rateLimits && { rateLimits: awsLikeRateLimits }) });
          const instances = buildWave(kube.cluster, aws.autoScaling, scenario);
          const minSizes = new Map([...aws.autoScaling.groups.values()].map((g) => [g.name, g.minSize]));
          collect = () => collectRecords(kube, aws, instances, minSizes);
          reply({ kind: 'started', kubeUrl: kube.url, kubeconfig: kube.kubeConfigFileText(), awsUrl: aws.url, instances });
        } else if (collect) {
          reply({ kind: 'collected', records: collect() });
        } else {
          reply({ kind: 'failed', error: 'collect before start' });
        }
      } catch (err) {
        reply({ kind: 'failed', error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      }
    })();
  });
  // The bench going away, or stopping them, ends the stand-ins (an exit that still writes a --cpu-prof profile).
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}

void main();
