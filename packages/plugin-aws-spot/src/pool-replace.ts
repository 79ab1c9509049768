import { DescribeSubnetsCommand } from '@aws-sdk/client-ec2';
import { Code, deadlineOn, forEachBounded, PluginError, type Clock, type CloudEvent, type HandleContext, type PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import { callAws } from './aws-call.js';
import { toPluginError } from './aws-error.js';
import { clientToken, eventScope } from './client-token.js';
import { describeInstances, describeInstancesAmong, type DescribeOptions } from './describe-instances.js';
import { findReplacements, launchReplacement, LIVE, type FleetSettings, type LaunchPlace } from './fleet-replace.js';
import { infoOf, type InstanceInfo } from './instance-lookup.js';
import { siblingInstanceTypes } from './instance-types.js';
import type { RegionalReplacer, RequestedReplacement } from './regional-replacer.js';
import type { ReplacementOutcome } from './replacement-outcome.js';
import type { PoolSettings } from './pool-settings.js';
import { poolName, type SpotPool } from './spot-pool.js';

/** What replacing a pool works with. */
export interface PoolReplaceContext {
  readonly region: RegionalReplacer;
  readonly settings: PoolSettings;
  readonly fleet: FleetSettings;
  readonly dryRun: boolean;
  readonly logger: Logger;
  /** Where the wait reads time and sleeps between polls. */
  readonly clock: Clock;
  /** The wait ends this long before the call's deadline, so the call is answered rather than cut off. */
  readonly replyMarginMs: number;
}

/** A subnet a replacement may launch in, with its zone. */
interface Subnet {
  readonly subnetId: string;
  readonly availabilityZone: string;
}

/**
 * Pool mode, replacement before drain: every spot instance of `pool` (running
 * or pending, with the configured tag) gets a replacement launched outside the
 * pool, and the call answers `ok` only once every replacement is `running`, so
 * the drain that follows in the flow never takes capacity away first.
 *
 * Each replacement is an instant EC2 Fleet from the old instance's launch
 * template over every place but the pool: the other instance types in the old
 * instance's subnet, and every type in the configured subnets, without the
 * pool's type in the pool's zone. It is tagged `hollowtrees:replaces=<old id>`:
 * a retry, or another event about the same pool, finds it and launches no
 * second one while it is pending or running, and a new one once it is gone.
 * A wait cut short by `waitTimeout` or the call's deadline, or by a
 * replacement gone before it ran, answers UNAVAILABLE (core retries the run).
 */
export async function replacePool(ctx: PoolReplaceContext, pool: SpotPool, event: CloudEvent, call: HandleContext): Promise<ReplacementOutcome> {
  const started = ctx.clock.now();
  const describe: DescribeOptions = { ec2: ctx.region.clients.ec2, pageSize: ctx.settings.pageSize, signal: call.signal };
  const members = await poolMembers(describe, pool, ctx.settings.tag);
  const name = poolName(pool);
  if (members.length === 0) {
    return { status: 'skipped', message: `no spot instance is running in pool ${name}${tagNote(ctx.settings)}`, attributes: { pool: name, instances: '0' } };
  }
  const found = await findReplacements(describe, members.map((m) => m.instanceId));
  const existing = members.flatMap((m) => found.get(m.instanceId)?.live?.InstanceId ?? []);
  const toLaunch = members.filter((m) => found.get(m.instanceId)?.live === undefined);
  const elsewhere = await subnetsOf(ctx, ctx.settings.subnets, call.signal);

  const gone = (member: InstanceInfo): readonly string[] => found.get(member.instanceId)?.gone ?? [];
  const launched = await requestReplacements(ctx, pool, event, call, toLaunch, gone, elsewhere, existing.length);
  const counts = { pool: name, instances: String(members.length), replacements_requested: String(launched.length), replacements_existing: String(existing.length) };
  ctx.logger.info('replacements of the pool requested: waiting until they run, before the drain', counts);
  if (ctx.dryRun) {
    return { status: 'ok', message: `dry run: EC2 would launch ${toLaunch.length} replacements for pool ${name}`, attributes: { ...counts, dry_run: 'true' } };
  }
  const replacements = [...existing, ...launched];
  const until = Math.min(started + ctx.settings.waitTimeoutMs, deadlineOn(ctx.clock, call.deadline) - ctx.replyMarginMs);
  const running = await waitUntilRunning(ctx, describe, replacements, until, () => ({ ...counts, waited_ms: String(Math.round(ctx.clock.now() - started)) }));
  return {
    status: 'ok',
    message: `${running} replacements running for the ${members.length} spot instances of pool ${name} (${launched.length} requested now, ${existing.length} earlier)`,
    attributes: { ...counts, replacements_running: String(running) },
  };
}

/**
 * Launches a replacement for each of `toLaunch`, `fleetConcurrency` at a time; answers their ids.
 * @throws PluginError with the code of the first failure, once every launch has settled (those
 * that succeeded are found by their tag on the retry).
 */
async function requestReplacements(
  ctx: PoolReplaceContext,
  pool: SpotPool,
  event: CloudEvent,
  call: HandleContext,
  toLaunch: readonly InstanceInfo[],
  gone: (member: InstanceInfo) => readonly string[],
  elsewhere: readonly Subnet[],
  existing: number,
): Promise<string[]> {
  const launched: string[] = [];
  const failures: PluginError[] = [];
  const launch = (member: InstanceInfo): Promise<ReplacementOutcome> =>
    launchReplacement(
      { clients: ctx.region.clients, instance: member, signal: call.signal, dryRun: ctx.dryRun, logger: ctx.logger, spentTokens: ctx.region.spentTokens },
      {
        places: placesOutside(pool, member, elsewhere, ctx.fleet.instanceTypes),
        onDemandFallback: ctx.fleet.onDemandFallback,
        clientToken: (capacityType) => clientToken(eventScope(event), `pool:${member.instanceId}:${capacityType}`, gone(member)),
      },
    );
  await forEachBounded(toLaunch, ctx.settings.fleetConcurrency, async (member) => {
    try {
      const done = await launchOnce(ctx, member, gone(member), () => launch(member));
      const id = done.outcome.attributes.replacement_instance_id;
      if (id !== undefined) launched.push(id);
    } catch (err) {
      failures.push(toPluginError(err, `replacing ${member.instanceId}`, call.signal));
    }
  });
  const first = failures[0];
  if (first) {
    throw new PluginError(
      first.code,
      `${failures.length} of ${toLaunch.length} replacements for pool ${poolName(pool)} could not be requested (${launched.length} were, ${existing} existed): ${first.message}`,
    );
  }
  return launched;
}

const tagNote = (settings: PoolSettings): string => (settings.tag ? ` with tag ${settings.tag.key}=${settings.tag.value}` : '');

/** The pool's spot instances, running or pending, with the tag when one is set. */
async function poolMembers(describe: DescribeOptions, pool: SpotPool, tag: PoolSettings['tag']): Promise<InstanceInfo[]> {
  const found = await describeInstances(describe, [
    { Name: 'availability-zone', Values: [pool.availabilityZone] },
    { Name: 'instance-type', Values: [pool.instanceType] },
    { Name: 'instance-lifecycle', Values: ['spot'] },
    LIVE,
    ...(tag ? [{ Name: `tag:${tag.key}`, Values: [tag.value] }] : []),
  ]);
  // Group membership does not matter here: every instance gets a fleet.
  return found.map((i) => infoOf(i, undefined));
}

/**
 * The zones of the configured subnets (one DescribeSubnets), in the configured order, not EC2's: the
 * fleet's overrides follow it, and a request re-sent with its client token must carry the same ones.
 */
async function subnetsOf(ctx: PoolReplaceContext, subnetIds: readonly string[], signal: AbortSignal): Promise<Subnet[]> {
  if (subnetIds.length === 0) return [];
  const out = await callAws('EC2 DescribeSubnets', signal, (o) => ctx.region.clients.ec2.send(new DescribeSubnetsCommand({ SubnetIds: [...subnetIds] }), o));
  const zones = new Map((out.Subnets ?? []).map((s) => [s.SubnetId, s.AvailabilityZone]));
  return subnetIds.flatMap((subnetId) => {
    const availabilityZone = zones.get(subnetId);
    return availabilityZone ? [{ subnetId, availabilityZone }] : [];
  });
}

/**
 * Every place a replacement of `member` may launch but the pool: the instance
 * types in its own subnet and in the other subnets, without the pool's type in the pool's zone.
 * @throws PluginError FAILED_PRECONDITION when that leaves nothing.
 */
function placesOutside(pool: SpotPool, member: InstanceInfo, elsewhere: readonly Subnet[], instanceTypes: readonly string[] | undefined): LaunchPlace[] {
  const types = instanceTypes ?? siblingInstanceTypes(pool.instanceType);
  const subnets: Subnet[] = [
    ...(member.subnetId !== undefined ? [{ subnetId: member.subnetId, availabilityZone: pool.availabilityZone }] : []),
    ...elsewhere.filter((s) => s.subnetId !== member.subnetId),
  ];
  const places = subnets.flatMap((s) =>
    types.filter((t) => !(s.availabilityZone === pool.availabilityZone && t === pool.instanceType)).map((instanceType) => ({ instanceType, subnetId: s.subnetId })),
  );
  if (places.length === 0) {
    throw new PluginError(
      Code.FailedPrecondition,
      `nowhere to launch a replacement for ${member.instanceId} outside pool ${poolName(pool)}: no other instance type (set --instance-types) and no subnet in another zone (set subnets)`,
    );
  }
  return places;
}

/**
 * Runs `launch` for `member` unless this process is launching its replacement
 * already (another call about the pool, or about the instance), or launched one
 * since this call read the pool's replacements (`gone`: those it found gone then):
 * then its outcome is this call's, when it launched one. A per-instance call that
 * detached the member from its group, or skipped it, launched none outside the
 * pool: the member gets its own then, as it would had this call come alone.
 * What it launches is remembered for the pool calls after it ({@link RegionalReplacer.launchedForPools}).
 */
async function launchOnce(ctx: PoolReplaceContext, member: InstanceInfo, gone: readonly string[], launch: () => Promise<ReplacementOutcome>): Promise<RequestedReplacement> {
  const { inFlight, requested, launchedForPools } = ctx.region;
  // Read once per call, the pool's replacements miss one another call launched while this call worked on other members.
  const earlier = launchedForPools.get(member.instanceId) ?? requested.get(member.instanceId);
  const earlierId = earlier?.outcome.attributes.replacement_instance_id;
  if (earlier && earlierId !== undefined && !gone.includes(earlierId)) return earlier;
  const pending = inFlight.get(member.instanceId);
  if (pending) {
    const shared = await pending;
    if (shared.outcome.attributes.replacement_instance_id !== undefined) return shared;
    // Another pool call may have started one meanwhile.
    const next = inFlight.get(member.instanceId);
    if (next) return next;
  }
  const work = launch().then((outcome): RequestedReplacement => ({ strategy: 'fleet', outcome }));
  inFlight.set(member.instanceId, work);
  try {
    const done = await work;
    if (done.outcome.attributes.replacement_instance_id !== undefined && !ctx.dryRun) launchedForPools.set(member.instanceId, done);
    return done;
  } finally {
    if (inFlight.get(member.instanceId) === work) inFlight.delete(member.instanceId);
  }
}

/**
 * Reads the replacements' states every `pollIntervalMs` until all are
 * `running`; answers how many are.
 * @throws PluginError UNAVAILABLE (retryable) when `until` comes first, or
 * when a replacement is gone (a retry launches a new one for it).
 */
async function waitUntilRunning(
  ctx: PoolReplaceContext,
  describe: DescribeOptions,
  replacements: readonly string[],
  until: number,
  counts: () => Record<string, string>,
): Promise<number> {
  for (;;) {
    const states = await describeInstancesAmong(describe, [], 'instance-id', replacements);
    const running = states.filter((i) => i.State?.Name === 'running').length;
    if (running === replacements.length) return running;
    const gone = states.filter((i) => i.State?.Name !== 'running' && i.State?.Name !== 'pending').map((i) => `${i.InstanceId} (${i.State?.Name ?? 'unknown'})`);
    const late = ctx.clock.now() + ctx.settings.pollIntervalMs > until;
    if (gone.length > 0 || late) {
      const c = counts();
      throw new PluginError(
        Code.Unavailable,
        `${running} of ${replacements.length} replacements for pool ${c.pool} running after ${c.waited_ms} ms` +
          `${gone.length > 0 ? `; gone: ${gone.join(', ')}` : ''} (${c.replacements_requested} requested now, ${c.replacements_existing} earlier): ` +
          'the drain waits; a retry launches none again for those pending or running, and a new one for each gone',
      );
    }
    await ctx.clock.sleep(ctx.settings.pollIntervalMs, describe.signal);
  }
}
