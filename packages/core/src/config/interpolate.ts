import { isAlias, isMap, isPair, isScalar, isSeq, visit, type Document, type Node, type Pair, type Scalar } from 'yaml';
import { formatPath } from '../validation-issues.js';
import type { ConfigProblem } from './config-error.js';

/** `$$`, a reference (`${NAME}`, `${NAME:-default}`), or a `${` that starts none (the last alternative). */
const REFERENCE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{/g;

/** What a `${` that starts no reference gets: never the text around it, which may be an inline secret. */
const NOT_A_REFERENCE = 'a "${" that starts no ${NAME} or ${NAME:-default} (NAME: letters, digits and _; no nesting); write $${ for the text "${"';

/**
 * The result of interpolating one string: the new text (and whether any of it
 * came from the environment, rather than from defaults and `$$`), or what is
 * wrong with it: variables that are not set, or a `${` that is no reference.
 */
export type Interpolated = { ok: true; value: string; fromEnv: boolean } | { ok: false; problems: string[] };

/**
 * Replaces `${VAR}` and `${VAR:-default}` in one string with values from `env`
 * (a variable set to the empty string counts as unset); `$$` writes a literal `$`.
 * The replacement is not scanned again, so a value containing `${...}` or `$$`
 * is taken verbatim. Any other `${` (`${VAR-default}`, `${ VAR }`, `${VAR:?}`, a
 * nested default) is a problem: taken literally, it would become part of the
 * value (a token "${TOKEN-x}") instead of what the writer meant.
 */
export function interpolateString(text: string, env: NodeJS.ProcessEnv): Interpolated {
  const problems: string[] = [];
  let fromEnv = false;
  const value = text.replace(REFERENCE, (match, name: string | undefined, fallback: string | undefined) => {
    if (match === '$$') return '$';
    if (name === undefined || fallback?.includes('${')) {
      if (!problems.includes(NOT_A_REFERENCE)) problems.push(NOT_A_REFERENCE);
      return match;
    }
    const set = env[name];
    if (set !== undefined && set !== '') {
      fromEnv = true;
      return set;
    }
    if (fallback !== undefined) return fallback;
    const missing = `environment variable ${name} is not set (write \${${name}:-default} for a default)`;
    if (!problems.includes(missing)) problems.push(missing);
    return match;
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value, fromEnv };
}

type Ancestor = Document | Node | Pair;

/** The keys and indexes leading to `node`, or `undefined` when `node` is (inside) a mapping key. */
function pathTo(ancestors: readonly Ancestor[], node: Node): PropertyKey[] | undefined {
  const path: PropertyKey[] = [];
  for (const [i, parent] of ancestors.entries()) {
    const child = ancestors[i + 1] ?? node;
    if (isPair(parent)) {
      if (parent.key === child) return undefined;
      path.push(isScalar(parent.key) ? String(parent.key.value) : String(parent.key));
    } else if (isSeq(parent)) {
      path.push(parent.items.indexOf(child));
    }
  }
  return path;
}

/**
 * The YAML path of every value that took text from the environment, with the
 * text as written in the file (`${TOKEN}`, `${DIR}/cert.pem`). A value reached
 * through an alias is listed at the alias' path too, since that is where the
 * configuration, and so any message about it, sees it.
 */
export type EnvironmentValues = Map<string, string>;

/** `<<` (yaml's `merge` option parses it to a symbol): what it merges lands in the map it is in, at that map's path. */
const isMergeKey = (key: unknown): boolean => isScalar(key) && typeof key.value === 'symbol';

function findPaths(doc: Document, written: ReadonlyMap<Scalar, string>): EnvironmentValues {
  const found: EnvironmentValues = new Map();
  const walk = (node: unknown, path: PropertyKey[], seen: ReadonlySet<unknown>): void => {
    // `&a [*a]` is valid YAML: an alias inside its own anchor must not loop.
    if (seen.has(node)) return;
    const inside = new Set(seen).add(node);
    if (isAlias(node)) walk(node.resolve(doc), path, inside);
    else if (isMap(node)) for (const pair of node.items) walk(pair.value, isMergeKey(pair.key) ? path : [...path, isScalar(pair.key) ? String(pair.key.value) : String(pair.key)], inside);
    else if (isSeq(node)) node.items.forEach((item, i) => walk(item, [...path, i], inside));
    else if (isScalar(node) && written.has(node)) found.set(formatPath(path), written.get(node)!);
  };
  walk(doc.contents, [], new Set());
  return found;
}

/**
 * Interpolates environment variables into the string scalar values of a
 * parsed YAML document, in place. Runs after parsing, so a value can never
 * change the structure of the file (a `#`, quote, newline or leading `*` in a
 * secret is kept verbatim), and is never part of an error message.
 *
 * - Only values are interpolated; mapping keys are left as written.
 * - Only string scalars are touched; the result stays a string, so numbers
 *   and booleans cannot come from the environment (`concurrency: ${N}` fails
 *   validation with "expected number, received string").
 * - Comments are not interpolated.
 * - An aliased value is interpolated once, where its anchor is.
 *
 * Returns one problem per unset variable without a default, and per value with
 * a `${` that is no reference, at the YAML path of the value; and the paths of
 * the values that took text from the environment, so that no message shows them.
 */
export function interpolateDocument(doc: Document, env: NodeJS.ProcessEnv): { problems: ConfigProblem[]; fromEnv: EnvironmentValues } {
  const problems: ConfigProblem[] = [];
  const written = new Map<Scalar, string>();
  visit(doc, {
    Scalar(_key, node, ancestors) {
      if (typeof node.value !== 'string') return;
      const path = pathTo(ancestors, node);
      if (path === undefined) return;
      const result = interpolateString(node.value, env);
      if (result.ok) {
        if (result.fromEnv) written.set(node, node.value);
        node.value = result.value;
        return;
      }
      for (const message of result.problems) problems.push({ path: formatPath(path), message });
    },
  });
  return { problems, fromEnv: findPaths(doc, written) };
}
