/**
 * Deepest nesting an event's data may have. Real payloads stay far below it (a
 * Kubernetes object nests about 15 levels); far deeper ones would overflow the
 * stack of whatever walks them later (JSON.stringify when the event is sent to
 * a plugin or written to the journal, the engine's size estimate).
 */
export const MAX_DATA_DEPTH = 64;

/** Whether `value` nests objects or arrays more than `max` levels deep. Iterative: safe whatever the depth. */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    if (typeof next.value !== 'object' || next.value === null) continue;
    if (next.depth === max) return true;
    for (const key in next.value) stack.push({ value: (next.value as Record<string, unknown>)[key], depth: next.depth + 1 });
  }
  return false;
}

/** The problem with data nested too deep, for a message. */
export const TOO_DEEP = `nested more than ${MAX_DATA_DEPTH} levels deep`;
