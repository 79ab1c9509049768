import type { CloudName, InstanceIdentity, Notice } from './notice.js';

/** Every watcher event's type is `hollowtrees.node.<cloud>.<kind>`, so a flow takes all of them with `hollowtrees.node.*.*`. */
export const NODE_EVENT_TYPE_PREFIX = 'hollowtrees.node';

/** A watcher event in the CloudEvents 1.0 JSON format, as POSTed to core. */
export interface NodeEvent {
  readonly specversion: '1.0';
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly time: string;
  readonly datacontenttype: 'application/json';
  readonly data: { readonly labels: Readonly<Record<string, string>>; readonly notice: unknown };
}

/** What {@link noticeEvent} builds an event from. */
export interface NoticeEventInput {
  cloud: CloudName;
  identity: InstanceIdentity;
  /** The Kubernetes node (`NODE_NAME` from the downward API), when the watcher knows it. */
  nodeName: string | undefined;
  notice: Notice;
  /** When the watcher first saw the notice: the event's `time`, the same at every re-send. */
  seenAt: number;
}

/**
 * The CloudEvent for one notice: `labels` say what it is about (`instance_id`, `node`,
 * `instance_type`, `availability_zone`, `region`, `termination_time`, `cloud`, plus the kind's
 * own), `notice` carries what the metadata service wrote. Empty values are left out: a label
 * that is there always means something.
 */
export function noticeEvent(input: NoticeEventInput): NodeEvent {
  const { cloud, identity, nodeName, notice } = input;
  const labels = Object.fromEntries(
    Object.entries({
      cloud,
      instance_id: identity.instanceId,
      node: nodeName,
      instance_type: identity.instanceType,
      availability_zone: identity.availabilityZone,
      region: identity.region,
      termination_time: notice.terminationTime,
      ...identity.extraLabels,
      ...notice.labels,
    }).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== ''),
  );
  return {
    specversion: '1.0',
    id: notice.id,
    source: `//hollowtrees-node-watcher/${cloud}/${identity.instanceId}`,
    type: `${NODE_EVENT_TYPE_PREFIX}.${cloud}.${notice.kind}`,
    time: new Date(input.seenAt).toISOString(),
    datacontenttype: 'application/json',
    data: { labels, notice: notice.detail },
  };
}
