import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startKubeApiServer, type KubeApiServer } from './server.js';

let api: KubeApiServer;
beforeEach(async () => {
  api = await startKubeApiServer();
});
afterEach(() => api.close());

const LEASES = '/apis/coordination.k8s.io/v1/namespaces/ops/leases';

async function call(method: string, path: string, body?: unknown): Promise<{ code: number; body: any }> {
  const res = await fetch(`${api.url}${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { code: res.status, body: await res.json() };
}

const lease = (name: string, holder: string, labels: Record<string, string> = {}): unknown => ({
  apiVersion: 'coordination.k8s.io/v1',
  kind: 'Lease',
  metadata: { name, labels },
  spec: { holderIdentity: holder, leaseDurationSeconds: 30 },
});

describe('kube-apiserver stand-in: Leases', () => {
  it('answers a dry-run create (?dryRun=All) as a create would, storing nothing', async () => {
    expect(await call('POST', `${LEASES}?dryRun=All`, lease('g-1', 'a'))).toMatchObject({ code: 201, body: { kind: 'Lease', metadata: { name: 'g-1', namespace: 'ops' } } });
    expect(api.cluster.leases.all()).toEqual([]);
    await call('POST', LEASES, lease('g-1', 'a'));
    expect((await call('POST', `${LEASES}?dryRun=All`, lease('g-1', 'b'))).body).toMatchObject({ code: 409, reason: 'AlreadyExists' });
  });

  it('creates a Lease with a resourceVersion, and answers a second create of the name 409 AlreadyExists', async () => {
    const first = await call('POST', LEASES, lease('g-1', 'a'));
    expect(first.code).toBe(201);
    expect(first.body).toMatchObject({ kind: 'Lease', metadata: { name: 'g-1', namespace: 'ops', resourceVersion: expect.stringMatching(/^\d+$/), uid: expect.any(String) }, spec: { holderIdentity: 'a' } });
    const second = await call('POST', LEASES, lease('g-1', 'b'));
    expect(second).toMatchObject({ code: 409, body: { kind: 'Status', reason: 'AlreadyExists', message: 'leases.coordination.k8s.io "g-1" already exists', details: { name: 'g-1', group: 'coordination.k8s.io', kind: 'leases' } } });
    expect((await call('GET', `${LEASES}/g-1`)).body.spec.holderIdentity).toBe('a');
  });

  it('updates only from the current resourceVersion: a stale one is 409 Conflict, and every write moves the version on', async () => {
    const created = (await call('POST', LEASES, lease('g-1', 'a'))).body;
    const renewed = await call('PUT', `${LEASES}/g-1`, { ...created, spec: { ...created.spec, renewTime: '2026-11-30T00:00:00.000000Z' } });
    expect(renewed.code).toBe(200);
    expect(Number(renewed.body.metadata.resourceVersion)).toBeGreaterThan(Number(created.metadata.resourceVersion));
    expect(renewed.body.metadata.uid).toBe(created.metadata.uid);
    const stale = await call('PUT', `${LEASES}/g-1`, { ...created, spec: { ...created.spec, holderIdentity: 'b' } });
    expect(stale).toMatchObject({ code: 409, body: { reason: 'Conflict', message: 'Operation cannot be fulfilled on leases.coordination.k8s.io "g-1": the object has been modified; please apply your changes to the latest version and try again' } });
    expect((await call('GET', `${LEASES}/g-1`)).body.spec.holderIdentity).toBe('a');
    expect((await call('PUT', `${LEASES}/g-2`, { ...created, metadata: { ...created.metadata, name: 'g-2' } })).code).toBe(409);
    expect((await call('PUT', `${LEASES}/g-1`, lease('other', 'a'))).code).toBe(400);
  });

  it('PUT as the API server does it for Leases: no resourceVersion is 422, and a missing Lease is created whatever resourceVersion the body names, unless it names a uid', async () => {
    const created = (await call('POST', LEASES, lease('g-1', 'a'))).body;
    const { resourceVersion: _version, ...withoutVersion } = created.metadata;
    // AllowUnconditionalUpdate is false for Leases.
    expect(await call('PUT', `${LEASES}/g-1`, { ...created, metadata: withoutVersion })).toMatchObject({
      code: 422,
      body: { reason: 'Invalid', message: 'leases.coordination.k8s.io "g-1" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update' },
    });
    // AllowCreateOnUpdate is true: a stale resourceVersion does not stop the create of a Lease deleted meanwhile.
    expect((await call('DELETE', `${LEASES}/g-1`)).code).toBe(200);
    const { uid: _uid, ...withoutUid } = created.metadata;
    const recreated = await call('PUT', `${LEASES}/g-1`, { ...created, metadata: withoutUid });
    expect(recreated).toMatchObject({ code: 201, body: { metadata: { name: 'g-1', resourceVersion: expect.stringMatching(/^\d+$/) } } });
    expect(recreated.body.metadata.uid).not.toBe(created.metadata.uid);
    expect(recreated.body.metadata.resourceVersion).not.toBe(created.metadata.resourceVersion);
    // A uid in the body is a precondition, and a missing object fails it.
    expect(await call('PUT', `${LEASES}/g-2`, { ...created, metadata: { ...created.metadata, name: 'g-2' } })).toMatchObject({ code: 409, body: { reason: 'Conflict', message: expect.stringContaining(`Precondition failed: UID in precondition: ${created.metadata.uid}`) } });
  });

  it('deletes only when the preconditions hold, and answers a missing Lease 404', async () => {
    const created = (await call('POST', LEASES, lease('g-1', 'a'))).body;
    const renewed = (await call('PUT', `${LEASES}/g-1`, created)).body;
    const stale = await call('DELETE', `${LEASES}/g-1`, { preconditions: { resourceVersion: created.metadata.resourceVersion } });
    expect(stale).toMatchObject({ code: 409, body: { reason: 'Conflict', message: expect.stringContaining(`Precondition failed: ResourceVersion in precondition: ${created.metadata.resourceVersion}`) } });
    expect((await call('DELETE', `${LEASES}/g-1`, { preconditions: { uid: 'someone-else' } })).code).toBe(409);
    const gone = await call('DELETE', `${LEASES}/g-1`, { preconditions: { uid: created.metadata.uid, resourceVersion: renewed.metadata.resourceVersion } });
    expect(gone).toMatchObject({ code: 200, body: { kind: 'Status', status: 'Success', details: { name: 'g-1', uid: created.metadata.uid } } });
    expect((await call('GET', `${LEASES}/g-1`)).code).toBe(404);
    expect((await call('DELETE', `${LEASES}/g-1`)).code).toBe(404);
    // A name taken again after a delete is a new object.
    expect((await call('POST', LEASES, lease('g-1', 'b'))).body.metadata.uid).not.toBe(created.metadata.uid);
  });

  it('lists one namespace by label selector, in pages', async () => {
    for (const [name, owner] of [['g-1', 'hollowtrees'], ['g-2', 'hollowtrees'], ['g-3', 'other']] as const) await call('POST', LEASES, lease(name, 'a', { 'app.kubernetes.io/managed-by': owner }));
    await call('POST', '/apis/coordination.k8s.io/v1/namespaces/elsewhere/leases', lease('g-4', 'a', { 'app.kubernetes.io/managed-by': 'hollowtrees' }));
    const mine = await call('GET', `${LEASES}?labelSelector=${encodeURIComponent('app.kubernetes.io/managed-by=hollowtrees')}`);
    expect(mine.body.kind).toBe('LeaseList');
    expect(mine.body.items.map((l: any) => l.metadata.name)).toEqual(['g-1', 'g-2']);
    const page = await call('GET', `${LEASES}?limit=2`);
    expect(page.body.items).toHaveLength(2);
    const rest = await call('GET', `${LEASES}?limit=2&continue=${page.body.metadata.continue}`);
    expect(rest.body.items.map((l: any) => l.metadata.name)).toEqual(['g-3']);
    expect((await call('GET', '/apis/coordination.k8s.io/v1/leases')).body.items).toHaveLength(4);
  });

  it('refuses names that are not DNS subdomains, and a body for another namespace', async () => {
    expect(await call('POST', LEASES, lease('Not_A_Name', 'a'))).toMatchObject({ code: 422, body: { reason: 'Invalid' } });
    expect((await call('POST', LEASES, { metadata: { name: 'x', namespace: 'default' } })).code).toBe(400);
    expect((await call('POST', LEASES, [])).code).toBe(400);
    // Annotations over 256 KiB in all, as the API server counts them.
    const annotated = (bytes: number) => ({ metadata: { name: 'big', annotations: { a: 'x'.repeat(bytes - 1) } } });
    expect(await call('POST', LEASES, annotated(256 * 1024 + 1))).toMatchObject({ code: 422, body: { reason: 'Invalid', message: 'Lease "big" is invalid: metadata.annotations: Too long: must have at most 262144 bytes' } });
    expect((await call('POST', LEASES, annotated(256 * 1024))).code).toBe(201);
    // Date#toISOString() has three fractional digits; MicroTime needs six.
    expect(await call('POST', LEASES, { metadata: { name: 'x' }, spec: { renewTime: '2026-11-30T00:00:00.000Z' } })).toMatchObject({ code: 400, body: { message: expect.stringContaining('spec.renewTime is not a MicroTime') } });
    expect((await call('POST', LEASES, { metadata: { name: 'x' }, spec: { renewTime: '2026-11-30T00:00:00.000000Z' } })).code).toBe(201);
  });

  it('while unreachable, resets every request unanswered, then serves again', async () => {
    api.unreachable = true;
    await expect(fetch(`${api.url}${LEASES}`)).rejects.toThrow();
    api.unreachable = false;
    expect((await call('GET', LEASES)).code).toBe(200);
  });
});
