import type { Logger } from 'pino';
import { MAX_PRICE, REPLACES_TAG, startSurgeStack } from './surge-stack.js';

/** Three times the threshold. */
const SURGE_PRICE = 0.3;

/** Surges one pool's price, waits for the run, and says what happened: replacements, then the drain. */
export async function runPriceSurgeDemo(logger: Logger): Promise<void> {
  const stack = await startSurgeStack({ logger });
  console.error(`core on ${stack.core.url}; pool us-east-1a/m5.large: ${stack.poolNodes.length} nodes, spot price ${SURGE_PRICE} USD/h (threshold ${MAX_PRICE})`);
  stack.setPrice(SURGE_PRICE);
  while (stack.core.engine.recentRuns().length === 0) await new Promise((r) => setTimeout(r, 20));
  const [run] = stack.core.engine.recentRuns();
  console.error(`run ${run!.flow} ${run!.outcome}: ${run!.calls.map((c) => `${c.plugin} ${c.code} ${c.durationMs} ms`).join(', ')}`);
  for (const call of run!.calls.slice(0, 2)) console.error(`  ${call.plugin}: ${call.message}`);
  const replacements = stack.aws.ec2.instancesTagged(REPLACES_TAG);
  const lastRunning = Math.max(...replacements.map((i) => i.runningAt!.getTime()));
  const firstEviction = Math.min(...stack.kube.cluster.evictions().map((e) => e.atMs));
  console.error(`replacements running: ${replacements.filter((i) => i.state === 'running').length}, in ${[...new Set(replacements.map((i) => `${i.availabilityZone}/${i.instanceType}`))].join(', ')}; the last ran ${Math.round(firstEviction - lastRunning)} ms before the first eviction`);
  const cordoned = stack.poolNodes.filter((n) => stack.kube.cluster.node(n)!.spec?.unschedulable === true).length;
  console.error(`pool nodes cordoned: ${cordoned}/${stack.poolNodes.length}, pods left on them: ${stack.poolNodes.reduce((n, node) => n + stack.kube.cluster.pods(node).length, 0)}`);
  await stack.close();
}
