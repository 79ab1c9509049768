/** Why the receiver refuses a request: the `reason` label of the rejection counter, each value at 0 from the start. */
export const REJECT_REASONS = [
  'bad_json',
  'bad_request',
  'bad_data',
  'too_large',
  'too_many_alerts',
  'too_many_events',
  'not_found',
  'method_not_allowed',
  'unsupported_media_type',
  'unauthorized',
  'unauthorized_read',
  'overloaded',
  'timeout',
  'queue_full',
  'too_many_groups',
  'state_unavailable',
  'shutting_down',
  'internal',
] as const;

/** Why the receiver refused a request; also the `reason` label of the rejection counter. */
export type RejectReason = (typeof REJECT_REASONS)[number];

/** A request the receiver answers with a 4xx or 503 and a JSON reason. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: RejectReason,
    message: string,
    readonly headers: Record<string, string> = {},
    /** Set when the request's other items were taken: the answer says how many (`accepted`). */
    readonly accepted?: number,
  ) {
    super(message);
  }
}
