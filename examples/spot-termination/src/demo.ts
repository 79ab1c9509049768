#!/usr/bin/env node
import { createLogger } from '@hollowtrees/core';
import { spotAlert, startSpotTerminationStack } from './stack.js';

const stack = await startSpotTerminationStack(createLogger('info'));
console.error(`core on ${stack.core.url}; reclaiming ${stack.instanceId} (node ${stack.nodeName}, group ${stack.groupName})`);
const res = await fetch(`${stack.core.url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spotAlert(stack.instanceId)) });
console.error(`POST /api/v2/alerts -> ${res.status}`);
while (stack.core.engine.recentRuns().length === 0) await new Promise((r) => setTimeout(r, 20));
const [run] = stack.core.engine.recentRuns();
console.error(`run ${run!.outcome}: ${run!.calls.map((c) => `${c.plugin} ${c.code} ${c.durationMs} ms`).join(', ')}`);
const node = stack.kube.cluster.node(stack.nodeName)!;
console.error(`node unschedulable=${String(node.spec?.unschedulable)}, pods left on it: ${stack.kube.cluster.pods(stack.nodeName).length}`);
await stack.close();
