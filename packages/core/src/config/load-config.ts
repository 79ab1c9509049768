import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isNode, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Alias, type Document } from 'yaml';
import { fileProblem } from '../file-problem.js';
import { describeIssues, formatPath, safeParseWithInput } from '../validation-issues.js';
import { ConfigError, type ConfigProblem } from './config-error.js';
import { interpolateDocument } from './interpolate.js';
import { keyProblems } from './key-problems.js';
import { cooldownWarnings } from './cooldown-warnings.js';
import { configSchema, type Config } from './schema.js';
import { ValueDisplay } from './value-display.js';

/** Names usable in a flow's `plugins` without declaring them. */
export const BUILTIN_PLUGINS: readonly string[] = ['log'];

/** A validated configuration and what the reader should know about it. */
export interface LoadedConfig {
  config: Config;
  /** The file it came from, or `<embedded default>`. */
  file: string;
  /** Deprecations and similar, to log at start. */
  warnings: string[];
  /** How a message or log line may show a value of this file: never one from the environment. */
  display: ValueDisplay;
  /**
   * The directory its relative paths (certificates, secrets, `state.file`, the kubeconfig) are read
   * from: the file's own, as Prometheus and Alertmanager read theirs, so `validate` run elsewhere and
   * a unit with another working directory read the same files. The working directory for the embedded default.
   */
  baseDir: string;
}

function checkReferences(config: Config, display: ValueDisplay): ConfigProblem[] {
  const known = [...new Set([...Object.keys(config.plugins), ...BUILTIN_PLUGINS])].sort();
  const problems: ConfigProblem[] = [];
  for (const [flowName, flow] of Object.entries(config.flows)) {
    flow.plugins.forEach(({ plugin: name }, i) => {
      const step = formatPath(['flows', flowName, 'plugins', i]);
      // A step written as {plugin, config} has its name one level down, and that is where an ${ENV} would be recorded.
      const path = display.isFromEnvironment(`${step}.plugin`) ? `${step}.plugin` : step;
      if (!known.includes(name)) problems.push({ path, message: `unknown plugin ${display.quoted(path, name)} (known: ${known.join(', ')})` });
    });
  }
  return problems;
}

/**
 * The document as plain values. yaml throws for what its parse lets through: an alias of an
 * anchor that is not (yet) set, and aliases expanding past its limit (a "billion laughs").
 */
function plainValue(doc: Document, file: string): unknown {
  try {
    return doc.toJS();
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: err instanceof Error ? err.message : String(err) }]);
  }
}

/**
 * The first alias of an anchor not set before it, with its line and column: yaml's parse lets it
 * through, and the error its `toJS()` throws says which anchor but not where.
 */
function unresolvedAlias(doc: Document, lines: LineCounter): string | undefined {
  let alias: Alias | undefined;
  visit(doc, {
    Alias(_key, node) {
      if (node.resolve(doc) !== undefined) return undefined;
      alias = node;
      return visit.BREAK;
    },
  });
  if (alias === undefined) return undefined;
  const { line, col } = lines.linePos(alias.range?.[0] ?? 0);
  return `line ${line}, column ${col}: Unresolved alias (the anchor must be set before the alias): ${alias.source}`;
}

/**
 * The path of the key written at `offset`, as the schema's problems name paths (`flows.spot.allowedEvents`,
 * `plugins[0]`): yaml's duplicate-key error says only where, and a file's `spot:` may be one of many.
 */
function keyPathAt(doc: Document, offset: number): string | undefined {
  let found: string | undefined;
  visit(doc, {
    Pair(_key, pair, ancestors) {
      if (!isNode(pair.key) || pair.key.range?.[0] !== offset) return undefined;
      const chain = [...ancestors, pair];
      found = chain.reduce<string>((text, node, i) => {
        if (isPair(node)) return `${text}${text ? '.' : ''}${String(isScalar(node.key) ? node.key.value : node.key)}`;
        return isSeq(node) ? `${text}[${node.items.indexOf(chain[i + 1])}]` : text;
      }, '');
      return visit.BREAK;
    },
  });
  return found;
}

/**
 * Parses and validates configuration text. Throws {@link ConfigError} naming
 * the file, the path and what was expected for every problem found.
 */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  // Parse first, then interpolate into string values: a value from the
  // environment can never change the structure, nor show up in a YAML error.
  // yaml's defaults refuse duplicate keys and give each error its line and column. Merge keys
  // (`<<: *common`) as Alertmanager's and Kubernetes' YAML reads them: flows often share most of their settings.
  const lines = new LineCounter();
  const doc = parseDocument(text, { merge: true, lineCounter: lines });
  // Warnings too: yaml loads a value under a tag it does not know (`!env TOKEN`, `!vault ...`,
  // `!!float 1`) as the bare text after the tag, so the file would mean something else than written.
  const yamlProblems = [...doc.errors, ...doc.warnings];
  if (yamlProblems.length > 0) {
    throw new ConfigError(
      file,
      yamlProblems.map((e) => {
        const key = e.code === 'DUPLICATE_KEY' ? keyPathAt(doc, e.pos[0]) : undefined;
        const reason = key !== undefined ? `${key} is written twice (a key is written once in a mapping)` : e.message.split('\n', 1)[0]!.replace(/ at line \d+, column \d+:?$/, '');
        const hint = e.code === 'TAG_RESOLVE_FAILED' ? ' (no tags are read here; write ${VAR} for a value from the environment)' : '';
        return { path: '', message: `line ${e.linePos?.[0].line ?? '?'}, column ${e.linePos?.[0].col ?? '?'}: ${reason}${hint}` };
      }),
    );
  }
  const alias = unresolvedAlias(doc, lines);
  if (alias !== undefined) throw new ConfigError(file, [{ path: '', message: alias }]);
  // Once before interpolation, which follows aliases too: yaml's own guard then refuses an alias
  // bomb (exponential expansion) before anything walks it, and an alias of no anchor.
  plainValue(doc, file);
  const { problems: missing, fromEnv } = interpolateDocument(doc, env);
  if (missing.length > 0) throw new ConfigError(file, missing);
  const display = new ValueDisplay(fromEnv);

  const raw: unknown = plainValue(doc, file) ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [{ path: '', message: `expected a YAML mapping with server, log, plugins and flows, got ${Array.isArray(raw) ? 'a list' : `a ${typeof raw}`}` }]);
  }

  // Before the schema, which would drop such a key silently.
  const badKeys = keyProblems(raw);
  if (badKeys.length > 0) throw new ConfigError(file, badKeys);

  const parsed = safeParseWithInput(configSchema, raw);
  if (!parsed.success) throw new ConfigError(file, describeIssues(parsed.error.issues, [], (path, value) => display.quoted(path, value)));
  const config = parsed.data;

  const problems = checkReferences(config, display);
  if (problems.length > 0) throw new ConfigError(file, problems);

  const warnings: string[] = [];
  const bindAddr = config.global?.bindAddr;
  if (bindAddr !== undefined) {
    warnings.push(`${file}: global.bindAddr is deprecated; write server.listen instead`);
    const serverSection = (raw as { server?: { listen?: unknown } }).server;
    if (serverSection?.listen === undefined) {
      config.server.listen = bindAddr;
      const written = fromEnv.get('global.bindAddr');
      if (written !== undefined) fromEnv.set('server.listen', written);
    }
  }
  warnings.push(...cooldownWarnings(config, file));
  return { config, file, warnings, display, baseDir: resolve(dirname(file)) };
}

/** Reads and validates a configuration file. Throws {@link ConfigError}, also when the file cannot be read. */
export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read file: ${fileProblem(err) ?? String(err)}` }]);
  }
  return parseConfig(text, file, env);
}
