import { DescribeInstancesCommand, type EC2Client, type Filter, type Instance } from '@aws-sdk/client-ec2';
import { readEveryPage } from '@hollowtrees/grpcplugin';
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
 * Every instance that matches `filters`, page after page with the SDK's
 * {@link readEveryPage} (one call at a time, so a large listing stays under
 * EC2's rate limits; a page that repeats a `NextToken`, or a listing past
 * 1,000 pages, from a broken endpoint, ends it as UNAVAILABLE instead of being
 * followed for ever). The AWS SDK retries each page; a failure becomes a
 * PluginError naming the call.
 */
export async function describeInstances(options: DescribeOptions, filters: readonly Filter[]): Promise<Instance[]> {
  const found: Instance[] = [];
  try {
    await readEveryPage({
      name: 'EC2 DescribeInstances',
      read: (NextToken) => options.ec2.send(new DescribeInstancesCommand({ Filters: [...filters], MaxResults: options.pageSize, ...(NextToken ? { NextToken } : {}) }), { abortSignal: options.signal }),
      nextToken: (page) => page.NextToken,
      take: (page) => found.push(...(page.Reservations ?? []).flatMap((r) => r.Instances ?? [])),
    });
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
