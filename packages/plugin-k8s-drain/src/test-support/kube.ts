/**
 * What this package's tests share: a stand-in API server with the real client on it, a retry
 * budget, a gate for held requests, and the cleanups after each test.
 */
import { startKubeApiServer, type KubeApiServer, type KubeApiServerOptions } from '@hollowtrees/testkit';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach } from 'vitest';
import { Deadline } from '../deadline.js';
import { createKubeApi, type KubeApi } from '../kube-api.js';

/** Things to undo after the current test, run in reverse order by an `afterEach` this registers. */
export function cleanupsAfterEach(): Array<() => unknown> {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return cleanups;
}

/** The stand-in API server, and a {@link KubeApi} on it through the real client. */
export async function startStandIn(cleanups: Array<() => unknown>, options: KubeApiServerOptions = {}): Promise<{ kube: KubeApiServer; api: KubeApi }> {
  const kube = await startKubeApiServer(options);
  cleanups.push(() => kube.close());
  const kc = new KubeConfig();
  kc.loadFromOptions(kube.kubeConfigOptions());
  const api = createKubeApi(kc);
  cleanups.push(() => api.close());
  return { kube, api };
}

/** A retry budget ending `ms` from now, with a short backoff. */
export function retryWithin(cleanups: Array<() => unknown>, ms: number, backoffMs = 5): { deadline: Deadline; backoff: () => number } {
  const deadline = new Deadline(Date.now() + ms, new AbortController().signal);
  cleanups.push(() => deadline.dispose());
  return { deadline, backoff: () => backoffMs };
}

/** A promise the test settles, for a request held at the stand-in (`failNext` with `effect: 'delay'`); opened at cleanup at the latest. */
export function held(cleanups: Array<() => unknown>): { until: Promise<void>; open: () => void } {
  let open!: () => void;
  const until = new Promise<void>((resolve) => (open = resolve));
  cleanups.push(() => open());
  return { until, open };
}
