import { randomUUID } from 'node:crypto';
import { MetadataFaults, scheduleChange, standInBase, startMetadataServer, type MetadataStandInBase, type MetadataAnswer, type MetadataRequest, type ScheduleOptions } from './metadata-server.js';

/** The VM an Azure Instance Metadata Service stand-in describes (a subset of `/metadata/instance/compute`). */
export interface AzureVm {
  name: string;
  vmId: string;
  vmSize: string;
  location: string;
  /** Availability zone number, `""` outside zones. */
  zone: string;
}

/** The event types of Azure Scheduled Events. */
export type AzureEventType = 'Freeze' | 'Reboot' | 'Redeploy' | 'Preempt' | 'Terminate';

/** One scheduled event as `/metadata/scheduledevents` (api-version 2020-07-01) writes it. */
export interface AzureScheduledEvent {
  EventId: string;
  EventType: AzureEventType;
  ResourceType: 'VirtualMachine';
  /** VM names the event applies to. */
  Resources: string[];
  EventStatus: 'Scheduled' | 'Started';
  /** RFC 1123 time, or `""` once started. */
  NotBefore: string;
  Description: string;
  EventSource: 'Platform' | 'User';
  DurationInSeconds: number;
}

/** Options of {@link startAzureMetadataStandIn}. */
export interface AzureMetadataStandInOptions {
  vm?: Partial<AzureVm>;
}

/** A running Azure Instance Metadata Service stand-in (compute and Scheduled Events); its `url` is the base that `/metadata/...` is under. */
export interface AzureMetadataStandIn extends MetadataStandInBase {
  readonly vm: AzureVm;
  /** The document's `DocumentIncarnation`: it grows by one at every change of the events. */
  readonly incarnation: number;
  /** Adds a scheduled event (defaults: `Preempt` of this VM, 30 s from now); returns its `EventId`. */
  scheduleEvent(event?: Partial<AzureScheduledEvent>, options?: ScheduleOptions): string;
  /** Ends (or cancels) an event: it leaves the document, as Azure drops an event once it is over. */
  endEvent(eventId: string): void;
  /** Event ids approved with `StartRequests`, in order. */
  readonly started: readonly string[];
  /** From now on answers `GET /metadata/scheduledevents` 200 with `body` as it is (a broken IMDS or proxy). */
  answerRaw(body: string): void;
}

const EVENTS_PATH = '/metadata/scheduledevents';
const COMPUTE_PATH = '/metadata/instance/compute';
const badRequest = (error: string): MetadataAnswer => ({ status: 400, body: JSON.stringify({ error }), headers: { 'content-type': 'application/json' } });
const json = (body: unknown): MetadataAnswer => ({ status: 200, body: JSON.stringify(body), headers: { 'content-type': 'application/json; charset=utf-8' } });

/**
 * Starts an Azure IMDS stand-in, faithful where the watcher depends on it: every request needs the
 * header `Metadata: true` and an `api-version` (else 400 with an `error` message) and is refused
 * when it carries `X-Forwarded-For`; `GET /metadata/scheduledevents` answers
 * `{DocumentIncarnation, Events}`, the incarnation growing at every change; `POST` with
 * `{"StartRequests":[{"EventId"}]}` starts those events (they leave the document), or answers 400 when one
 * of them is `Started` already.
 */
export async function startAzureMetadataStandIn(options: AzureMetadataStandInOptions = {}): Promise<AzureMetadataStandIn> {
  const vm: AzureVm = { name: 'aks-spot-12345678-vmss000001', vmId: '02aab8a4-74ef-476e-8182-f6d2ba4166a6', vmSize: 'Standard_D4s_v5', location: 'westeurope', zone: '2', ...options.vm };
  const events: AzureScheduledEvent[] = [];
  const started: string[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const faults = new MetadataFaults();
  let incarnation = 1;
  let raw: string | undefined;

  const approve = (req: MetadataRequest): MetadataAnswer => {
    let ids: string[];
    try {
      const body = JSON.parse(req.body) as { StartRequests?: Array<{ EventId?: unknown }> };
      ids = (body.StartRequests ?? []).map((r) => r.EventId).filter((id): id is string => typeof id === 'string');
    } catch {
      return badRequest('Bad request. The request body is not valid JSON.');
    }
    // A started event can no longer be approved: the whole request is refused, as nothing in it is done.
    const begun = ids.find((id) => events.some((e) => e.EventId === id && e.EventStatus !== 'Scheduled'));
    if (begun !== undefined) return badRequest(`Bad request. Event ${begun} has started and cannot be approved.`);
    for (const id of ids) {
      const at = events.findIndex((e) => e.EventId === id);
      if (at < 0) continue;
      events.splice(at, 1);
      started.push(id);
      incarnation++;
    }
    return { status: 200 };
  };

  const server = await startMetadataServer((req) => {
    if (req.headers['x-forwarded-for'] !== undefined) return badRequest('Bad request. X-Forwarded-For header is not allowed.');
    if (req.headers.metadata !== 'true') return badRequest('Bad request. Required metadata header not specified');
    if (!req.query.get('api-version')) return badRequest('Bad request. api-version was not specified in the request.');
    if (req.path === EVENTS_PATH) {
      if (req.method === 'POST') return approve(req);
      if (raw !== undefined) return { status: 200, body: raw, headers: { 'content-type': 'application/json; charset=utf-8' } };
      return json({ DocumentIncarnation: incarnation, Events: events });
    }
    if (req.path === COMPUTE_PATH && req.method === 'GET') return json({ ...vm, osType: 'Linux', priority: 'Spot' });
    return badRequest('Bad request. The requested path is not supported.');
  }, faults);

  return {
    ...standInBase(server, faults, timers),
    vm,
    get incarnation() {
      return incarnation;
    },
    scheduleEvent(event = {}, o) {
      const full: AzureScheduledEvent = {
        EventId: randomUUID().toUpperCase(),
        EventType: 'Preempt',
        ResourceType: 'VirtualMachine',
        Resources: [vm.name],
        EventStatus: 'Scheduled',
        NotBefore: new Date(Date.now() + 30_000).toUTCString(),
        Description: 'Virtual machine is being preempted.',
        EventSource: 'Platform',
        DurationInSeconds: -1,
        ...event,
      };
      scheduleChange(timers, o?.inMs, () => {
        events.push(full);
        incarnation++;
      });
      return full.EventId;
    },
    endEvent(eventId) {
      const at = events.findIndex((e) => e.EventId === eventId);
      if (at < 0) return;
      events.splice(at, 1);
      incarnation++;
    },
    get started() {
      return started;
    },
    answerRaw: (body) => void (raw = body),
  };
}
