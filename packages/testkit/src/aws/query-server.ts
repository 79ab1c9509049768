import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { XMLBuilder } from 'fast-xml-parser';
import type { CallLatency } from '../call-latency.js';
import { closeServer, listenOnEphemeralPort, wallClockMs } from '../listen.js';
import { AwsApiError, throttlingError, type AwsService, type InjectedFault, type QueryService } from './aws-api-error.js';
import { QueryParams } from './query-params.js';
import { readRequestBody } from './request-body.js';
import type { AwsRateLimiter } from './rate-limits.js';

export type { AwsService } from './aws-api-error.js';

/** One request the stand-in received, in arrival order. */
export interface AwsCall {
  readonly service: AwsService;
  readonly action: string;
  readonly params: Readonly<Record<string, string>>;
  /** The error code answered, when the call failed (injected faults and throttling included). */
  readonly errorCode?: string;
  /** When it was served (after the injected latency): {@link wallClockMs}. */
  readonly at: number;
}

/** Serves one action: returns the elements inside the response (EC2) or its `<Action>Result` (Auto Scaling). */
export type ActionHandler = (params: QueryParams) => Record<string, unknown>;

/** How one service shapes its XML: namespace, version, success and error envelopes. */
interface Dialect {
  readonly version: string;
  readonly namespace: string;
  success(action: string, body: Record<string, unknown>, requestId: string): Record<string, unknown>;
  error(err: AwsApiError, requestId: string): Record<string, unknown>;
}

const DIALECTS: Record<QueryService, Dialect> = {
  // EC2 (ec2Query): elements straight under the response, requestId first; errors in <Response><Errors>.
  ec2: {
    version: '2016-11-15',
    namespace: 'http://ec2.amazonaws.com/doc/2016-11-15/',
    success: (action, body, requestId) => ({
      [`${action}Response`]: { '@_xmlns': DIALECTS.ec2.namespace, requestId, ...body },
    }),
    error: (err, requestId) => ({
      Response: { Errors: { Error: { Code: err.code, Message: err.message } }, RequestID: requestId },
    }),
  },
  // Auto Scaling (awsQuery): <ActionResult> then <ResponseMetadata>; errors in <ErrorResponse> with a Type.
  autoscaling: {
    version: '2011-01-01',
    namespace: 'http://autoscaling.amazonaws.com/doc/2011-01-01/',
    success: (action, body, requestId) => ({
      [`${action}Response`]: {
        '@_xmlns': DIALECTS.autoscaling.namespace,
        [`${action}Result`]: body,
        ResponseMetadata: { RequestId: requestId },
      },
    }),
    error: (err, requestId) => ({
      ErrorResponse: {
        '@_xmlns': DIALECTS.autoscaling.namespace,
        Error: { Type: err.status >= 500 ? 'Receiver' : 'Sender', Code: err.code, Message: err.message },
        RequestId: requestId,
      },
    }),
  },
};

/** A fault waiting for the next matching calls. */
interface PendingFault {
  remaining: number;
  readonly service: AwsService | undefined;
  readonly action: string | undefined;
  readonly error: (service: AwsService) => InjectedFault;
}

/** Calls held at the stand-in (see {@link AwsFaults.hold}). */
export interface HeldCalls {
  /** The calls held so far, counted on arrival: a test waits for this, not for a time, to know the call is there. */
  readonly hits: number;
}

/** Where a held call waits: before its action runs, or after it ran, before its answer is sent. */
export type HoldStage = 'call' | 'answer';

/** A hold waiting for the next matching calls. */
interface PendingHold {
  remaining: number;
  readonly service: AwsService | undefined;
  readonly action: string | undefined;
  readonly stage: HoldStage;
  readonly until: Promise<unknown>;
}

/** Which calls a fault applies to. Default: any call to either service. */
export interface FaultScope {
  service?: AwsService;
  action?: string;
}

/** Errors injected into the next calls, answered before the action runs. */
export class AwsFaults {
  private readonly pending: PendingFault[] = [];
  private readonly holds: PendingHold[] = [];

  /**
   * The next `count` calls wait at the stand-in, before their action runs (and before any other fault), until `until`
   * settles: a call on its way into the service when its client gives up, applied all the same once let go.
   */
  hold(count: number, until: Promise<unknown>, scope: FaultScope = {}): HeldCalls {
    return this.addHold(count, until, scope, 'call');
  }

  /**
   * The next `count` calls run their action at once, then their answers wait at the stand-in until `until` settles:
   * a call the service applied whose answer is slow on its way back (what the action changed is seen meanwhile).
   */
  holdAnswer(count: number, until: Promise<unknown>, scope: FaultScope = {}): HeldCalls {
    return this.addHold(count, until, scope, 'answer');
  }

  /** Waits while a {@link hold} (or, at `answer`, a {@link holdAnswer}) takes this call; at once when none does. */
  async held(service: AwsService, action: string, stage: HoldStage = 'call'): Promise<void> {
    const hold = this.holds.find((h) => h.remaining > 0 && h.stage === stage && (h.service ?? service) === service && (h.action ?? action) === action);
    if (!hold) return;
    hold.remaining--;
    await hold.until.catch(() => {});
  }

  private addHold(count: number, until: Promise<unknown>, scope: FaultScope, stage: HoldStage): HeldCalls {
    const hold: PendingHold = { remaining: count, service: scope.service, action: scope.action, stage, until };
    this.holds.push(hold);
    return {
      get hits() {
        return count - hold.remaining;
      },
    };
  }

  /**
   * The next `count` calls fail with each service's real throttling error:
   * EC2 `RequestLimitExceeded` (HTTP 503), Auto Scaling `Throttling` "Rate exceeded" (HTTP 400).
   */
  throttle(count: number, scope: FaultScope = {}): void {
    this.add(count, scope, throttlingError);
  }

  /** The next `count` calls fail with HTTP 503 (EC2 `Unavailable`, Auto Scaling and SQS `ServiceUnavailable`). */
  unavailable(count: number, scope: FaultScope = {}): void {
    this.add(count, scope, (service) =>
      service === 'ec2'
        ? new AwsApiError('Unavailable', "The server is overloaded and can't handle the request.", 503)
        : new AwsApiError('ServiceUnavailable', 'Service is unavailable, please try again later.', 503),
    );
  }

  /** The next `count` calls get no answer: the connection is closed under them, as a network failure would. */
  dropConnection(count: number, scope: FaultScope = {}): void {
    this.add(count, scope, () => 'drop-connection');
  }

  /** The next `count` calls are taken and never answered, as a stalled proxy or endpoint would: only a client timeout ends them. */
  noAnswer(count: number, scope: FaultScope = {}): void {
    this.add(count, scope, () => 'no-answer');
  }

  /**
   * The next `count` calls are served, but answer with the `NextToken` they were sent (a call sent
   * none answers as it would): a broken or hostile endpoint whose listing never ends. EC2 and Auto
   * Scaling only.
   */
  repeatNextToken(count: number, scope: FaultScope = {}): void {
    this.add(count, scope, () => 'repeat-next-token');
  }

  /** The next `count` calls fail with the given error, e.g. `AuthFailure` (401) or `UnauthorizedOperation` (403). */
  fail(count: number, error: { code: string; message: string; status?: number }, scope: FaultScope = {}): void {
    this.add(count, scope, () => new AwsApiError(error.code, error.message, error.status));
  }

  /** Drops every fault still pending: the service works again. */
  clear(): void {
    this.pending.length = 0;
    this.holds.length = 0;
  }

  /** Takes the fault for this call, if one is pending. */
  take(service: AwsService, action: string): InjectedFault | undefined {
    const fault = this.pending.find(
      (f) => f.remaining > 0 && (f.service ?? service) === service && (f.action ?? action) === action,
    );
    if (!fault) return undefined;
    fault.remaining--;
    return fault.error(service);
  }

  private add(count: number, scope: FaultScope, error: PendingFault['error']): void {
    this.pending.push({ remaining: count, service: scope.service, action: scope.action, error });
  }
}

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_' });
const toXml = (body: Record<string, unknown>): string => `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build(body) as string}`;

/** A running query-protocol server. */
export interface QueryServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves the AWS query protocol for both services on one port: each SDK sends
 * its API `Version`, which picks the service, so one endpoint override points
 * the EC2 and the Auto Scaling client at the same stand-in.
 */
export async function startQueryServer(options: {
  host: string;
  actions: Record<QueryService, Readonly<Record<string, ActionHandler>>>;
  faults: AwsFaults;
  calls: AwsCall[];
  latency: CallLatency;
  rateLimiter: AwsRateLimiter | undefined;
}): Promise<QueryServer> {
  const serviceOf = (version: string | undefined): QueryService | undefined =>
    (Object.keys(DIALECTS) as QueryService[]).find((s) => DIALECTS[s].version === version);

  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = randomUUID();
    const params = QueryParams.parse(await readRequestBody(req));
    await options.latency.wait();
    const action = params.get('Action') ?? '';
    const service = serviceOf(params.get('Version')) ?? 'ec2';
    const dialect = DIALECTS[service];
    await options.faults.held(service, action);
    const send = (status: number, body: Record<string, unknown>): void => {
      res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': requestId });
      res.end(toXml(body));
    };
    try {
      if (req.method !== 'POST') throw new AwsApiError('InvalidHttpRequest', 'The stand-in accepts POST requests only.');
      if (serviceOf(params.get('Version')) === undefined) {
        throw new AwsApiError('NoSuchVersion', `The requested version (${params.get('Version') ?? ''}) of service does not exist`);
      }
      const refusal = options.faults.take(service, action) ?? options.rateLimiter?.take(service, action);
      if (refusal === 'drop-connection' || refusal === 'no-answer') {
        options.calls.push({ service, action, params: params.toObject(), errorCode: refusal, at: wallClockMs() });
        if (refusal === 'drop-connection') req.socket.destroy();
        return;
      }
      if (refusal && refusal !== 'repeat-next-token') throw refusal;
      const handler = options.actions[service][action];
      if (!handler) throw new AwsApiError('InvalidAction', `The action ${action} is not valid for this web service.`);
      const body = handler(params);
      const sentToken = params.get('NextToken');
      // EC2 names the element nextToken, Auto Scaling NextToken.
      if (refusal === 'repeat-next-token' && sentToken) body[service === 'ec2' ? 'nextToken' : 'NextToken'] = sentToken;
      options.calls.push({ service, action, params: params.toObject(), at: wallClockMs() });
      await options.faults.held(service, action, 'answer');
      send(200, dialect.success(action, body, requestId));
    } catch (err) {
      const apiError = err instanceof AwsApiError ? err : new AwsApiError('InternalError', String(err), 500);
      options.calls.push({ service, action, params: params.toObject(), errorCode: apiError.code, at: wallClockMs() });
      send(apiError.status, dialect.error(apiError, requestId));
    }
  };

  const server: Server = createServer((req, res) => {
    answer(req, res).catch(() => res.destroy());
  });
  const port = await listenOnEphemeralPort(server, options.host);
  return {
    url: `http://${options.host}:${port}`,
    close: () => closeServer(server),
  };
}
