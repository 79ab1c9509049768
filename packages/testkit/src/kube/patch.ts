import { badRequest, invalid, unsupportedMediaType } from './status.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7386 JSON merge patch: objects merge, `null` deletes, everything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key] ?? null, value);
  }
  return out;
}

interface JsonPatchOp {
  op: string;
  path: string;
  value?: Json;
}

const unescape = (token: string): string => token.replace(/~1/g, '/').replace(/~0/g, '~');

/** RFC 6902 JSON patch, operations add, remove, replace and test. */
export function jsonPatch(target: Json, ops: unknown, kind: string, name: string): Json {
  if (!Array.isArray(ops)) throw badRequest('json patch must be an array of operations');
  let doc = structuredClone(target);
  for (const raw of ops as JsonPatchOp[]) {
    const tokens = String(raw.path ?? '').split('/').slice(1).map(unescape);
    const last = tokens.pop();
    if (last === undefined) {
      if (raw.op === 'test') continue;
      doc = raw.value ?? null;
      continue;
    }
    let parent: Json = doc;
    for (const t of tokens) {
      const next: Json | undefined = Array.isArray(parent) ? parent[Number(t)] : isObject(parent) ? parent[t] : undefined;
      if (next === undefined) throw invalid(kind, name, raw.path, `path ${raw.path} does not exist`);
      parent = next;
    }
    applyOp(parent, last, raw, kind, name);
  }
  return doc;
}

function applyOp(parent: Json, key: string, op: JsonPatchOp, kind: string, name: string): void {
  if (Array.isArray(parent)) {
    const index = key === '-' ? parent.length : Number(key);
    if (op.op === 'add') parent.splice(index, 0, op.value ?? null);
    else if (op.op === 'remove') parent.splice(index, 1);
    else if (op.op === 'replace') parent[index] = op.value ?? null;
    else if (op.op === 'test') testValue(parent[index], op, kind, name);
    else throw badRequest(`unsupported json patch operation ${op.op}`);
    return;
  }
  if (!isObject(parent)) throw invalid(kind, name, op.path, `path ${op.path} does not exist`);
  if (op.op === 'add' || op.op === 'replace') parent[key] = op.value ?? null;
  else if (op.op === 'remove') delete parent[key];
  else if (op.op === 'test') testValue(parent[key], op, kind, name);
  else throw badRequest(`unsupported json patch operation ${op.op}`);
}

function testValue(actual: Json | undefined, op: JsonPatchOp, kind: string, name: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(op.value)) throw invalid(kind, name, op.path, `test operation failed`);
}

/**
 * Applies a PATCH body by its content type. A strategic merge patch is applied as
 * a merge patch: for the node fields a drain touches (`spec.taints` has no merge
 * key, so the list is replaced) both give the same result.
 */
export function applyPatch<T>(target: T, contentType: string, body: unknown, kind: string, name: string): T {
  const type = contentType.split(';')[0]?.trim() ?? '';
  const doc = target as unknown as Json;
  if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') {
    return mergePatch(doc, body as Json) as unknown as T;
  }
  if (type === 'application/json-patch+json') return jsonPatch(doc, body, kind, name) as unknown as T;
  throw unsupportedMediaType(type);
}
