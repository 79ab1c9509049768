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

describe('grpcCodeFor, every code of the table', () => {
  // Without an HTTP status, so no code passes only through the status fallback.
  it.each([
    ...['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'ThrottledException', 'RequestThrottled', 'RequestThrottledException', 'TooManyRequestsException', 'EC2ThrottledException', 'SlowDown'].map(
      (c) => [c, Code.ResourceExhausted] as const,
    ),
    ...['InsufficientInstanceCapacity', 'UnfulfillableCapacity', 'InsufficientCapacity', 'InsufficientHostCapacity'].map((c) => [c, Code.ResourceExhausted] as const),
    ...['ResourceContention', 'ScalingActivityInProgress', 'IncorrectInstanceState', 'ConcurrentTagAccess'].map((c) => [c, Code.Aborted] as const),
    ...[
      'AuthFailure',
      'InvalidClientTokenId',
      'SignatureDoesNotMatch',
      'IncompleteSignature',
      'MissingAuthenticationToken',
      'ExpiredToken',
      'ExpiredTokenException',
      'UnrecognizedClientException',
      'CredentialsProviderError',
    ].map((c) => [c, Code.Unauthenticated] as const),
    ...['UnauthorizedOperation', 'AccessDenied', 'AccessDeniedException', 'OptInRequired', 'Blocked'].map((c) => [c, Code.PermissionDenied] as const),
    ...[
      'ValidationError',
      'InvalidParameter',
      'InvalidParameterValue',
      'InvalidParameterCombination',
      'MissingParameter',
      'UnknownParameter',
      'InvalidAction',
      'IdempotentParameterMismatch',
      'InvalidInstanceID.Malformed',
    ].map((c) => [c, Code.InvalidArgument] as const),
    ['InvalidInstanceID.NotFound', Code.NotFound] as const,
    ...['LimitExceeded', 'InstanceLimitExceeded', 'MaxSpotInstanceCountExceeded', 'VcpuLimitExceeded', 'ServiceLinkedRoleFailure'].map((c) => [c, Code.FailedPrecondition] as const),
    ...['TimeoutError', 'RequestTimeout', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].map((c) => [c, Code.Unavailable] as const),
    ['SomethingNew', Code.Internal] as const,
  ])('maps %s to %s', (awsCode, code) => {
    expect(grpcCodeFor(awsCode)).toBe(code);
  });

  it('takes an unknown code with HTTP 500 and above for UNAVAILABLE, 400 to 499 for FAILED_PRECONDITION, below for INTERNAL', () => {
    expect([500, 499, 400, 399, 200].map((status) => grpcCodeFor('SomethingNew', status))).toEqual([
      Code.Unavailable,
      Code.FailedPrecondition,
      Code.FailedPrecondition,
      Code.Internal,
      Code.Internal,
    ]);
  });
});
