/** The services the query-protocol stand-in speaks for (form-encoded POST, XML answers). */
export type QueryService = 'ec2' | 'autoscaling';

/** The services a stand-in speaks for: the query-protocol ones and SQS (AWS JSON 1.0). */
export type AwsService = QueryService | 'sqs';

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
 * "Rate exceeded" (HTTP 400), SQS `RequestThrottled` (HTTP 403, as the SQS
 * model of @aws-sdk/client-sqs declares it).
 */
export function throttlingError(service: AwsService): AwsApiError {
  switch (service) {
    case 'ec2':
      return new AwsApiError('RequestLimitExceeded', 'Request limit exceeded.', 503);
    case 'autoscaling':
      return new AwsApiError('Throttling', 'Rate exceeded', 400);
    case 'sqs':
      return new AwsApiError('RequestThrottled', 'Request is throttled.', 403);
  }
}

/**
 * What an injected fault does to a call: answer with an error, drop the
 * connection without an answer, take the request and never answer it (the
 * connection stays open until the client gives up or the stand-in closes), or
 * answer it with the `NextToken` it was sent, as a broken endpoint that hands
 * out one page again and again would.
 */
export type InjectedFault = AwsApiError | 'drop-connection' | 'no-answer' | 'repeat-next-token';
