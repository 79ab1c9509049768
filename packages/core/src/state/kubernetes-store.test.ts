import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { Code, PluginError, steadyClock, systemClock, type Clock, type PluginResponse } from '@hollowtrees/grpcplugin';
import { startKubeApiServer, type KubeApiServer } from '@hollowtrees/testkit';
import pino, { type Logger } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../config/load-config.js';
import { EngineMetrics } from '../flow/engine-metrics.js';
import { FlowEngine } from '../flow/flow-engine.js';
import type { RunProgress } from '../flow/group-states.js';
import type { ActionPlugin } from '../plugins/action-plugin.js';
import type { RunSettlement } from '../sources/event-sink.js';
import { KubernetesRunStateStore, CUT_SHORT_KEPT_MS } from './kubernetes-store.js';
import { RUN_END_KEPT_MS } from './run-end-leases.js';
import type { CutShortRun } from './run-state-store.js';
import { kubeLeaseApi, loadStoreKubeConfig } from './lease-api.js';
import { leaseName, MAX_EVENT_BYTES, type LeasePlace } from './lease-record.js';
import { StoreMetrics } from './store-metrics.js';
import { observeLeases } from '../../test/support/observe-leases.js';

const NAMESPACE = 'ops';
/** One RunProgress per id: a claim is asked for by the run `tryStart` started. */
const runs = new Map<string, RunProgress>();
const run = (id: string): RunProgress => {
  let progress = runs.get(id);
  if (!progress) runs.set(id, (progress = { event: { id, source: 's', specversion: '1.0', type: 't' } as CloudEvent, attributes: {}, receivedAt: Date.now(), next: 0, attempt: 1, restarts: 0 }));
  return progress;
};

let api: KubeApiServer;
let kubeconfig: string;
const stores: KubernetesRunStateStore[] = [];
beforeEach(async () => {
  runs.clear();
  api = await startKubeApiServer();
  kubeconfig = api.kubeConfigFileText();
});
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await api.close();
});

/** How far a replica's clocks moved since it started, beyond the time that passed: a pause (SIGSTOP, a long GC) moves both, an NTP step the wall clock alone. */
interface ClockShift {
  wallMs: number;
  monotonicMs: number;
}

/** A replica's store, and the time as it sees it. */
interface Replica {
  store: KubernetesRunStateStore;
  metrics: StoreMetrics;
  /**
   * Moves both its clocks on by `ms` at once, as that much time passing would: how a replica sees a Lease stay unchanged
   * for its duration (monotonic), and its cache of the others' runs (one renew interval, wall clock) run out, without the
   * test sleeping through it. Its timers (renew ticks) still run in real time.
   */
  wait(ms: number): void;
  /** Its wall clock's now, which the engine hands its store's calls. */
  now(): number;
}

/** How a replica's store is made beyond its clock; each has the default {@link storeOn} gives it. */
interface StoreSettings {
  leaseDurationMs?: number;
  renewIntervalMs?: number;
  leasePrefix?: string;
  logger?: Logger;
}

/** A store on the stand-in, with the real client, reading time from `clock` (and `elapsed`, when given, for its monotonic clock). */
function storeOn(identity: string, metrics: StoreMetrics, clock: Clock, more: StoreSettings & { elapsed?: () => number }): KubernetesRunStateStore {
  const leaseApi = kubeLeaseApi(loadStoreKubeConfig(kubeconfig), { namespace: NAMESPACE, timeoutMs: 2_000, maxInFlight: 32, metrics, clock });
  const store = new KubernetesRunStateStore({
    api: leaseApi,
    identity,
    leasePrefix: more.leasePrefix ?? 'hollowtrees-',
    leaseDurationMs: more.leaseDurationMs ?? 30_000,
    renewIntervalMs: more.renewIntervalMs ?? 10_000,
    maxGroups: 1_000,
    clock,
    ...(more.elapsed ? { elapsed: more.elapsed } : {}),
    logger: more.logger ?? pino({ level: 'silent' }),
  });
  stores.push(store);
  return store;
}

/** A replica's store on the stand-in, with the real client; `clockOffsetMs` sets its wall clock that far from the others'. */
function replica(identity: string, more: StoreSettings & { clockOffsetMs?: number; shift?: ClockShift } = {}): Replica {
  const metrics = new StoreMetrics(new Registry());
  const offset = more.clockOffsetMs ?? 0;
  const { shift } = more;
  let waited = 0;
  const clock: Clock = { now: () => Date.now() + (shift ? shift.wallMs : offset) + waited, sleep: systemClock.sleep };
  const elapsed = (): number => performance.now() + (shift?.monotonicMs ?? 0) + waited;
  const store = storeOn(identity, metrics, clock, { ...more, elapsed });
  return { store, metrics, wait: (ms) => (waited += ms), now: clock.now };
}

/** A replica's store as production runs it, on {@link steadyClock} (its own clock and timers: no {@link Replica.wait}). */
function steadyReplica(identity: string): KubernetesRunStateStore {
  return storeOn(identity, new StoreMetrics(new Registry()), steadyClock, { renewIntervalMs: 60_000 });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const LEASE_PATH = /\/leases\/[^/]+$/;
const LEASES_PATH = /\/leases$/;
/** A holder's renewTime, in ms since the epoch. */
const renewTimeOf = (): number => Date.parse(api.cluster.leases.all()[0]!.spec!.renewTime as unknown as string);

/** Lets `store` see every Lease as it is now (see {@link observeLeases}). */
const observe = (store: KubernetesRunStateStore): Promise<void> => observeLeases(api, store);

/**
 * Replica a claims group `g` with a 1 s Lease it renews only every `aRenewIntervalMs` (longer than
 * the Lease), so b, which has seen that Lease, takes the group over once it expired; then a's run
 * succeeds and its cooldown write meets b's Lease. Returns a and the hold-lost signal of its run.
 */
async function takenOverBeforeCooldown(aRenewIntervalMs: number): Promise<{ a: KubernetesRunStateStore; lost: AbortSignal }> {
  const a = replica('a', { leaseDurationMs: 1_000, renewIntervalMs: aRenewIntervalMs }).store;
  const { store: b, wait: waitB, now: nowB } = replica('b', { leaseDurationMs: 1_000, renewIntervalMs: 300 });
  a.tryStart('g', 'spot', run('e1'), Date.now());
  expect((await a.claim('g', run('e1'))).claim).toBe('held');
  const lost = a.holdLost('g')!;
  await observe(b);
  waitB(1_100);
  b.tryStart('g', 'spot', run('e2'), nowB());
  expect((await b.claim('g', run('e2'))).claim).toBe('held');
  a.succeeded('g', Date.now(), 60_000);
  await a.commit();
  return { a, lost };
}

/** `a` claims group g for e1 and hands it back after detach, as a shutdown does; returns the place it kept. */
async function handBackAfterDetach(a: KubernetesRunStateStore): Promise<LeasePlace> {
  a.tryStart('g', 'spot', run('e1'), Date.now());
  expect((await a.claim('g', run('e1'))).claim).toBe('held');
  const place = { next: 1, at: { plugin: 'terminate', occurrence: 0, passed: ['detach'] }, attributes: { detached: 'yes' }, attempt: 1, restarts: 0 };
  a.cutShort('g', { ...run('e1'), ...place });
  expect(await a.commit('g')).toBe(true);
  return place;
}

/** A logger at `level` and the lines it wrote, parsed. */
function capturedLog(level = 'info'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { logger: pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }), lines };
}

/** A plugin of the engine's own interface, called in-process: one try per call, `invoke` says what it does. */
const stubPlugin = (name: string, timeoutMs: number, invoke: ActionPlugin['invoke']): ActionPlugin => ({
  name,
  timeoutMs,
  retry: { attempts: 1, initialBackoff: 100, maxBackoff: 100, multiplier: 2 },
  invoke,
  close: () => {},
});

const leaseCalls = (): number => api.requests.filter((r) => r.path.includes('/leases')).length;

describe('KubernetesRunStateStore on the kube-apiserver stand-in', () => {
  it('two replicas start one group: one holds it, the other is told another replica has it', async () => {
    const a = replica('a').store;
    const b = replica('b').store;
    const now = Date.now();
    expect(a.tryStart('spot:i-1', 'spot', run('e1'), now)).toBe('started');
    expect(b.tryStart('spot:i-1', 'spot', run('e1'), now)).toBe('started');
    const claims = await Promise.all([a.claim('spot:i-1', run('e1')), b.claim('spot:i-1', run('e1'))]);
    expect(claims.map((c) => c.claim).sort()).toEqual(['held', 'taken']);
    // A run in progress there: how it ends is not known here (an SQS message is kept, not deleted as deduplicated).
    expect(claims.find((c) => c.claim === 'taken')).toEqual({ claim: 'taken', heldAs: 'running' });
    const [lease] = api.cluster.leases.all();
    expect(lease).toMatchObject({ metadata: { name: leaseName('hollowtrees-', 'spot:i-1'), namespace: NAMESPACE, annotations: { 'hollowtrees.io/group-key': 'spot:i-1', 'hollowtrees.io/phase': 'running' } } });
    expect(lease!.spec!.renewTime).toMatch(/\.\d{6}Z$/);
    const loser = claims[0]!.claim === 'taken' ? a : b;
    // The loser knows who holds it now, and holds nothing itself.
    expect(loser.holder('spot:i-1', Date.now())).toMatchObject({ phase: 'running', replica: claims[0]!.claim === 'taken' ? 'b' : 'a' });
    expect(await loser.commit()).toBe(true);
  });

  it('a cooldown is recorded in the Lease; other replicas then hold the group from their cache, with no further calls', async () => {
    const a = replica('a').store;
    const b = replica('b').store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    a.succeeded('g', Date.now(), 60_000);
    expect(await a.commit()).toBe(true);
    expect(api.cluster.leases.all()[0]!.metadata.annotations!['hollowtrees.io/phase']).toBe('cooling');
    b.tryStart('g', 'spot', run('e2'), Date.now());
    expect(await b.claim('g', run('e2'))).toEqual({ claim: 'taken', heldAs: 'cooling' });
    const calls = leaseCalls();
    for (let i = 0; i < 100; i++) expect(b.holder('g', Date.now())).toMatchObject({ phase: 'cooling', replica: 'a' });
    expect(b.tryStart('g', 'spot', run('e3'), Date.now())).toBe('held');
    expect(leaseCalls()).toBe(calls);
  });

  it('a failed run deletes its Lease, so the next event runs again on any replica', async () => {
    const a = replica('a').store;
    const b = replica('b').store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    await a.claim('g', run('e1'));
    a.release('g');
    await a.commit();
    expect(api.cluster.leases.all()).toEqual([]);
    b.tryStart('g', 'spot', run('e2'), Date.now());
    expect((await b.claim('g', run('e2'))).claim).toBe('held');
  });

  it('takes over a run whose holder stopped renewing once its Lease expired, and says whose run it cut short', async () => {
    const dead = replica('dead', { leaseDurationMs: 1_000, renewIntervalMs: 60_000 }).store;
    const { store: b, wait: waitB, now: nowB } = replica('b', { leaseDurationMs: 1_000, renewIntervalMs: 300 });
    dead.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await dead.claim('g', run('e1'))).claim).toBe('held');
    b.tryStart('g', 'spot', run('e2'), Date.now());
    expect((await b.claim('g', run('e2'))).claim).toBe('taken');
    waitB(1_100);
    b.tryStart('g', 'spot', run('e3'), nowB());
    expect(await b.claim('g', run('e3'))).toEqual({ claim: 'held', takenOver: { holder: 'dead', handedBack: false, eventId: 'e1', since: expect.any(Number) } });
    expect(api.cluster.leases.all()[0]!.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  it('writes a run\'s place into its Lease as it passes plugins; a replica that takes the Lease over is handed that place', async () => {
    const dead = replica('dead', { leaseDurationMs: 1_000, renewIntervalMs: 60_000 }).store;
    const { store: b, wait: waitB, now: nowB } = replica('b', { leaseDurationMs: 1_000, renewIntervalMs: 300 });
    dead.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await dead.claim('g', run('e1'))).claim).toBe('held');
    const place = { next: 1, at: { plugin: 'replace', occurrence: 0, passed: ['drain'] }, attributes: { node: 'n-1' }, attempt: 1, restarts: 0 };
    dead.progress('g', 'running', { ...run('e1'), ...place });
    expect(await dead.commit('g')).toBe(true);
    expect(JSON.parse(api.cluster.leases.all()[0]!.metadata.annotations!['hollowtrees.io/run-place']!)).toEqual(place);
    const writes = api.requests.filter((r) => r.method === 'PUT').length;
    // The same place again (a renewal's worth of nothing new) is not written again.
    dead.progress('g', 'running', { ...run('e1'), ...place });
    expect(await dead.commit('g')).toBe(true);
    expect(api.requests.filter((r) => r.method === 'PUT')).toHaveLength(writes);
    await observe(b);
    waitB(1_100);
    b.tryStart('g', 'spot', run('e1'), nowB());
    expect(await b.claim('g', run('e1'))).toEqual({ claim: 'held', takenOver: { holder: 'dead', handedBack: false, eventId: 'e1', since: expect.any(Number), place } });
  });

  it('a run cut short is handed back with its place: another replica takes its group over at once, and the sweep keeps that Lease an hour, then deletes it and says which run no replica went on with', async () => {
    const a = replica('a').store;
    const { logger, lines } = capturedLog();
    const b = replica('b', { logger }).store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    const retryAt = Date.now() + 60_000;
    const place = { next: 2, attributes: {}, attempt: 3, restarts: 1, waiting: true, retryAt };
    a.cutShort('g', { ...run('e1'), next: 2, attempt: 3, restarts: 1, retryAt });
    expect(await a.commit('g')).toBe(true);
    expect(a.holder('g', Date.now())).toBeUndefined();
    expect(api.cluster.leases.all()[0]!.spec!.holderIdentity).toBe('');
    // Within its 30 s leaseDuration, and without b having seen the Lease before.
    b.tryStart('g', 'spot', run('e1'), Date.now());
    expect(await b.claim('g', run('e1'))).toEqual({ claim: 'held', takenOver: { holder: '', handedBack: true, eventId: 'e1', since: expect.any(Number), place } });
    b.cutShort('g', { ...run('e1'), next: 2, attempt: 3, restarts: 1, retryAt });
    expect(await b.commit('g')).toBe(true);
    await observe(b);
    expect(api.cluster.leases.all()).toHaveLength(1);
    // An hour on, nothing took it: swept.
    b.sweep(Date.now() + CUT_SHORT_KEPT_MS + 1_000);
    await expect.poll(() => api.cluster.leases.all().length, { timeout: 5_000 }).toBe(0);
    // The run is given up: an on-call engineer must learn which, as the journal logs a run it does not resume.
    await expect.poll(() => lines.filter((l) => l['level'] === 50).map((l) => [l['groupKey'], l['flow'], l['eventId']]), { timeout: 5_000 }).toEqual([['g', 'spot', 'e1']]);
  });

  it('a run cut short is handed back with its event: the next list of another replica offers it to go on with, but never a garbled event, another event\'s or one too long to keep', async () => {
    const a = replica('a').store;
    const b = replica('b').store;
    const offered: CutShortRun[] = [];
    b.onCutShort((handed) => offered.push(handed));
    for (const key of ['kept', 'garbled', 'other']) {
      a.tryStart(key, 'spot', run(`e-${key}`), Date.now());
      expect((await a.claim(key, run(`e-${key}`))).claim).toBe('held');
    }
    const long = { ...run('e-long'), event: { ...run('e-long').event, data: { note: 'x'.repeat(MAX_EVENT_BYTES) } } };
    a.tryStart('long', 'spot', long, Date.now());
    expect((await a.claim('long', long)).claim).toBe('held');
    for (const key of ['kept', 'garbled', 'other']) a.cutShort(key, { ...run(`e-${key}`), next: 1, attributes: { node: 'n-1' } });
    a.cutShort('long', { ...long, next: 1 });
    expect(await a.commit()).toBe(true);
    const annotations = (key: string): Record<string, string> => api.cluster.leases.all().find((l) => l.metadata.annotations!['hollowtrees.io/group-key'] === key)!.metadata.annotations!;
    expect(JSON.parse(annotations('kept')['hollowtrees.io/run-event']!)).toEqual({ event: run('e-kept').event, receivedAt: run('e-kept').receivedAt });
    expect(annotations('long')['hollowtrees.io/run-event']).toBeUndefined();
    // Garbled by hand, or naming another event than the run's.
    const edit = (key: string, text: string): void => {
      const lease = api.cluster.leases.all().find((l) => l.metadata.annotations!['hollowtrees.io/group-key'] === key)!;
      lease.metadata.annotations!['hollowtrees.io/run-event'] = text;
      api.cluster.leases.replace(NAMESPACE, lease.metadata.name, lease);
    };
    edit('garbled', '{"event": {"id": "e-garbled"');
    edit('other', JSON.stringify({ event: run('e-kept').event, receivedAt: 1 }));
    await observe(b);
    expect(offered).toEqual([{ key: 'kept', flow: 'spot', event: run('e-kept').event, receivedAt: run('e-kept').receivedAt }]);
  });

  it('a run whose holder was killed is offered with its event by the first list that finds its Lease expired, never before', async () => {
    const dead = replica('dead', { leaseDurationMs: 1_000, renewIntervalMs: 60_000 }).store;
    const { store: b, wait: waitB, now: nowB } = replica('b', { leaseDurationMs: 1_000, renewIntervalMs: 60_000 });
    const offered: CutShortRun[] = [];
    b.onCutShort((cut) => offered.push(cut));
    dead.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await dead.claim('g', run('e1'))).claim).toBe('held');
    expect(JSON.parse(api.cluster.leases.all()[0]!.metadata.annotations!['hollowtrees.io/run-event']!)).toEqual({ event: run('e1').event, receivedAt: run('e1').receivedAt });
    await observe(b);
    expect(offered).toEqual([]);
    waitB(1_100);
    await observe(b);
    expect(offered).toEqual([{ key: 'g', flow: 'spot', event: run('e1').event, receivedAt: run('e1').receivedAt }]);
    // Once it succeeded, the cooldown keeps no event.
    b.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await b.claim('g', run('e1'))).claim).toBe('held');
    b.succeeded('g', Date.now(), 60_000);
    expect(await b.commit()).toBe(true);
    expect(api.cluster.leases.all()[0]!.metadata.annotations!['hollowtrees.io/run-event']).toBeUndefined();
  });

  it('a run cut short hands back nothing it does not hold: a run whose claim another replica won is only freed here', async () => {
    const a = replica('a').store;
    const b = replica('b').store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    b.tryStart('g', 'spot', run('e2'), Date.now());
    expect((await b.claim('g', run('e2'))).claim).toBe('taken');
    b.cutShort('g', run('e2'));
    expect(await b.commit()).toBe(true);
    expect(api.cluster.leases.all()[0]!.spec!.holderIdentity).toBe('a');
  });

  it('a replica restarted under the same identity (its container restarted in the same pod) keeps the cooldowns it wrote, and takes over at once the runs it left', async () => {
    const before = replica('core-0').store;
    before.tryStart('cooled', 'spot', run('e1'), Date.now());
    before.tryStart('cut', 'spot', run('e2'), Date.now());
    expect((await before.claim('cooled', run('e1'))).claim).toBe('held');
    expect((await before.claim('cut', run('e2'))).claim).toBe('held');
    before.succeeded('cooled', Date.now(), 600_000);
    expect(await before.commit()).toBe(true);
    // kill -9: nothing more is written; the restarted process has the same POD_NAME.
    await before.close();
    const after = replica('core-0').store;
    after.tryStart('cooled', 'spot', run('e3'), Date.now());
    expect(await after.claim('cooled', run('e3'))).toEqual({ claim: 'taken', heldAs: 'cooling' });
    after.tryStart('cut', 'spot', run('e4'), Date.now());
    expect(await after.claim('cut', run('e4'))).toEqual({ claim: 'held', takenOver: { holder: 'core-0', handedBack: false, eventId: 'e2', since: expect.any(Number) } });
  });

  it('a Lease seen unchanged while this replica could not reach the API server is not taken over: its leaseDuration counts again from the outage\'s end', async () => {
    // a never renews within the test: its Lease is left as if its holder could not write.
    const a = replica('a', { leaseDurationMs: 1_000, renewIntervalMs: 60_000 }).store;
    const { store: b, wait: waitB, now: nowB } = replica('b', { leaseDurationMs: 1_000, renewIntervalMs: 60_000 });
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    await observe(b);
    // An outage longer than the Lease, which b's list meets.
    api.unreachable = true;
    b.sweep(Date.now());
    await expect.poll(() => b.durable, { timeout: 5_000, interval: 20 }).toBe(false);
    waitB(1_100);
    api.unreachable = false;
    b.tryStart('g', 'spot', run('e2'), nowB());
    expect(await b.claim('g', run('e2'))).toEqual({ claim: 'taken', heldAs: 'running' });
    // Still unchanged a whole leaseDuration after the outage: its holder is gone.
    waitB(1_100);
    b.tryStart('g', 'spot', run('e3'), nowB());
    expect(await b.claim('g', run('e3'))).toMatchObject({ claim: 'held', takenOver: { holder: 'a' } });
  });

  it('a claim that took several slow calls (a 409, a read, the takeover) counts its hold from the write that made it, not from the claim\'s first call', async () => {
    const dead = replica('dead', { leaseDurationMs: 1_000, renewIntervalMs: 60_000 }).store;
    // Renewals unconfirmed for 3 s - 1.5 x 1 s = 1.5 s stop a run.
    const { store: b, wait: waitB, now: nowB } = replica('b', { leaseDurationMs: 3_000, renewIntervalMs: 1_000 });
    dead.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await dead.claim('g', run('e1'))).claim).toBe('held');
    await observe(b);
    waitB(1_100);
    // Three calls of 600 ms: the claim takes 1.8 s, its takeover write the last 0.6 s of it.
    api.latency.set(600);
    b.tryStart('g', 'spot', run('e2'), nowB());
    expect(await b.claim('g', run('e2'))).toMatchObject({ claim: 'held', takenOver: { holder: 'dead' } });
    await b.checkHold('g');
    expect(b.holdLost('g')?.aborted).toBe(false);
  });

  it.each([
    ['renews it first, so the tick keeps it', false],
    ['gives it up before the call when that renewal is not confirmed either (the API unreachable)', true],
  ])('before a plugin call on a hold the next renew tick would find unconfirmed too long (its claim answered late): %s', async (_, unreachable) => {
    // Renewals unconfirmed for 30 s - 1.5 x 10 s = 15 s stop a run; the next tick is 10 s after the store started.
    const shift: ClockShift = { wallMs: 0, monotonicMs: 0 };
    const a = replica('a', { leaseDurationMs: 30_000, renewIntervalMs: 10_000, shift }).store;
    const tick = (): void => (a as unknown as { renew(): void }).renew();
    // The claim's write began 6 s before the store's start, as one answered after 6 s would have.
    shift.monotonicMs = -6_000;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    shift.monotonicMs = 0;
    const lost = a.holdLost('g')!;
    const puts = (): number => api.requests.filter((r) => r.method === 'PUT').length;
    api.unreachable = unreachable;
    const before = puts();
    // Unconfirmed for 6 s now, within the 15 s; 16 s at the next tick. Before, the plugin was called here, and
    // stopped mid-call by that tick: the run then called it again.
    await a.checkHold('g');
    expect(lost.aborted).toBe(unreachable);
    if (unreachable) return expect(String((lost.reason as Error).message)).toMatch(/unconfirmed for 1\d{4} ms by its next renewal/);
    expect(puts()).toBe(before + 1);
    shift.monotonicMs = 10_000;
    tick();
    expect(lost.aborted).toBe(false);
  });

  it('an event id longer than a Lease can keep (a CloudEvents id of 300 KiB) still claims its group, and a run cut short goes on for that event', async () => {
    const a = replica('a').store;
    const b = replica('b').store;
    const id = 'x'.repeat(300 * 1024);
    a.tryStart('g', 'spot', run(id), Date.now());
    expect(await a.claim('g', run(id))).toEqual({ claim: 'held' });
    const place = { next: 1, attributes: {}, attempt: 1, restarts: 0 };
    a.cutShort('g', { ...run(id), ...place });
    expect(await a.commit('g')).toBe(true);
    b.tryStart('g', 'spot', run(id), Date.now());
    expect(await b.claim('g', run(id))).toEqual({ claim: 'held', takenOver: { holder: '', handedBack: true, eventId: id, since: expect.any(Number), place } });
  });

  it('a holder that renews keeps its run: no takeover, however long it runs', async () => {
    const a = replica('a', { leaseDurationMs: 1_000, renewIntervalMs: 200 }).store;
    const b = replica('b', { leaseDurationMs: 1_000, renewIntervalMs: 200 }).store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    await a.claim('g', run('e1'));
    await new Promise((r) => setTimeout(r, 1_500));
    b.tryStart('g', 'spot', run('e2'), Date.now());
    expect((await b.claim('g', run('e2'))).claim).toBe('taken');
  });

  it('a run released before its claim came back (a full queue) gives its Lease up: the group is free for the next event, on any replica', async () => {
    const a = replica('a').store;
    const b = replica('b').store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    a.release('g');
    await expect.poll(() => api.cluster.leases.all(), { timeout: 5_000, interval: 20 }).toEqual([]);
    b.tryStart('g', 'spot', run('e2'), Date.now());
    expect((await b.claim('g', run('e2'))).claim).toBe('held');
  });

  it('a holder whose renewals are confirmed keeps its run with renewInterval = leaseDuration / 3, the defaults\' ratio, even when its renew ticks come late', async () => {
    // A tick may come half an interval late (here 500 ms): more than the pause a busy test machine adds to the 30 ms below.
    const a = replica('a', { leaseDurationMs: 3_000, renewIntervalMs: 1_000 }).store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    const lost = a.holdLost('g')!;
    // A busy event loop: each tick comes a little after its interval, as Node's timers do under load.
    const end = Date.now() + 3_500;
    while (Date.now() < end) {
      const until = Date.now() + 30;
      while (Date.now() < until);
      await sleep(5);
    }
    expect(lost.aborted ? String((lost.reason as Error).message) : 'held').toBe('held');
    expect(api.cluster.leases.all()[0]!.spec!.holderIdentity).toBe('a');
  });

  it.each([
    ['renewed on waking, unchanged: it keeps its run', false],
    ['the renewal on waking not confirmed either (the API unreachable): it gives the run up', true],
  ])('a holder whose process did not run for longer than its renewals allow (its event loop blocked 2.5 s): %s', async (_, unreachable) => {
    // Renewals unconfirmed for 3 s - 1.5 x 1 s = 1.5 s stop a run, unless the tick comes late: then the API server is asked first.
    const a = replica('a', { leaseDurationMs: 3_000, renewIntervalMs: 1_000 }).store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    const lost = a.holdLost('g')!;
    const version = api.cluster.leases.all()[0]!.metadata.resourceVersion;
    api.unreachable = unreachable;
    const until = Date.now() + 2_500;
    while (Date.now() < until);
    // Before, the first tick after the stall gave the hold up at once, though the Lease was still this replica's.
    await sleep(200);
    await a.checkHold('g');
    expect(lost.aborted).toBe(unreachable);
    if (unreachable) return expect(String((lost.reason as Error).message)).toMatch(/while this process did not run .*the renewal made on waking was not confirmed either/);
    expect(api.cluster.leases.all()[0]!.metadata.resourceVersion).not.toBe(version);
    expect(api.cluster.leases.all()[0]!.spec!.holderIdentity).toBe('a');
  });

  it('a holder whose process did not run past its Lease, which another replica meanwhile took over, ran and deleted (the run ended there): on waking it gives its run up, and does not create the Lease anew', async () => {
    const shift: ClockShift = { wallMs: 0, monotonicMs: 0 };
    const a = replica('a', { leaseDurationMs: 3_000, renewIntervalMs: 1_000, shift }).store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    const lost = a.holdLost('g')!;
    // While a did not run, its Lease expired: another replica went on with the run, which ended there and deleted its Lease.
    const [lease] = api.cluster.leases.all();
    api.cluster.leases.delete(NAMESPACE, lease!.metadata.name, {});
    shift.monotonicMs += 10_000;
    shift.wallMs += 10_000;
    await a.checkHold('g');
    // Before, the renewal made on waking found the Lease gone, created it again and kept the run: its plugins acted a second time.
    expect(lost.aborted).toBe(true);
    expect(api.cluster.leases.all()).toEqual([]);
  });

  it('a holder whose renewals go unconfirmed tells its run to stop before the Lease can expire for the other replicas', async () => {
    // The run stops at the first tick past leaseDuration - 1.5 x renewInterval: 1 s before the Lease expires, more than a busy machine delays a tick.
    const a = replica('a', { leaseDurationMs: 3_000, renewIntervalMs: 1_000 }).store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    expect(a.holdLost('g')!.aborted).toBe(false);
    await expect.poll(() => api.requests.filter((r) => r.method === 'PUT').length, { timeout: 5_000, interval: 20 }).toBeGreaterThan(0);
    const lost = a.holdLost('g')!;
    api.unreachable = true;
    await new Promise((resolve) => lost.addEventListener('abort', resolve));
    // The others may take the group over only once renewTime + leaseDuration has passed: the last renewTime that landed, a renewal in flight as the API went away included.
    expect(Date.now()).toBeLessThan(renewTimeOf() + 3_000);
    expect(String((lost.reason as Error).message)).toMatch(/renewals went unconfirmed/);
    expect(a.holdLost('g')).toBeUndefined();
  });

  it('a holder whose wall clock is stepped back (NTP) while its renewals go unconfirmed still stops its run before the Lease can expire for the others', async () => {
    const shift: ClockShift = { wallMs: 0, monotonicMs: 0 };
    // As above: a stop 1 s before the Lease expires.
    const a = replica('a', { leaseDurationMs: 3_000, renewIntervalMs: 1_000, shift }).store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    await expect.poll(() => api.requests.filter((r) => r.method === 'PUT').length, { timeout: 5_000, interval: 20 }).toBeGreaterThan(0);
    const lost = a.holdLost('g')!;
    api.unreachable = true;
    // The others count the Lease's expiry on their monotonic clocks, from when they saw it change: no step moves it.
    shift.wallMs = -60_000;
    await new Promise((resolve) => lost.addEventListener('abort', resolve));
    expect(Date.now()).toBeLessThan(renewTimeOf() + 3_000);
  });

  it('a holder whose Lease another replica took over tells its run to stop', async () => {
    const { lost } = await takenOverBeforeCooldown(5_000);
    expect(lost.aborted).toBe(true);
    expect(String((lost.reason as Error).message)).toMatch(/took the Lease over/);
  });

  it('a run that waited in the queue gets its own claim, never the claim of a later run of its group', async () => {
    const a = replica('a').store;
    api.unreachable = true;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    // Its claim fails while the run waits in the queue, which frees the group for the sender's next try.
    await a.commit();
    api.unreachable = false;
    expect(a.tryStart('g', 'spot', run('e2'), Date.now())).toBe('started');
    expect((await a.claim('g', run('e1'))).claim).toBe('unavailable');
    expect((await a.claim('g', run('e2'))).claim).toBe('held');
  });

  it('when the API server cannot be reached: the claim fails, commit says false, the store is not durable; all come back with it', async () => {
    const { store: a, metrics } = replica('a');
    api.unreachable = true;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    const commit = a.commit();
    expect((await a.claim('g', run('e1'))).claim).toBe('unavailable');
    expect(await commit).toBe(false);
    expect(a.durable).toBe(false);
    // The group is free again: nothing acted, and the sender is asked to send again.
    expect(a.holder('g', Date.now())).toBeUndefined();
    api.unreachable = false;
    await expect.poll(() => a.durable, { timeout: 5_000, interval: 50 }).toBe(true);
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    const calls = await metrics.calls.get();
    expect(calls.values.find((v) => v.labels.operation === 'create' && v.labels.result === 'error')?.value).toBe(1);
  });

  it('a run whose Lease another replica took over goes on, and its later tries are refused', async () => {
    const { a } = await takenOverBeforeCooldown(60_000);
    expect(api.cluster.leases.all()[0]!.spec!.holderIdentity).toBe('b');
    expect((await a.claim('g', run('e1'))).claim).toBe('taken');
  });

  it('a 409 from its own write that was applied without an answer keeps the Lease: the cooldown is written on top of it', async () => {
    const a = replica('a').store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    await a.claim('g', run('e1'));
    // A renewal of a's that the API server applied but whose answer never came: the Lease moved on, still a's.
    const [lease] = api.cluster.leases.all();
    const renewed = await fetch(`${api.url}/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/${lease!.metadata.name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(lease) });
    expect(renewed.status).toBe(200);
    a.succeeded('g', Date.now(), 60_000);
    expect(await a.commit()).toBe(true);
    expect(api.cluster.leases.all()[0]!.metadata.annotations!['hollowtrees.io/phase']).toBe('cooling');
    expect(a.holder('g', Date.now())).toMatchObject({ phase: 'cooling' });
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
  });

  it('a list answered after a later one (its answer slow on its way back) brings back no run that ended meanwhile: the group is free, and claimed at once', async () => {
    const { store: a } = replica('a');
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    // b's Lease calls go to the same stand-in; the answer of one list of its run-state Leases is held back on its way.
    const metrics = new StoreMetrics(new Registry());
    const real = kubeLeaseApi(loadStoreKubeConfig(kubeconfig), { namespace: NAMESPACE, timeoutMs: 2_000, maxInFlight: 32, metrics, clock: systemClock });
    let holdAnswer: Promise<void> | undefined;
    let answered = false;
    const held = { ...real, list: async (selector: string) => {
      const hold = selector.includes('role=run-state') ? holdAnswer : undefined;
      holdAnswer = undefined;
      const items = await real.list(selector);
      await hold;
      return items;
    } };
    const b = new KubernetesRunStateStore({ api: held, identity: 'b', leasePrefix: 'hollowtrees-', leaseDurationMs: 30_000, renewIntervalMs: 60_000, maxGroups: 1_000, clock: systemClock, logger: pino({ level: 'silent' }) });
    stores.push(b);
    let letGo!: () => void;
    holdAnswer = new Promise<void>((resolve) => (letGo = resolve)).then(() => void (answered = true));
    // The sweep's list reads a's run, and its answer waits.
    b.sweep(Date.now());
    await expect.poll(() => api.requests.filter((r) => r.method === 'GET' && r.query.labelSelector?.includes('role=run-state')).length, { timeout: 5_000, interval: 10 }).toBe(1);
    // a's run ends (failed: its Lease is deleted); b's next list sees the group free.
    a.release('g');
    expect(await a.commit()).toBe(true);
    await b.catchUp(0, 'runs');
    expect(b.list(Date.now())).toEqual([]);
    letGo();
    await expect.poll(() => answered && !(b as unknown as { sweeping: boolean }).sweeping, { timeout: 5_000, interval: 10 }).toBe(true);
    // The late answer said a's run was in progress: it is not believed over the later one.
    expect(b.list(Date.now())).toEqual([]);
    expect(b.tryStart('g', 'spot', run('e2'), Date.now())).toBe('started');
    expect(await b.claim('g', run('e2'))).toEqual({ claim: 'held' });
  });

  it('a forward step of the wall clock on a replica on steadyClock: its sweep keeps the Lease of a cooldown it began before the step, which holds the group on the other replicas', async () => {
    const a = steadyReplica('a');
    a.tryStart('g', 'spot', run('e1'), steadyClock.now());
    await a.claim('g', run('e1'));
    a.succeeded('g', steadyClock.now(), 10 * 60_000);
    await a.commit();
    const until = Date.parse(api.cluster.leases.all()[0]!.metadata.annotations!['hollowtrees.io/cooldown-until']!);
    const wall = Date.now;
    try {
      vi.spyOn(Date, 'now').mockImplementation(() => wall() + 2 * 3_600_000);
      const asked = api.requests.length;
      a.sweep(steadyClock.now());
      await expect.poll(() => api.requests.slice(asked).some((r) => r.method === 'GET' && LEASES_PATH.test(r.path)), { timeout: 5_000, interval: 20 }).toBe(true);
      await sleep(200);
      // The cooldown holds here (in memory) and, through its Lease, on the replicas whose wall clock was not stepped.
      expect(a.holder('g', steadyClock.now())).toMatchObject({ phase: 'cooling' });
      expect(api.cluster.leases.all().map((l) => Date.parse(l.metadata.annotations!['hollowtrees.io/cooldown-until']!))).toEqual([until]);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('the sweep lists every replica\'s Leases for the status API and deletes those whose hold is over (a run\'s with its event an hour later)', async () => {
    const a = replica('a', { leaseDurationMs: 1_000, renewIntervalMs: 60_000 }).store;
    const b = replica('b').store;
    a.tryStart('old', 'spot', run('e1'), Date.now());
    await a.claim('old', run('e1'));
    b.tryStart('live', 'spot', run('e2'), Date.now());
    await b.claim('live', run('e2'));
    b.succeeded('live', Date.now(), 2 * CUT_SHORT_KEPT_MS);
    await b.commit();
    // a stops renewing (as if killed): its Lease's hold is over after 1 s. c's wall clock is 1.1 s on, as that much later:
    // by it, a's renewTime is past its 1 s Lease.
    expect(api.cluster.leases.all()).toHaveLength(2);
    const { store: c, wait: waitC } = replica('c', { leaseDurationMs: 1_000, clockOffsetMs: 1_100 });
    // c has never seen a's Lease: it deletes it only once it has seen it unchanged for its lease duration.
    await observe(c);
    expect(api.cluster.leases.all()).toHaveLength(2);
    waitC(1_100);
    // A run's Lease keeps its event an hour, for a replica with room to go on with it.
    c.sweep(Date.now() + CUT_SHORT_KEPT_MS + 1_000);
    await expect.poll(() => api.cluster.leases.all().length, { timeout: 5_000, interval: 20 }).toBe(1);
    expect(api.cluster.leases.all().map((l) => l.metadata.annotations!['hollowtrees.io/group-key'])).toEqual(['live']);
    expect(c.list(Date.now())).toEqual([expect.objectContaining({ key: 'live', phase: 'cooling', replica: 'b' })]);
  });

  it('two installations in one namespace with their own leasePrefix share no run state: one\'s cooldown never holds the other\'s group, and its sweep leaves the other\'s Leases alone', async () => {
    const staging = replica('staging', { leasePrefix: 'staging-', leaseDurationMs: 1_000, renewIntervalMs: 300 }).store;
    const { store: prod, wait: waitProd } = replica('prod', { leasePrefix: 'prod-', leaseDurationMs: 1_000, renewIntervalMs: 300 });
    staging.tryStart('pool:{availability_zone="us-east-1a"}', 'pool', run('e1'), Date.now());
    expect((await staging.claim('pool:{availability_zone="us-east-1a"}', run('e1'))).claim).toBe('held');
    staging.succeeded('pool:{availability_zone="us-east-1a"}', Date.now(), 60_000);
    expect(await staging.commit()).toBe(true);
    await observe(prod);
    expect(prod.list(Date.now())).toEqual([]);
    expect(prod.tryStart('pool:{availability_zone="us-east-1a"}', 'pool', run('e2'), Date.now())).toBe('started');
    expect((await prod.claim('pool:{availability_zone="us-east-1a"}', run('e2'))).claim).toBe('held');
    // A Lease of the other installation that holds nothing any more is its own to sweep.
    staging.tryStart('g', 'spot', run('e3'), Date.now());
    expect((await staging.claim('g', run('e3'))).claim).toBe('held');
    await staging.close();
    await observe(prod);
    waitProd(1_100);
    await observe(prod);
    expect(api.cluster.leases.all().map((l) => l.metadata.name).filter((n) => n.startsWith('staging-'))).toHaveLength(2);
  });

  it('a create applied whose answer was lost (the client\'s repeat of it too) is read back: the claim holds the group and renews its Lease', async () => {
    const a = replica('a', { renewIntervalMs: 200 }).store;
    api.failNext(2, { method: 'POST', effect: 'lose-answer' });
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect(await a.claim('g', run('e1'))).toEqual({ claim: 'held' });
    expect(api.cluster.leases.all()[0]!.spec).toMatchObject({ holderIdentity: 'a', leaseTransitions: 0 });
    // Held, not orphaned: renewed while its run goes on.
    const created = renewTimeOf();
    await expect.poll(renewTimeOf, { timeout: 5_000, interval: 20 }).toBeGreaterThan(created);
    expect(a.holdLost('g')?.aborted).toBe(false);
  });

  it('a create whose lost answer the client\'s repeat met as a 409 is its own claim, not a run of another replica to report interrupted', async () => {
    const a = replica('a').store;
    api.failNext(1, { method: 'POST', effect: 'lose-answer' });
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect(await a.claim('g', run('e1'))).toEqual({ claim: 'held' });
    expect(api.cluster.leases.all()[0]!.spec).toMatchObject({ holderIdentity: 'a', leaseTransitions: 0 });
  });

  it('a create whose lost answer is read back after a step of the wall clock (on steadyClock, as in production) is still known as this claim\'s own: held, no run reported interrupted, no takeover written', async () => {
    const a = steadyReplica('a');
    api.failNext(1, { method: 'POST', effect: 'lose-answer' });
    let readBack!: () => void;
    const held = api.failNext(1, { method: 'GET', path: LEASE_PATH, effect: 'delay', until: new Promise<void>((r) => (readBack = r)) });
    a.tryStart('g', 'spot', run('e1'), steadyClock.now());
    const claimed = a.claim('g', run('e1'));
    await expect.poll(() => held.hits, { timeout: 5_000, interval: 10 }).toBe(1);
    const wall = Date.now;
    try {
      // The Lease was written before the step; it is read back after it, its times 2 h later on this process's clock.
      vi.spyOn(Date, 'now').mockImplementation(() => wall() + 2 * 3_600_000);
      readBack();
      expect(await claimed).toEqual({ claim: 'held' });
    } finally {
      vi.restoreAllMocks();
    }
    expect(api.cluster.leases.all()[0]!.spec).toMatchObject({ holderIdentity: 'a', leaseTransitions: 0 });
    expect(api.requests.filter((r) => r.method === 'PUT')).toEqual([]);
  });

  it('a create applied without an answer whose read-back failed too: the event is refused, and the Lease it left is deleted at the next renewal tick, so another replica can take the group at once', async () => {
    const a = replica('a', { renewIntervalMs: 200 }).store;
    const b = replica('b').store;
    api.failNext(2, { method: 'POST', effect: 'lose-answer' });
    api.failNext(1, { method: 'GET', path: LEASE_PATH, code: 503 });
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('unavailable');
    expect(api.cluster.leases.all()[0]!.spec!.holderIdentity).toBe('a');
    await expect.poll(() => api.cluster.leases.all(), { timeout: 5_000, interval: 20 }).toEqual([]);
    b.tryStart('g', 'spot', run('e2'), Date.now());
    expect(await b.claim('g', run('e2'))).toEqual({ claim: 'held' });
  });

  it('a takeover of a handed-back run whose answer was lost (the client\'s repeat met it as a 409) is this claim\'s own: it keeps the run\'s place, and reports no run of its own replica interrupted', async () => {
    const a = replica('a').store;
    const b = replica('b').store;
    const place = await handBackAfterDetach(a);
    api.failNext(1, { method: 'PUT', effect: 'lose-answer' });
    b.tryStart('g', 'spot', run('e1'), Date.now());
    expect(await b.claim('g', run('e1'))).toEqual({ claim: 'held', takenOver: { holder: '', handedBack: true, eventId: 'e1', since: expect.any(Number), place } });
  });

  it('a takeover of a handed-back run applied without an answer (the client\'s repeat of it too) is handed back again with the run\'s place, not deleted: the event\'s re-send goes on from it', async () => {
    const a = replica('a').store;
    const b = replica('b', { renewIntervalMs: 200 }).store;
    const c = replica('c').store;
    const place = await handBackAfterDetach(a);
    api.failNext(2, { method: 'PUT', effect: 'lose-answer' });
    b.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await b.claim('g', run('e1'))).claim).toBe('unavailable');
    expect(api.cluster.leases.all()[0]!.spec!.holderIdentity).toBe('b');
    // b's next renew tick finds the Lease its takeover left, with no run behind it.
    await expect.poll(() => api.cluster.leases.all().map((l) => l.spec!.holderIdentity), { timeout: 5_000, interval: 20 }).toEqual(['']);
    c.tryStart('g', 'spot', run('e1'), Date.now());
    expect(await c.claim('g', run('e1'))).toEqual({ claim: 'held', takenOver: { holder: '', handedBack: true, eventId: 'e1', since: expect.any(Number), place } });
  });

  it('a takeover applied without an answer (the client\'s repeat of it too): the event is refused, and the Lease it left is deleted at the next renewal tick, so another replica can take the group at once', async () => {
    const dead = replica('dead', { leaseDurationMs: 1_000, renewIntervalMs: 60_000 }).store;
    const { store: b, wait: waitB, now: nowB } = replica('b', { leaseDurationMs: 1_000, renewIntervalMs: 200 });
    const c = replica('c', { leaseDurationMs: 1_000 }).store;
    dead.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await dead.claim('g', run('e1'))).claim).toBe('held');
    await observe(b);
    waitB(1_100);
    api.failNext(2, { method: 'PUT', effect: 'lose-answer' });
    b.tryStart('g', 'spot', run('e2'), nowB());
    expect((await b.claim('g', run('e2'))).claim).toBe('unavailable');
    expect(api.cluster.leases.all()[0]!.spec!.holderIdentity).toBe('b');
    // Not left for c to wait out (it has just seen it: a whole leaseDuration).
    await expect.poll(() => api.cluster.leases.all(), { timeout: 5_000, interval: 20 }).toEqual([]);
    c.tryStart('g', 'spot', run('e3'), Date.now());
    expect(await c.claim('g', run('e3'))).toEqual({ claim: 'held' });
  });

  it('commit waits for the claims made so far, not for a sweep whose list is slow', async () => {
    const a = replica('a').store;
    let answerList!: () => void;
    api.failNext(1, { method: 'GET', path: LEASES_PATH, effect: 'delay', until: new Promise<void>((resolve) => (answerList = resolve)) });
    a.sweep(Date.now());
    a.tryStart('g', 'spot', run('e1'), Date.now());
    const committed = await Promise.race([a.commit(), sleep(10_000).then(() => 'still waiting')]);
    answerList();
    expect(committed).toBe(true);
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
  });

  it('a sweep while the last one is still listing is skipped: slow lists never pile up, each holding every Lease', async () => {
    const a = replica('a').store;
    let answerList!: () => void;
    const slow = new Promise<void>((resolve) => (answerList = resolve));
    // The run-state Leases' list and the run-end Leases' list, both slow.
    api.failNext(2, { method: 'GET', path: LEASES_PATH, effect: 'delay', until: slow });
    a.sweep(Date.now());
    a.sweep(Date.now());
    a.sweep(Date.now());
    answerList();
    await a.close();
    const lists = (role: string): number => api.requests.filter((r) => r.method === 'GET' && LEASES_PATH.test(r.path) && r.query.labelSelector?.includes(`hollowtrees.io/role=${role}`)).length;
    expect([lists('run-state'), lists('run-end')]).toEqual([1, 1]);
    // Once it is done, the next sweep lists again.
    a.sweep(Date.now());
    await a.close();
    expect([lists('run-state'), lists('run-end')]).toEqual([2, 2]);
  });

  it('a replica whose clock runs ahead never takes over a run whose holder renews', async () => {
    const a = replica('a', { leaseDurationMs: 1_000, renewIntervalMs: 200 }).store;
    const ahead = replica('ahead', { leaseDurationMs: 1_000, renewIntervalMs: 200, clockOffsetMs: 10_000 }).store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    ahead.tryStart('g', 'spot', run('e2'), Date.now());
    expect(await ahead.claim('g', run('e2'))).toEqual({ claim: 'taken', heldAs: 'running' });
    // By its clock a's renewTime is 10 s old; by what it saw, the Lease keeps changing.
    await sleep(1_500);
    ahead.tryStart('g', 'spot', run('e3'), Date.now());
    expect(await ahead.claim('g', run('e3'))).toEqual({ claim: 'taken', heldAs: 'running' });
    expect(api.cluster.leases.all()[0]!.spec!.holderIdentity).toBe('a');
  });

  it('a replica whose clock runs 30 s ahead lists a run in progress on a healthy replica as held there (status API), and never takes it over', async () => {
    const a = replica('a', { leaseDurationMs: 3_000, renewIntervalMs: 1_000 }).store;
    const ahead = replica('ahead', { leaseDurationMs: 3_000, renewIntervalMs: 1_000, clockOffsetMs: 30_000 }).store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    // By its clock a's renewTime is always 30 s old, 27 s past its leaseDuration; by what it sees, the Lease is renewed.
    for (let look = 0; look < 3; look++) {
      await observe(ahead);
      expect(ahead.list(Date.now() + 30_000).map((s) => `${s.key} ${s.phase} ${s.replica}`)).toEqual(['g running a']);
      ahead.tryStart('g', 'spot', run(`e${look + 2}`), Date.now() + 30_000);
      expect(await ahead.claim('g', run(`e${look + 2}`))).toEqual({ claim: 'taken', heldAs: 'running' });
      await sleep(1_200);
    }
    expect(api.cluster.leases.all()[0]!.spec!.holderIdentity).toBe('a');
  });

  it('a Lease left by a holder whose clock ran ahead is taken over once seen unchanged for its duration, not when its future renewTime has passed', async () => {
    const dead = replica('dead', { leaseDurationMs: 1_000, renewIntervalMs: 60_000, clockOffsetMs: 60_000 }).store;
    const { store: b, wait: waitB, now: nowB } = replica('b', { leaseDurationMs: 1_000, renewIntervalMs: 300 });
    // The engine starts runs at its clock's now.
    dead.tryStart('g', 'spot', run('e1'), Date.now() + 60_000);
    expect((await dead.claim('g', run('e1'))).claim).toBe('held');
    b.tryStart('g', 'spot', run('e2'), Date.now());
    expect((await b.claim('g', run('e2'))).claim).toBe('taken');
    waitB(1_100);
    b.tryStart('g', 'spot', run('e3'), nowB());
    expect(await b.claim('g', run('e3'))).toEqual({ claim: 'held', takenOver: { holder: 'dead', handedBack: false, eventId: 'e1', since: expect.any(Number) } });
  });

  describe('a Lease a later version wrote, which this one cannot read (the two side by side in a rolling update)', () => {
    /** Such a Lease of group `g`, held by a replica of that version: the name and labels of ours, a phase this one does not know. */
    const placeLaterVersionLease = (leaseDurationSeconds: number): void => {
      const labels = { 'app.kubernetes.io/managed-by': 'hollowtrees', 'hollowtrees.io/role': 'run-state' };
      const annotations = { 'hollowtrees.io/group-key': 'g', 'hollowtrees.io/flow': 'spot', 'hollowtrees.io/phase': 'draining' };
      const renewTime = new Date().toISOString().replace('Z', '000Z');
      api.cluster.leases.create(NAMESPACE, { metadata: { name: leaseName('hollowtrees-', 'g'), labels, annotations }, spec: { holderIdentity: 'next', leaseDurationSeconds, renewTime } });
    };
    const holders = (): Array<string | undefined> => api.cluster.leases.all().map((l) => l.spec?.holderIdentity);
    /** Sweeps until one sweep has listed after `store`'s last one ended (a sweep is skipped while the last is at it): that one's deletes are done. */
    const sweepToTheEnd = async (store: KubernetesRunStateStore): Promise<void> => {
      const lists = (): number => api.requests.filter((r) => r.method === 'GET' && LEASES_PATH.test(r.path)).length;
      const before = lists();
      await expect.poll(() => (store.sweep(Date.now()), lists()), { timeout: 5_000, interval: 20 }).toBeGreaterThanOrEqual(before + 2);
    };

    it('holds its group as a run in progress there: a claim is told so, and takes it over only once it has seen it unchanged for its duration', async () => {
      placeLaterVersionLease(1);
      const { store: a, wait: waitA, now: nowA } = replica('a', { leaseDurationMs: 1_000, renewIntervalMs: 300 });
      a.tryStart('g', 'spot', run('e1'), Date.now());
      expect(await a.claim('g', run('e1'))).toEqual({ claim: 'taken', heldAs: 'running' });
      expect(holders()).toEqual(['next']);
      waitA(1_100);
      a.tryStart('g', 'spot', run('e2'), nowA());
      expect((await a.claim('g', run('e2'))).claim).toBe('held');
      expect(holders()).toEqual(['a']);
    });

    it('is not swept while its holder may still renew it, by its own duration however short this replica\'s', async () => {
      placeLaterVersionLease(30);
      const a = replica('a', { leaseDurationMs: 1_000, renewIntervalMs: 300 }).store;
      await sweepToTheEnd(a);
      expect(holders()).toEqual(['next']);
    });

    it('is swept once seen unchanged for its duration', async () => {
      placeLaterVersionLease(1);
      const { store: a, wait: waitA } = replica('a', { leaseDurationMs: 1_000, renewIntervalMs: 300 });
      await observe(a);
      waitA(1_100);
      await sweepToTheEnd(a);
      expect(holders()).toEqual([]);
    });
  });

  it('a replica that lost a claim to a run in progress lists the Leases each renew interval: it learns that run cooled down with no read of its own', async () => {
    const a = replica('a').store;
    const b = replica('b', { renewIntervalMs: 200 }).store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    b.tryStart('g', 'spot', run('e2'), Date.now());
    expect(await b.claim('g', run('e2'))).toEqual({ claim: 'taken', heldAs: 'running' });
    const reads = (): number => api.requests.filter((r) => r.method === 'GET' && LEASE_PATH.test(r.path)).length;
    const readsBefore = reads();
    a.succeeded('g', Date.now(), 60_000);
    expect(await a.commit()).toBe(true);
    await expect.poll(() => b.holder('g', Date.now())?.phase, { timeout: 5_000, interval: 20 }).toBe('cooling');
    expect(reads()).toBe(readsBefore);
    // Nothing runs elsewhere any more: the lists stop.
    const lists = (): number => api.requests.filter((r) => r.method === 'GET' && LEASES_PATH.test(r.path)).length;
    const listed = lists();
    await sleep(600);
    expect(lists()).toBe(listed);
  });

  it('logs a refused claim with its Lease named as showLease shows it (a prefix from ${VAR} as written), never the prefix itself', async () => {
    const { logger, lines } = capturedLog();
    const leaseApi = kubeLeaseApi(loadStoreKubeConfig(kubeconfig), { namespace: NAMESPACE, timeoutMs: 2_000, maxInFlight: 32, metrics: new StoreMetrics(new Registry()), clock: systemClock });
    const store = new KubernetesRunStateStore({ api: leaseApi, identity: 'a', leasePrefix: 'secret-prefix-', showLease: (name) => name.replace('secret-prefix-', '${PREFIX}'), leaseDurationMs: 30_000, renewIntervalMs: 10_000, maxGroups: 1_000, clock: systemClock, logger });
    stores.push(store);
    api.failNext(1, { method: 'POST', path: LEASES_PATH, code: 403 });
    store.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await store.claim('g', run('e1'))).claim).toBe('unavailable');
    const refused = lines.find((l) => l['msg'] === 'could not claim the group in the shared run-state store; the event is refused so that it is sent again');
    expect(refused?.['lease']).toBe(leaseName('${PREFIX}', 'g'));
    expect(JSON.stringify(lines)).not.toContain('secret-prefix-');
  });

  it('a write of a held Lease the API server refuses (422, 404) is logged as that refusal, naming the Lease and the code, not as an outage: new events are still taken', async () => {
    const { logger, lines } = capturedLog();
    const a = replica('a', { logger }).store;
    for (const code of [422, 404]) {
      const g = `g${code}`;
      a.tryStart(g, 'spot', run(g), Date.now());
      expect((await a.claim(g, run(g))).claim).toBe('held');
      api.failNext(1, { method: 'PUT', path: LEASE_PATH, code });
      a.progress(g, 'running', { ...run(g), next: 1, at: { plugin: 'terminate', occurrence: 0, passed: ['detach'] } });
      // The write did not land: an answer that waits for it says so.
      expect(await a.commit(g)).toBe(false);
      expect(a.durable).toBe(true);
    }
    const errors = lines.filter((l) => l['level'] === 50 && String(l['msg']).includes('refused a write'));
    expect(errors.map((l) => l['msg'])).toEqual([expect.stringMatching(/refused a write .*HTTP 422/), expect.stringMatching(/refused a write .*HTTP 404/)]);
    expect(errors.map((l) => l['lease'])).toEqual([leaseName('hollowtrees-', 'g422'), leaseName('hollowtrees-', 'g404')]);
    expect(JSON.stringify(lines)).not.toContain('cannot be reached');
    a.tryStart('g-new', 'spot', run('e-new'), Date.now());
    expect((await a.claim('g-new', run('e-new'))).claim).toBe('held');
  });

  it('a write of a held Lease refused for itself is not made again at each renewal: a run in progress stops at once, and a cooldown\'s Lease is deleted, so no replica takes a run that succeeded for one cut short and runs it again', async () => {
    // Renewals every 100 ms, and a Lease the others find expired after 1 s unchanged.
    const a = replica('a', { leaseDurationMs: 1_000, renewIntervalMs: 100 }).store;
    const b = replica('b', { leaseDurationMs: 1_000, renewIntervalMs: 100 }).store;
    const offered: string[] = [];
    b.onCutShort((cut) => offered.push(cut.key));
    const path = (g: string): RegExp => new RegExp(`${leaseName('hollowtrees-', g)}$`);
    const puts = (g: string): number => api.requests.filter((r) => r.method === 'PUT' && path(g).test(r.path)).length;
    for (const g of ['running', 'cooling']) {
      a.tryStart(g, 'spot', run(g), Date.now());
      expect((await a.claim(g, run(g))).claim).toBe('held');
    }
    const lost = a.holdLost('running')!;
    // Whatever refuses them (an admission policy, say) refuses them every time.
    api.failNext(1_000, { method: 'PUT', path: path('running'), code: 422 });
    api.failNext(1_000, { method: 'PUT', path: path('cooling'), code: 422 });
    a.progress('running', 'running', { ...run('running'), next: 1, at: { plugin: 'terminate', occurrence: 0, passed: ['detach'] } });
    a.succeeded('cooling', Date.now(), 600_000);
    expect(await a.commit()).toBe(false);
    expect(lost.aborted).toBe(true);
    expect(String((lost.reason as Error).message)).toMatch(/refused a write of its Lease \(HTTP 422\)/);
    // b sees both Leases, then again once they would have expired.
    await observe(b);
    await sleep(1_200);
    await observe(b);
    expect(puts('running')).toBe(1);
    expect(puts('cooling')).toBe(1);
    // The run in progress is left to expire with what its Lease held: another replica goes on with it. The run that succeeded is not.
    expect(api.cluster.leases.all().map((l) => l.metadata.annotations!['hollowtrees.io/group-key'])).toEqual(['running']);
    // (Offered at each list of b that finds it so.)
    expect([...new Set(offered)]).toEqual(['running']);
    // This replica still holds the cooldown (it deduplicates the group's events), and a commit made since is not held to the refusals.
    expect(a.holder('cooling', Date.now())).toMatchObject({ phase: 'cooling' });
    expect(await a.commit()).toBe(true);
  });

  it('a run that ended here (succeeded with no cooldown, or failed) whose Lease delete meets its own earlier write, applied though it got no answer, still deletes its Lease: no replica goes on with a run that ended', async () => {
    // No renew tick within the test: nothing writes the Lease again before the run's end.
    const a = replica('a', { leaseDurationMs: 1_000, renewIntervalMs: 60_000 }).store;
    const { store: b, wait: waitB } = replica('b');
    const offered: string[] = [];
    b.onCutShort((cut) => offered.push(cut.key));
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    // The write of the run's place gets no answer within the call's 2 s, but is applied after all.
    let apply!: () => void;
    api.failNext(1, { method: 'PUT', path: LEASE_PATH, effect: 'delay', until: new Promise<void>((resolve) => (apply = resolve)) });
    a.progress('g', 'running', { ...run('e1'), next: 1, at: { plugin: 'terminate', occurrence: 0, passed: ['detach'] } });
    expect(await a.commit('g')).toBe(false);
    apply();
    await expect.poll(() => api.cluster.leases.all().map((l) => l.metadata.annotations!['hollowtrees.io/run-place'] !== undefined), { timeout: 5_000, interval: 10 }).toEqual([true]);
    // The run's last plugin succeeded; its flow has no cooldown (the default).
    a.succeeded('g', Date.now(), 0);
    await a.commit('g');
    await expect.poll(() => api.cluster.leases.all().length, { timeout: 5_000, interval: 10 }).toBe(0);
    await observe(b);
    waitB(1_100);
    await observe(b);
    expect(offered).toEqual([]);
  });

  /** Replica a's run of group g ends (no cooldown) while the API server cannot be reached: its Lease delete gets no answer. */
  async function endedWithDeleteUnanswered(renewIntervalMs: number): Promise<KubernetesRunStateStore> {
    const a = replica('a', { renewIntervalMs }).store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    api.unreachable = true;
    a.release('g');
    expect(await a.commit('g')).toBe(false);
    api.unreachable = false;
    return a;
  }

  it('a run that ended here whose Lease delete got no answer deletes it at a renew tick once the API server answers again', async () => {
    await endedWithDeleteUnanswered(100);
    await expect.poll(() => api.cluster.leases.all().length, { timeout: 5_000, interval: 10 }).toBe(0);
  });

  it('a run that ended here whose Lease delete the API server could not serve (5xx) deletes it at a renew tick once it can: no replica goes on with a run that ended', async () => {
    for (const code of [500, 503]) {
      const g = `g${code}`;
      const a = replica(`a${code}`, { renewIntervalMs: 100 }).store;
      a.tryStart(g, 'spot', run(g), Date.now());
      expect((await a.claim(g, run(g))).claim).toBe('held');
      // A busy API server: the delete, and the read of the renew tick just after, are not served.
      api.failNext(2, { method: 'DELETE', path: LEASE_PATH, code });
      a.release(g);
      expect(await a.commit(g)).toBe(false);
      await expect.poll(() => api.cluster.leases.all().map((l) => l.metadata.annotations!['hollowtrees.io/group-key']), { timeout: 5_000, interval: 10 }).not.toContain(g);
    }
  });

  it('a run that succeeded whose cooldown write is refused for itself (422) and whose Lease delete is then not served (503) deletes it at a renew tick: its Lease, still the run in progress, is not left to expire for another replica to run again', async () => {
    const a = replica('a', { renewIntervalMs: 100 }).store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    api.failNext(1, { method: 'PUT', path: LEASE_PATH, code: 422 });
    api.failNext(1, { method: 'DELETE', path: LEASE_PATH, code: 503 });
    a.succeeded('g', Date.now(), 600_000);
    expect(await a.commit('g')).toBe(false);
    await expect.poll(() => api.cluster.leases.all().length, { timeout: 5_000, interval: 10 }).toBe(0);
  });

  it('a run that ended here whose Lease delete was not served still deletes it when a claim of its group made before the next renew tick fails too', async () => {
    const a = replica('a', { renewIntervalMs: 60_000 }).store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    api.failNext(1, { method: 'DELETE', path: LEASE_PATH, code: 503 });
    a.release('g');
    expect(await a.commit('g')).toBe(false);
    // The group's next event (a re-send): its claim is not served either.
    api.failNext(1, { method: 'POST', path: LEASES_PATH, code: 503 });
    a.tryStart('g', 'spot', run('e2'), Date.now());
    expect((await a.claim('g', run('e2'))).claim).toBe('unavailable');
    // Left, the Lease of the run that ended would expire as a run cut short, for a replica to go on with.
    await a.close();
    expect(api.cluster.leases.all()).toEqual([]);
  });

  it('a run that ended here whose Lease delete was not served still deletes it when a claim of its group made before the next renew tick gets no answer either: the doubt of that claim does not replace the doubt of the run\'s end', async () => {
    const a = replica('a', { renewIntervalMs: 60_000 }).store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    const lease = new RegExp(`/leases/${leaseName('hollowtrees-', 'g')}$`);
    api.failNext(1, { method: 'DELETE', path: lease, code: 503 });
    a.release('g');
    expect(await a.commit('g')).toBe(false);
    // The group's next event (a re-send): its create gets no answer (nor does the client's repeat of it), nor is its read-back served.
    api.failNext(2, { method: 'POST', path: LEASES_PATH, query: /^$/, effect: 'lose-answer' });
    api.failNext(1, { method: 'GET', path: lease, code: 503 });
    a.tryStart('g', 'spot', run('e2'), Date.now());
    expect((await a.claim('g', run('e2'))).claim).toBe('unavailable');
    // Left, the Lease of the run that ended would expire as a run cut short, for a replica to go on with.
    await a.close();
    expect(api.cluster.leases.all()).toEqual([]);
  });

  it('a run that ended here whose Lease delete got no answer before the replica stops deletes it as it stops, not at a renew tick that never comes', async () => {
    const a = await endedWithDeleteUnanswered(60_000);
    // SIGTERM: core stops its engine, then the store.
    await a.close();
    expect(api.cluster.leases.all()).toEqual([]);
  });

  it('an event and a place beyond ASCII, each within 64 Ki characters but over 64 KiB, are not kept: the Lease stays within the API server\'s 256 KiB of annotations, and its writes are taken', async () => {
    const a = replica('a').store;
    // 60 Ki characters of three bytes each: 180 KiB. Kept both, the Lease's annotations took 360 KiB and every write got 422.
    const wide = '€'.repeat(60 * 1024);
    const progress: RunProgress = { ...run('e-wide'), event: { ...run('e-wide').event, data: { note: wide } } };
    a.tryStart('g', 'spot', progress, Date.now());
    expect((await a.claim('g', progress)).claim).toBe('held');
    a.progress('g', 'running', { ...progress, next: 1, attributes: { note: wide } });
    expect(await a.commit('g')).toBe(true);
    const annotations = api.cluster.leases.all()[0]!.metadata.annotations!;
    expect([annotations['hollowtrees.io/run-event'], annotations['hollowtrees.io/run-place']]).toEqual([undefined, undefined]);
  });

  it('a wave of events too long to keep in their Leases (over 64 KiB) says so in one line, not one per claim', async () => {
    const { logger, lines } = capturedLog();
    const a = replica('a', { logger }).store;
    const big = (id: string): RunProgress => ({ ...run(id), event: { ...run(id).event, data: { text: 'x'.repeat(MAX_EVENT_BYTES) } } });
    const wave = Array.from({ length: 20 }, (_, i) => big(`e${i}`));
    for (const [i, progress] of wave.entries()) a.tryStart(`g${i}`, 'spot', progress, Date.now());
    expect((await Promise.all(wave.map((progress, i) => a.claim(`g${i}`, progress)))).map((c) => c.claim)).toEqual(wave.map(() => 'held'));
    expect(lines.filter((l) => String(l['msg']).startsWith('the event is too long to keep'))).toHaveLength(1);
  });

  it('a cooldown whose write failed is written once more as the replica stops: its Lease does not expire as a run in progress for another replica to run again', async () => {
    const a = replica('a').store;
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('held');
    api.failNext(1, { method: 'PUT', path: LEASE_PATH, code: 503 });
    a.succeeded('g', Date.now(), 600_000);
    expect(await a.commit('g')).toBe(false);
    // SIGTERM before the next renewal: core stops its engine, then the store.
    await a.close();
    expect(api.cluster.leases.all().map((l) => [l.spec?.holderIdentity, l.metadata.annotations!['hollowtrees.io/phase']])).toEqual([['a', 'cooling']]);
  });

  it('commit from a mark counts a claim refused before commit was called: a batch whose earlier slice lost a claim is not acknowledged', async () => {
    const a = replica('a').store;
    const mark = a.mark();
    // Refused for good (RBAC): no outage, so the store stays durable; only the count tells.
    api.failNext(1, { method: 'POST', path: LEASES_PATH, code: 403 });
    a.tryStart('g', 'spot', run('e1'), Date.now());
    expect((await a.claim('g', run('e1'))).claim).toBe('unavailable');
    expect(a.durable).toBe(true);
    // A batch's last slice started no claim: its commit begins after the refusal.
    expect(await a.commit(undefined, mark)).toBe(false);
    // A commit of later batches, from their own marks, is not held to it.
    expect(await a.commit(undefined, a.mark())).toBe(true);
  });

  it('commit of one group waits for that group\'s writes only: a run\'s end is not held back by a slow write of another group', async () => {
    const a = replica('a').store;
    for (const g of ['g1', 'g2']) {
      a.tryStart(g, 'spot', run(g), Date.now());
      expect((await a.claim(g, run(g))).claim).toBe('held');
    }
    let answerG2!: () => void;
    api.failNext(1, { method: 'PUT', path: new RegExp(`${leaseName('hollowtrees-', 'g2')}$`), effect: 'delay', until: new Promise<void>((resolve) => (answerG2 = resolve)) });
    a.succeeded('g2', Date.now(), 60_000);
    a.succeeded('g1', Date.now(), 60_000);
    const all = a.commit();
    const committed = await Promise.race([a.commit('g1'), sleep(10_000).then(() => 'still waiting')]);
    expect(committed).toBe(true);
    expect(api.cluster.leases.all().filter((l) => l.metadata.annotations!['hollowtrees.io/phase'] === 'cooling').map((l) => l.metadata.annotations!['hollowtrees.io/group-key'])).toEqual(['g1']);
    answerG2();
    expect(await all).toBe(true);
  });
});

describe('FlowEngine on the Kubernetes store', () => {
  it('a run whose group was freed while it waited in the queue (its claim failed) and a newer run of the group: each source hears how its own run ended', async () => {
    const { store } = replica('a');
    let release!: () => void;
    const busy = new Promise<void>((resolve) => (release = resolve));
    const plugin: ActionPlugin = stubPlugin('a', 60_000, async (event) => {
      if ((event.data as { labels: { instance_id: string } }).labels.instance_id === 'i-1') await busy;
      return { status: 'ok', message: '', attributes: {} };
    });
    const { config } = parseConfig('plugins:\n  a: { type: log }\nflows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [instance_id]\n    concurrency: 1\n    plugins: [a]\n', 'test.yaml', {});
    const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['a', plugin]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store });
    const notice = (id: string, instance: string): CloudEvent => ({ id, source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: instance } } });
    // The flow's one slot is taken.
    engine.dispatch(notice('busy', 'i-1'), Date.now());
    expect(await engine.commit()).toBe(true);
    // The first notice of i-2 waits in the queue; its claim fails, which frees the group.
    api.unreachable = true;
    const heard1: RunSettlement[] = [];
    expect(engine.dispatch(notice('m1', 'i-2'), Date.now(), (s) => heard1.push(s)).started).toBe(1);
    expect(await engine.commit()).toBe(false);
    api.unreachable = false;
    // A second notice of i-2 (its sender's retry, or another kind of notice) starts a run of its own.
    const heard2: RunSettlement[] = [];
    expect(engine.dispatch(notice('m2', 'i-2'), Date.now(), (s) => heard2.push(s)).started).toBe(1);
    release();
    await engine.drain();
    expect(heard1.map((s) => s.outcome)).toEqual(['interrupted']);
    expect(heard2.map((s) => s.outcome)).toEqual(['succeeded']);
  });

  it('a flow grouping by a field longer than a Lease can keep (an annotation of 300 KiB) still claims its group: the key is its SHA-256', async () => {
    const { store } = replica('a');
    const { config } = parseConfig('flows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [annotations.runbook]\n    cooldown: 10m\n    plugins: [log]\n', 'test.yaml', {});
    const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['log', stubPlugin('log', 5_000, () => Promise.resolve({ status: 'ok', message: '', attributes: {} }))]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store });
    const heard: RunSettlement[] = [];
    engine.dispatch({ id: 'e1', source: 's', specversion: '1.0', type: 't', data: { labels: {}, annotations: { runbook: 'x'.repeat(300 * 1024) } } }, Date.now(), (s) => heard.push(s));
    expect(await engine.commit()).toBe(true);
    await engine.drain();
    expect(heard.map((s) => s.outcome)).toEqual(['succeeded']);
    expect(api.cluster.leases.all().map((l) => l.metadata.annotations!['hollowtrees.io/group-key'])).toEqual([expect.stringMatching(/^spot:\{sha256="[0-9a-f]{64}"\}$/)]);
  });

  it('a run waiting for its next try at shutdown is handed back with when that try is due: another replica takes the group over at once, and calls only the plugin that failed, with the attributes of the one before, once it is due', async () => {
    const calls: Array<{ replica: string; plugin: string; labels: Record<string, string>; at: number }> = [];
    const engineOf = (replicaName: string): { engine: FlowEngine; store: KubernetesRunStateStore } => {
      const { store } = replica(replicaName);
      const plugin = (name: string): ActionPlugin => stubPlugin(name, 5_000, (event) => {
        calls.push({ replica: replicaName, plugin: name, labels: (event.data as { labels: Record<string, string> }).labels, at: Date.now() });
        if (name === 'terminate') return Promise.reject(new PluginError(Code.Unavailable, 'EC2 throttled'));
        return Promise.resolve({ status: 'ok', message: '', attributes: { detached: 'yes' } });
      });
      // The cloud API throttles: the run's next try is to wait 2 s (no jitter), not come at once.
      const yaml = 'plugins:\n  detach: { type: log }\n  terminate: { type: log }\nflows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [instance_id]\n    runRetry: { attempts: 3, initialBackoff: 2s, maxBackoff: 2s }\n    plugins: [detach, terminate]\n';
      const { config } = parseConfig(yaml, 'test.yaml', {});
      const plugins = new Map([['detach', plugin('detach')], ['terminate', plugin('terminate')]]);
      return { engine: new FlowEngine({ flows: config.flows, plugins, logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store, random: () => 1 }), store };
    };
    const event: CloudEvent = { id: 'e1', source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: 'i-1' } } };
    const a = engineOf('a');
    a.engine.dispatch(event, Date.now());
    await expect.poll(() => a.engine.groups().map((g) => g.phase), { timeout: 5_000, interval: 10 }).toEqual(['retrying']);
    const retryAt = a.engine.groups()[0]!.run!.retryAt!;
    // As core stops: the engine, then the store.
    await a.engine.shutdown(1_000);
    await a.store.close();
    expect(api.cluster.leases.all().map((l) => l.spec?.holderIdentity)).toEqual(['']);
    const b = engineOf('b');
    b.engine.dispatch(event, Date.now());
    // b holds the group at once, and waits for the try as a would have.
    await expect.poll(() => api.cluster.leases.all().map((l) => l.spec?.holderIdentity), { timeout: 5_000, interval: 10 }).toEqual(['b']);
    await expect.poll(() => calls.length, { timeout: 10_000, interval: 10 }).toBe(3);
    expect(calls.map(({ replica, plugin }) => `${replica} ${plugin}`)).toEqual(['a detach', 'a terminate', 'b terminate']);
    expect(calls[2]!.at).toBeGreaterThanOrEqual(retryAt);
    expect(calls[2]!.labels).toMatchObject({ instance_id: 'i-1', detached: 'yes' });
    // Its second try fails as well: it waits for its third, the last runRetry allows.
    await expect.poll(() => b.engine.groups().map((g) => `${g.phase} ${g.run?.attempt}`), { timeout: 5_000, interval: 10 }).toEqual(['retrying 3']);
    await b.engine.shutdown(1_000);
  });

  it('a run still queued when the shutdown grace ended, whose claim was still on its way, is handed back with its event once that claim lands, not deleted with it: another replica goes on with it', async () => {
    const calls: string[] = [];
    const engineOf = (replicaName: string): { engine: FlowEngine; store: KubernetesRunStateStore } => {
      const { store } = replica(replicaName);
      const plugin = stubPlugin('drain', 60_000, async (event, { signal }) => {
        const instance = (event.data as { labels: { instance_id: string } }).labels.instance_id;
        calls.push(`${replicaName} ${instance}`);
        // i-0 keeps the flow's one slot on a until the shutdown cuts it short.
        if (replicaName === 'a' && instance === 'i-0') await new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
        return { status: 'ok', message: '', attributes: {} };
      });
      const { config } = parseConfig('plugins:\n  drain: { type: log }\nflows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [instance_id]\n    concurrency: 1\n    cooldown: 10m\n    plugins: [drain]\n', 'test.yaml', {});
      const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['drain', plugin]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store });
      store.onCutShort((handed) => engine.goOnWith(handed));
      return { engine, store };
    };
    const notice = (id: string, instance: string): CloudEvent => ({ id, source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: instance } } });
    const a = engineOf('a');
    a.engine.dispatch(notice('e0', 'i-0'), Date.now());
    await expect.poll(() => calls, { timeout: 5_000, interval: 10 }).toEqual(['a i-0']);
    // i-1's claim is slow (a wave's claims wait for their turn, the API server throttles): it is still on its way as the grace ends.
    let answerClaim!: () => void;
    api.failNext(1, { method: 'POST', path: LEASES_PATH, effect: 'delay', until: new Promise<void>((resolve) => (answerClaim = resolve)) });
    a.engine.dispatch(notice('e1', 'i-1'), Date.now());
    const committed = a.engine.commit();
    await a.engine.shutdown(100);
    answerClaim();
    // The sender of e1 is told it was taken: its run must not be lost.
    expect(await committed).toBe(true);
    await a.store.close();
    const held = (instance: string): string[] => api.cluster.leases.all().filter((l) => l.metadata.annotations!['hollowtrees.io/group-key'] === `spot:{instance_id="${instance}"}`).map((l) => `${l.spec?.holderIdentity ?? ''}|${l.metadata.annotations!['hollowtrees.io/run-event'] === undefined ? 'no event' : 'event'}`);
    expect(held('i-1')).toEqual(['|event']);
    // Another replica's list finds it, and goes on with it, as with i-0.
    const b = engineOf('b');
    b.store.sweep(Date.now());
    await expect.poll(() => b.engine.groups().filter((g) => g.phase === 'cooling').map((g) => g.key).sort(), { timeout: 5_000, interval: 10 }).toEqual(['spot:{instance_id="i-0"}', 'spot:{instance_id="i-1"}']);
    expect(calls.slice(1).sort()).toEqual(['b i-0', 'b i-1']);
  });

  it('a run whose next try came due but still waited in the queue when the shutdown grace ended is handed back with its place: another replica calls only the plugin that failed', async () => {
    const calls: string[] = [];
    const engineOf = (replicaName: string): FlowEngine => {
      const { store } = replica(replicaName);
      const plugin = (name: string): ActionPlugin => stubPlugin(name, 60_000, async (event, { signal }) => {
        const instance = (event.data as { labels: { instance_id: string } }).labels.instance_id;
        calls.push(`${replicaName} ${name} ${instance}`);
        // i-1's first terminate fails; i-2 keeps the flow's one slot until the shutdown cuts it short.
        if (name === 'terminate' && instance === 'i-1' && replicaName === 'a') throw new PluginError(Code.Unavailable, 'EC2 throttled');
        if (instance === 'i-2') await new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
        return { status: 'ok', message: '', attributes: {} };
      });
      const yaml = 'plugins:\n  detach: { type: log }\n  terminate: { type: log }\nflows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [instance_id]\n    concurrency: 1\n    runRetry: { attempts: 3, initialBackoff: 50ms, maxBackoff: 50ms }\n    plugins: [detach, terminate]\n';
      const { config } = parseConfig(yaml, 'test.yaml', {});
      return new FlowEngine({ flows: config.flows, plugins: new Map([['detach', plugin('detach')], ['terminate', plugin('terminate')]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store });
    };
    const notice = (id: string, instance: string): CloudEvent => ({ id, source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: instance } } });
    const a = engineOf('a');
    a.dispatch(notice('e1', 'i-1'), Date.now());
    // Queued behind i-1's first try: it takes the slot before i-1's next try comes due, and keeps it.
    a.dispatch(notice('e2', 'i-2'), Date.now());
    await expect.poll(() => calls, { timeout: 5_000, interval: 10 }).toEqual(['a detach i-1', 'a terminate i-1', 'a detach i-2']);
    // i-1's next try is due and waits for the slot.
    await expect.poll(() => a.flowStatus()[0]!.queued, { timeout: 5_000, interval: 10 }).toBe(1);
    await a.shutdown(100);
    await stores[0]!.close();
    const b = engineOf('b');
    const heard: RunSettlement[] = [];
    b.dispatch(notice('e1', 'i-1'), Date.now(), (s) => heard.push(s));
    await b.drain();
    expect(heard.map((s) => s.outcome)).toEqual(['succeeded']);
    expect(calls.slice(3)).toEqual(['b terminate i-1']);
  });

  it('a run in flight at shutdown is handed back with its event: another replica goes on with it by itself at its next list, calling only the plugins after the one that acted, with no event sent again', async () => {
    const calls: string[] = [];
    let stall = true;
    const engineOf = (replicaName: string): { engine: FlowEngine; store: KubernetesRunStateStore } => {
      const { store } = replica(replicaName);
      const plugin = (name: string): ActionPlugin => stubPlugin(name, 60_000, (event, call): Promise<PluginResponse> => {
        calls.push(`${replicaName} ${name} ${(event.data as { labels: Record<string, string> }).labels.drained ?? '-'}`);
        if (name === 'replace' && stall) return new Promise((_, reject) => call.signal?.addEventListener('abort', () => reject(new PluginError(Code.Canceled, 'cancelled'))));
        const attributes: Record<string, string> = name === 'drain' ? { drained: 'yes' } : {};
        return Promise.resolve({ status: 'ok', message: '', attributes });
      });
      const { config } = parseConfig('plugins:\n  drain: { type: log }\n  replace: { type: log }\nflows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [instance_id]\n    cooldown: 10m\n    plugins: [drain, replace]\n', 'test.yaml', {});
      const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['drain', plugin('drain')], ['replace', plugin('replace')]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store });
      store.onCutShort((handed) => engine.goOnWith(handed));
      return { engine, store };
    };
    const a = engineOf('a');
    const b = engineOf('b');
    a.engine.dispatch({ id: 'e1', source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: 'i-1' } } }, Date.now());
    await expect.poll(() => calls, { timeout: 5_000, interval: 10 }).toEqual(['a drain -', 'a replace yes']);
    // SIGTERM during replace: the grace period ends with it in flight.
    await a.engine.shutdown(50);
    await a.store.close();
    expect(api.cluster.leases.all().map((l) => l.spec?.holderIdentity)).toEqual(['']);
    stall = false;
    // b never got the event: its list (the 30 s sweep, here at once) finds the run.
    b.store.sweep(Date.now());
    await expect.poll(() => b.engine.groups().map((g) => g.phase), { timeout: 5_000, interval: 10 }).toEqual(['cooling']);
    expect(calls).toEqual(['a drain -', 'a replace yes', 'b replace yes']);
    expect(await b.engine.commit()).toBe(true);
    expect(api.cluster.leases.all().map((l) => [l.spec?.holderIdentity, l.metadata.annotations!['hollowtrees.io/phase']])).toEqual([['b', 'cooling']]);
    // Offered again (another list before the cooldown is seen), it is not run again.
    await observe(b.store);
    await b.engine.drain();
    expect(calls).toHaveLength(3);
  });

  it('a run whose holder was killed before any plugin passed, found by another replica\'s sweep, is reported interrupted there as it goes on with it', async () => {
    // Renew ticks far apart: b's sweep, not its renew tick's list, is the first to find the Lease expired.
    const dead = replica('dead', { leaseDurationMs: 180_000, renewIntervalMs: 60_000 }).store;
    const shift: ClockShift = { wallMs: 0, monotonicMs: 0 };
    const { store } = replica('b', { leaseDurationMs: 180_000, renewIntervalMs: 60_000, shift });
    const plugin: ActionPlugin = stubPlugin('drain', 5_000, () => Promise.resolve({ status: 'ok', message: '', attributes: {} }));
    const { config } = parseConfig('plugins:\n  drain: { type: log }\nflows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [instance_id]\n    cooldown: 10m\n    plugins: [drain]\n', 'test.yaml', {});
    const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['drain', plugin]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store });
    store.onCutShort((cut) => engine.goOnWith(cut));
    const key = 'spot:{instance_id="i-1"}';
    const progress: RunProgress = { ...run('e1'), event: { id: 'e1', source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: 'i-1' } } } as CloudEvent };
    // Its claim made, the dead replica is killed during its first plugin call: the Lease has its event, and no place.
    dead.tryStart(key, 'spot', progress, Date.now());
    expect((await dead.claim(key, progress)).claim).toBe('held');
    await observe(store);
    shift.monotonicMs = 200_000;
    // b's sweep finds the Lease expired.
    await observe(store);
    await expect.poll(() => engine.recentRuns().map((r) => r.outcome), { timeout: 5_000, interval: 10 }).toContain('succeeded');
    expect(engine.recentRuns().map((r) => r.outcome)).toEqual(['succeeded', 'interrupted']);
  });

  it('a run whose holder was killed before any plugin passed, found by a sweep while the lister has no room, stays in its Lease with its event: a later list goes on with it', async () => {
    const dead = replica('dead', { leaseDurationMs: 180_000, renewIntervalMs: 60_000 }).store;
    const shift: ClockShift = { wallMs: 0, monotonicMs: 0 };
    const { store } = replica('b', { leaseDurationMs: 180_000, renewIntervalMs: 60_000, shift });
    const calls: string[] = [];
    let free!: () => void;
    const busy = new Promise<void>((resolve) => (free = resolve));
    const plugin: ActionPlugin = stubPlugin('drain', 60_000, async (event) => {
      const instance = (event.data as { labels: { instance_id: string } }).labels.instance_id;
      calls.push(instance);
      // b's own run of i-2 keeps its flow's one slot until freed.
      if (instance === 'i-2') await busy;
      return { status: 'ok', message: '', attributes: {} };
    });
    const { config } = parseConfig('plugins:\n  drain: { type: log }\nflows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [instance_id]\n    concurrency: 1\n    queueSize: 0\n    plugins: [drain]\n', 'test.yaml', {});
    const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['drain', plugin]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store });
    store.onCutShort((cut) => engine.goOnWith(cut));
    const notice = (id: string, instance: string): CloudEvent => ({ id, source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: instance } } });
    const key = 'spot:{instance_id="i-1"}';
    const progress: RunProgress = { ...run('e1'), event: notice('e1', 'i-1') };
    // Its claim made, the dead replica is killed during its first plugin call: the Lease has its event, and no place.
    dead.tryStart(key, 'spot', progress, Date.now());
    expect((await dead.claim(key, progress)).claim).toBe('held');
    engine.dispatch(notice('e2', 'i-2'), Date.now());
    await expect.poll(() => calls, { timeout: 5_000, interval: 10 }).toEqual(['i-2']);
    await observe(store);
    shift.monotonicMs = 200_000;
    // b's sweep finds the Lease expired while its one slot is taken: no room for the run.
    await observe(store);
    await store.commit();
    expect(api.cluster.leases.all().map((l) => l.spec?.holderIdentity).sort()).toEqual(['b', 'dead']);
    // Room again: the next list goes on with it.
    free();
    await expect.poll(() => engine.flowStatus()[0]!.running, { timeout: 5_000, interval: 10 }).toBe(0);
    await observe(store);
    await expect.poll(() => calls, { timeout: 5_000, interval: 10 }).toEqual(['i-2', 'i-1']);
    await engine.drain();
    expect(engine.recentRuns().map((r) => `${r.groupKey} ${r.outcome}`)).toContain(`${key} interrupted`);
  });

  it('a run taken over from a hand-back and still queued when that replica stops in turn (a rolling update) is handed back with the place it took over: a third replica calls only the plugins after it', async () => {
    const calls: string[] = [];
    const engineOf = (replicaName: string): { engine: FlowEngine; store: KubernetesRunStateStore } => {
      const { store } = replica(replicaName);
      const plugin = (name: string): ActionPlugin => stubPlugin(name, 60_000, (event, call): Promise<PluginResponse> => {
        const instance = (event.data as { labels: { instance_id: string } }).labels.instance_id;
        calls.push(`${replicaName} ${name} ${instance}`);
        // a's replace of i-1, and b's run of i-2 (which keeps b's one slot), are in flight until their shutdown.
        if ((replicaName === 'a' && name === 'replace') || (replicaName === 'b' && instance === 'i-2')) return new Promise((_, reject) => call.signal?.addEventListener('abort', () => reject(new PluginError(Code.Canceled, 'cancelled'))));
        return Promise.resolve({ status: 'ok', message: '', attributes: {} });
      });
      const { config } = parseConfig('plugins:\n  drain: { type: log }\n  replace: { type: log }\nflows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [instance_id]\n    concurrency: 1\n    plugins: [drain, replace]\n', 'test.yaml', {});
      const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['drain', plugin('drain')], ['replace', plugin('replace')]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store });
      store.onCutShort((handed) => engine.goOnWith(handed));
      return { engine, store };
    };
    const notice = (id: string, instance: string): CloudEvent => ({ id, source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: instance } } });
    const a = engineOf('a');
    const b = engineOf('b');
    a.engine.dispatch(notice('e1', 'i-1'), Date.now());
    b.engine.dispatch(notice('e2', 'i-2'), Date.now());
    await expect.poll(() => [...calls].sort(), { timeout: 5_000, interval: 10 }).toEqual(['a drain i-1', 'a replace i-1', 'b drain i-2']);
    await a.engine.shutdown(50);
    await a.store.close();
    // b's list takes i-1's run over (its claim holds the Lease), which waits in b's queue behind i-2.
    await observe(b.store);
    await b.store.commit();
    expect(api.cluster.leases.all().map((l) => l.spec?.holderIdentity)).toEqual(['b', 'b']);
    expect(b.engine.flowStatus()[0]!.queued).toBe(1);
    // The rolling update stops b in turn before that run started.
    await b.engine.shutdown(50);
    await b.store.close();
    const c = engineOf('c');
    await observe(c.store);
    await expect.poll(() => calls.filter((call) => call.startsWith('c ') && call.endsWith('i-1')), { timeout: 5_000, interval: 10 }).toEqual(['c replace i-1']);
    await c.engine.drain();
    expect(calls.filter((call) => call.endsWith('i-1'))).toEqual(['a drain i-1', 'a replace i-1', 'c replace i-1']);
  });

  it('a run handed back while the replica that lists it has no room stays handed back in its Lease, with its event and place, and is counted as no dropped event: that replica goes on with it once it has room', async () => {
    const calls: string[] = [];
    let free!: () => void;
    const busy = new Promise<void>((resolve) => (free = resolve));
    const engineOf = (replicaName: string): { engine: FlowEngine; store: KubernetesRunStateStore; metrics: EngineMetrics } => {
      const { store } = replica(replicaName);
      const plugin: ActionPlugin = stubPlugin('replace', 60_000, async (event, call) => {
        const instance = (event.data as { labels: { instance_id: string } }).labels.instance_id;
        calls.push(`${replicaName} ${instance}`);
        // a's run is in flight at its shutdown; b's own run of i-2 keeps b's one slot until freed.
        if (replicaName === 'a') await new Promise((_, reject) => call.signal?.addEventListener('abort', () => reject(new PluginError(Code.Canceled, 'cancelled'))));
        if (instance === 'i-2') await busy;
        return { status: 'ok', message: '', attributes: {} };
      });
      const { config } = parseConfig('plugins:\n  replace: { type: log }\nflows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [instance_id]\n    concurrency: 1\n    queueSize: 0\n    plugins: [replace]\n', 'test.yaml', {});
      const metrics = new EngineMetrics(new Registry());
      const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['replace', plugin]]), logger: pino({ level: 'silent' }), metrics, store });
      store.onCutShort((handed) => engine.goOnWith(handed));
      return { engine, store, metrics };
    };
    const notice = (id: string, instance: string): CloudEvent => ({ id, source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: instance } } });
    const a = engineOf('a');
    const b = engineOf('b');
    a.engine.dispatch(notice('e1', 'i-1'), Date.now());
    b.engine.dispatch(notice('e2', 'i-2'), Date.now());
    await expect.poll(() => [...calls].sort(), { timeout: 5_000, interval: 10 }).toEqual(['a i-1', 'b i-2']);
    await a.engine.shutdown(50);
    await a.store.close();
    // b lists the handed-back run twice while its one slot is taken: no room, and its Lease is left as it was.
    await observe(b.store);
    await observe(b.store);
    await b.store.commit();
    expect(api.cluster.leases.all().map((l) => l.spec?.holderIdentity).sort()).toEqual(['', 'b']);
    // Nor is it counted as an event dropped at each list: b dropped no event.
    const dropped = async (): Promise<number> => (await b.metrics.eventsDropped.get()).values.reduce((sum, v) => sum + v.value, 0);
    expect(await dropped()).toBe(0);
    // Room again: the next list goes on with it.
    free();
    await expect.poll(() => b.engine.flowStatus()[0]!.running, { timeout: 5_000, interval: 10 }).toBe(0);
    await observe(b.store);
    await expect.poll(() => calls, { timeout: 5_000, interval: 10 }).toContain('b i-1');
    await b.engine.drain();
    expect(calls.filter((c) => c === 'b i-1')).toHaveLength(1);
    expect(await dropped()).toBe(0);
  });

  it('a run taken over goes on from its place only for the event it was for, and not after it was resumed 5 times', async () => {
    const before = replica('core-0').store;
    const place = { next: 1, at: { plugin: 'terminate', occurrence: 0, passed: ['detach'] }, attributes: {}, attempt: 1 };
    // Each run passed detach; i-1's was resumed 5 times already.
    for (const [instance, id, restarts] of [['i-1', 'e1', 5], ['i-2', 'e2', 0]] as const) {
      const key = `spot:{instance_id="${instance}"}`;
      expect(before.tryStart(key, 'spot', run(id), Date.now())).toBe('started');
      expect((await before.claim(key, run(id))).claim).toBe('held');
      before.progress(key, 'running', { ...run(id), ...place, restarts });
    }
    expect(await before.commit()).toBe(true);
    // kill -9, and the same pod's container restarted: it takes its own Leases over at once.
    await before.close();
    const { store } = replica('core-0');
    const calls: string[] = [];
    const plugin = (name: string): ActionPlugin => stubPlugin(name, 5_000, (event) => {
      calls.push(`${name} ${(event.data as { labels: { instance_id: string } }).labels.instance_id}`);
      return Promise.resolve({ status: 'ok', message: '', attributes: {} });
    });
    const { config } = parseConfig('plugins:\n  detach: { type: log }\n  terminate: { type: log }\nflows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [instance_id]\n    plugins: [detach, terminate]\n', 'test.yaml', {});
    const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['detach', plugin('detach')], ['terminate', plugin('terminate')]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store });
    const heard: RunSettlement[] = [];
    engine.dispatch({ id: 'e1', source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: 'i-1' } } }, Date.now(), (settled) => heard.push(settled));
    // Another alert of the group i-2 (it fired again, with another startsAt): a reclaim of its own, from the start.
    engine.dispatch({ id: 'e3', source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: 'i-2' } } }, Date.now(), (settled) => heard.push(settled));
    await engine.drain();
    expect(heard).toEqual([
      { flow: 'spot', outcome: 'failed', error: 'not resumed: it was resumed 5 times and never finished' },
      expect.objectContaining({ flow: 'spot', outcome: 'succeeded' }),
    ]);
    expect(calls).toEqual(['detach i-2', 'terminate i-2']);
  });

  it('a run whose replica stops each time during its first plugin call (an OOM kill in a crash loop) is resumed 5 times, then given up: it does not stop every replica for ever', async () => {
    const calls: number[] = [];
    const heard: RunSettlement[] = [];
    const { config } = parseConfig('plugins:\n  drain: { type: log }\nflows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [instance_id]\n    plugins: [drain]\n', 'test.yaml', {});
    // Its call never ends: the process is killed during it.
    const plugin = stubPlugin('drain', 600_000, () => {
      calls.push(Date.now());
      return new Promise<PluginResponse>(() => {});
    });
    for (let life = 0; life < 7; life++) {
      // kill -9, and the same pod's container restarted: it takes its own Lease over at once, for the alert's re-send.
      const { store } = replica('core-0');
      const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['drain', plugin]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store });
      engine.dispatch({ id: 'e1', source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: 'i-1' } } }, Date.now(), (settled) => heard.push(settled));
      await expect.poll(() => calls.length + heard.length, { timeout: 5_000, interval: 10 }).toBe(life + 1);
      await store.close();
    }
    expect(calls).toHaveLength(6);
    expect(heard).toEqual([{ flow: 'spot', outcome: 'failed', error: 'not resumed: it was resumed 5 times and never finished' }]);
  });

  it('a run this replica stopped when its hold lapsed, taken over again by this replica, is reported interrupted once, not also as another replica\'s', async () => {
    const shift: ClockShift = { wallMs: 0, monotonicMs: 0 };
    const { store } = replica('a', { leaseDurationMs: 180_000, renewIntervalMs: 100, shift });
    const calls: string[] = [];
    const plugin: ActionPlugin = stubPlugin('detach', 600_000, async (_event, { signal }) => {
      calls.push('detach');
      // The first call waits until its run is stopped; the next answers.
      if (calls.length === 1) await new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
      return { status: 'ok', message: '', attributes: {} };
    });
    const { config } = parseConfig('plugins:\n  detach: { type: log }\nflows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [instance_id]\n    plugins: [detach]\n', 'test.yaml', {});
    const engine = new FlowEngine({ flows: config.flows, plugins: new Map([['detach', plugin]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store });
    const event: CloudEvent = { id: 'e1', source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: 'i-1' } } };
    engine.dispatch(event, Date.now());
    await expect.poll(() => calls, { timeout: 5_000, interval: 10 }).toEqual(['detach']);
    // Stopped past its Lease, the API server out of reach as it wakes: its next renew tick finds its renewals unconfirmed too
    // long, the renewal it makes then gets no answer either, and the run is stopped.
    api.unreachable = true;
    shift.monotonicMs = 200_000;
    await expect.poll(() => engine.recentRuns().map((r) => r.outcome), { timeout: 5_000, interval: 10 }).toEqual(['interrupted']);
    api.unreachable = false;
    // The event's re-send reaches the same replica, which takes its own Lease over.
    engine.dispatch(event, Date.now());
    await expect.poll(() => engine.recentRuns().map((r) => r.outcome), { timeout: 5_000, interval: 10 }).toEqual(['succeeded', 'interrupted']);
    await engine.drain();
    expect(engine.recentRuns().map((r) => r.error ?? '')).not.toContainEqual(expect.stringMatching(/stopped renewing/));
  });

  it('a replica paused past its Lease (SIGSTOP, a GC pause) whose plugin answers as it resumes calls no further plugin: another replica took the group over meanwhile', async () => {
    // Renew ticks far apart: the answer comes in before any tick of the resumed process, as Node runs I/O before timers.
    const aShift: ClockShift = { wallMs: 0, monotonicMs: 0 };
    const { store } = replica('a', { leaseDurationMs: 180_000, renewIntervalMs: 60_000, shift: aShift });
    const bShift: ClockShift = { wallMs: 0, monotonicMs: 0 };
    const b = replica('b', { leaseDurationMs: 180_000, renewIntervalMs: 60_000, shift: bShift }).store;
    let answer!: () => void;
    const calls: string[] = [];
    const plugin = (name: string, wait?: Promise<void>): ActionPlugin => stubPlugin(name, 600_000, async () => {
      calls.push(name);
      await wait;
      return { status: 'ok', message: '', attributes: {} };
    });
    const { config } = parseConfig('plugins:\n  detach: { type: log }\n  terminate: { type: log }\nflows:\n  spot:\n    allowedEvents: [t]\n    groupBy: [instance_id]\n    plugins: [detach, terminate]\n', 'test.yaml', {});
    const plugins = new Map([
      ['detach', plugin('detach', new Promise<void>((resolve) => (answer = resolve)))],
      ['terminate', plugin('terminate')],
    ]);
    const engine = new FlowEngine({ flows: config.flows, plugins, logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store });
    const heard: RunSettlement[] = [];
    engine.dispatch({ id: 'e1', source: 's', specversion: '1.0', type: 't', data: { labels: { instance_id: 'i-1' } } }, Date.now(), (s) => heard.push(s));
    await expect.poll(() => calls, { timeout: 5_000, interval: 10 }).toEqual(['detach']);
    // a is stopped for longer than its Lease; b, which saw the Lease before, takes the group over.
    await observe(b);
    for (const shift of [aShift, bShift]) shift.wallMs = shift.monotonicMs = 200_000;
    const key = 'spot:{instance_id="i-1"}';
    expect(b.tryStart(key, 'spot', run('e2'), Date.now() + bShift.wallMs)).toBe('started');
    expect(await b.claim(key, run('e2'))).toMatchObject({ claim: 'held', takenOver: { holder: 'a' } });
    // a resumes and reads detach's answer before its renew tick runs.
    answer();
    await engine.drain();
    expect(calls).toEqual(['detach']);
    expect(heard.map((s) => s.outcome)).toEqual(['interrupted']);
  });
});

describe('runs that ended on one replica, as the others list them (the status API of several replicas)', () => {
  const FLOW = (cooldown: string): string => `plugins:\n  drain: { type: log }\nflows:\n  spot:\n    allowedEvents: [hollowtrees.node.aws.spot-interruption]\n    groupBy: [instance_id]\n    cooldown: ${cooldown}\n    runRetry: { attempts: 1 }\n    plugins: [drain]\n`;
  const engineOn = (store: KubernetesRunStateStore, cooldown: string, invoke: ActionPlugin['invoke']): FlowEngine =>
    new FlowEngine({ flows: parseConfig(FLOW(cooldown), 'test.yaml', {}).config.flows, plugins: new Map([['drain', stubPlugin('drain', 5_000, invoke)]]), logger: pino({ level: 'silent' }), metrics: new EngineMetrics(new Registry()), store });
  const notice = (id: string, instance: string): CloudEvent => ({ id, source: 's', specversion: '1.0', type: 'hollowtrees.node.aws.spot-interruption', data: { labels: { instance_id: instance } } });
  const runEndLeases = (): string[] => api.cluster.leases.all().filter((l) => l.metadata.labels?.['hollowtrees.io/role'] === 'run-end').map((l) => l.metadata.name);
  const blocked: ActionPlugin['invoke'] = () => Promise.reject(new PluginError(Code.FailedPrecondition, 'eviction blocked by a PodDisruptionBudget'));

  it('a run that failed for good on a is listed by b, with a\'s name, the error and the times a listed; a lists it once, from memory; kept 15 minutes, then swept', async () => {
    const a = replica('a');
    const engine = engineOn(a.store, '10m', blocked);
    engine.dispatch(notice('e1', 'i-1'), a.now());
    await engine.drain();
    const [own] = engine.recentRuns();
    expect(own).toMatchObject({ outcome: 'failed', eventId: 'e1' });
    await expect.poll(runEndLeases, { timeout: 5_000, interval: 10 }).toEqual([expect.stringMatching(/^hollowtrees-ended-[0-9a-f]{40}$/)]);
    // Not run state: the group is free, on every replica.
    const b = replica('b');
    await b.store.catchUp(0, 'runs');
    expect(b.store.list(b.now())).toEqual([]);
    expect(b.store.sharedRuns()).toEqual([
      { key: 'spot:{instance_id="i-1"}', flow: 'spot', eventId: 'e1', eventType: 'hollowtrees.node.aws.spot-interruption', error: own!.error, receivedAt: own!.receivedAt, startedAt: own!.startedAt, finishedAt: own!.finishedAt, outcome: 'failed', replica: 'a' },
    ]);
    expect(own!.error).toContain('eviction blocked');
    await a.store.catchUp(0, 'runs');
    expect(a.store.sharedRuns()).toEqual([]);
    // a restarted (the same pod name): its earlier process's failure is listed from the Lease.
    const again = replica('a');
    await again.store.catchUp(0, 'runs');
    expect(again.store.sharedRuns()).toEqual([expect.objectContaining({ eventId: 'e1', outcome: 'failed', replica: 'a' })]);
    // A sweep keeps it for the 15 minutes a node watcher follows a notice's runs, and deletes it after.
    b.wait(RUN_END_KEPT_MS - 60_000);
    await observe(b.store);
    expect(runEndLeases()).toHaveLength(1);
    b.wait(61_000);
    await observe(b.store);
    await expect.poll(runEndLeases, { timeout: 5_000, interval: 10 }).toEqual([]);
    await b.store.catchUp(0, 'runs');
    expect(b.store.sharedRuns()).toEqual([]);
  });

  it('a run on a that succeeded: b, asked right after a took the event, lists a\'s run in its groups; then its success, from the cooldown\'s Lease', async () => {
    const a = replica('a');
    let finish!: () => void;
    const drained = new Promise<void>((resolve) => (finish = resolve));
    const engine = engineOn(a.store, '10m', async () => {
      await drained;
      return { status: 'ok', message: '', attributes: {} };
    });
    const b = replica('b');
    // b's view is fresh a moment before a takes the event; a read after it must not be answered from that view.
    await b.store.catchUp(0, 'runs');
    expect(b.store.list(b.now())).toEqual([]);
    engine.dispatch(notice('e1', 'i-1'), a.now());
    expect(await engine.commit()).toBe(true);
    await b.store.catchUp(0, 'runs');
    expect(b.store.list(b.now())).toEqual([expect.objectContaining({ key: 'spot:{instance_id="i-1"}', phase: 'running', eventId: 'e1', replica: 'a' })]);
    expect(b.store.sharedRuns()).toEqual([]);
    finish();
    await engine.drain();
    expect(await a.store.commit()).toBe(true);
    await b.store.catchUp(0, 'runs');
    const [own] = engine.recentRuns();
    expect(b.store.sharedRuns()).toEqual([expect.objectContaining({ key: 'spot:{instance_id="i-1"}', flow: 'spot', eventId: 'e1', outcome: 'succeeded', replica: 'a' })]);
    // Of a success, its end is known: the cooldown's start, which a wrote as the run ended.
    expect(Math.abs(b.store.sharedRuns()[0]!.finishedAt - own!.finishedAt)).toBeLessThan(50);
    // Reads that come within the age they accept are answered from that list: no list of their own.
    const lists = (): number => api.requests.filter((r) => r.method === 'GET' && LEASES_PATH.test(r.path)).length;
    const before = lists();
    await Promise.all([b.store.catchUp(2_000, 'runs'), b.store.catchUp(2_000, 'runs'), b.store.catchUp(2_000, 'runs')]);
    expect(lists()).toBe(before);
    // Reads that come while a list is in flight wait for one begun after them: one more list for all of them.
    await Promise.all([b.store.catchUp(0, 'runs'), b.store.catchUp(0, 'runs'), b.store.catchUp(0, 'runs')]);
    expect(lists()).toBeLessThanOrEqual(before + 4);
  });

  it('a read of the groups lists the run-state Leases alone; a read of the runs the run-end Leases too, and its list serves a read of the groups that accepts its age', async () => {
    const b = replica('b');
    const lists = (): [number, number] => {
      const of = (role: string): number => api.requests.filter((r) => r.method === 'GET' && LEASES_PATH.test(r.path) && r.query.labelSelector?.includes(`hollowtrees.io/role=${role}`)).length;
      return [of('run-state'), of('run-end')];
    };
    const [states, ends] = lists();
    await b.store.catchUp(0, 'groups');
    expect(lists()).toEqual([states + 1, ends]);
    await b.store.catchUp(0, 'runs');
    expect(lists()).toEqual([states + 2, ends + 1]);
    await b.store.catchUp(2_000, 'groups');
    expect(lists()).toEqual([states + 2, ends + 1]);
  });

  it('a run on a that succeeded in a flow with no cooldown (its group\'s Lease deleted as it ends) is listed by b as succeeded, with the times a listed', async () => {
    const a = replica('a');
    const engine = engineOn(a.store, '0s', () => Promise.resolve({ status: 'ok', message: '', attributes: {} }));
    engine.dispatch(notice('e1', 'i-1'), a.now());
    await engine.drain();
    const [own] = engine.recentRuns();
    expect(own).toMatchObject({ outcome: 'succeeded', eventId: 'e1' });
    await expect.poll(runEndLeases, { timeout: 5_000, interval: 10 }).toHaveLength(1);
    expect(api.cluster.leases.all().filter((l) => l.metadata.labels?.['hollowtrees.io/role'] === 'run-state')).toEqual([]);
    const b = replica('b');
    await b.store.catchUp(0, 'runs');
    expect(b.store.sharedRuns()).toEqual([
      { key: 'spot:{instance_id="i-1"}', flow: 'spot', eventId: 'e1', eventType: 'hollowtrees.node.aws.spot-interruption', receivedAt: own!.receivedAt, startedAt: own!.startedAt, finishedAt: own!.finishedAt, outcome: 'succeeded', replica: 'a' },
    ]);
  });

  it('b lists, of a\'s run ends and groups, those of the events asked for alone: a failure from its run-end Lease, a success from its cooldown\'s', async () => {
    const a = replica('a');
    const engine = engineOn(a.store, '10m', (event, call) => (event.id === 'e1' ? blocked(event, call) : Promise.resolve({ status: 'ok', message: '', attributes: {} })));
    engine.dispatch(notice('e1', 'i-1'), a.now());
    engine.dispatch(notice('e2', 'i-2'), a.now());
    await engine.drain();
    expect(await a.store.commit()).toBe(true);
    await expect.poll(runEndLeases, { timeout: 5_000, interval: 10 }).toHaveLength(1);
    const b = replica('b');
    await b.store.catchUp(0, 'runs');
    const of = (...ids: string[]): string[] => b.store.sharedRuns(new Set(ids)).map((r) => `${r.eventId} ${r.outcome}`);
    expect([of('e1'), of('e2'), of('e1', 'e2').sort(), of('never-sent')]).toEqual([['e1 failed'], ['e2 succeeded'], ['e1 failed', 'e2 succeeded'], []]);
    // Its groups likewise: e2's cools down on a, e1's was freed as its run failed.
    expect(b.store.list(b.now(), new Set(['e2']))).toEqual([expect.objectContaining({ eventId: 'e2', phase: 'cooling', replica: 'a' })]);
    expect(b.store.list(b.now(), new Set(['e1', 'never-sent']))).toEqual([]);
    expect(a.store.list(a.now(), new Set(['e2']))).toEqual([expect.objectContaining({ eventId: 'e2', phase: 'cooling' })]);
  });

  it('another installation\'s run-end Leases (its own leasePrefix) are neither listed nor swept', async () => {
    const staging = replica('staging', { leasePrefix: 'staging-' });
    const engine = engineOn(staging.store, '10m', blocked);
    engine.dispatch(notice('e1', 'i-1'), staging.now());
    await engine.drain();
    await expect.poll(runEndLeases, { timeout: 5_000, interval: 10 }).toEqual([expect.stringMatching(/^staging-ended-/)]);
    const prod = replica('prod', { leasePrefix: 'prod-' });
    await prod.store.catchUp(0, 'runs');
    expect(prod.store.sharedRuns()).toEqual([]);
    prod.wait(RUN_END_KEPT_MS + 1_000);
    await observe(prod.store);
    expect(runEndLeases()).toHaveLength(1);
  });
});
