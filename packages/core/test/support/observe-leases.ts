import type { KubeApiServer } from '@hollowtrees/testkit';
import type { KubernetesRunStateStore } from '../../src/state/kubernetes-store.js';

/** Waits until `done()` is true, looking every 5 ms; rejects naming `what` after `timeoutMs`. */
async function until(done: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Lets `store` see every Lease on `api` as it is now, and offer the runs cut short it finds: its sweep lists them
 * (expiry counts from what a replica has seen). Resolves once the store has read that list.
 */
export async function observeLeases(api: KubeApiServer, store: KubernetesRunStateStore): Promise<void> {
  const lists = (): number => api.requests.filter((r) => r.method === 'GET' && /\/leases$/.test(r.path)).length;
  const before = lists();
  store.sweep(Date.now());
  await until(() => lists() > before, 'the sweep\'s list');
  // The answer is on its way back once the stand-in has the request: wait until the store has read it.
  await until(() => !(store as unknown as { sweeping: boolean }).sweeping, 'the sweep to read its list');
}
