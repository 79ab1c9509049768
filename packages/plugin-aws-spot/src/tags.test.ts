import { describe, expect, it } from 'vitest';
import { infoOf } from './instance-lookup.js';
import { parseTagFilter } from './pool-settings.js';
import { REPLACES_TAG, replacementTags } from './tags.js';

describe('replacementTags', () => {
  it('copies the user tags, never AWS-reserved ones nor an earlier replaces tag, and names the instance replaced', () => {
    const tags = { team: 'infra', 'aws:autoscaling:groupName': 'workers', 'AWS:Other': 'x', [REPLACES_TAG]: 'i-0older' };
    const instance = infoOf({ InstanceId: 'i-0new', InstanceType: 'm5.large', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }, undefined);
    expect(replacementTags(instance)).toEqual({
      tags: [
        { Key: 'team', Value: 'infra' },
        { Key: REPLACES_TAG, Value: 'i-0new' },
      ],
      leftOut: [],
    });
  });

  it('fits under EC2’s 50 tags a resource: of 50 user tags the last plain key is left out, namespaced ones kept, in key order with the replaces tag last', () => {
    const tags = { ...Object.fromEntries(Array.from({ length: 48 }, (_, i) => [`t${String(i).padStart(2, '0')}`, 'x'])), 'eks:cluster-name': 'prod', 'kubernetes.io/cluster/prod': 'owned' };
    const instance = infoOf({ InstanceId: 'i-0new', InstanceType: 'm5.large', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }, undefined);
    const { tags: given, leftOut } = replacementTags(instance);
    expect(leftOut).toEqual(['t47']);
    expect(given).toHaveLength(50);
    expect(given.map((t) => t.Key)).toEqual([...given.slice(0, -1).map((t) => t.Key).sort(), REPLACES_TAG]);
    expect(given.map((t) => t.Key)).toEqual(expect.arrayContaining(['eks:cluster-name', 'kubernetes.io/cluster/prod']));
  });
});

describe('parseTagFilter', () => {
  it('takes key=value, the value may hold more = signs, and refuses a missing or empty key', () => {
    expect(parseTagFilter('cluster=prod')).toEqual({ key: 'cluster', value: 'prod' });
    expect(parseTagFilter('k=a=b')).toEqual({ key: 'k', value: 'a=b' });
    expect(parseTagFilter('k=')).toEqual({ key: 'k', value: '' });
    for (const text of ['=prod', 'cluster']) expect(() => parseTagFilter(text)).toThrow('must be key=value');
  });
});
