#!/usr/bin/env node
import { createLogger } from '@hollowtrees/core';
import { spotAlert, spotInterruptionWarning, startSpotTerminationStack } from './stack.js';
import { runPriceSurgeDemo } from './surge-demo.js';

// --price-surge: a pool's spot price surges; capacity first, then the pool drains a few nodes at a time.
if (process.argv.includes('--price-surge')) {
  await runPriceSurgeDemo(createLogger('info'));
  process.exit(0);
}

// --sqs: the notice arrives as EventBridge delivers it to an SQS queue, instead of as a Prometheus alert.
const viaSqs = process.argv.includes('--sqs');
const stack = await startSpotTerminationStack({ logger: createLogger('info'), sqs: viaSqs });
console.error(`core on ${stack.core.url}; reclaiming ${stack.instanceId} (node ${stack.nodeName}, group ${stack.groupName})`);
if (stack.sqs) {
  stack.sqs.queue.send(spotInterruptionWarning(stack.instanceId));
  console.error(`EC2 Spot Instance Interruption Warning sent to ${stack.sqs.queue.url}`);
} else {
  const res = await fetch(`${stack.core.url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spotAlert(stack.instanceId)) });
  console.error(`POST /api/v2/alerts -> ${res.status}`);
}
while (stack.core.engine.recentRuns().length === 0) await new Promise((r) => setTimeout(r, 20));
// The message is deleted once the run succeeded.
while (stack.sqs && stack.sqs.queue.list().length > 0) await new Promise((r) => setTimeout(r, 20));
if (stack.sqs) console.error(`queue messages left: ${stack.sqs.queue.list().length}`);
const [run] = stack.core.engine.recentRuns();
console.error(`run ${run!.outcome}: ${run!.calls.map((c) => `${c.plugin} ${c.code} ${c.durationMs} ms`).join(', ')}`);
const node = stack.kube.cluster.node(stack.nodeName)!;
console.error(`node unschedulable=${String(node.spec?.unschedulable)}, pods left on it: ${stack.kube.cluster.pods(stack.nodeName).length}`);
await stack.close();
