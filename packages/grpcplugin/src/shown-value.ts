/** A value as an error message names it: `null`, `a function`, `the string "drain"`, `a number (3)`. */
export function shown(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (typeof value === 'object' || typeof value === 'function') return `a ${typeof value}`;
  return `a ${typeof value} (${String(value)})`;
}
