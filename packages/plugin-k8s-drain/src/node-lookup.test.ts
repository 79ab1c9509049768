import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { rejectionOf } from '@hollowtrees/testkit';
import { describe, expect, it } from 'vitest';
import { describeNodeRef, findNode, instanceIdOf, nodeRefOf } from './node-lookup.js';
import { cleanupsAfterEach, retryWithin, startStandIn } from './test-support/kube.js';

const cleanups = cleanupsAfterEach();

const keys = { nodeLabel: 'node', instanceIdLabel: 'instance_id' };

describe('nodeRefOf', () => {
  it('takes the node label first, else the instance id label; keeps the instance id beside the name, as the node of that name may be another instance\'s', () => {
    expect(nodeRefOf({ node: 'n1', instance_id: 'i-0abc' }, keys)).toEqual({ name: 'n1', instanceId: 'i-0abc' });
    expect(nodeRefOf({ node: 'n1', instance_id: '' }, keys)).toEqual({ name: 'n1' });
    expect(nodeRefOf({ node: '', instance_id: 'i-0abc' }, keys)).toEqual({ instanceId: 'i-0abc' });
  });

  it('refuses labels with neither, naming the keys it looked for', () => {
    const err = (() => {
      try {
        nodeRefOf({ instance_id: '' }, { nodeLabel: 'kubernetes_node', instanceIdLabel: 'ec2_id' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(PluginError);
    expect([(err as PluginError).code, (err as PluginError).message]).toEqual([
      Code.InvalidArgument,
      'the event has neither a "kubernetes_node" nor an "ec2_id" label, so there is no node to drain',
    ]);
  });

  it('reads in messages as the node, or the node of the instance', () => {
    expect(describeNodeRef({ name: 'n1' })).toBe('node "n1"');
    expect(describeNodeRef({ instanceId: 'i-0abc' })).toBe('the node of instance i-0abc');
  });
});

describe('instanceIdOf', () => {
  it.each([
    ['aws:///eu-west-1a/i-0abc123', 'i-0abc123'],
    ['aws:///i-0abc123', 'i-0abc123'],
    ['aws:////i-0abc123', 'i-0abc123'],
    ['aws:///eu-west-1a/i-0abc123/extra', undefined],
    ['aws:///eu-west-1a/x/i-0abc123', undefined],
    ['xaws:///eu-west-1a/i-0abc123', undefined],
    ['aws:///eu-west-1a/i-0ABC123', undefined],
    ['aws:///eu-west-1a/i-', undefined],
    ['gce://project/zone/instance', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%s -> %s', (providerID, id) => {
    expect(instanceIdOf(providerID)).toBe(id);
  });
});

describe('findNode', () => {
  async function start() {
    const standIn = await startStandIn(cleanups);
    standIn.kube.cluster.addNode({ metadata: { name: 'n1' }, spec: { providerID: 'aws:///eu-west-1a/i-0aaa' } });
    standIn.kube.cluster.addNode({ metadata: { name: 'n2' }, spec: { providerID: 'aws:///eu-west-1b/i-0bbb' } });
    standIn.kube.cluster.addNode({ metadata: { name: 'n3' } });
    return standIn;
  }
  const retry = () => retryWithin(cleanups, 5_000);

  it('finds a node by name or by the instance in its provider id, and answers undefined for one the cluster lacks', async () => {
    const { api } = await start();
    expect((await findNode(api, { name: 'n2' }, retry()))?.metadata?.name).toBe('n2');
    expect((await findNode(api, { instanceId: 'i-0bbb' }, retry()))?.metadata?.name).toBe('n2');
    expect(await findNode(api, { name: 'gone' }, retry())).toBeUndefined();
    expect(await findNode(api, { instanceId: 'i-0zzz' }, retry())).toBeUndefined();
  });

  it('retries a failed read, and fails with what it was doing when the API server refuses for good', async () => {
    const { kube, api } = await start();
    kube.failNext(1, { method: 'GET', path: /^\/api\/v1\/nodes\/n1$/ });
    expect((await findNode(api, { name: 'n1' }, retry()))?.metadata?.name).toBe('n1');
    expect(kube.requests.filter((r) => r.path === '/api/v1/nodes/n1').map((r) => r.code)).toEqual([500, 200]);

    kube.failNext(1, { code: 403, method: 'GET', path: /^\/api\/v1\/nodes\/n1$/ });
    const byName = await rejectionOf(findNode(api, { name: 'n1' }, retry()), PluginError);
    expect(byName.code).toBe(Code.PermissionDenied);
    expect(byName.message).toMatch(/^looking up node "n1": /);

    kube.failNext(1, { code: 403, method: 'GET', path: /^\/api\/v1\/nodes$/ });
    const byInstance = await rejectionOf(findNode(api, { instanceId: 'i-0aaa' }, retry()), PluginError);
    expect(byInstance.code).toBe(Code.PermissionDenied);
    expect(byInstance.message).toMatch(/^looking up the node of instance i-0aaa: /);
  });
});
