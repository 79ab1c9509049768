import { AWS_METADATA_URL } from './aws-imds.js';
import { AZURE_METADATA_URL } from './azure-scheduled-events.js';
import { GCP_METADATA_URL } from './gcp-metadata.js';
import { metadataRequest } from './metadata-request.js';
import type { CloudName } from './notice.js';

/** Options of {@link detectCloud}. */
export interface DetectCloudOptions {
  /** One base URL for every probe (a stand-in); default: each cloud's own address. */
  baseUrl?: string;
  /** Per probe. Default 2 s: a metadata service answers in milliseconds, and elsewhere nothing answers at all. */
  timeoutMs?: number;
  signal: AbortSignal;
}

/** Each cloud's probe: a request only its metadata service answers 200 (each needs its own header). */
const PROBES: ReadonlyArray<{ cloud: CloudName; base: string; path: string; init: { method: 'GET' | 'PUT'; headers: Record<string, string> } }> = [
  { cloud: 'aws', base: AWS_METADATA_URL, path: '/latest/api/token', init: { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } } },
  { cloud: 'gcp', base: GCP_METADATA_URL, path: '/computeMetadata/v1/instance/id', init: { method: 'GET', headers: { 'metadata-flavor': 'Google' } } },
  { cloud: 'azure', base: AZURE_METADATA_URL, path: '/metadata/instance/compute?api-version=2021-02-01', init: { method: 'GET', headers: { metadata: 'true' } } },
];

/** Finds which cloud's metadata service answers, probing all three at once; undefined when none does. */
export async function detectCloud(options: DetectCloudOptions): Promise<CloudName | undefined> {
  const answers = await Promise.all(
    PROBES.map(async (probe) => {
      try {
        const res = await metadataRequest(`${options.baseUrl ?? probe.base}${probe.path}`, { ...probe.init, signal: options.signal, timeoutMs: options.timeoutMs ?? 2_000 });
        return res.status === 200 ? probe.cloud : undefined;
      } catch {
        return undefined;
      }
    }),
  );
  return answers.find((cloud) => cloud !== undefined);
}
