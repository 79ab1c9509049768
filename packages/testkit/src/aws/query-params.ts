import { AwsApiError } from './aws-api-error.js';

/**
 * The form-encoded parameters of one AWS query-protocol request, with the
 * list conventions of both dialects: EC2 flattens lists (`InstanceId.1`), the
 * awsQuery services name their members (`InstanceIds.member.1`).
 */
export class QueryParams {
  private constructor(private readonly entries: ReadonlyMap<string, string>) {}

  /** Parses an `application/x-www-form-urlencoded` body. */
  static parse(body: string): QueryParams {
    return new QueryParams(new Map(new URLSearchParams(body)));
  }

  get(name: string): string | undefined {
    return this.entries.get(name);
  }

  /** The value, or the MissingParameter error AWS answers when it is absent. */
  require(name: string): string {
    const value = this.entries.get(name);
    if (value === undefined || value === '') {
      throw new AwsApiError('MissingParameter', `The request must contain the parameter ${name}`);
    }
    return value;
  }

  bool(name: string): boolean | undefined {
    const value = this.entries.get(name);
    return value === undefined ? undefined : value === 'true';
  }

  int(name: string): number | undefined {
    const value = this.entries.get(name);
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n)) throw new AwsApiError('ValidationError', `Value '${value}' at '${name}' is not an integer`);
    return n;
  }

  /** Values of `prefix.1`, `prefix.2`, ... in index order. */
  list(prefix: string): string[] {
    return this.indices(prefix).map((i) => this.entries.get(`${prefix}.${i}`) ?? '');
  }

  /** The structures under `prefix.1.*`, `prefix.2.*`, ... in index order, keys relative to them. */
  structs(prefix: string): QueryParams[] {
    return this.indices(prefix).map((i) => this.under(`${prefix}.${i}`));
  }

  /** The parameters under `prefix.*`, keys relative to it. */
  under(prefix: string): QueryParams {
    const start = `${prefix}.`;
    const sub = new Map<string, string>();
    for (const [k, v] of this.entries) if (k.startsWith(start)) sub.set(k.slice(start.length), v);
    return new QueryParams(sub);
  }

  /** A plain copy, for call logs and assertions. */
  toObject(): Record<string, string> {
    return Object.fromEntries(this.entries);
  }

  private indices(prefix: string): number[] {
    const start = `${prefix}.`;
    const found = new Set<number>();
    for (const k of this.entries.keys()) {
      if (!k.startsWith(start)) continue;
      const n = Number(k.slice(start.length).split('.')[0]);
      if (Number.isInteger(n) && n > 0) found.add(n);
    }
    return [...found].sort((a, b) => a - b);
  }
}

/** EC2's answer to a valid request with `DryRun=true`: checked after the parameters, before anything is done. */
export function dryRunGuard(params: QueryParams): void {
  if (params.bool('DryRun')) throw new AwsApiError('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
}
