import { Code, labelsOf, PluginError, type CloudEvent, type EventHandler, type HandleContext, type HandleResult } from '@hollowtrees/grpcplugin';

/**
 * A plugin that tells people: posts `{text}` to the webhook URL the flow gives it (a Slack or Teams
 * incoming webhook), `plugins: [{plugin: notify, config: {url: https://hooks.slack.com/...}}]`.
 * It shows what a plugin must get right: which failures core should retry, and passing the
 * call's signal to its I/O so it stops at the deadline.
 */
export class WebhookHandler implements EventHandler {
  async handle(event: CloudEvent, { config, signal }: HandleContext): Promise<HandleResult> {
    // The flow's settings are wrong: calling again cannot help, so the run fails at once.
    if (!config.url) throw new PluginError(Code.FailedPrecondition, 'the flow gives this plugin no config.url');
    const labels = labelsOf(event);
    const text = `${event.type}: ${labels.instance_id ?? labels.node ?? event.id}`;
    let res: Response;
    try {
      res = await fetch(config.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }), signal });
    } catch (err) {
      // At the deadline (or core's cancel), fetch rejects with the signal's reason: a PluginError core understands.
      if (signal.aborted) throw signal.reason;
      // The webhook cannot be reached now: core retries.
      throw new PluginError(Code.Unavailable, `webhook unreachable: ${(err as Error).message}`, { cause: err });
    }
    await res.body?.cancel();
    // Throttled, or the service is down for now: core retries, with backoff.
    if (res.status === 429) throw new PluginError(Code.ResourceExhausted, 'webhook answered 429 Too Many Requests');
    if (res.status >= 500) throw new PluginError(Code.Unavailable, `webhook answered ${res.status}`);
    // A 4xx (a revoked webhook, a malformed URL): retrying cannot help, so the run fails and says why.
    if (!res.ok) throw new PluginError(Code.FailedPrecondition, `webhook answered ${res.status}`);
    return { message: `posted "${text}"` };
  }
}
