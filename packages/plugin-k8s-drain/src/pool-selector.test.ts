import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { poolOfNode, poolOfSelector, poolOfZoneAndType } from './pool-selector.js';

const refusal = (fn: () => unknown): PluginError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof PluginError) return err;
    throw err;
  }
  throw new Error('expected a PluginError');
};

describe('pools', () => {
  it('a zone and type make a pool keyed and named zone/type, selected by the well-known node labels, nodes labelled on-demand left out', () => {
    expect(poolOfZoneAndType('eu-west-1a', 'm5.large', 'event')).toEqual({
      key: 'eu-west-1a/m5.large',
      name: 'eu-west-1a/m5.large',
      selector: 'topology.kubernetes.io/zone=eu-west-1a,node.kubernetes.io/instance-type=m5.large,eks.amazonaws.com/capacityType!=ON_DEMAND,karpenter.sh/capacity-type!=on-demand',
    });
  });

  it('a selector is its own name, and its key cannot meet a zone/type key', () => {
    expect(poolOfSelector('pool=spot-a')).toEqual({ key: 'selector:pool=spot-a', name: 'pool=spot-a', selector: 'pool=spot-a' });
  });

  it.each(['eu-west-1a,env=prod', ' m5.large', 'm5.large ', '-a', 'a-', 'x'.repeat(64), ''])('refuses %j as a zone or type: it is no label value, and would change the selector', (value) => {
    for (const [zone, type] of [[value, 'm5.large'], ['eu-west-1a', value]] as const) {
      const err = refusal(() => poolOfZoneAndType(zone, type, 'the event'));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.message).toBe(`the event: "${value}" is not a valid node label value, so it names no pool`);
    }
  });

  it.each(['a', 'm5.large', 'x'.repeat(63), 'A_b-c.9'])('takes %j as a label value', (value) => {
    expect(poolOfZoneAndType(value, value, 'e').key).toBe(`${value}/${value}`);
  });

  it("reads a node's pool from its labels, and says which label is missing", () => {
    const labels = { 'topology.kubernetes.io/zone': 'eu-west-1b', 'node.kubernetes.io/instance-type': 'c5.xlarge' };
    expect(poolOfNode({ metadata: { name: 'n1', labels } }).key).toBe('eu-west-1b/c5.xlarge');
    const noType = refusal(() => poolOfNode({ metadata: { name: 'n1', labels: { 'topology.kubernetes.io/zone': 'eu-west-1b' } } }));
    expect(noType.code).toBe(Code.FailedPrecondition);
    expect(noType.message).toBe('node "n1" has no node.kubernetes.io/instance-type label, so its pool is unknown (set a selector in the flow\'s plugin config)');
    const noZone = refusal(() => poolOfNode({ metadata: { name: 'n1', labels: { 'node.kubernetes.io/instance-type': 'c5.xlarge' } } }));
    expect(noZone.message).toBe('node "n1" has no topology.kubernetes.io/zone label, so its pool is unknown (set a selector in the flow\'s plugin config)');
    expect(refusal(() => poolOfNode({ metadata: {} })).message).toMatch(/^node "" has no topology\.kubernetes\.io\/zone label/);
    expect(refusal(() => poolOfNode({ metadata: { name: 'n2', labels: { ...labels, 'topology.kubernetes.io/zone': 'a,b' } } })).message).toBe('the labels of node "n2": "a,b" is not a valid node label value, so it names no pool');
  });
});
