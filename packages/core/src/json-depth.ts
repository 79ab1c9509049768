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

const OPEN_OBJECT = 0x7b; // {
const OPEN_ARRAY = 0x5b; // [
const CLOSE_OBJECT = 0x7d; // }
const CLOSE_ARRAY = 0x5d; // ]
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/**
 * {@link nestedDeeperThan} for JSON text, before it is parsed: parsing a body of a few hundred thousand levels takes
 * the event loop for a fraction of a second or more, and the answer would be the same refusal. Brackets inside strings
 * do not count. For text that is not JSON the answer means nothing; parsing it says so.
 */
export function textNestedDeeperThan(text: string, max: number): boolean {
  if (!opensMoreThan(text, max)) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > max) return true;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) depth--;
  }
  return false;
}

/** The problem with data nested too deep, for a message. */
export const TOO_DEEP = `nested more than ${MAX_DATA_DEPTH} levels deep`;

/**
 * Whether `text` has more than `max` opening brackets, in strings or not: only then can it nest
 * deeper than `max`. A batch of alerts has a few hundred against a bound of 10,000, and counting
 * them with `indexOf` takes ~4 µs a 40 KB batch against ~135 µs for the scan that tells strings apart.
 */
function opensMoreThan(text: string, max: number): boolean {
  let opens = 0;
  for (const bracket of ['{', '[']) {
    for (let at = text.indexOf(bracket); at !== -1; at = text.indexOf(bracket, at + 1)) if (++opens > max) return true;
  }
  return false;
}
