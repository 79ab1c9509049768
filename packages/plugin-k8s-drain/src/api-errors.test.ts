import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { ApiException, FetchError } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { isNamespaceTerminating, isTransient, toPluginError } from './api-errors.js';
import { DeadlineReachedError } from './deadline.js';

const refusal = (code: number, body: unknown): ApiException<unknown> => new ApiException(code, `HTTP ${code}`, body, {});
const status = (message: string | undefined, code: number): string => JSON.stringify({ kind: 'Status', status: 'Failure', message, code });

describe('toPluginError', () => {
  it.each([
    [401, Code.Unauthenticated],
    [403, Code.PermissionDenied],
    [404, Code.NotFound],
    [409, Code.Aborted],
    [429, Code.ResourceExhausted],
    [400, Code.Internal],
    [422, Code.Internal],
    [499, Code.Internal],
    [500, Code.Unavailable],
    [503, Code.Unavailable],
  ])('maps HTTP %i to %s, with the Status message after what was being done', (http, code) => {
    const err = refusal(http, status('the reason', http));
    const mapped = toPluginError(err, 'cordoning node n1');
    expect([mapped.code, mapped.message, mapped.cause]).toEqual([code, 'cordoning node n1: the reason', err]);
  });

  it('reads the message from a body already parsed, the trimmed text of one that is not JSON, and falls back to the HTTP code', () => {
    const doing = 'evicting pod apps/p';
    expect(toPluginError(refusal(429, { message: 'parsed already' }), doing).message).toBe(`${doing}: parsed already`);
    expect(toPluginError(refusal(502, '  upstream connect error\n'), doing).message).toBe(`${doing}: upstream connect error`);
    expect(toPluginError(refusal(502, ' \n'), doing).message).toBe(`${doing}: HTTP 502`);
    expect(toPluginError(refusal(409, status(undefined, 409)), doing).message).toBe(`${doing}: HTTP 409`);
    expect(toPluginError(refusal(409, status('', 409)), doing).message).toBe(`${doing}: HTTP 409`);
    expect(toPluginError(refusal(500, 'null'), doing).message).toBe(`${doing}: HTTP 500`);
    expect(toPluginError(refusal(500, JSON.stringify({ message: 42 })), doing).message).toBe(`${doing}: HTTP 500`);
  });

  it('names the budget that refused an eviction, which the API server gives only in the 429\'s cause; other causes add nothing', () => {
    const doing = 'evicting pod apps/db-0';
    const refusedBy = (...causes: unknown[]) =>
      JSON.stringify({ kind: 'Status', status: 'Failure', message: "Cannot evict pod as it would violate the pod's disruption budget.", reason: 'TooManyRequests', details: { causes }, code: 429 });
    const budget = { reason: 'DisruptionBudget', message: 'The disruption budget db needs 2 healthy pods and has 2 currently' };
    expect(toPluginError(refusal(429, refusedBy(budget)), doing).message).toBe(
      `${doing}: Cannot evict pod as it would violate the pod's disruption budget. The disruption budget db needs 2 healthy pods and has 2 currently`,
    );
    expect(toPluginError(refusal(429, refusedBy({ message: 'no reason' }, null, 'text', { reason: 'DisruptionBudget' })), doing).message).toBe(
      `${doing}: Cannot evict pod as it would violate the pod's disruption budget.`,
    );
  });

  it('maps a failed uid precondition (the object recreated under its name) to NOT_FOUND, in both of the API server\'s wordings; another conflict stays ABORTED', () => {
    const doing = 'evicting pod apps/db-0';
    for (const message of [
      'Operation cannot be fulfilled on Pod "db-0": the UID in the precondition (a) does not match the UID in record (b). The object might have been deleted and then recreated',
      'Operation cannot be fulfilled on pods "db-0": Precondition failed: UID in precondition: a, UID in object meta: b',
    ]) {
      const mapped = toPluginError(refusal(409, status(message, 409)), doing);
      expect([mapped.code, mapped.message]).toEqual([Code.NotFound, `${doing}: ${message}`]);
    }
    const stale = 'Operation cannot be fulfilled on pods "db-0": the object has been modified; please apply your changes to the latest version and try again';
    expect(toPluginError(refusal(409, status(stale, 409)), doing).code).toBe(Code.Aborted);
  });

  it('answers the drain deadline as DEADLINE_EXCEEDED', () => {
    const err = new DeadlineReachedError(0);
    const mapped = toPluginError(err, 'listing pods on node n1');
    expect([mapped.code, mapped.message, mapped.cause]).toEqual([Code.DeadlineExceeded, 'listing pods on node n1: the drain deadline was reached', err]);
  });

  it('passes a PluginError through as it is', () => {
    const own = new PluginError(Code.FailedPrecondition, 'no time left');
    expect(toPluginError(own, 'reading node n1')).toBe(own);
  });

  it('does not take an error whose code is not a system error code for a failed request', () => {
    for (const err of [Object.assign(new Error('weird'), { code: 'INVALID' }), Object.assign(new Error('numeric'), { code: 5 }), new Error('plain')]) {
      expect(toPluginError(err, 'reading node n1').code).toBe(Code.Internal);
    }
  });
});

describe('toPluginError on a failed request', () => {
  const systemError = (code: string, message: string): Error => Object.assign(new Error(message), { code });
  // As the generated client gets it: node-fetch copies the system error's code (and keeps no cause).
  const fetchFailure = (code: string, message: string): FetchError =>
    new FetchError(`request to https://k8s:6443/api/v1/nodes/n1 failed, reason: ${message}`, 'system', systemError(code, message));
  const shapes = [
    ['http.request', systemError],
    ['node-fetch', fetchFailure],
  ] as const;

  const unreachable = () => /^reading node n1: cannot reach the Kubernetes API: /;
  const untrusted = (code: string) => new RegExp(`^reading node n1: cannot trust the Kubernetes API server's certificate \\(${code}: .+\\): check the kubeconfig's server and certificate-authority$`);
  const misconfigured = (code: string) => new RegExp(`^reading node n1: cannot talk to the Kubernetes API \\(${code}: .+\\): check the kubeconfig's server and credentials$`);

  describe.each(shapes)('from %s', (_, failed) => {
    it.each([
      // The network's: the next try may get through (ENOTFOUND: a DNS blip).
      ['ECONNREFUSED', Code.Unavailable, unreachable],
      ['ECONNRESET', Code.Unavailable, unreachable],
      ['ETIMEDOUT', Code.Unavailable, unreachable],
      ['EPIPE', Code.Unavailable, unreachable],
      ['EHOSTUNREACH', Code.Unavailable, unreachable],
      ['ENETUNREACH', Code.Unavailable, unreachable],
      ['ENOTFOUND', Code.Unavailable, unreachable],
      ['EAI_AGAIN', Code.Unavailable, unreachable],
      ['EADDRNOTAVAIL', Code.Unavailable, unreachable],
      ['ERR_STREAM_PREMATURE_CLOSE', Code.Unavailable, unreachable],
      ['ERR_SOCKET_CONNECTION_TIMEOUT', Code.Unavailable, unreachable],
      // A load balancer answering plain text during a failover, garbled or cut-short answers: they may pass too.
      ['ERR_SSL_WRONG_VERSION_NUMBER', Code.Unavailable, unreachable],
      ['ERR_SSL_UNEXPECTED_EOF_WHILE_READING', Code.Unavailable, unreachable],
      ['EPROTO', Code.Unavailable, unreachable],
      ['HPE_INVALID_CONSTANT', Code.Unavailable, unreachable],
      ['ERR_SOCKET_CLOSED', Code.Unavailable, unreachable],
      // The kubeconfig's: no retry mends them.
      ['ERR_TLS_CERT_ALTNAME_INVALID', Code.FailedPrecondition, untrusted],
      ['DEPTH_ZERO_SELF_SIGNED_CERT', Code.FailedPrecondition, untrusted],
      ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', Code.FailedPrecondition, untrusted],
      ['SELF_SIGNED_CERT_IN_CHAIN', Code.FailedPrecondition, untrusted],
      ['CERT_HAS_EXPIRED', Code.FailedPrecondition, untrusted],
      ['ERROR_IN_CERT_NOT_AFTER_FIELD', Code.FailedPrecondition, untrusted],
      ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', Code.FailedPrecondition, misconfigured],
      ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', Code.FailedPrecondition, misconfigured],
      ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', Code.FailedPrecondition, misconfigured],
      ['ERR_OSSL_PEM_NO_START_LINE', Code.FailedPrecondition, misconfigured],
      ['ERR_INVALID_URL', Code.FailedPrecondition, misconfigured],
      ['ERR_INVALID_HTTP_TOKEN', Code.FailedPrecondition, misconfigured],
      ['ERR_UNESCAPED_CHARACTERS', Code.FailedPrecondition, misconfigured],
    ])('answers %s as %s', (code, expected, message) => {
      const err = failed(code, 'the reason');
      const mapped = toPluginError(err, 'reading node n1');
      expect([mapped.code, mapped.cause]).toEqual([expected, err]);
      expect(mapped.message).toMatch(message(code));
      expect(mapped.message).toContain(err.message);
    });
  });

  it('says what the certificate problem is and what to check', () => {
    const err = systemError('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames: Host: k8s. is not in the cert's altnames: DNS:localhost");
    expect(toPluginError(err, 'cordoning node "n1"').message).toBe(
      'cordoning node "n1": cannot trust the Kubernetes API server\'s certificate (ERR_TLS_CERT_ALTNAME_INVALID: ' +
        "Hostname/IP does not match certificate's altnames: Host: k8s. is not in the cert's altnames: DNS:localhost): check the kubeconfig's server and certificate-authority",
    );
  });

  it('answers a FetchError without a code (node-fetch\'s own timeout) or with an unknown one as UNAVAILABLE', () => {
    expect(toPluginError(new FetchError('network timeout at: https://k8s:6443/api/v1/nodes/n1', 'request-timeout'), 'reading node n1').code).toBe(Code.Unavailable);
    expect(toPluginError(fetchFailure('SOMETHING_NEW', 'the reason'), 'reading node n1').code).toBe(Code.Unavailable);
  });
});

describe('isTransient', () => {
  it.each([
    [Code.Unavailable, true],
    [Code.ResourceExhausted, true],
    [Code.Aborted, true],
    [Code.NotFound, false],
    [Code.PermissionDenied, false],
    [Code.DeadlineExceeded, false],
    [Code.Internal, false],
    [Code.FailedPrecondition, false],
  ])('%s: %s', (code, transient) => {
    expect(isTransient(new PluginError(code, 'x'))).toBe(transient);
  });
});

describe('isNamespaceTerminating', () => {
  it('reads the cause from its reason, as the API server writes a StatusCause (Go\'s Type is JSON reason)', () => {
    // NamespaceLifecycle admission's answer to an eviction in a namespace being deleted, as kube-apiserver sends it.
    const body = JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "web-0" is forbidden: unable to create new content in namespace preview because it is being terminated',
      reason: 'Forbidden',
      details: { name: 'web-0', kind: 'pods', causes: [{ reason: 'NamespaceTerminating', message: 'namespace preview is being terminated', field: 'metadata.namespace' }] },
      code: 403,
    });
    expect(isNamespaceTerminating(toPluginError(refusal(403, body), 'evicting pod preview/web-0'))).toBe(true);
    expect(isNamespaceTerminating(toPluginError(refusal(403, status('forbidden by RBAC', 403)), 'evicting pod preview/web-0'))).toBe(false);
  });
});
