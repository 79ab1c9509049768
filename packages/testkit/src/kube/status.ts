import type { Status } from './types.js';

/** An answer the router sends as a `Status` body with `status.code` as the HTTP code. */
export class StatusError extends Error {
  constructor(readonly status: Status) {
    super(status.message ?? status.reason ?? `HTTP ${status.code}`);
  }
}

type Details = NonNullable<Status['details']>;

function failure(code: number, reason: string | undefined, message: string, details?: Details): StatusError {
  return new StatusError({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    ...(reason ? { reason } : {}),
    ...(details ? { details } : {}),
    code,
  });
}

/** A resource as the API server names it in messages: `pods`, or `poddisruptionbudgets.policy`. */
export interface Resource {
  resource: string;
  group?: string;
}

const qualified = (r: Resource): string => (r.group ? `${r.resource}.${r.group}` : r.resource);
const detailsOf = (r: Resource, name: string): Details => ({ name, ...(r.group ? { group: r.group } : {}), kind: r.resource });

/** `apierrors.NewNotFound`: 404, e.g. `nodes "n1" not found`. */
export const notFound = (r: Resource, name: string): StatusError =>
  failure(404, 'NotFound', `${qualified(r)} "${name}" not found`, detailsOf(r, name));

/** The 404 for a path the API server does not serve. */
export const noSuchPath = (): StatusError => failure(404, 'NotFound', 'the server could not find the requested resource', {});

/** `apierrors.NewAlreadyExists`: 409 with reason AlreadyExists. */
export const alreadyExists = (r: Resource, name: string): StatusError =>
  failure(409, 'AlreadyExists', `${qualified(r)} "${name}" already exists`, detailsOf(r, name));

/** `apierrors.NewConflict`: 409 with reason Conflict, by default for a stale `resourceVersion`. */
export const conflict = (r: Resource, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): StatusError =>
  failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`, detailsOf(r, name));

/** API Priority and Fairness' 429 for a request it did not serve, to be sent again after `retryAfterSeconds`. */
export const tooManyRequests = (retryAfterSeconds: number): StatusError =>
  failure(429, 'TooManyRequests', 'Too many requests, please try again later.', { retryAfterSeconds });

/** `apierrors.NewBadRequest`: 400. */
export const badRequest = (message: string): StatusError => failure(400, 'BadRequest', message);

/** `apierrors.NewInvalid` with one field error: 422. */
export const invalid = (kind: string, name: string, field: string, detail: string): StatusError =>
  failure(422, 'Invalid', `${kind} "${name}" is invalid: ${field}: ${detail}`, {
    name,
    kind,
    causes: [{ reason: 'FieldValueRequired', message: detail, field }],
  });

/** 405, as for a verb the resource does not support. */
export const methodNotAllowed = (): StatusError =>
  failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {});

/** 415 for a patch type the stand-in does not apply. */
export const unsupportedMediaType = (contentType: string): StatusError =>
  failure(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got ${contentType || 'none'})`,
  );

/** 401 when a token is required and missing or wrong. */
export const unauthorized = (): StatusError => failure(401, 'Unauthorized', 'Unauthorized');

/** The eviction API's 429 while a PodDisruptionBudget allows no disruption. */
export const disruptionBudgetViolated = (pdb: string, desiredHealthy: number, currentHealthy: number): StatusError =>
  failure(429, 'TooManyRequests', "Cannot evict pod as it would violate the pod's disruption budget.", {
    causes: [
      {
        reason: 'DisruptionBudget',
        message: `The disruption budget ${pdb} needs ${desiredHealthy} healthy pods and has ${currentHealthy} currently`,
      },
    ],
  });

/**
 * NamespaceLifecycle admission's 403 for a create in a namespace being deleted (an
 * eviction is a create of the pod's subresource): cause type `NamespaceTerminating`, which
 * travels in the cause's `reason` (Go's `StatusCause.Type` has the JSON name `reason`).
 */
export const namespaceTerminating = (r: Resource, name: string, namespace: string): StatusError =>
  failure(403, 'Forbidden', `${qualified(r)} "${name}" is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`, {
    ...detailsOf(r, name),
    causes: [{ reason: 'NamespaceTerminating', message: `namespace ${namespace} is being terminated`, field: 'metadata.namespace' }],
  });

/** The eviction API's answer for a pod covered by two or more budgets (no reason, as upstream). */
export const multipleBudgets = (): StatusError =>
  failure(500, undefined, 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.');

const INJECTED: Record<number, string> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  410: 'Expired',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/** The Status for an injected fault with HTTP `code`. */
export const injected = (code: number): StatusError => {
  const reason = INJECTED[code];
  if (code === 500) return failure(500, reason, 'Internal error occurred: injected fault', { causes: [{ message: 'injected fault' }] });
  // As for a continue token whose list version etcd has compacted (the API server's words, without its inconsistent token).
  if (code === 410) return failure(410, reason, 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
  return failure(code, reason, `injected fault (HTTP ${code})`);
};

/** The body of a successful eviction or deletion-by-eviction. */
export const success = (code: number): Status => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code });

/** 410 for a watch from a resourceVersion older than the history kept (the API server's "too old resource version"). */
export const expired = (requested: string, oldest: number): StatusError =>
  failure(410, 'Expired', `too old resource version: ${requested} (${oldest})`);
