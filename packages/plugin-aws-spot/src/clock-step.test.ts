import { PluginClient, type CloudEvent } from '@hollowtrees/grpcplugin';
import { spawnCaptured, startAwsStandIn, WALL_CLOCK_STEPPED, waitForOutput, wallClockStepPreload, type AwsStandIn, type Spawned } from '@hollowtrees/testkit';
import { afterEach, describe, expect, it } from 'vitest';

// The built bin, as `npx hollowtrees-aws-spot` runs it (`pnpm test` builds first).
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
/** Preloaded into the plugin: SIGUSR2 steps its wall clock 2 h forward, and leaves the monotonic clock alone. */
const STEP_PRELOAD = wallClockStepPreload();

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The plugin bin on `aws`, with the wall clock it reads steppable, and a client of it. */
async function startSteppable(aws: AwsStandIn): Promise<{ proc: Spawned; client: PluginClient }> {
  const proc = spawnCaptured('hollowtrees-aws-spot', process.execPath, ['--no-warnings', CLI, '--port', '0', '--region', 'us-east-1', '--endpoint', aws.url], {
    NODE_OPTIONS: `--import ${STEP_PRELOAD}`,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_EC2_METADATA_DISABLED: 'true',
  });
  cleanups.push(() => proc.kill());
  const { port } = JSON.parse(await waitForOutput(proc, /hollowtrees-aws-spot serving/, 15_000)) as { port: number };
  const client = new PluginClient(`127.0.0.1:${port}`);
  cleanups.push(async () => client.close());
  return { proc, client };
}

describe('a step of the wall clock while the aws-spot plugin runs', () => {
  it('2 h forward inside the rememberMs window (2 min): the same instance asked again is answered from memory, with no AWS call, rather than replaced again', async () => {
    const aws = await startAwsStandIn();
    cleanups.push(() => aws.close());
    const { instanceId } = aws.ec2.addInstance({ launchTemplate: { id: 'lt-1', version: '1' } });
    const { proc, client } = await startSteppable(aws);
    const event: CloudEvent = { id: 'e-1', source: 'test', specversion: '1.0', type: 'aws.ec2.spot.interruption-warning', data: { labels: { instance_id: instanceId } } };
    const replace = () => client.handle(event, { flow: 'spot', timeoutMs: 30_000 });

    expect((await replace()).message).toMatch(new RegExp(`to replace ${instanceId}$`));
    const callsBefore = aws.calls.length;
    proc.child.kill('SIGUSR2');
    await waitForOutput(proc, new RegExp(WALL_CLOCK_STEPPED));

    expect((await replace()).message).toMatch(/^replacement already requested by this process: /);
    expect(aws.calls.slice(callsBefore).map((c) => c.action)).toEqual([]);
    expect(aws.callsTo('CreateFleet')).toHaveLength(1);
  }, 60_000);
});
