import type { Backoff, Clock } from '@hollowtrees/grpcplugin';
import { jsonBody, metadataRequest, MetadataError, okBody } from './metadata-request.js';
import type { Monitor, MonitorSink } from './monitor.js';
import { rfc3339, type InstanceIdentity, type Notice } from './notice.js';
import { watchByPolling } from './poll-loop.js';

/** The Azure Instance Metadata Service address every VM reaches. */
export const AZURE_METADATA_URL = 'http://169.254.169.254';

/** The Scheduled Events event types. */
export const AZURE_EVENT_TYPES = ['Preempt', 'Terminate', 'Reboot', 'Redeploy', 'Freeze'] as const;
/** One of {@link AZURE_EVENT_TYPES}. */
export type AzureEventType = (typeof AZURE_EVENT_TYPES)[number];
/** The event types acted on unless `--azure-event-types` says otherwise: the ones that end the VM. */
export const DEFAULT_AZURE_EVENT_TYPES: readonly AzureEventType[] = ['Preempt', 'Terminate'];

const EVENTS_API = '/metadata/scheduledevents?api-version=2020-07-01';
const COMPUTE_API = '/metadata/instance/compute?api-version=2021-02-01&format=json';

/** Options of {@link AzureScheduledEventsMonitor}. */
export interface AzureScheduledEventsOptions {
  /** Default {@link AZURE_METADATA_URL}. */
  baseUrl?: string;
  /** Default {@link DEFAULT_AZURE_EVENT_TYPES}. */
  eventTypes?: readonly AzureEventType[];
  /** Azure asks for once a second. */
  pollIntervalMs: number;
  backoff: Backoff;
  clock: Clock;
}

interface ScheduledEvent {
  EventId?: string;
  EventType?: string;
  /** `Scheduled` until Azure starts it, then `Started`: only a scheduled event can be approved. */
  EventStatus?: string;
  Resources?: string[];
  NotBefore?: string;
}

/**
 * The id of the notice of Azure event `eventId` on VM `vmId`. Azure lists one event for every VM it
 * affects (an availability set's host update, a scale set's eviction), under one `EventId`: each
 * VM's notice needs its own id, or core would take the second VM's for a re-send of the first's.
 */
export const azureNoticeId = (eventId: string, vmId: string): string => `${eventId}:${vmId}`;

/** The Azure `EventId` of a notice id {@link azureNoticeId} made (Azure's ids are GUIDs: no colon). */
const azureEventIdOf = (noticeId: string): string => noticeId.slice(0, noticeId.indexOf(':'));

/**
 * Whether an event's `Resources` name the VM `vmName` (the compute API's `name`). Azure resource
 * names are case-insensitive, and Azure does not keep the case they were created with everywhere:
 * one written in another case is the same VM. A list, not a string: a string's includes would
 * match a VM whose name is part of another's; an entry that is no string names no VM.
 */
function namesVm(resources: unknown, vmName: string): boolean {
  const name = vmName.toLowerCase();
  return Array.isArray(resources) && resources.some((r) => typeof r === 'string' && r.toLowerCase() === name);
}

/** What {@link AzureScheduledEventsMonitor.approve} did. */
export type AzureApproval =
  /** `StartRequests` sent: Azure goes ahead now. */
  | 'approved'
  /** Not sent: the event names other VMs too, and an approval lets it go ahead for all of them. */
  | 'shared'
  /** Not sent: Azure no longer lists the event (it ended, or was cancelled). */
  | 'gone'
  /** Not sent: Azure has started the event (`EventStatus` is no longer `Scheduled`), which it refuses to approve. */
  | 'started';

/** Azure: polls Scheduled Events and acts on the events of the types asked for whose `Resources` name this VM. */
export class AzureScheduledEventsMonitor implements Monitor {
  readonly cloud = 'azure';

  constructor(private readonly options: AzureScheduledEventsOptions) {}

  private get baseUrl(): string {
    return this.options.baseUrl ?? AZURE_METADATA_URL;
  }

  async identity(signal: AbortSignal): Promise<InstanceIdentity> {
    const url = `${this.baseUrl}${COMPUTE_API}`;
    const compute = jsonBody<{ vmId?: string; name?: string; vmSize?: string; location?: string; zone?: string }>(url, okBody(url, await metadataRequest(url, { headers: { metadata: 'true' }, signal })), 'object');
    if (!compute.vmId || !compute.name) throw new MetadataError(`GET ${url}: no vmId or name in the answer`);
    const region = compute.location ?? '';
    // Azure numbers zones within a region; the label is written as AKS writes topology.kubernetes.io/zone.
    return { instanceId: compute.vmId, instanceType: compute.vmSize ?? '', availabilityZone: compute.zone ? `${region}-${compute.zone}` : '', region, extraLabels: { vm_name: compute.name } };
  }

  /**
   * The scheduled events Azure lists. An entry that is no object (a broken IMDS or proxy) is left
   * out, so it cannot hide the events beside it; an `Events` that is no list fails, naming the URL,
   * and so does an answer with neither `Events` nor `DocumentIncarnation` (a proxy's `{}`): taken
   * for an empty list, it would end the notices that stand, and send them again when they are listed.
   */
  private async events(signal: AbortSignal): Promise<ScheduledEvent[]> {
    const url = `${this.baseUrl}${EVENTS_API}`;
    const doc = jsonBody<{ Events?: unknown; DocumentIncarnation?: unknown }>(url, okBody(url, await metadataRequest(url, { headers: { metadata: 'true' }, signal })), 'object');
    if (doc.Events === undefined && doc.DocumentIncarnation === undefined) throw new MetadataError(`GET ${url}: no Scheduled Events document (neither Events nor DocumentIncarnation): ${JSON.stringify(doc).slice(0, 200)}`);
    if (doc.Events === undefined) return [];
    if (!Array.isArray(doc.Events)) throw new MetadataError(`GET ${url}: expected Events to be a list, got ${JSON.stringify(doc.Events).slice(0, 200)}`);
    return (doc.Events as unknown[]).filter((e): e is ScheduledEvent => typeof e === 'object' && e !== null);
  }

  async check(identity: InstanceIdentity, signal: AbortSignal): Promise<Notice[]> {
    const types: readonly string[] = this.options.eventTypes ?? DEFAULT_AZURE_EVENT_TYPES;
    const vmName = identity.extraLabels?.vm_name;
    return (await this.events(signal))
      .filter((e) => e.EventId && e.EventType && types.includes(e.EventType) && vmName !== undefined && namesVm(e.Resources, vmName))
      .map((e) => {
        const at = rfc3339(e.NotBefore);
        return { kind: e.EventType!.toLowerCase(), id: azureNoticeId(e.EventId!, identity.instanceId), ...(at !== undefined && { terminationTime: at }), detail: e };
      });
  }

  /**
   * Approves the event of a notice (`StartRequests`), so Azure goes ahead without waiting for
   * `NotBefore`; but only an event of this VM alone (Azure lets an approved event go ahead for
   * every VM it names, whose drains may still be running) and not yet started.
   */
  async approve(noticeId: string, signal: AbortSignal): Promise<AzureApproval> {
    const eventId = azureEventIdOf(noticeId);
    const url = `${this.baseUrl}${EVENTS_API}`;
    const event = (await this.events(signal)).find((e) => e.EventId === eventId);
    if (!event) return 'gone';
    // Absent only from an older API version's answer, whose events are all approvable.
    if ((event.EventStatus ?? 'Scheduled') !== 'Scheduled') return 'started';
    if ((event.Resources?.length ?? 0) > 1) return 'shared';
    const res = await metadataRequest(url, { method: 'POST', headers: { metadata: 'true', 'content-type': 'application/json' }, body: JSON.stringify({ StartRequests: [{ EventId: eventId }] }), signal });
    okBody(url, res);
    return 'approved';
  }

  watch(identity: InstanceIdentity, sink: MonitorSink, signal: AbortSignal): Promise<void> {
    const { pollIntervalMs: intervalMs, backoff, clock } = this.options;
    return watchByPolling({ part: 'scheduledevents', check: (s) => this.check(identity, s), sink, intervalMs, backoff, clock, signal });
  }
}
