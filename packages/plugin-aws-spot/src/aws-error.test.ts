import { Code, isRetryable, PluginError } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { awsErrorCode, grpcCodeFor, isAwsError, toPluginError } from './aws-error.js';

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
    ['InvalidLaunchTemplateId.NotFound', 400, Code.FailedPrecondition],
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
    ['InvalidFleetConfiguration', Code.InvalidArgument] as const,
    ['InvalidInstanceID.NotFound', Code.NotFound] as const,
    // A resource a setting names, not the instance: someone must fix the setting, and the event must wait for it.
    ...['InvalidLaunchTemplateId.NotFound', 'InvalidSubnetID.NotFound', 'InvalidAMIID.NotFound', 'InvalidGroup.NotFound'].map((c) => [c, Code.FailedPrecondition] as const),
    ...['LimitExceeded', 'InstanceLimitExceeded', 'MaxSpotInstanceCountExceeded', 'MaxSpotFleetRequestCountExceeded', 'VcpuLimitExceeded', 'ServiceLinkedRoleFailure'].map((c) => [c, Code.FailedPrecondition] as const),
    ...['SpotMaxPriceTooLow', 'InsufficientFreeAddressesInSubnet'].map((c) => [c, Code.FailedPrecondition] as const),
    ...['Unsupported', 'UnsupportedOperation'].map((c) => [c, Code.FailedPrecondition] as const),
    ...['InternalError', 'InternalFailure', 'ServiceUnavailable', 'Unavailable'].map((c) => [c, Code.Unavailable] as const),
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

/** An error shaped as the AWS SDK v3 throws them: a name, often a code, and the HTTP status in `$metadata`. */
const sdkError = (name: string, message: string, extra: { code?: string; status?: number } = {}): Error =>
  Object.assign(new Error(message), { name, ...(extra.code !== undefined && { code: extra.code }), $metadata: { httpStatusCode: extra.status } });

describe('toPluginError', () => {
  it('keeps AWS’s code and message, maps the code with the HTTP status, and keeps the SDK error as the cause', () => {
    const cause = sdkError('SomethingNew', 'Service is down.', { status: 503 });
    const err = toPluginError(cause, 'EC2 CreateFleet');
    expect([err.code, err.message, err.cause]).toEqual([Code.Unavailable, 'EC2 CreateFleet failed: SomethingNew: Service is down.', cause]);
  });

  it('answers UNAVAILABLE (retryable) for every network failure the SDK itself retries as transient, once its retries are spent', () => {
    // As Node's socket reports them: no HTTP status, the errno name in `code`; or wrapped, with the failure as the cause.
    const system = (code: string): Error => Object.assign(new Error(`connect ${code} 10.0.0.1:443`), { code, errno: -101, syscall: 'connect' });
    for (const err of [system('ENETUNREACH'), new Error('request failed', { cause: system('ECONNRESET') }), sdkError('RequestTimeoutException', 'timed out')]) {
      expect([toPluginError(err, 'EC2 DescribeInstances').code, err.message]).toEqual([Code.Unavailable, err.message]);
    }
  });

  it('prefers the error’s code to its name', () => {
    const err = toPluginError(sdkError('Error', 'Rate exceeded', { code: 'Throttling' }), 'Auto Scaling DetachInstances');
    expect([err.code, err.message]).toEqual([Code.ResourceExhausted, 'Auto Scaling DetachInstances failed: Throttling: Rate exceeded']);
  });

  it('passes a PluginError through, and makes anything that is not an Error INTERNAL', () => {
    const plugin = new PluginError(Code.NotFound, 'gone');
    expect(toPluginError(plugin, 'x')).toBe(plugin);
    const err = toPluginError('boom', 'EC2 DescribeInstances');
    expect([err.code, err.message]).toEqual([Code.Internal, 'EC2 DescribeInstances failed: boom']);
  });

  it('answers an aborted call with the signal’s PluginError, or CANCELLED naming the operation', () => {
    const deadline = new PluginError(Code.DeadlineExceeded, 'deadline exceeded');
    const byDeadline = new AbortController();
    byDeadline.abort(deadline);
    const cause = sdkError('AbortError', 'Request aborted');
    expect(toPluginError(cause, 'EC2 CreateFleet', byDeadline.signal)).toBe(deadline);
    const foreign = new AbortController();
    foreign.abort(new Error('shutting down'));
    const err = toPluginError(cause, 'EC2 CreateFleet', foreign.signal);
    expect([err.code, err.message, err.cause]).toEqual([Code.Canceled, 'EC2 CreateFleet cancelled', cause]);
  });
});

describe('awsErrorCode', () => {
  it('reads the code, else the name, of an SDK error, also behind the PluginError made of it', () => {
    const dryRun = sdkError('Error', 'Request would have succeeded', { code: 'DryRunOperation' });
    expect(awsErrorCode(dryRun)).toBe('DryRunOperation');
    expect(awsErrorCode(toPluginError(dryRun, 'EC2 CreateTags'))).toBe('DryRunOperation');
    expect(awsErrorCode(sdkError('ValidationError', 'bad'))).toBe('ValidationError');
    expect(awsErrorCode('DryRunOperation')).toBeUndefined();
  });
});

describe('isAwsError', () => {
  it('matches the code, and the message when one is given, of an SDK error, also behind the PluginError made of it', () => {
    const gone = sdkError('ValidationError', 'No active Lifecycle Action found with instance ID i-0123456789abcdef0');
    expect(isAwsError(gone, 'ValidationError')).toBe(true);
    expect(isAwsError(toPluginError(gone, 'Auto Scaling CompleteLifecycleAction'), 'ValidationError', /No active Lifecycle Action found/)).toBe(true);
    expect(isAwsError(gone, 'ValidationError', /not part of Auto Scaling group/)).toBe(false);
    expect(isAwsError(gone, 'AccessDenied')).toBe(false);
    expect(isAwsError(new PluginError(Code.InvalidArgument, 'ValidationError: No active Lifecycle Action found'), 'ValidationError')).toBe(false);
  });
});
