// Families that run the same AMIs and offer the same sizes, grouped by CPU
// architecture and shape: a launch template's AMI is built for one architecture,
// so x86 and Graviton never mix.
const SIBLING_FAMILIES: readonly (readonly string[])[] = [
  ['m5', 'm5a', 'm5n', 'm6i', 'm6a', 'm7i', 'm7a'],
  ['m5d', 'm5ad', 'm5dn', 'm6id'],
  ['c5', 'c5a', 'c5n', 'c6i', 'c6a', 'c7i', 'c7a'],
  ['c5d', 'c5ad', 'c6id'],
  ['r5', 'r5a', 'r5n', 'r6i', 'r6a', 'r7i', 'r7a'],
  ['r5d', 'r5ad', 'r5dn', 'r6id'],
  ['t3', 't3a'],
  ['m6g', 'm7g', 'm8g'],
  ['c6g', 'c7g', 'c8g'],
  ['r6g', 'r7g', 'r8g'],
  ['t4g'],
];

/**
 * The instance type first, then the same size in its sibling families (e.g.
 * `m5.large` → `m5.large`, `m5a.large`, `m5n.large`, `m6i.large`, ...): the
 * default diversification of a fleet replacement. A type of an unknown family
 * gives just itself.
 */
export function siblingInstanceTypes(instanceType: string): string[] {
  const [family, size] = instanceType.split('.', 2);
  const siblings = SIBLING_FAMILIES.find((group) => family !== undefined && group.includes(family));
  if (!siblings || size === undefined) return [instanceType];
  return [instanceType, ...siblings.filter((f) => f !== family).map((f) => `${f}.${size}`)];
}
