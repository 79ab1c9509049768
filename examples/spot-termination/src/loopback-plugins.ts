import { jsonLogger, serve } from '@hollowtrees/grpcplugin';
import { AwsSpotReplaceHandler } from '@hollowtrees/plugin-aws-spot';
import { createDrainHandler } from '@hollowtrees/plugin-k8s-drain';
import type { AwsStandIn, KubeApiServer } from '@hollowtrees/testkit';
import { KubeConfig } from '@kubernetes/client-node';

/** How the kube-apiserver stand-in times pod deletions, for the stacks' options. */
export interface PodTiming {
  /** Milliseconds the kube-apiserver stand-in takes per second of a pod's grace period. Default 5. */
  msPerGraceSecond?: number;
  /** The pods' terminationGracePeriodSeconds. Default 5. */
  podGraceSeconds?: number;
}

/** Both plugins, served over real gRPC on loopback. */
export interface LoopbackPlugins {
  /** host:port of `hollowtrees-k8s-drain`. */
  drainAddress: string;
  /** host:port of `hollowtrees-aws-spot`. */
  replaceAddress: string;
  close(): Promise<void>;
}

const quiet = jsonLogger({ service: 'spot-termination-demo', level: 'silent' });

/**
 * Gives core's own AWS clients (SQS, EC2), which take the default credential chain, demo
 * credentials and no instance metadata: the stand-ins check no signature.
 */
export function useDemoAwsCredentials(): void {
  process.env['AWS_ACCESS_KEY_ID'] ??= 'demo';
  process.env['AWS_SECRET_ACCESS_KEY'] ??= 'demo';
  process.env['AWS_EC2_METADATA_DISABLED'] ??= 'true';
}

/**
 * Serves the drain plugin against the kube-apiserver stand-in and the AWS plugin
 * against the EC2 and Auto Scaling stand-ins, each with `serve()` as a plugin
 * process would; pool mode's instance polling is made fast for a demo.
 */
export async function serveLoopbackPlugins(kube: KubeApiServer, aws: AwsStandIn): Promise<LoopbackPlugins> {
  const kc = new KubeConfig();
  kc.loadFromOptions(kube.kubeConfigOptions());
  const drainHandler = createDrainHandler(kc, { logger: quiet });
  const drain = await serve(0, drainHandler, { host: '127.0.0.1' });
  const replaceHandler = new AwsSpotReplaceHandler({
    region: 'us-east-1',
    endpoint: aws.url,
    credentials: { accessKeyId: 'demo', secretAccessKey: 'demo' },
    logger: quiet,
    pool: { pollIntervalMs: 50 },
  });
  const replace = await serve(0, replaceHandler, { host: '127.0.0.1' });
  return {
    drainAddress: `127.0.0.1:${drain.port}`,
    replaceAddress: `127.0.0.1:${replace.port}`,
    async close() {
      await drain.close();
      await drainHandler.close();
      await replace.close();
      await replaceHandler.close();
    },
  };
}
