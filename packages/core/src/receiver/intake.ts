import type { IncomingMessage } from 'node:http';
import type { CloudEvent } from '@hollowtrees/grpcplugin';
import type { ReceiverLimits } from '../config/schema.js';
import { alertTypeFamily, type AlertEventData } from './alert-to-event.js';
import { requireJson } from './media-type.js';
import type { AlertFormat, LeftOut, parseAlerts } from './parse-alerts.js';
import { CLOUDEVENT_MODES, cloudEventMode, parseCloudEvents, type CloudEventMode } from './parse-cloudevents.js';
import type { ValidatedItems } from './validate-body.js';

/** How a POST path turns one request into events; everything else (auth, limits, 503s, the acknowledgement) the receiver does the same for every path. */
export interface Intake {
  /** The `source` label of `hollowtrees_events_received_total`. */
  readonly source: string;
  /** What the path takes, in messages: `3 of 5 alerts were not queued ...`. */
  readonly noun: 'alerts' | 'events';
  /**
   * Validates the body and turns it into events; an HttpError (4xx) names what is wrong with the request.
   * Items a path judges one by one (alerts) and refused are counted and named in `refused`.
   */
  parse(body: Buffer, receivedAt: Date, limits: ReceiverLimits): Promise<ParsedRequest>;
  /** The `type` label of `hollowtrees_events_received_total`: from a fixed set, never what a sender chose. */
  typeLabel(event: CloudEvent): string;
}

/** A request's events, and the items of it refused one by one, if its path judges them so. */
export interface ParsedRequest {
  events: CloudEvent[];
  refused?: Omit<ValidatedItems<unknown>, 'valid'>;
  /** Alerts the sender left out of the request (Alertmanager's `max_alerts`), and their group: they never reach core. */
  leftOut?: LeftOut;
}

/** Turns an alert body into events: {@link parseAlerts}, or the same on another thread. */
export type AlertParser = typeof parseAlerts;

/** Reads a request's headers (415 for a Content-Type the path does not take) before any of its body. */
export type IntakeFor = (req: IncomingMessage, parseAlerts: AlertParser) => Intake;

/** Paths that accept alerts, and the format each reads. */
export const ALERT_PATHS: Readonly<Record<string, AlertFormat>> = {
  '/api/v2/alerts': 'api_v2',
  '/api/v1/alerts': 'api_v1',
  '/webhook/alertmanager': 'webhook',
};

/** The path that accepts CloudEvents in the HTTP binding's structured, batch and binary modes. */
export const EVENTS_PATH = '/api/v1/events';

/** The `type` label of every CloudEvent received over HTTP: its type is the sender's choice, so it is written `*`. */
export const ANY_TYPE = '*';

function alertIntake(format: AlertFormat): IntakeFor {
  return (req, parse) => {
    requireJson(req);
    return {
      source: format,
      noun: 'alerts',
      parse: (body, receivedAt, limits) => parse(format, body, receivedAt, limits),
      typeLabel: (event) => alertTypeFamily((event.data as AlertEventData).status),
    };
  };
}

/** The `source` label of CloudEvents received in `mode`. */
const cloudEventSource = (mode: CloudEventMode): string => `cloudevents_${mode}`;

const cloudEventIntake: IntakeFor = (req) => {
  const mode = cloudEventMode(req);
  return {
    source: cloudEventSource(mode),
    noun: 'events',
    parse: async (body, _receivedAt, limits) => ({ events: await parseCloudEvents(mode, req.headers, body, limits) }),
    typeLabel: () => ANY_TYPE,
  };
};

/** Every POST path of the receiver and how it reads its requests. */
export const INTAKES: Readonly<Record<string, IntakeFor>> = {
  ...Object.fromEntries(Object.entries(ALERT_PATHS).map(([path, format]) => [path, alertIntake(format)])),
  [EVENTS_PATH]: cloudEventIntake,
};

/**
 * Every `source` and `type` pair of `hollowtrees_events_received_total`: each
 * alert path with the firing and the resolved family, the CloudEvents path in
 * each mode. A fixed set, so every series can exist at 0 from the start.
 */
export const RECEIVED_SERIES: ReadonlyArray<{ source: string; type: string }> = [
  ...Object.values(ALERT_PATHS).flatMap((source) => (['firing', 'resolved'] as const).map((status) => ({ source, type: alertTypeFamily(status) }))),
  ...CLOUDEVENT_MODES.map((mode) => ({ source: cloudEventSource(mode), type: ANY_TYPE })),
];
