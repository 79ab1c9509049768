import { describe, expect, it } from 'vitest';
import { siblingInstanceTypes } from './instance-types.js';

describe('siblingInstanceTypes', () => {
  it('puts the type first, then the same size in sibling families of the same architecture', () => {
    expect(siblingInstanceTypes('c6i.2xlarge')).toEqual(['c6i.2xlarge', 'c5.2xlarge', 'c5a.2xlarge', 'c5n.2xlarge', 'c6a.2xlarge', 'c7i.2xlarge', 'c7a.2xlarge']);
    expect(siblingInstanceTypes('m7g.large')).toEqual(['m7g.large', 'm6g.large', 'm8g.large']);
  });

  it('gives just the type for an unknown family', () => {
    expect(siblingInstanceTypes('x2iedn.xlarge')).toEqual(['x2iedn.xlarge']);
  });
});

describe('siblingInstanceTypes without a size', () => {
  it('gives just the name for a family name without a size, even of a known family', () => {
    expect(siblingInstanceTypes('m5')).toEqual(['m5']);
  });
});
