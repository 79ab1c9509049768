import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { ApiException, FetchError } from '@kubernetes/client-node';
import { DeadlineReachedError } from './deadline.js';

const CODE_BY_HTTP: Record<number, Code> = {
  401: Code.Unauthenticated,
  403: Code.PermissionDenied,
  404: Code.NotFound,
  // A stale resourceVersion: read again and retry.
  409: Code.Aborted,
  // A PodDisruptionBudget refused the eviction, or the API server is throttling.
  429: Code.ResourceExhausted,
};

// The client hands over the error body as received: a JSON string, usually a `Status`.
function bodyOf(err: ApiException<unknown>): unknown {
  if (typeof err.body !== 'string') return err.body;
  try {
    return JSON.parse(err.body);
  } catch {
    return err.body;
  }
}

function messageOf(err: ApiException<unknown>): string {
  const body = bodyOf(err);
  if (typeof body === 'string') return body.trim() || `HTTP ${err.code}`;
  const message = typeof body === 'object' && body !== null && 'message' in body ? body.message : undefined;
  const text = typeof message === 'string' && message ? message : `HTTP ${err.code}`;
  // An eviction's 429 names the budget that refused it only in its cause ("The disruption budget db needs 3 healthy pods and has 3 currently").
  const budgets = causesOf(body).flatMap((c) => (c.reason === 'DisruptionBudget' && typeof c.message === 'string' && c.message ? [c.message] : []));
  return budgets.length > 0 ? `${text} ${budgets.join('; ')}` : text;
}

/** A `Status` body's `details.causes`. A cause's type is its `reason` on the wire (Go's `StatusCause.Type` has the JSON name `reason`). */
function causesOf(body: unknown): Array<{ reason?: unknown; message?: unknown }> {
  const causes = (body as { details?: { causes?: unknown } } | null | undefined)?.details?.causes;
  return Array.isArray(causes) ? causes.filter((c): c is { reason?: unknown; message?: unknown } => typeof c === 'object' && c !== null) : [];
}

/** The type of each of a `Status` body's `details.causes`. */
function causeTypesOf(err: ApiException<unknown>): string[] {
  return causesOf(bodyOf(err)).flatMap((c) => (typeof c.reason === 'string' ? [c.reason] : []));
}

/**
 * Whether a call was refused because its namespace is being deleted: the API
 * server's NamespaceLifecycle admission answers every create there (an
 * eviction included) 403 with the cause `NamespaceTerminating`, while the
 * namespace controller deletes the pods itself. `kubectl drain` waits for such
 * a pod instead of failing.
 */
export function isNamespaceTerminating(err: PluginError): boolean {
  const cause = err.cause;
  return cause instanceof ApiException && cause.code === 403 && causeTypesOf(cause).includes('NamespaceTerminating');
}

// The names Node gives a server certificate that does not verify against the kubeconfig: OpenSSL's, and its own for a name mismatch.
const CERTIFICATE_CODES: ReadonlySet<string> = new Set([
  // Issued for another name.
  'ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH',
  // Not signed by (a chain up to) the CA the kubeconfig trusts.
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_UNTRUSTED', 'CERT_REJECTED', 'INVALID_CA', 'INVALID_PURPOSE', 'PATH_LENGTH_EXCEEDED', 'CERT_CHAIN_TOO_LONG',
  // Out of date, revoked or malformed.
  'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'CERT_REVOKED', 'CERT_SIGNATURE_FAILURE', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'UNABLE_TO_GET_CRL', 'UNABLE_TO_DECRYPT_CRL_SIGNATURE', 'CRL_SIGNATURE_FAILURE', 'CRL_NOT_YET_VALID', 'CRL_HAS_EXPIRED', 'ERROR_IN_CRL_LAST_UPDATE_FIELD', 'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
]);

// Settings no retry mends: a key or certificate that cannot be read (OpenSSL's ERR_OSSL_*), a malformed URL or
// header, a TLS peer refusing the client's certificate.
const SETTING_CODES = /^ERR_(INVALID_|OSSL_|UNESCAPED_CHARACTERS$|SSL_(SSLV3|TLSV1\d*)_ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_[A-Z]+|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED)$)/;

// A request's own failures: errno names (ECONNRESET, EAI_AGAIN, ...), Node's ERR_*, the HTTP parser's HPE_*.
const REQUEST_CODES = /^(E[A-Z_]+|ERR_[A-Z0-9_]+|HPE_[A-Z_]+)$/;

/**
 * What a request's failure says, from its error's `code`: `http.request`'s
 * own (kubeWriter) or node-fetch's FetchError (the generated client), which
 * copies its system error's `code` and keeps no `cause`. Undefined for an
 * error that is not a request's.
 *
 * A certificate the kubeconfig cannot verify, and the settings above, fail
 * at once with FAILED_PRECONDITION saying what to fix. Any other failure may
 * pass (a dropped connection, a DNS blip, a load balancer answering plain
 * text during a failover): UNAVAILABLE, retried. The costs are not even:
 * failing at once on a fault that passes wastes the interruption notice,
 * while retrying one that lasts only costs time until the deadline.
 */
function requestFailureOf(err: Error): { code: Code; message: string } | undefined {
  const code = 'code' in err && typeof err.code === 'string' ? err.code : undefined;
  if (code !== undefined && CERTIFICATE_CODES.has(code)) {
    return { code: Code.FailedPrecondition, message: `cannot trust the Kubernetes API server's certificate (${code}: ${err.message}): check the kubeconfig's server and certificate-authority` };
  }
  if (code !== undefined && SETTING_CODES.test(code)) {
    return { code: Code.FailedPrecondition, message: `cannot talk to the Kubernetes API (${code}: ${err.message}): check the kubeconfig's server and credentials` };
  }
  // node-fetch's own timeouts carry no code.
  if (err instanceof FetchError || (code !== undefined && REQUEST_CODES.test(code))) {
    return { code: Code.Unavailable, message: `cannot reach the Kubernetes API: ${err.message}` };
  }
  return undefined;
}

/**
 * The API server's 500 for evicting a pod that two budgets select: the eviction API cannot decide
 * it, however often it is asked (`kubectl drain` stops on it too).
 */
const SEVERAL_BUDGETS = /more than one PodDisruptionBudget/;

/**
 * The API server's 409 for a uid precondition that fails: the object was deleted and another created
 * under its name (`the UID in the precondition (…) does not match…`, or `Precondition failed: UID in
 * precondition: …`). The one the call meant is gone, however often it is asked.
 */
const OTHER_UID = /UID in (the )?precondition/;

/**
 * Maps anything a Kubernetes call throws to the one error type of this package,
 * prefixed with what was being done. HTTP 5xx and network errors become
 * UNAVAILABLE; a certificate the kubeconfig cannot verify, a pod two budgets
 * select, or another failed request no retry mends, FAILED_PRECONDITION; a uid
 * precondition that fails (the object was recreated under its name), NOT_FOUND;
 * another unexpected 4xx is a bug here, so INTERNAL.
 */
export function toPluginError(err: unknown, doing: string): PluginError {
  if (err instanceof PluginError) return err;
  if (err instanceof DeadlineReachedError) return new PluginError(Code.DeadlineExceeded, `${doing}: the drain deadline was reached`, { cause: err });
  if (err instanceof ApiException) {
    const message = messageOf(err);
    if (err.code === 500 && SEVERAL_BUDGETS.test(message)) {
      return new PluginError(Code.FailedPrecondition, `${doing}: ${message} (make one PodDisruptionBudget select the pod)`, { cause: err });
    }
    if (err.code === 409 && OTHER_UID.test(message)) {
      return new PluginError(Code.NotFound, `${doing}: ${message}`, { cause: err });
    }
    const code = CODE_BY_HTTP[err.code] ?? (err.code >= 500 ? Code.Unavailable : Code.Internal);
    return new PluginError(code, `${doing}: ${message}`, { cause: err });
  }
  const failure = err instanceof Error ? requestFailureOf(err) : undefined;
  if (failure) return new PluginError(failure.code, `${doing}: ${failure.message}`, { cause: err });
  return PluginError.from(err);
}

/**
 * Whether an eviction failed for its pod alone, for good: two budgets select it (FAILED_PRECONDITION).
 * The node cannot drain, and no other node is the worse for it.
 */
export function isUnevictablePod(err: unknown): boolean {
  return err instanceof PluginError && err.code === Code.FailedPrecondition && err.cause instanceof ApiException && err.cause.code === 500 && SEVERAL_BUDGETS.test(messageOf(err.cause));
}

/** Whether a list call failed for a continue token whose list version etcd has compacted (410 Gone): the list is read again from its first page. */
export const isExpiredToken = (err: unknown): boolean => err instanceof ApiException && err.code === 410;

/** Whether a failed Kubernetes call is worth repeating: conflicts, throttling, budgets, server and network errors. */
export function isTransient(err: PluginError): boolean {
  return err.code === Code.Unavailable || err.code === Code.ResourceExhausted || err.code === Code.Aborted;
}
