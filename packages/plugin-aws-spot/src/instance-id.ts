import { Code, labelsOf, PluginError, type CloudEvent } from '@hollowtrees/grpcplugin';

const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;

/** The event's `labels.instance_id`, checked; INVALID_ARGUMENT when it is missing or not an EC2 instance id. */
export function instanceIdOf(event: CloudEvent): string {
  const instanceId = labelsOf(event).instance_id;
  if (instanceId === undefined || instanceId === '') {
    throw new PluginError(Code.InvalidArgument, `event ${event.id} (${event.type}) has no labels.instance_id: the AWS spot plugin needs the EC2 instance id`);
  }
  if (!INSTANCE_ID.test(instanceId)) {
    throw new PluginError(Code.InvalidArgument, `event ${event.id}: labels.instance_id "${instanceId}" is not an EC2 instance id (i-...)`);
  }
  return instanceId;
}
