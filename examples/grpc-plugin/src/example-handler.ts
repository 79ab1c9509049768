import { labelsOf, type CloudEvent, type EventHandler, type HandleContext, type HandleResult } from '@hollowtrees/grpcplugin';

/**
 * The smallest useful plugin: writes each event it gets as one JSON line and
 * returns an attribute, which core merges into the event for the next plugin.
 */
export class ExampleHandler implements EventHandler {
  constructor(private readonly write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)) {}

  handle(event: CloudEvent, context: HandleContext): HandleResult {
    const labels = labelsOf(event);
    this.write(JSON.stringify({ msg: 'event received', flow: context.flow, attempt: context.attempt, id: event.id, type: event.type, labels }));
    return {
      message: `saw ${labels.instance_id ?? event.id}`,
      attributes: { example_handled_at: new Date().toISOString() },
    };
  }
}
