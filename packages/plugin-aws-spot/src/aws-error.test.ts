import { Code, isRetryable } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { grpcCodeFor } from './aws-error.js';

describe('grpcCodeFor', () => {
  it.each([
    ['RequestLimitExceeded', 503, Code.ResourceExhausted],
    ['Throttling', 400, Code.ResourceExhausted],
    ['InsufficientInstanceCapacity', undefined, Code.ResourceExhausted],
    ['ResourceContention', 500, Code.Aborted],
    ['Unavailable', 503, Code.Unavailable],
    ['SomethingNew', 502, Code.Unavailable],
    ['ECONNREFUSED', undefined, Code.Unavailable],
  ])('maps %s (HTTP %s) to a retryable code', (awsCode, status, code) => {
    expect(grpcCodeFor(awsCode, status)).toBe(code);
    expect(isRetryable(code)).toBe(true);
  });

  it.each([
    ['AuthFailure', 401, Code.Unauthenticated],
    ['ExpiredToken', 400, Code.Unauthenticated],
    ['UnauthorizedOperation', 403, Code.PermissionDenied],
    ['AccessDenied', 403, Code.PermissionDenied],
    ['ValidationError', 400, Code.InvalidArgument],
    ['InvalidInstanceID.Malformed', 400, Code.InvalidArgument],
    ['InvalidLaunchTemplateId.NotFound', 400, Code.NotFound],
    ['VcpuLimitExceeded', 400, Code.FailedPrecondition],
    ['SomethingNew', 400, Code.FailedPrecondition],
  ])('maps %s (HTTP %s) to a permanent code', (awsCode, status, code) => {
    expect(grpcCodeFor(awsCode, status)).toBe(code);
    expect(isRetryable(code)).toBe(false);
  });
});
