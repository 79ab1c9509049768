import { loadConfig, NODE_REGION_CONFIG_FILE_OPTIONS, NODE_REGION_CONFIG_OPTIONS } from '@smithy/core/config';
import { isRegionName, REGION_EXAMPLE as EXAMPLE } from './region-name.js';

/**
 * The region calls go to when an event has no `labels.region`: `region` when given (the bin has
 * checked its form: see `parseCliArgs`), else what the
 * SDK's own settings say (`AWS_REGION`, then the profile's `region` in the shared config files),
 * read with the SDK's loader. Not the SDK's last resort, the instance metadata service: off EC2
 * that costs up to two one-second timeouts before saying nothing, so a missing region is known in
 * milliseconds instead. On EC2, pass `--region` or set `AWS_REGION`.
 * @throws Error saying how to set one, or naming where a region that is no region name came from:
 * the SDK would refuse it only at the first call, failing every event without `labels.region`.
 */
export async function resolveDefaultRegion(region: string | undefined): Promise<string> {
  if (region !== undefined) return region;
  const missing = (): never => {
    throw new Error('no AWS region: pass --region, set AWS_REGION, or set region in the profile (~/.aws/config, AWS_PROFILE)');
  };
  const found = await loadConfig({ ...NODE_REGION_CONFIG_OPTIONS, default: missing }, NODE_REGION_CONFIG_FILE_OPTIONS)();
  if (!found) return missing();
  if (!isRegionName(found)) {
    throw new Error(`the region "${found}" of AWS_REGION or the profile (~/.aws/config, AWS_PROFILE) is not an AWS region name ${EXAMPLE}: pass --region or correct it`);
  }
  return found;
}
