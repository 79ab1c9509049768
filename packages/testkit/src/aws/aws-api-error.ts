/**
 * An error as an AWS query API reports it: the code the SDK turns into the
 * error's `name`, AWS's message, and the HTTP status. Thrown by stand-in
 * actions and by injected faults.
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
