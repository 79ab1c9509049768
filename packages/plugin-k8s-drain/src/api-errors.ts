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

/**
 * Maps anything a Kubernetes call throws to the one error type of this package,
 * prefixed with what was being done. HTTP 5xx and network errors become
 * UNAVAILABLE; another unexpected 4xx is a bug here, so INTERNAL.
 */
export function toPluginError(err: unknown, doing: string): PluginError {
  if (err instanceof PluginError) return err;
  if (err instanceof DeadlineReachedError) return new PluginError(Code.DeadlineExceeded, `${doing}: the drain deadline was reached`, { cause: err });
  if (err instanceof ApiException) {
    const code = CODE_BY_HTTP[err.code] ?? (err.code >= 500 ? Code.Unavailable : Code.Internal);
    return new PluginError(code, `${doing}: ${messageOf(err)}`, { cause: err });
  }
  if (err instanceof FetchError || (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('E'))) {
    return new PluginError(Code.Unavailable, `${doing}: cannot reach the Kubernetes API: ${err.message}`, { cause: err });
  }
  return PluginError.from(err);
}

/** Whether a failed Kubernetes call is worth repeating: conflicts, throttling, budgets, server and network errors. */
export function isTransient(err: PluginError): boolean {
  return err.code === Code.Unavailable || err.code === Code.ResourceExhausted || err.code === Code.Aborted;
}
