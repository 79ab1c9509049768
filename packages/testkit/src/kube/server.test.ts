import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startKubeApiServer, type KubeApiServer } from './server.js';

let api: KubeApiServer;
beforeEach(async () => {
  api = await startKubeApiServer({ msPerGraceSecond: 1 });
  api.cluster.addNode({ metadata: { name: 'n1' }, spec: { providerID: 'aws:///eu-west-1a/i-1' } });
  api.cluster.addNode({ metadata: { name: 'n2' } });
});
afterEach(() => api.close());

async function call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ code: number; body: any }> {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: { 'content-type': contentType },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { code: res.status, body: await res.json() };
}

interface Watching {
  /** Resolves with every event so far once `done` holds for them (fails after 5 s). */
  until(done: (events: any[]) => boolean): Promise<any[]>;
  close(): void;
}

/** Opens a watch and collects its JSON lines. */
async function openWatch(path: string): Promise<Watching> {
  const controller = new AbortController();
  const res = await fetch(`${api.url}${path}`, { signal: controller.signal });
  expect(res.status).toBe(200);
  const events: any[] = [];
  let partial = '';
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of res.body!) {
      const lines = (partial + decoder.decode(chunk as Uint8Array, { stream: true })).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line) events.push(JSON.parse(line));
    }
  })().catch(() => undefined);
  return {
    async until(done) {
      await expect.poll(() => done(events), { timeout: 5_000, interval: 5 }).toBe(true);
      return events;
    },
    close() {
      controller.abort();
      void reading;
    },
  };
}

const eviction = (name: string): unknown => ({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: 'default' } });

describe('kube-apiserver stand-in', () => {
  it('answers a missing node with a 404 Status like the API server', async () => {
    expect(await call('GET', '/api/v1/nodes/nope')).toEqual({
      code: 404,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'nodes "nope" not found',
        reason: 'NotFound',
        details: { name: 'nope', kind: 'nodes' },
        code: 404,
      },
    });
    expect((await call('GET', '/api/v1/widgets')).body).toMatchObject({ code: 404, reason: 'NotFound', message: 'the server could not find the requested resource' });
    expect((await call('PUT', '/api/v1/nodes/n1', {})).body).toMatchObject({ code: 405, reason: 'MethodNotAllowed' });
  });

  it('applies a merge patch and answers a stale resourceVersion with 409 Conflict', async () => {
    const { body: node } = await call('GET', '/api/v1/nodes/n1');
    const patched = await call(
      'PATCH',
      '/api/v1/nodes/n1',
      { metadata: { resourceVersion: node.metadata.resourceVersion }, spec: { unschedulable: true } },
      'application/merge-patch+json',
    );
    expect(patched.code).toBe(200);
    expect(patched.body.spec).toEqual({ providerID: 'aws:///eu-west-1a/i-1', unschedulable: true });
    const stale = await call('PATCH', '/api/v1/nodes/n1', { metadata: { resourceVersion: node.metadata.resourceVersion } }, 'application/merge-patch+json');
    expect(stale).toEqual({
      code: 409,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message:
          'Operation cannot be fulfilled on nodes "n1": the object has been modified; please apply your changes to the latest version and try again',
        reason: 'Conflict',
        details: { name: 'n1', kind: 'nodes' },
        code: 409,
      },
    });
    const json = await call('PATCH', '/api/v1/nodes/n1', [{ op: 'remove', path: '/spec/unschedulable' }], 'application/json-patch+json');
    expect(json.body.spec.unschedulable).toBeUndefined();
    expect((await call('PATCH', '/api/v1/nodes/n1', {}, 'application/apply-patch+yaml')).code).toBe(415);
  });

  it('lists pods by spec.nodeName, page by page', async () => {
    for (const i of [1, 2, 3]) api.cluster.addPod({ metadata: { name: `p${i}` }, spec: { nodeName: 'n1' } });
    api.cluster.addPod({ metadata: { name: 'other' }, spec: { nodeName: 'n2' } });
    const first = await call('GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&limit=2');
    expect(first.body.items.map((p: any) => p.metadata.name)).toEqual(['p1', 'p2']);
    const rest = await call('GET', `/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&limit=2&continue=${first.body.metadata.continue}`);
    expect(rest.body.items.map((p: any) => p.metadata.name)).toEqual(['p3']);
    expect(rest.body.metadata.continue).toBeUndefined();
    expect((await call('GET', '/api/v1/pods?fieldSelector=spec.hostname%3Dx')).body).toMatchObject({ code: 400, reason: 'BadRequest' });
  });

  it('answers a later page of a list 410 Expired on demand (a continue token etcd compacted), or hands its page out again with the token it was asked with', async () => {
    for (const i of [1, 2, 3]) api.cluster.addPod({ metadata: { name: `p${i}` }, spec: { nodeName: 'n1' } });
    api.failNext(1, { code: 410, query: /(^|&)continue=/ });
    const first = await call('GET', '/api/v1/pods?limit=2');
    expect(first.code).toBe(200);
    const token = first.body.metadata.continue;
    expect((await call('GET', `/api/v1/pods?limit=2&continue=${token}`)).body).toMatchObject({ code: 410, reason: 'Expired', message: expect.stringMatching(/^The provided continue parameter is too old/) });
    api.failNext(1, { effect: 'repeat-continue' });
    const again = await call('GET', `/api/v1/pods?limit=2&continue=${token}`);
    expect([again.body.items.map((p: any) => p.metadata.name), again.body.metadata.continue]).toEqual([['p3'], token]);
  });

  it('evicts within the budget, answers 429 past it, and removes the pod after its grace period', async () => {
    const owner = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs', controller: true };
    for (const i of [1, 2]) {
      api.cluster.addPod({
        metadata: { name: `web-${i}`, labels: { app: 'web' }, ownerReferences: [owner] },
        spec: { nodeName: 'n1', terminationGracePeriodSeconds: 200 },
      });
    }
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'web' }, spec: { selector: { matchLabels: { app: 'web' } }, maxUnavailable: 1 } });
    expect(await call('POST', '/api/v1/namespaces/default/pods/web-1/eviction', eviction('web-1'))).toEqual({
      code: 201,
      body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 },
    });
    expect(await call('POST', '/api/v1/namespaces/default/pods/web-2/eviction', eviction('web-2'))).toEqual({
      code: 429,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: "Cannot evict pod as it would violate the pod's disruption budget.",
        reason: 'TooManyRequests',
        details: { causes: [{ reason: 'DisruptionBudget', message: 'The disruption budget web needs 1 healthy pods and has 1 currently' }] },
        code: 429,
      },
    });
    expect(api.cluster.pods('n1').find((p) => p.metadata.name === 'web-1')?.metadata.deletionGracePeriodSeconds).toBe(200);
    await expect.poll(() => api.cluster.pods('n1').map((p) => p.metadata.name)).toEqual(['web-2']);
    // The ReplicaSet's replacement runs on n2, so the budget allows the next eviction.
    expect(api.cluster.pods('n2')).toHaveLength(1);
    expect((await call('POST', '/api/v1/namespaces/default/pods/web-2/eviction', eviction('web-2'))).code).toBe(201);
    expect(api.cluster.evictions().map((e) => e.code)).toEqual([201, 429, 201]);
    // Each removal recorded with its node, after the eviction that started it.
    const [removed] = api.cluster.removals();
    expect(removed).toMatchObject({ namespace: 'default', name: 'web-1', node: 'n1' });
    expect(removed!.atMs).toBeGreaterThan(api.cluster.evictions()[0]!.atMs);
    const missing = await call('POST', '/api/v1/namespaces/default/pods/gone/eviction', eviction('gone'));
    expect(missing.body).toMatchObject({ code: 404, message: 'pods "gone" not found', details: { name: 'gone', kind: 'pods' } });
    // A body of another kind, or for another namespace, is refused; one without apiVersion and kind is taken as an Eviction.
    const notEviction = await call('POST', '/api/v1/namespaces/default/pods/web-2/eviction', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-2' } });
    expect([notEviction.code, notEviction.body.message]).toEqual([400, 'Pod in version "v1" cannot be handled as a Eviction']);
    const otherNamespace = await call('POST', '/api/v1/namespaces/default/pods/web-2/eviction', { ...(eviction('web-2') as object), metadata: { name: 'web-2', namespace: 'apps' } });
    expect(otherNamespace.code).toBe(400);
    // Neither refusal got as far as an eviction: the earlier three and the 404 are all there is.
    expect(api.cluster.evictions().map((e) => e.code)).toEqual([201, 429, 201, 404]);
    expect((await call('POST', '/api/v1/namespaces/default/pods/gone/eviction', { metadata: { name: 'gone' } })).code).toBe(404);
  });

  it('refuses an eviction in a namespace being deleted 403 with the cause NamespaceTerminating in its reason, as NamespaceLifecycle admission does', async () => {
    api.cluster.addPod({ metadata: { name: 'web-0', namespace: 'preview' }, spec: { nodeName: 'n1' } });
    api.cluster.terminateNamespace('preview');
    const refused = await call('POST', '/api/v1/namespaces/preview/pods/web-0/eviction', { ...(eviction('web-0') as object), metadata: { name: 'web-0', namespace: 'preview' } });
    // Go's StatusCause.Type goes on the wire as `reason`: a client reading `type` finds nothing there.
    expect(refused).toMatchObject({
      code: 403,
      body: { reason: 'Forbidden', details: { causes: [{ reason: 'NamespaceTerminating', message: 'namespace preview is being terminated', field: 'metadata.namespace' }] } },
    });
    expect(refused.body.details.causes[0]).not.toHaveProperty('type');
  });

  it('evicts only the pod the uid precondition names: one recreated under its name since is refused 409, as the API server refuses its deletion', async () => {
    const first = api.cluster.addPod({ metadata: { name: 'db-0' }, spec: { nodeName: 'n1' } });
    api.cluster.deletePod('default', 'db-0', 0);
    const second = api.cluster.addPod({ metadata: { name: 'db-0' }, spec: { nodeName: 'n2' } });
    const withUid = (uid: string | undefined): unknown => ({ ...(eviction('db-0') as object), deleteOptions: { preconditions: { uid } } });
    const refused = await call('POST', '/api/v1/namespaces/default/pods/db-0/eviction', withUid(first.metadata.uid));
    expect(refused).toMatchObject({ code: 409, body: { reason: 'Conflict', message: `Operation cannot be fulfilled on Pod "db-0": the UID in the precondition (${first.metadata.uid}) does not match the UID in record (${second.metadata.uid}). The object might have been deleted and then recreated` } });
    expect(api.cluster.pods('n2')[0]?.metadata.deletionTimestamp).toBeUndefined();
    expect((await call('POST', '/api/v1/namespaces/default/pods/db-0/eviction', withUid(second.metadata.uid))).code).toBe(201);
    expect(api.cluster.evictions().map((e) => [e.code, e.node])).toEqual([[409, 'n2'], [201, 'n2']]);
  });

  it('cuts a terminating pod\'s grace period short when deleted again with a shorter one, and keeps it otherwise', async () => {
    api.cluster.addPod({ metadata: { name: 'web-1' }, spec: { nodeName: 'n1', terminationGracePeriodSeconds: 60_000 } });
    expect((await call('DELETE', '/api/v1/namespaces/default/pods/web-1')).body.metadata.deletionGracePeriodSeconds).toBe(60_000);
    expect((await call('DELETE', '/api/v1/namespaces/default/pods/web-1?gracePeriodSeconds=90000')).body.metadata.deletionGracePeriodSeconds).toBe(60_000);
    expect(api.cluster.pods('n1')).toHaveLength(1);
    await call('DELETE', '/api/v1/namespaces/default/pods/web-1?gracePeriodSeconds=0');
    expect(api.cluster.pods('n1')).toEqual([]);
    expect(api.cluster.removals().map((r) => r.name)).toEqual(['web-1']);
  });

  it('streams pod changes to a watch: the current pods first, then each change of an eviction, in resourceVersion order', async () => {
    const owner = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs', controller: true };
    api.cluster.addPod({ metadata: { name: 'web-1', ownerReferences: [owner] }, spec: { nodeName: 'n1', terminationGracePeriodSeconds: 5 } });
    api.cluster.addPod({ metadata: { name: 'other' }, spec: { nodeName: 'n2' } });
    const watch = await openWatch('/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dn1');
    await watch.until((events) => events.length === 1);
    expect((await call('POST', '/api/v1/namespaces/default/pods/web-1/eviction', eviction('web-1'))).code).toBe(201);
    const events = await watch.until((all) => all.some((e) => e.type === 'DELETED'));
    expect(events.map((e) => [e.type, e.object.metadata.name, e.object.metadata.deletionTimestamp !== undefined])).toEqual([
      ['ADDED', 'web-1', false],
      ['MODIFIED', 'web-1', true],
      ['DELETED', 'web-1', true],
    ]);
    const versions = events.map((e) => Number(e.object.metadata.resourceVersion));
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);
    // Its replacement went to n2, outside this watch's selector.
    expect(api.cluster.pods('n2')).toHaveLength(2);
    watch.close();
  });

  it('resumes a watch after a resourceVersion, and answers one older than its history with a 410 ERROR event', async () => {
    const list = await call('GET', '/api/v1/pods');
    api.cluster.addPod({ metadata: { name: 'late' }, spec: { nodeName: 'n1' } });
    const resumed = await openWatch(`/api/v1/namespaces/default/pods?watch=1&resourceVersion=${list.body.metadata.resourceVersion}`);
    expect((await resumed.until((e) => e.length === 1)).map((e) => [e.type, e.object.metadata.name])).toEqual([['ADDED', 'late']]);
    resumed.close();
    const tooOld = await openWatch('/api/v1/pods?watch=true&resourceVersion=1');
    expect(await tooOld.until((e) => e.length === 1)).toEqual([
      { type: 'ERROR', object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired', message: expect.stringMatching(/^too old resource version: 1 /) }) },
    ]);
    tooOld.close();
  });

  it('streams node changes to a node watch: the nodes first, then a patch', async () => {
    const watch = await openWatch('/api/v1/nodes?watch=true');
    await watch.until((events) => events.length === 2);
    const { body: node } = await call('GET', '/api/v1/nodes/n1');
    await call('PATCH', '/api/v1/nodes/n1', { metadata: { resourceVersion: node.metadata.resourceVersion }, spec: { unschedulable: true } }, 'application/merge-patch+json');
    const events = await watch.until((all) => all.length === 3);
    expect(events.map((e) => [e.type, e.object.metadata.name, e.object.spec.unschedulable ?? false])).toEqual([
      ['ADDED', 'n1', false],
      ['ADDED', 'n2', false],
      ['MODIFIED', 'n1', true],
    ]);
    watch.close();
  });

  it('scales percentage budgets of the expected pods, rounding up, as the disruption controller does', () => {
    for (let i = 0; i < 25; i++) api.cluster.addPod({ metadata: { name: `a-${i}`, labels: { app: 'a' } }, spec: { nodeName: 'n1' } });
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'max' }, spec: { selector: { matchLabels: { app: 'a' } }, maxUnavailable: '10%' } });
    // ceil(2.5) = 3 may be unavailable: 22 must stay healthy.
    expect(api.cluster.pdbStatus('default', 'max')).toEqual({ currentHealthy: 25, desiredHealthy: 22, disruptionsAllowed: 3, expectedPods: 25 });
    for (let i = 0; i < 25; i++) api.cluster.addPod({ metadata: { name: `b-${i}`, labels: { app: 'b' } }, spec: { nodeName: 'n1' } });
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'min' }, spec: { selector: { matchLabels: { app: 'b' } }, minAvailable: '90%' } });
    // ceil(22.5) = 23 must stay healthy.
    expect(api.cluster.pdbStatus('default', 'min')).toEqual({ currentHealthy: 25, desiredHealthy: 23, disruptionsAllowed: 2, expectedPods: 25 });
    expect(() => api.cluster.addPodDisruptionBudget({ metadata: { name: 'bad' }, spec: { selector: { matchLabels: { app: 'a' } }, minAvailable: 'ten' } })).toThrow(
      'PodDisruptionBudget minAvailable: "ten" is neither an integer nor a percentage',
    );
  });

  it('adds its latency to every request, settable while it runs', async () => {
    api.latency.set(40);
    const started = performance.now();
    expect((await call('GET', '/api/v1/nodes/n1')).code).toBe(200);
    // A timer never fires early; the margin is the clock's rounding.
    expect(performance.now() - started).toBeGreaterThanOrEqual(39);
    expect(api.requests.at(-1)!.at).toBeGreaterThanOrEqual(started + performance.timeOrigin + 39);
  });

  it('creates events and refuses a duplicate name with 409 AlreadyExists', async () => {
    const event = { metadata: { name: 'n1.1' }, involvedObject: { kind: 'Node', name: 'n1' }, reason: 'Test', type: 'Normal' };
    expect((await call('POST', '/api/v1/namespaces/default/events', event)).code).toBe(201);
    expect((await call('POST', '/api/v1/namespaces/default/events', event)).body).toMatchObject({ code: 409, reason: 'AlreadyExists' });
    expect(api.cluster.events().map((e) => e.reason)).toEqual(['Test']);
  });

  it('injects faults on the next N matching requests', async () => {
    api.failNext(2, { method: 'GET', path: /\/nodes/ });
    api.failNext(1, { code: 503 });
    expect((await call('GET', '/api/v1/nodes')).body).toMatchObject({ code: 500, reason: 'InternalError', status: 'Failure' });
    expect((await call('POST', '/api/v1/namespaces/default/events', {})).body).toMatchObject({ code: 503, reason: 'ServiceUnavailable' });
    expect((await call('GET', '/api/v1/nodes/n1')).code).toBe(500);
    expect((await call('GET', '/api/v1/nodes/n1')).code).toBe(200);
    expect(api.requests.map((r) => r.code)).toEqual([500, 503, 500, 200]);
  });

  it('counts the requests a fault has hit, a held one as soon as it arrives, and only those it matches', async () => {
    let release = (): void => {};
    const fault = api.failNext(1, { effect: 'delay', until: new Promise<void>((resolve) => (release = resolve)), method: 'GET', path: /\/nodes\/n1$/ });
    expect(fault.hits).toBe(0);
    expect((await call('GET', '/api/v1/nodes/n2')).code).toBe(200);
    expect(fault.hits).toBe(0);
    const slow = call('GET', '/api/v1/nodes/n1');
    await expect.poll(() => fault.hits, { timeout: 5_000 }).toBe(1);
    expect(api.requests.map((r) => r.path)).toEqual(['/api/v1/nodes/n2']);
    // Spent: the next matching request is served at once.
    expect((await call('GET', '/api/v1/nodes/n1')).code).toBe(200);
    expect(fault.hits).toBe(1);
    release();
    expect((await slow).code).toBe(200);
  });

  it('answers 429 with Retry-After, unserved, to a request past maxInFlight, as API Priority and Fairness does; watches do not count', async () => {
    const limited = await startKubeApiServer({ maxInFlight: 2 });
    limited.cluster.addNode({ metadata: { name: 'n1' } });
    let release = (): void => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const watch = new AbortController();
    try {
      const watching = await fetch(`${limited.url}/api/v1/nodes?watch=true`, { signal: watch.signal });
      expect(watching.status).toBe(200);
      limited.failNext(2, { effect: 'delay', until: held });
      const slow = [fetch(`${limited.url}/api/v1/nodes/n1`), fetch(`${limited.url}/api/v1/nodes/n1`)];
      await expect.poll(() => limited.inFlight, { timeout: 5_000 }).toBe(2);
      const refused = await fetch(`${limited.url}/api/v1/namespaces/default/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(await refused.json()).toMatchObject({ kind: 'Status', code: 429, reason: 'TooManyRequests', details: { retryAfterSeconds: 1 } });
      expect(limited.cluster.events()).toEqual([]);
      release();
      expect((await Promise.all(slow)).map((r) => r.status)).toEqual([200, 200]);
      expect((await fetch(`${limited.url}/api/v1/nodes/n1`)).status).toBe(200);
    } finally {
      watch.abort();
      await limited.close();
    }
  });

  it('requires the bearer token when one is set', async () => {
    const secured = await startKubeApiServer({ token: 's3cret' });
    try {
      expect((await fetch(`${secured.url}/api/v1/nodes`)).status).toBe(401);
      expect((await fetch(`${secured.url}/api/v1/nodes`, { headers: { authorization: 'Bearer s3cret' } })).status).toBe(200);
    } finally {
      await secured.close();
    }
  });
});
