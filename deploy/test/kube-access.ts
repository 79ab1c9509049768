import type { RequestRecord } from '@hollowtrees/testkit';

/** One permission as RBAC names it: `group:resource[/subresource]:verb` (the core group is ""). */
export type Access = string;

const READ_VERBS: Record<string, (named: boolean, watch: boolean) => string> = {
  GET: (named, watch) => (named ? 'get' : watch ? 'watch' : 'list'),
  POST: () => 'create',
  PUT: () => 'update',
  PATCH: () => 'patch',
  DELETE: (named) => (named ? 'delete' : 'deletecollection'),
};

/**
 * The RBAC permission an API request needs, as the API server's request-info resolver derives
 * it: `/api/v1/...` is the core group, `/apis/<group>/<version>/...` another; an optional
 * `namespaces/<ns>/` prefix; then resource, name, subresource.
 */
export function accessOf(request: Pick<RequestRecord, 'method' | 'path' | 'query'>): Access {
  const parts = request.path.split('/').filter(Boolean);
  const [group, rest] = parts[0] === 'api' ? ['', parts.slice(2)] : parts[0] === 'apis' ? [parts[1]!, parts.slice(3)] : [undefined, []];
  if (group === undefined || rest.length === 0) throw new Error(`not a resource request: ${request.method} ${request.path}`);
  const [resource, name, subresource] = rest[0] === 'namespaces' && rest.length > 2 ? rest.slice(2) : rest;
  const verb = READ_VERBS[request.method];
  if (!verb) throw new Error(`no RBAC verb for ${request.method} ${request.path}`);
  const watch = request.query['watch'] === 'true' || request.query['watch'] === '1';
  return `${group}:${resource}${subresource ? `/${subresource}` : ''}:${verb(name !== undefined, watch)}`;
}

/** Every permission a ClusterRole's or Role's rules grant (no wildcards expected: they would fail least privilege). */
export function granted(rules: ReadonlyArray<{ apiGroups: string[]; resources: string[]; verbs: string[] }>): Set<Access> {
  const all = new Set<Access>();
  for (const rule of rules) for (const g of rule.apiGroups) for (const r of rule.resources) for (const v of rule.verbs) all.add(`${g}:${r}:${v}`);
  return all;
}
