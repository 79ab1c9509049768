/** A queue whose region is in neither its entry, its URL, nor the SDK's chain (`AWS_REGION`, profile). */
export class SqsRegionMissing extends Error {
  override readonly name = 'SqsRegionMissing';
  constructor(readonly index: number) {
    super('no region: set it here, in AWS_REGION, or use a queue URL of the form https://sqs.<region>.amazonaws.com/...');
  }
}

/** The region an SQS URL names in its host (`sqs.<region>.amazonaws.com`, or the legacy `<region>.queue.amazonaws.com`). */
export function regionOfQueueUrl(url: string): string | undefined {
  const host = new URL(url).hostname;
  return /^sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(host)?.[1] ?? /^([a-z0-9-]+)\.queue\.amazonaws\.com(\.cn)?$/.exec(host)?.[1];
}
