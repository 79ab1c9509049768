import { randomBytes, randomUUID } from 'node:crypto';
import { wallClockMs } from '../listen.js';
import { AwsApiError } from './aws-api-error.js';
import { dryRunGuard, type QueryParams } from './query-params.js';
import { SpotPriceHistory } from './spot-price-history.js';
import type { ActionHandler } from './query-server.js';

/** EC2's instance states, with the codes DescribeInstances reports. */
const STATE_CODES = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 } as const;
export type Ec2InstanceState = keyof typeof STATE_CODES;

/** Whether an instance is a spot or an on-demand instance. */
export type CapacityType = 'spot' | 'on-demand';

/** A launch template as far as the stand-in cares: it launches this AMI. */
export interface LaunchTemplate {
  readonly id: string;
  readonly imageId: string;
}

/** An instance held by the stand-in. Mutable, so tests can arrange and inspect state. */
export interface Ec2Instance {
  instanceId: string;
  instanceType: string;
  availabilityZone: string;
  subnetId: string;
  vpcId: string;
  imageId: string;
  state: Ec2InstanceState;
  lifecycle: CapacityType;
  /** Recorded on real instances as the `aws:ec2launchtemplate:*` tags, which the stand-in sets too. */
  launchTemplate: { id: string; version: string } | undefined;
  tags: Record<string, string>;
  /** {@link wallClockMs}, as every stand-in stamps its events, so it compares with the Kubernetes stand-in's eviction times. */
  launchTime: Date;
  /** When a launched instance went from `pending` to `running` (see {@link Ec2StandIn.launchDelayMs}): {@link wallClockMs} too. */
  runningAt?: Date;
}

/** What {@link Ec2StandIn.addInstance} needs; everything has a default. */
export interface InstanceSpec {
  /** Default: a fresh `i-` id. */
  instanceId?: string;
  /** Default `m5.large`. */
  instanceType?: string;
  /** Default: the zone of the subnet (see {@link Ec2StandIn.subnets}), else `us-east-1a`. */
  availabilityZone?: string;
  /** Default `subnet-0a1b2c3d`. */
  subnetId?: string;
  /** Default `running`. */
  state?: Ec2InstanceState;
  /** Default `spot`. */
  lifecycle?: CapacityType;
  /** Launch template id and version; the template is registered when unknown. Default: none. */
  launchTemplate?: { id: string; version: string };
  /** User tags. Default none. */
  tags?: Record<string, string>;
}

/** One error entry of a CreateFleet answer. */
export interface FleetError {
  readonly instanceType: string;
  readonly lifecycle: CapacityType;
  readonly errorCode: string;
  readonly errorMessage: string;
}

/** A fleet CreateFleet made, with what it launched and the per-override errors. */
export interface Ec2Fleet {
  readonly fleetId: string;
  readonly clientToken: string | undefined;
  readonly capacityType: CapacityType;
  readonly launchTemplate: { id: string; version: string };
  readonly instanceTypes: readonly string[];
  /** What it launched. */
  readonly instances: readonly { readonly instanceId: string; readonly instanceType: string }[];
  readonly errors: readonly FleetError[];
  readonly tags: Readonly<Record<string, string>>;
  /** The request's parameters, without DryRun and ClientToken: a repeated token must come with the same. */
  readonly requestKey: string;
}

/** Capacity shortage codes CreateFleet reports per override. */
export type CapacityErrorCode = 'InsufficientInstanceCapacity' | 'UnfulfillableCapacity';

const INSTANCE_ID = /^i-([0-9a-f]{8}|[0-9a-f]{17})$/;
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const newInstanceId = (): string => `i-0${hex(8)}`;

/** Tag keys with this prefix are AWS's own; users may not set them. */
const RESERVED_TAG_PREFIX = 'aws:';

/** EC2's limit of user tags on one resource (AWS's own `aws:` tags do not count). */
export const EC2_TAG_LIMIT = 50;

/** Refuses, as EC2 does, a resource that would carry more than {@link EC2_TAG_LIMIT} user tags. */
function withinTagLimit(tags: Record<string, string>): Record<string, string> {
  const user = Object.keys(tags).filter((key) => !key.toLowerCase().startsWith(RESERVED_TAG_PREFIX)).length;
  if (user > EC2_TAG_LIMIT) throw new AwsApiError('TagLimitExceeded', `The maximum number of tags (${EC2_TAG_LIMIT}) for a resource has been reached.`);
  return tags;
}

function tagsFrom(structs: readonly QueryParams[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const tag of structs) {
    const key = tag.require('Key');
    if (key.toLowerCase().startsWith(RESERVED_TAG_PREFIX)) {
      throw new AwsApiError('InvalidParameterValue', `Tag keys starting with 'aws:' are reserved for internal use`);
    }
    tags[key] = tag.get('Value') ?? '';
  }
  return withinTagLimit(tags);
}

/**
 * The EC2 side of the stand-in: instances, launch templates and fleets, and
 * the actions DescribeInstances (paged), DescribeSubnets, CreateTags and
 * CreateFleet (type `instant`).
 */
export class Ec2StandIn {
  /** Every instance, by id. */
  readonly instances = new Map<string, Ec2Instance>();
  /** Launch templates by id. */
  readonly launchTemplates = new Map<string, LaunchTemplate>();
  /** Fleets in creation order. */
  readonly fleets: Ec2Fleet[] = [];
  /** Spot prices by pool, served by DescribeSpotPriceHistory. */
  readonly spotPrices = new SpotPriceHistory();
  /** The availability zone of each subnet, as DescribeSubnets answers; an added instance registers its subnet. */
  readonly subnets = new Map<string, string>();
  /**
   * Milliseconds after which an instance CreateFleet launched goes from
   * `pending` to `running`. Default: it stays `pending`.
   */
  launchDelayMs: number | undefined = undefined;
  /** Errors CreateFleet reports for an override of these instance types, for one capacity type or (none given) both. */
  private readonly overrideErrors = new Map<string, { readonly errorCode: string; readonly errorMessage: string; readonly capacityType?: CapacityType }>();
  private readonly noCapacity: Record<CapacityType, Map<string, CapacityErrorCode>> = {
    spot: new Map(),
    'on-demand': new Map(),
  };

  /** The actions served, by name. */
  readonly actions: Readonly<Record<string, ActionHandler>> = {
    DescribeInstances: (p) => this.describeInstances(p),
    DescribeSubnets: (p) => this.describeSubnets(p),
    CreateTags: (p) => this.createTags(p),
    CreateFleet: (p) => this.createFleet(p),
    DescribeSpotPriceHistory: (p) => this.spotPrices.describe(p),
  };

  /** Registers a launch template. */
  addLaunchTemplate(template: LaunchTemplate): LaunchTemplate {
    this.launchTemplates.set(template.id, template);
    return template;
  }

  /** Adds an instance, as if it had been launched before the test. */
  addInstance(spec: InstanceSpec = {}): Ec2Instance {
    const launchTemplate = spec.launchTemplate;
    if (launchTemplate && !this.launchTemplates.has(launchTemplate.id)) {
      this.addLaunchTemplate({ id: launchTemplate.id, imageId: `ami-0${hex(8)}` });
    }
    const subnetId = spec.subnetId ?? 'subnet-0a1b2c3d';
    const availabilityZone = spec.availabilityZone ?? this.subnets.get(subnetId) ?? 'us-east-1a';
    if (!this.subnets.has(subnetId)) this.subnets.set(subnetId, availabilityZone);
    const instance: Ec2Instance = {
      instanceId: spec.instanceId ?? newInstanceId(),
      instanceType: spec.instanceType ?? 'm5.large',
      availabilityZone,
      subnetId,
      vpcId: 'vpc-0a1b2c3d',
      imageId: launchTemplate ? (this.launchTemplates.get(launchTemplate.id)?.imageId ?? '') : `ami-0${hex(8)}`,
      state: spec.state ?? 'running',
      lifecycle: spec.lifecycle ?? 'spot',
      launchTemplate,
      tags: {
        ...spec.tags,
        ...(launchTemplate && {
          'aws:ec2launchtemplate:id': launchTemplate.id,
          'aws:ec2launchtemplate:version': launchTemplate.version,
        }),
      },
      launchTime: new Date(wallClockMs()),
    };
    this.instances.set(instance.instanceId, instance);
    return instance;
  }

  /**
   * CreateFleet finds no spot capacity for these instance types: it reports
   * `errorCode` (default InsufficientInstanceCapacity) for each override using them.
   */
  noSpotCapacity(instanceTypes: readonly string[], errorCode: CapacityErrorCode = 'InsufficientInstanceCapacity'): void {
    for (const type of instanceTypes) this.noCapacity.spot.set(type, errorCode);
  }

  /** CreateFleet finds no on-demand capacity for these instance types. */
  noOnDemandCapacity(instanceTypes: readonly string[]): void {
    for (const type of instanceTypes) this.noCapacity['on-demand'].set(type, 'InsufficientInstanceCapacity');
  }

  /**
   * CreateFleet reports these instance types as not offered in any zone of the
   * stand-in (`Unsupported`, as EC2 answers a type its zone does not have), whatever the capacity type.
   */
  unsupportedInstanceTypes(instanceTypes: readonly string[]): void {
    for (const type of instanceTypes) {
      this.failOverrides([type], 'Unsupported', { errorMessage: `Your requested instance type (${type}) is not supported in your requested Availability Zone.` });
    }
  }

  /**
   * CreateFleet reports `errorCode` with `errorMessage` for each override of
   * these instance types (asking for `capacityType`, default either) inside
   * its 200 answer, as EC2 does (`InternalError`, `InvalidFleetConfiguration`,
   * `VcpuLimitExceeded`, ...), until {@link capacityRestored}.
   */
  failOverrides(instanceTypes: readonly string[], errorCode: string, options: { errorMessage?: string; capacityType?: CapacityType } = {}): void {
    const { errorMessage = `${errorCode} (stand-in)`, capacityType } = options;
    for (const type of instanceTypes) this.overrideErrors.set(type, { errorCode, errorMessage, ...(capacityType !== undefined && { capacityType }) });
  }

  /** CreateFleet finds spot and on-demand capacity for these instance types again, and reports no error {@link failOverrides} set for them. */
  capacityRestored(instanceTypes: readonly string[]): void {
    for (const type of instanceTypes) {
      for (const shortage of Object.values(this.noCapacity)) shortage.delete(type);
      this.overrideErrors.delete(type);
    }
  }

  /** Instances carrying the tag `key` (with `value`, when given). */
  instancesTagged(key: string, value?: string): Ec2Instance[] {
    return [...this.instances.values()].filter((i) => key in i.tags && (value === undefined || i.tags[key] === value));
  }

  private instance(id: string): Ec2Instance {
    if (!INSTANCE_ID.test(id)) throw new AwsApiError('InvalidInstanceID.Malformed', `Invalid id: "${id}"`);
    const instance = this.instances.get(id);
    if (!instance) throw new AwsApiError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    return instance;
  }

  private describeInstances(params: QueryParams): Record<string, unknown> {
    const ids = params.list('InstanceId');
    // A Set per filter: a batched look-up filters by 100 instance ids, and a wave's stand-in holds a thousand instances.
    const filters = params.structs('Filter').map((f) => ({ name: f.require('Name'), values: new Set(f.list('Value')) }));
    const candidates = ids.length > 0 ? ids.map((id) => this.instance(id)) : [...this.instances.values()];
    const matches = candidates.filter((instance) => filters.every((f) => filterValue(instance, f.name).some((v) => f.values.has(v))));
    const page = paginate(matches, params, ids.length > 0);
    return {
      ...(page.nextToken !== undefined && { nextToken: page.nextToken }),
      reservationSet: {
        item: page.items.map((instance) => ({
          reservationId: `r-0${hex(8)}`,
          ownerId: '123456789012',
          groupSet: '',
          instancesSet: { item: [instanceXml(instance)] },
        })),
      },
    };
  }

  private describeSubnets(params: QueryParams): Record<string, unknown> {
    const ids = params.list('SubnetId');
    for (const id of ids) {
      if (!this.subnets.has(id)) throw new AwsApiError('InvalidSubnetID.NotFound', `The subnet ID '${id}' does not exist`);
    }
    const listed = ids.length > 0 ? ids : [...this.subnets.keys()];
    return {
      subnetSet: { item: listed.map((subnetId) => ({ subnetId, availabilityZone: this.subnets.get(subnetId), vpcId: 'vpc-0a1b2c3d', state: 'available' })) },
    };
  }

  private createTags(params: QueryParams): Record<string, unknown> {
    const instances = params.list('ResourceId').map((id) => this.instance(id));
    if (instances.length === 0) throw new AwsApiError('MissingParameter', 'The request must contain the parameter resourceIdSet');
    const tags = tagsFrom(params.structs('Tag'));
    for (const instance of instances) withinTagLimit({ ...instance.tags, ...tags });
    dryRunGuard(params);
    for (const instance of instances) Object.assign(instance.tags, tags);
    return { return: true };
  }

  private createFleet(params: QueryParams): Record<string, unknown> {
    const type = params.get('Type') ?? 'maintain';
    if (type !== 'instant') throw new AwsApiError('InvalidParameterValue', `The stand-in supports only instant fleets, not '${type}'.`);
    const target = params.under('TargetCapacitySpecification');
    const total = Number(target.require('TotalTargetCapacity'));
    const capacityType = target.get('DefaultTargetCapacityType') ?? 'on-demand';
    if (capacityType !== 'spot' && capacityType !== 'on-demand') {
      throw new AwsApiError('InvalidParameterValue', `Invalid DefaultTargetCapacityType: ${capacityType}`);
    }
    const configs = params.structs('LaunchTemplateConfigs');
    const config = configs[0];
    if (!config || configs.length > 1) {
      throw new AwsApiError('InvalidParameterValue', 'The stand-in supports exactly one launch template config.');
    }
    const spec = config.under('LaunchTemplateSpecification');
    const launchTemplate = { id: spec.require('LaunchTemplateId'), version: spec.get('Version') ?? '$Default' };
    if (!this.launchTemplates.has(launchTemplate.id)) {
      throw new AwsApiError(
        'InvalidLaunchTemplateId.NotFound',
        `The specified launch template, with template ID ${launchTemplate.id}, does not exist.`,
      );
    }
    const overrides = config.structs('Overrides').map((o) => ({ instanceType: o.require('InstanceType'), subnetId: o.get('SubnetId') }));
    const specs = params.structs('TagSpecification');
    const instanceTags = tagsFrom(specs.filter((s) => s.get('ResourceType') === 'instance').flatMap((s) => s.structs('Tag')));
    dryRunGuard(params);

    const clientToken = params.get('ClientToken');
    const requestKey = JSON.stringify(Object.entries(params.toObject()).filter(([k]) => k !== 'ClientToken' && k !== 'DryRun').sort());
    const earlier = clientToken === undefined ? undefined : this.fleets.find((f) => f.clientToken === clientToken);
    if (earlier) {
      // Idempotency: the same token answers with the fleet it made, and launches nothing.
      if (earlier.requestKey !== requestKey) {
        throw new AwsApiError('IdempotentParameterMismatch', 'The client token you have provided is associated with a resource that is already deleted or has different parameters.');
      }
      return fleetXml(earlier);
    }

    const fleetId = `fleet-${randomUUID()}`;
    const errors: FleetError[] = [];
    const launched: Ec2Instance[] = [];
    for (const override of overrides) {
      if (launched.length >= total) break;
      const overrideError = this.overrideErrors.get(override.instanceType);
      if (overrideError && (overrideError.capacityType ?? capacityType) === capacityType) {
        const { errorCode, errorMessage } = overrideError;
        errors.push({ instanceType: override.instanceType, lifecycle: capacityType, errorCode, errorMessage });
        continue;
      }
      const errorCode = this.noCapacity[capacityType].get(override.instanceType);
      if (errorCode) {
        errors.push({ instanceType: override.instanceType, lifecycle: capacityType, errorCode, errorMessage: capacityMessage(errorCode, override.instanceType) });
        continue;
      }
      const subnet = override.subnetId;
      const instance = this.addInstance({
        instanceType: override.instanceType,
        ...(subnet !== undefined && { subnetId: subnet }),
        state: 'pending',
        lifecycle: capacityType,
        launchTemplate,
        tags: instanceTags,
      });
      instance.tags['aws:ec2:fleet-id'] = fleetId;
      this.startLater(instance);
      launched.push(instance);
    }
    const fleet: Ec2Fleet = {
      fleetId,
      clientToken,
      capacityType,
      launchTemplate,
      instanceTypes: overrides.map((o) => o.instanceType),
      instances: launched.map((i) => ({ instanceId: i.instanceId, instanceType: i.instanceType })),
      errors,
      tags: instanceTags,
      requestKey,
    };
    this.fleets.push(fleet);
    return fleetXml(fleet);
  }

  /** Moves a launched instance to `running` after {@link launchDelayMs}, unless something else changed its state first. */
  private startLater(instance: Ec2Instance): void {
    if (this.launchDelayMs === undefined) return;
    setTimeout(() => {
      if (instance.state !== 'pending') return;
      instance.state = 'running';
      instance.runningAt = new Date(wallClockMs());
    }, this.launchDelayMs).unref();
  }
}

/**
 * One page of DescribeInstances, as EC2 pages: `MaxResults` (5 to 1000, not
 * with instance ids) and the `NextToken` of the previous page.
 */
function paginate<T>(items: readonly T[], params: QueryParams, byIds: boolean): { items: readonly T[]; nextToken: string | undefined } {
  const max = params.int('MaxResults');
  if (max === undefined) return { items, nextToken: undefined };
  if (byIds) throw new AwsApiError('InvalidParameterCombination', 'The parameter instancesSet cannot be used with the parameter maxResults');
  if (max < 5 || max > 1000) throw new AwsApiError('InvalidParameterValue', `Value (${max}) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`);
  const token = params.get('NextToken');
  const start = token === undefined ? 0 : Number(Buffer.from(token, 'base64url').toString());
  if (!Number.isInteger(start) || start < 0) throw new AwsApiError('InvalidParameterValue', `Invalid value '${token}' for nextToken`);
  const end = start + max;
  return { items: items.slice(start, end), nextToken: end < items.length ? Buffer.from(String(end)).toString('base64url') : undefined };
}

function capacityMessage(code: CapacityErrorCode, instanceType: string): string {
  return code === 'UnfulfillableCapacity'
    ? 'Unable to fulfill capacity due to your request configuration. Please adjust your request and try again.'
    : `We currently do not have sufficient ${instanceType} capacity in the Availability Zone you requested. Our system will be working on provisioning additional capacity.`;
}

/** The values a DescribeInstances filter compares against. */
function filterValue(instance: Ec2Instance, name: string): string[] {
  if (name.startsWith('tag:')) {
    const value = instance.tags[name.slice('tag:'.length)];
    return value === undefined ? [] : [value];
  }
  switch (name) {
    case 'instance-id':
      return [instance.instanceId];
    case 'instance-state-name':
      return [instance.state];
    case 'instance-type':
      return [instance.instanceType];
    case 'availability-zone':
      return [instance.availabilityZone];
    case 'instance-lifecycle':
      // EC2 gives on-demand instances no value here.
      return instance.lifecycle === 'spot' ? ['spot'] : [];
    case 'tag-key':
      return Object.keys(instance.tags);
    default:
      throw new AwsApiError('InvalidParameterValue', `The filter '${name}' is invalid`);
  }
}

function instanceXml(instance: Ec2Instance): Record<string, unknown> {
  return {
    instanceId: instance.instanceId,
    imageId: instance.imageId,
    instanceState: { code: STATE_CODES[instance.state], name: instance.state },
    privateDnsName: `ip-10-0-0-1.ec2.internal`,
    instanceType: instance.instanceType,
    launchTime: instance.launchTime.toISOString(),
    placement: { availabilityZone: instance.availabilityZone, tenancy: 'default' },
    subnetId: instance.subnetId,
    vpcId: instance.vpcId,
    // Real EC2 omits instanceLifecycle for on-demand instances.
    ...(instance.lifecycle === 'spot' && { instanceLifecycle: 'spot' }),
    tagSet: { item: Object.entries(instance.tags).map(([key, value]) => ({ key, value })) },
  };
}

function fleetXml(fleet: Ec2Fleet): Record<string, unknown> {
  const launchTemplateAndOverrides = (instanceType: string): Record<string, unknown> => ({
    launchTemplateSpecification: { launchTemplateId: fleet.launchTemplate.id, version: fleet.launchTemplate.version },
    overrides: { instanceType },
  });
  return {
    fleetId: fleet.fleetId,
    errorSet: {
      item: fleet.errors.map((e) => ({
        launchTemplateAndOverrides: launchTemplateAndOverrides(e.instanceType),
        lifecycle: e.lifecycle,
        errorCode: e.errorCode,
        errorMessage: e.errorMessage,
      })),
    },
    fleetInstanceSet: {
      item: fleet.instances.map((i) => ({
        launchTemplateAndOverrides: launchTemplateAndOverrides(i.instanceType),
        lifecycle: fleet.capacityType,
        instanceIds: { item: [i.instanceId] },
        instanceType: i.instanceType,
      })),
    },
  };
}
