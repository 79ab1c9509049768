import { status, type handleUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { CallSignal } from './call-signal.js';
import { PluginError } from './errors.js';
import { shuttingDown, type CallRunner } from './call-runner.js';
import { notStartedTrailers } from './not-started-trailer.js';
import type { HandleRequest, HandleResponse } from './gen/hollowtrees/plugin/v1/plugin.js';

/** The gRPC error a failed unary call answers with. */
function toServiceError(err: unknown): Partial<ServiceError> {
  const e = PluginError.from(err);
  return { code: e.code as number as status, details: e.message };
}

/** Serves the unary `Handle`: one call per gRPC call. */
export function unaryHandle(runner: CallRunner): handleUnaryCall<HandleRequest, HandleResponse> {
  return (call, callback) => {
    // A call that reaches a closing plugin is refused before it starts, marked so the client sends it elsewhere at once.
    if (runner.closing) return callback({ ...toServiceError(shuttingDown()), metadata: notStartedTrailers() });
    const deadlineValue = call.getDeadline();
    const deadlineMs = deadlineValue instanceof Date ? deadlineValue.getTime() : deadlineValue;
    const signal = new CallSignal(Number.isFinite(deadlineMs) ? deadlineMs : Infinity);
    // grpc-js ends a call with 'cancelled' when its deadline passes (its own timer, or the client's
    // reset at the client's deadline) and when the client cancels; CallSignal tells which by the
    // time. grpc-js also emits it when a finished call's stream closes: the signal is settled then.
    call.once('cancelled', () => signal.cancel());
    runner.run(call.request, signal).then(
      (response) => callback(null, response),
      (err: unknown) => callback(toServiceError(err)),
    );
  };
}
