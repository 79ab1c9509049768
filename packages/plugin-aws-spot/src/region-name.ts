/**
 * What an AWS region name looks like, in every partition: a lowercase area, words, a number
 * (`eu-west-1`, `us-gov-west-1`, `cn-north-1`, `il-central-1`, `eusc-de-east-1`). The SDK's own
 * test (one DNS label) also takes `EU-WEST-1`, a zone (`us-east-1a`) or `local`, which then fail
 * every call with an error that names no region. No SDK import: the bin checks `--region` before
 * it loads the SDK.
 */
const REGION_NAME = /^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$/;

/** Whether `region` has the form of an AWS region name (see {@link REGION_NAME}). */
export const isRegionName = (region: string): boolean => REGION_NAME.test(region);

/** How a refusal of a region shows what one looks like. */
export const REGION_EXAMPLE = '(lowercase, e.g. eu-west-1 or us-gov-west-1; a zone such as eu-west-1a is no region)';
