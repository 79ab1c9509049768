import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { isTransientError } from '@smithy/core/retry';

// AWS error codes by the gRPC code they map to. Throttling and capacity are
// retryable; credentials, permissions and validation are permanent.
const THROTTLING = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'EC2ThrottledException',
  'SlowDown',
]);
const NO_CAPACITY = new Set(['InsufficientInstanceCapacity', 'UnfulfillableCapacity', 'InsufficientCapacity', 'InsufficientHostCapacity']);
const CONFLICT = new Set(['ResourceContention', 'ScalingActivityInProgress', 'IncorrectInstanceState', 'ConcurrentTagAccess']);
const UNAUTHENTICATED = new Set([
  'AuthFailure',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'ExpiredToken',
  'ExpiredTokenException',
  'UnrecognizedClientException',
  'CredentialsProviderError',
]);
const PERMISSION_DENIED = new Set(['UnauthorizedOperation', 'AccessDenied', 'AccessDeniedException', 'OptInRequired', 'Blocked']);
const INVALID = new Set([
  'ValidationError',
  'InvalidParameter',
  'InvalidParameterValue',
  'InvalidParameterCombination',
  'MissingParameter',
  'UnknownParameter',
  'InvalidAction',
  'IdempotentParameterMismatch',
  'InvalidFleetConfiguration',
]);
// Codes EC2 answers with HTTP 5xx, also found without a status: inside CreateFleet's 200 answer, per override.
const SERVER_ERROR = new Set(['InternalError', 'InternalFailure', 'ServiceUnavailable', 'Unavailable']);
// What a zone or account does not offer (an instance type in a zone): only another request passes.
const NOT_OFFERED = new Set(['Unsupported', 'UnsupportedOperation']);
const QUOTA = new Set(['LimitExceeded', 'InstanceLimitExceeded', 'MaxSpotInstanceCountExceeded', 'MaxSpotFleetRequestCountExceeded', 'VcpuLimitExceeded', 'ServiceLinkedRoleFailure']);
// A launch's setting the moment refuses (a spot max price under the spot price, a subnet out of addresses):
// EC2 reports them inside CreateFleet's 200 answer too, with no status to fall back on; someone must change the setting.
const LAUNCH_SETTING = new Set(['SpotMaxPriceTooLow', 'InsufficientFreeAddressesInSubnet']);
// The one resource whose absence means there is nothing to act on. Any other `*.NotFound` (a launch template, subnet,
// AMI or security group a setting names) is a setting someone must fix: FAILED_PRECONDITION, so an SQS message is
// kept for its redelivery (and dead-letter queue) where NOT_FOUND would delete it, losing the replacement.
const INSTANCE_NOT_FOUND = 'InvalidInstanceID.NotFound';
// Failures below HTTP: no answer came, so the call may succeed later.
const NETWORK = new Set(['TimeoutError', 'RequestTimeout', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * The gRPC code for an AWS error code (and HTTP status, when known): throttling
 * and capacity shortages → RESOURCE_EXHAUSTED, conflicting updates → ABORTED,
 * 5xx (AWS's server-side codes, also without a status) and network failures
 * → UNAVAILABLE (all retryable); bad credentials → UNAUTHENTICATED, missing
 * permissions → PERMISSION_DENIED, validation → INVALID_ARGUMENT, an unknown instance
 * → NOT_FOUND, quotas, what is not offered, a spot max price too low, any other resource
 * not found (`*.NotFound`) and other 4xx → FAILED_PRECONDITION (all permanent).
 */
export function grpcCodeFor(awsCode: string, httpStatus?: number): Code {
  if (THROTTLING.has(awsCode) || NO_CAPACITY.has(awsCode)) return Code.ResourceExhausted;
  if (CONFLICT.has(awsCode)) return Code.Aborted;
  if (UNAUTHENTICATED.has(awsCode)) return Code.Unauthenticated;
  if (PERMISSION_DENIED.has(awsCode)) return Code.PermissionDenied;
  if (INVALID.has(awsCode) || awsCode.endsWith('.Malformed')) return Code.InvalidArgument;
  if (awsCode === INSTANCE_NOT_FOUND) return Code.NotFound;
  if (QUOTA.has(awsCode) || NOT_OFFERED.has(awsCode) || LAUNCH_SETTING.has(awsCode) || awsCode.endsWith('.NotFound')) return Code.FailedPrecondition;
  if (SERVER_ERROR.has(awsCode) || NETWORK.has(awsCode) || (httpStatus !== undefined && httpStatus >= 500)) return Code.Unavailable;
  if (httpStatus !== undefined && httpStatus >= 400) return Code.FailedPrecondition;
  return Code.Internal;
}

interface SdkErrorShape {
  name: string;
  message: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

function isSdkError(err: unknown): err is SdkErrorShape {
  return err instanceof Error;
}

/** The AWS error code of an SDK error, or of the SDK error behind a {@link PluginError} from {@link toPluginError}. */
export function awsErrorCode(err: unknown): string | undefined {
  const sdkError = err instanceof PluginError ? err.cause : err;
  return isSdkError(sdkError) ? (sdkError.code ?? sdkError.name) : undefined;
}

/**
 * Whether `err` (an SDK error, or a {@link PluginError} made from one) is AWS's
 * `awsCode`, and, when `message` is given, says so in words: Auto Scaling
 * answers several distinct conditions with one `ValidationError`, told apart
 * only by its message.
 */
export function isAwsError(err: unknown, awsCode: string, message?: RegExp): boolean {
  if (awsErrorCode(err) !== awsCode) return false;
  const sdkError = err instanceof PluginError ? err.cause : err;
  return message === undefined || (isSdkError(sdkError) && message.test(sdkError.message));
}

/**
 * Turns what an SDK call threw into a {@link PluginError} that keeps AWS's own
 * message: `"<operation> failed: <AWS code>: <AWS message>"`. An abort by the
 * handler's signal becomes the signal's reason (DEADLINE_EXCEEDED or CANCELLED).
 */
export function toPluginError(err: unknown, operation: string, signal?: AbortSignal): PluginError {
  if (err instanceof PluginError) return err;
  if (signal?.aborted) {
    return signal.reason instanceof PluginError ? signal.reason : new PluginError(Code.Canceled, `${operation} cancelled`, { cause: err });
  }
  if (!isSdkError(err)) return new PluginError(Code.Internal, `${operation} failed: ${String(err)}`);
  const code = err.code ?? err.name;
  const mapped = grpcCodeFor(code, err.$metadata?.httpStatusCode);
  // A failure the SDK retried as transient (a network code not listed here, one behind a cause) is one for core too, not a dead end.
  const grpcCode = mapped === Code.Internal && isTransientError(err) ? Code.Unavailable : mapped;
  return new PluginError(grpcCode, `${operation} failed: ${code}: ${err.message}`, { cause: err });
}

/**
 * `err` with `where` (the instance, group and region it was about) put before
 * its message, when AWS refused the call: AWS's own message rarely names
 * them, and an on-call engineer reading core's log of a run needs to. Other
 * errors (the plugin's own, a call's deadline) already say what they mean,
 * and are returned as they are. Code and cause are kept.
 */
export function located(err: PluginError, where: string): PluginError {
  if (awsErrorCode(err) === undefined) return err;
  return new PluginError(err.code, `${where}: ${err.message}`, { cause: err.cause });
}
