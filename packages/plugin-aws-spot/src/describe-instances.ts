import { paginateDescribeInstances, type EC2Client, type Filter, type Instance } from '@aws-sdk/client-ec2';
import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { toPluginError } from './aws-error.js';

/** Values one filter of a DescribeInstances carries, at most (EC2 takes 200). */
const FILTER_VALUES = 100;

/** How a listing pages. */
export interface DescribeOptions {
  readonly ec2: EC2Client;
  /** Instances per page (5 to 1000). */
  readonly pageSize: number;
  readonly signal: AbortSignal;
}

/**
 * Every instance that matches `filters`, page after page (one call at a time,
 * so a large listing stays under EC2's rate limits). The SDK retries each
 * page; a failure becomes a PluginError naming the call. A page that gives a
 * `NextToken` an earlier page gave (a broken endpoint) ends the listing as
 * UNAVAILABLE: the SDK's paginator would follow it for ever.
 */
export async function describeInstances(options: DescribeOptions, filters: readonly Filter[]): Promise<Instance[]> {
  const found: Instance[] = [];
  const given = new Set<string>();
  try {
    const pages = paginateDescribeInstances({ client: options.ec2, pageSize: options.pageSize }, { Filters: [...filters] }, { abortSignal: options.signal });
    for await (const page of pages) {
      found.push(...(page.Reservations ?? []).flatMap((r) => r.Instances ?? []));
      const token = page.NextToken;
      if (token && given.has(token)) throw new PluginError(Code.Unavailable, `EC2 DescribeInstances: page ${given.size + 1} gave a NextToken an earlier page gave (${token.slice(0, 60)}): the listing would never end`);
      if (token) given.add(token);
    }
  } catch (err) {
    throw toPluginError(err, 'EC2 DescribeInstances', options.signal);
  }
  return found;
}

/**
 * {@link describeInstances} for many values of one filter (instance ids, or
 * the ids a tag names): the values are split over calls of up to 100 each.
 */
export async function describeInstancesAmong(options: DescribeOptions, filters: readonly Filter[], name: string, values: readonly string[]): Promise<Instance[]> {
  const found: Instance[] = [];
  for (let i = 0; i < values.length; i += FILTER_VALUES) {
    found.push(...(await describeInstances(options, [...filters, { Name: name, Values: values.slice(i, i + FILTER_VALUES) }])));
  }
  return found;
}
