/** The services a stand-in speaks for. */
export type AwsService = 'ec2' | 'autoscaling';

/**
 * An error as an AWS query API reports it: the code the SDK turns into the
 * error's `name`, AWS's message, and the HTTP status. Thrown by stand-in
 * actions, by injected faults and by the rate limiter.
 */
export class AwsApiError extends Error {
  override readonly name = 'AwsApiError';
  constructor(
    readonly code: string,
    message: string,
    /** HTTP status of the response. Default 400. */
    readonly status = 400,
  ) {
    super(message);
  }
}

/**
 * Each service's own throttling answer, as the SDK's error classification
 * knows it: EC2 `RequestLimitExceeded` (HTTP 503), Auto Scaling `Throttling`
 * "Rate exceeded" (HTTP 400).
 */
export function throttlingError(service: AwsService): AwsApiError {
  return service === 'ec2'
    ? new AwsApiError('RequestLimitExceeded', 'Request limit exceeded.', 503)
    : new AwsApiError('Throttling', 'Rate exceeded', 400);
}
