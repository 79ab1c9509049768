import { answerTooLarge, MAX_RESPONSE_BYTES, responseBytes } from './answer-size.js';
import { Code, PluginError, codeName } from './errors.js';
import { eventFromProto } from './event-codec.js';
import { completeResult } from './handle-result.js';
import { HandleStatus, type HandleRequest, type HandleResponse } from './gen/hollowtrees/plugin/v1/plugin.js';
import type { CallSignal } from './call-signal.js';
import type { CloudEvent } from './cloud-event.js';
import type { EventHandler, HandleContext, HandleResult } from './handler.js';
import type { PluginLogger } from './plugin-logger.js';

function toResponse(result: HandleResult | void): HandleResponse {
  const { status, message, attributes } = completeResult(result);
  return { status: status === 'skipped' ? HandleStatus.HANDLE_STATUS_SKIPPED : HandleStatus.HANDLE_STATUS_OK, message, attributes };
}

/** The refusal of a call that comes while the server closes: UNAVAILABLE, and never started. */
export function shuttingDown(): PluginError {
  return new PluginError(Code.Unavailable, 'plugin is shutting down');
}

/**
 * What one served call does, whichever transport carried it: refuse it while the server
 * closes, read the event, run the handler, and count it while it runs so `close()` can
 * wait for it.
 */
export class CallRunner {
  private inFlight = 0;
  private onIdle: (() => void) | undefined;
  private refusing = false;

  /** @param logger Where a handler's own failures are logged: core hears only their message. */
  constructor(
    private readonly handler: EventHandler,
    private readonly logger: PluginLogger,
  ) {}

  /** True once {@link drain} was called: calls are refused, not started. */
  get closing(): boolean {
    return this.refusing;
  }

  /**
   * Runs one call. Resolves with the response to send; rejects with the {@link PluginError}
   * to answer with (anything the handler throws becomes one; an answer too large to send
   * becomes INTERNAL). Settles `call` when it ends.
   */
  async run(request: HandleRequest | undefined, call: CallSignal): Promise<HandleResponse> {
    let event: CloudEvent;
    try {
      if (this.refusing) throw shuttingDown();
      if (!request?.event) throw new PluginError(Code.InvalidArgument, 'request has no event');
      try {
        event = eventFromProto(request.event);
      } catch (err) {
        throw new PluginError(Code.InvalidArgument, `cannot read the event: ${(err as Error).message}`);
      }
    } catch (err) {
      // Refused before anything is counted, so a bad call cannot hold an in-flight slot.
      call.settle();
      throw err;
    }
    this.inFlight++;
    let returned = false;
    try {
      const context: HandleContext = {
        flow: request.flow,
        attempt: request.attempt || 1,
        config: request.config,
        deadline: call.deadline,
        get signal(): AbortSignal {
          return call.signal;
        },
      };
      const result = await this.handler.handle(event, context);
      returned = true;
      const response = toResponse(result);
      // Refused here, for either transport: too large to arrive, it would fail the call as retryable after the work was done.
      const bytes = responseBytes(response);
      if (bytes > MAX_RESPONSE_BYTES) throw answerTooLarge(bytes);
      return response;
    } catch (err) {
      const answer = PluginError.from(err);
      // A PluginError the handler threw is its answer. Anything else it threw, or a result that cannot be sent, is a
      // bug whose stack only the plugin has: core hears the message alone. Once the call ended, a failure is most
      // likely the abort's own (the AbortError of I/O given the signal), and nobody waits for its answer.
      if ((returned || !(err instanceof PluginError)) && !call.aborted) {
        this.logger.error(`handler failed, answered ${codeName(answer.code)}: ${answer.message}`, { flow: request.flow, event_id: event.id, attempt: request.attempt || 1, err });
      }
      throw answer;
    } finally {
      call.settle();
      if (--this.inFlight === 0) this.onIdle?.();
    }
  }

  /** Refuses new calls from now on, then resolves when none is in flight, or after `timeoutMs`. */
  drain(timeoutMs: number): Promise<void> {
    this.refusing = true;
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.onIdle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
