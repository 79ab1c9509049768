/** What an AWS source's SDK client is built from. */
export interface AwsSourceClient {
  region: string | undefined;
  endpoint: string | undefined;
  /** Bound on each call, in ms (`callTimeout` of the source's entry). */
  callTimeout: number;
}

/**
 * The SDK client configuration of core's AWS sources (SQS, Spot prices): the
 * region and endpoint when set, and every call bounded. A connection that
 * takes a request and never answers would otherwise hold the source for good:
 * the SDK's only bound is a 15-minute idle socket, per attempt.
 */
export function awsClientConfig({ region, endpoint, callTimeout }: AwsSourceClient) {
  return {
    ...(region ? { region } : {}),
    ...(endpoint ? { endpoint } : {}),
    requestHandler: { connectionTimeout: callTimeout, requestTimeout: callTimeout, throwOnRequestTimeout: true },
  };
}
