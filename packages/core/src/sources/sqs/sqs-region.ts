/** A queue whose region is in neither its entry, its URL, nor the SDK's chain (`AWS_REGION`, profile). */
export class SqsRegionMissing extends Error {
  override readonly name = 'SqsRegionMissing';
  constructor(readonly index: number) {
    super('no region: set it here, in AWS_REGION, or use a queue URL of the form https://sqs.<region>.amazonaws.com/...');
  }
}

/**
 * SQS hosts that name their region: `sqs.<region>.amazonaws.com`, its FIPS (`sqs-fips.`) and dual-stack
 * (`.api.aws`) forms, a VPC endpoint's (`vpce-....sqs.<region>.vpce.amazonaws.com`), the legacy
 * `<region>.queue.amazonaws.com`; China's under `amazonaws.com.cn`.
 */
const REGIONAL_HOSTS = [
  /^sqs(?:-fips)?\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|api\.aws)$/,
  /^vpce-[a-z0-9-]+\.sqs\.([a-z0-9-]+)\.vpce\.amazonaws\.com(?:\.cn)?$/,
  /^([a-z0-9-]+)\.queue\.amazonaws\.com(?:\.cn)?$/,
];

/** The region an SQS URL names in its host (see {@link REGIONAL_HOSTS}). */
export function regionOfQueueUrl(url: string): string | undefined {
  const host = new URL(url).hostname;
  for (const form of REGIONAL_HOSTS) {
    const region = form.exec(host)?.[1];
    if (region !== undefined) return region;
  }
  return undefined;
}
