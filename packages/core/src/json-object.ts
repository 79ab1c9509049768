/** Whether `value` is a JSON object (not null, not an array): what parsed JSON gives for `{...}`. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
