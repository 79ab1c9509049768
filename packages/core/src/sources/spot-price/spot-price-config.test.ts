import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../config/config-error.js';
import { parseConfig } from '../../config/load-config.js';

const withSpotPrice = (entries: string): string => `
flows:
  surge: { allowedEvents: [aws.ec2.spot.price-surge], plugins: [log] }
sources:
  spotPrice:
${entries}`;

function problem(yaml: string): string {
  try {
    parseConfig(yaml, 'config.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('sources.spotPrice configuration', () => {
  it('fills in the defaults: every 5 minutes, 6 hours of history, 30 s per EC2 call, Linux/UNIX, no hysteresis', () => {
    const { config } = parseConfig(
      withSpotPrice(`    - region: eu-west-1
      instanceTypes: [m5.large]
      availabilityZones: [eu-west-1a]
      maxPrice: 0.2
      jump: { ratio: 2 }`),
      'config.yaml',
    );
    expect(config.sources.spotPrice).toEqual([
      {
        region: 'eu-west-1',
        instanceTypes: ['m5.large'],
        availabilityZones: ['eu-west-1a'],
        maxPrice: 0.2,
        jump: { ratio: 2, window: 3_600_000 },
        interval: 300_000,
        callTimeout: 30_000,
        history: 21_600_000,
        productDescription: 'Linux/UNIX',
        onDemandPrices: {},
        hysteresis: 0,
      },
    ]);
  });

  it.each([
    ['no threshold', `    - { region: us-east-1, instanceTypes: [m5.large], availabilityZones: [us-east-1a] }`, 'sources.spotPrice[0]: expected at least one threshold: maxPrice, onDemandRatio or jump'],
    ['no pools', `    - { region: us-east-1, maxPrice: 0.2 }`, 'sources.spotPrice[0]: expected the pools: instanceTypes and availabilityZones, or discover: {tags: ...}'],
    ['types without zones', `    - { region: us-east-1, instanceTypes: [m5.large], maxPrice: 0.2 }`, 'sources.spotPrice[0].availabilityZones: instanceTypes and availabilityZones go together'],
    ['a zone of another region', `    - { region: us-east-1, instanceTypes: [m5.large], availabilityZones: [us-east-1a, eu-west-1b], maxPrice: 0.2 }`, "sources.spotPrice[0].availabilityZones[1]: this zone is not in the entry's region"],
    ['a ratio without an on-demand price', `    - { region: us-east-1, instanceTypes: [m5.large, c5.xlarge], availabilityZones: [us-east-1a], onDemandRatio: 0.6, onDemandPrices: { m5.large: 0.096 } }`, 'sources.spotPrice[0].instanceTypes[1]: no on-demand price for this instance type in onDemandPrices'],
    ['on-demand prices without a ratio', `    - { region: us-east-1, instanceTypes: [m5.large], availabilityZones: [us-east-1a], maxPrice: 0.2, onDemandPrices: { m5.large: 0.096 } }`, 'sources.spotPrice[0].onDemandPrices: only onDemandRatio uses on-demand prices'],
    ['a jump that is no rise', `    - { region: us-east-1, instanceTypes: [m5.large], availabilityZones: [us-east-1a], jump: { ratio: 0.5 } }`, 'sources.spotPrice[0].jump.ratio: expected a ratio above 1, such as 1.5'],
    ['a jump window longer than the history', `    - { region: us-east-1, instanceTypes: [m5.large], availabilityZones: [us-east-1a], history: 1h, jump: { ratio: 2, window: 2h } }`, 'sources.spotPrice[0].jump.window: the jump window must fit in history'],
    ['a price that is not a number', `    - { region: us-east-1, instanceTypes: [m5.large], availabilityZones: [us-east-1a], maxPrice: "cheap" }`, 'sources.spotPrice[0].maxPrice: expected a price in US dollars per hour, such as 0.096'],
    ['no region', `    - { instanceTypes: [m5.large], availabilityZones: [us-east-1a], maxPrice: 0.2 }`, 'sources.spotPrice[0].region'],
    ['not an instance type', `    - { region: us-east-1, instanceTypes: [large], availabilityZones: [us-east-1a], maxPrice: 0.2 }`, 'sources.spotPrice[0].instanceTypes[0]: expected an EC2 instance type such as m5.large'],
    ['an empty tag filter', `    - { region: us-east-1, discover: { tags: {} }, maxPrice: 0.2 }`, 'sources.spotPrice[0].discover.tags: expected at least one tag'],
    ['hysteresis of 1', `    - { region: us-east-1, discover: { tags: { a: b } }, maxPrice: 0.2, hysteresis: 1 }`, 'sources.spotPrice[0].hysteresis: expected a fraction from 0 up to (not including) 1'],
    ['two entries of one name', `    - { region: us-east-1, discover: { tags: { a: b } }, maxPrice: 0.2 }\n    - { region: us-east-1, discover: { tags: { c: d } }, maxPrice: 0.3 }`, 'sources.spotPrice[1].name: another entry has the same name (by default spot-price-<region>)'],
  ])('%s is an error naming the path', (_what, entries, expected) => {
    expect(problem(withSpotPrice(entries))).toContain(`config.yaml: ${expected}`);
  });
});
