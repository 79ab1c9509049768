import { badRequest } from './status.js';

/** One `key=value`, `key==value` or `key!=value` requirement of a selector. */
interface Requirement {
  key: string;
  value: string;
  equal: boolean;
}

function parse(selector: string | null): Requirement[] {
  if (!selector) return [];
  return selector.split(',').map((part) => {
    const m = /^\s*([^!=\s]+)\s*(==|=|!=)\s*([^\s]*)\s*$/.exec(part);
    if (!m) throw badRequest(`unable to parse requirement: ${part}`);
    return { key: m[1]!, value: m[3]!, equal: m[2] !== '!=' };
  });
}

/**
 * A compiled `fieldSelector`; only the fields in `supported` may appear, as the
 * API server allows a fixed set per resource.
 */
export function fieldSelector<T>(
  selector: string | null,
  supported: Record<string, (obj: T) => string>,
): (obj: T) => boolean {
  const reqs = parse(selector);
  for (const r of reqs) {
    if (!supported[r.key]) throw badRequest(`field label not supported: ${r.key}`);
  }
  return (obj) => reqs.every((r) => (supported[r.key]!(obj) === r.value) === r.equal);
}

/** A compiled equality-based `labelSelector`. */
export function labelSelector(selector: string | null): (labels: Record<string, string> | undefined) => boolean {
  const reqs = parse(selector);
  return (labels) => reqs.every((r) => ((labels ?? {})[r.key] === r.value) === r.equal);
}

/** Whether `labels` carry every pair of a `matchLabels` selector; an empty selector matches nothing, as for PDBs. */
export function matchesLabels(matchLabels: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  const pairs = Object.entries(matchLabels);
  return pairs.length > 0 && pairs.every(([k, v]) => labels?.[k] === v);
}
