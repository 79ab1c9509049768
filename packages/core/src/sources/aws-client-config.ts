/** What an AWS source's SDK client is built from. */
export interface AwsSourceClient {
  region: string | undefined;
  endpoint: string | undefined;
  /** Bound on each call, in ms (`callTimeout` of the source's entry). */
  callTimeout: number;
  /** Calls the source keeps open for long stretches (SQS long polls, one per poller): each gets a socket of its own. */
  longPolls?: number;
}

/** The sockets the SDK's HTTP agent allows by default: what the source's other calls keep beside its long polls. */
const SDK_MAX_SOCKETS = 50;

/**
 * The SDK client configuration of core's AWS sources (SQS, Spot prices): the
 * region and endpoint when set, and every call bounded. A connection that
 * takes a request and never answers would otherwise hold the source for good:
 * the SDK's only bound is a 15-minute idle socket, per attempt. Long polls get
 * sockets beyond the SDK's 50: 50 pollers would otherwise take them all, and a
 * delete or a visibility renewal would wait up to 20 s for a poll to end.
 */
export function awsClientConfig({ region, endpoint, callTimeout, longPolls = 0 }: AwsSourceClient) {
  const agent = { maxSockets: SDK_MAX_SOCKETS + longPolls };
  return {
    ...(region ? { region } : {}),
    ...(endpoint ? { endpoint } : {}),
    requestHandler: { connectionTimeout: callTimeout, requestTimeout: callTimeout, throwOnRequestTimeout: true, httpAgent: agent, httpsAgent: agent },
  };
}
