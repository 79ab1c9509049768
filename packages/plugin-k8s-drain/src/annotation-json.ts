import type { V1ObjectMeta } from '@kubernetes/client-node';

/**
 * The JSON object an annotation this plugin wrote holds, or undefined when it is absent, not JSON or not an
 * object: anyone can edit an annotation, and what does not read as ours is left alone by every caller.
 */
export function annotationObject(metadata: V1ObjectMeta | undefined, key: string): Record<string, unknown> | undefined {
  const text = metadata?.annotations?.[key];
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}
