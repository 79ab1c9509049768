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
function messageOf(err: ApiException<unknown>): string {
  let body: unknown = err.body;
  if (typeof body === 'string') {
    const text = body;
    try {
      body = JSON.parse(text);
    } catch {
      return text.trim() || `HTTP ${err.code}`;
    }
  }
  const message = typeof body === 'object' && body !== null && 'message' in body ? body.message : undefined;
  return typeof message === 'string' && message ? message : `HTTP ${err.code}`;
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

// Node's names for a connection that timed out or broke off (node-fetch's "Premature close" too); its other ERR_* are settings.
const NETWORK_NODE_CODES: ReadonlySet<string> = new Set(['ERR_SOCKET_CONNECTION_TIMEOUT', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_TLS_HANDSHAKE_TIMEOUT']);

// errno names: ECONNREFUSED, ECONNRESET ("socket hang up"), ETIMEDOUT, EPIPE, EHOSTUNREACH, getaddrinfo's EAI_AGAIN, ...
const ERRNO = /^E(AI_)?[A-Z]+$/;

/**
 * What a request's failure says, from its error's `code`: `http.request`'s
 * own (kubeWriter) or node-fetch's FetchError (the generated client), which
 * copies its system error's `code` and keeps no `cause`. Undefined for an
 * error that is not a request's.
 *
 * An errno name is the network's, worth another try; ENOTFOUND too, as a DNS
 * blip answers it for a name that resolves a moment later. A certificate the
 * kubeconfig cannot verify, Node's other ERR_* (a TLS alert, an unreadable key,
 * a bad URL) and the HTTP parser's HPE_* (no HTTP server at that address) are
 * settings that no retry mends: FAILED_PRECONDITION, so the call fails at once
 * saying what to fix instead of being retried until the deadline.
 */
function requestFailureOf(err: Error): { code: Code; message: string } | undefined {
  const code = 'code' in err && typeof err.code === 'string' ? err.code : undefined;
  const unreachable = { code: Code.Unavailable, message: `cannot reach the Kubernetes API: ${err.message}` };
  // node-fetch's own timeouts carry no code.
  if (code === undefined) return err instanceof FetchError ? unreachable : undefined;
  if (CERTIFICATE_CODES.has(code)) {
    return { code: Code.FailedPrecondition, message: `cannot trust the Kubernetes API server's certificate (${code}: ${err.message}): check the kubeconfig's server and certificate-authority` };
  }
  if (ERRNO.test(code) || NETWORK_NODE_CODES.has(code)) return unreachable;
  // Any other code a request failed with is a setting's too: failing at once costs less than retrying a mistake until the deadline.
  if (/^(ERR|HPE)_/.test(code) || err instanceof FetchError) {
    return { code: Code.FailedPrecondition, message: `cannot talk to the Kubernetes API (${code}: ${err.message}): check the kubeconfig's server and credentials` };
  }
  return undefined;
}

/**
 * Maps anything a Kubernetes call throws to the one error type of this package,
 * prefixed with what was being done. HTTP 5xx and network errors become
 * UNAVAILABLE; a certificate the kubeconfig cannot verify, or another failed
 * request no retry mends, FAILED_PRECONDITION; another unexpected 4xx is a bug
 * here, so INTERNAL.
 */
export function toPluginError(err: unknown, doing: string): PluginError {
  if (err instanceof PluginError) return err;
  if (err instanceof DeadlineReachedError) return new PluginError(Code.DeadlineExceeded, `${doing}: the drain deadline was reached`, { cause: err });
  if (err instanceof ApiException) {
    const code = CODE_BY_HTTP[err.code] ?? (err.code >= 500 ? Code.Unavailable : Code.Internal);
    return new PluginError(code, `${doing}: ${messageOf(err)}`, { cause: err });
  }
  const failure = err instanceof Error ? requestFailureOf(err) : undefined;
  if (failure) return new PluginError(failure.code, `${doing}: ${failure.message}`, { cause: err });
  return PluginError.from(err);
}

/** Whether a failed Kubernetes call is worth repeating: conflicts, throttling, budgets, server and network errors. */
export function isTransient(err: PluginError): boolean {
  return err.code === Code.Unavailable || err.code === Code.ResourceExhausted || err.code === Code.Aborted;
}
