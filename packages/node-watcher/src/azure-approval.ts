import type { PluginLogger } from '@hollowtrees/grpcplugin/without-grpc';
import type { AzureApproval } from './azure-scheduled-events.js';
import { LOOK_AGAIN, type LookAgain, type RunsEnd } from './run-follow.js';

const APPROVAL_LOG: Readonly<Record<AzureApproval, string>> = {
  approved: 'approved the Azure event after every flow run of it succeeded',
  shared: 'not approving the Azure event: it names other VMs too, which it would let go ahead; Azure waits for NotBefore',
  gone: 'not approving the Azure event: Azure no longer lists it',
  started: 'not approving the Azure event: Azure has started it already',
};

/** Options of {@link AzureApprover}. */
export interface AzureApprovalOptions {
  /** `StartRequests` for the event of one notice, when it may be sent. */
  approve(eventId: string, signal: AbortSignal): Promise<AzureApproval>;
  logger: PluginLogger;
}

/**
 * `--azure-approve`: once every flow run a delivered Azure event started succeeded (as a
 * {@link RunFollower} saw them end), approves the event (`StartRequests`), so Azure goes ahead at
 * once instead of at `NotBefore`: the node is drained, nothing is gained by waiting. A failed run is
 * not approved (a re-send's run that then succeeds is), nor an event that names other VMs too;
 * Azure then waits its full notice.
 */
export class AzureApprover {
  constructor(private readonly options: AzureApprovalOptions) {}

  /** Approves the event, or says why not, now that its runs ended (see {@link RunsEnd}). */
  async ended(eventId: string, end: RunsEnd, signal: AbortSignal): Promise<LookAgain | undefined> {
    const { logger } = this.options;
    switch (end.kind) {
      case 'succeeded': {
        try {
          const approval = await this.options.approve(eventId, signal);
          logger.info(APPROVAL_LOG[approval], { event_id: eventId, flows: end.flows });
        } catch (err) {
          if (signal.aborted) return undefined;
          logger.warn('cannot approve the Azure event yet; trying again', { event_id: eventId, error: (err as Error).message });
          return LOOK_AGAIN;
        }
        return undefined;
      }
      case 'failed':
        logger.warn('a flow run of the Azure event failed; not approving it, Azure waits its full notice', { event_id: eventId, runs: end.failed });
        return undefined;
      case 'unrun':
        logger.info('not approving the Azure event: no flow of core runs it (none takes it, or each was already running the event of another notice); Azure waits its full notice', { event_id: eventId });
        return undefined;
      case 'too_many_groups':
        logger.warn('not approving the Azure event: core holds too many groups to find the flows running it; Azure waits its full notice', { event_id: eventId });
        return undefined;
      case 'timed_out':
        // Said, or an on-call engineer could not tell a slow run from a watcher that never looked.
        logger.warn('not approving the Azure event: its flow runs did not all succeed in time; Azure goes ahead at NotBefore', { event_id: eventId, waited_ms: end.waitedMs });
        return undefined;
    }
  }
}
