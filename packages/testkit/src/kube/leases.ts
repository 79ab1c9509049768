import { badRequest, conflict, invalid, notFound, success, alreadyExists, type Resource } from './status.js';
import { fieldSelector, labelSelector } from './selectors.js';
import type { Lease, Status } from './types.js';
import type { ListQuery, ObjectList } from './cluster.js';

const LEASES: Resource = { resource: 'leases', group: 'coordination.k8s.io' };
const API_VERSION = 'coordination.k8s.io/v1';
/** A DNS-1123 subdomain, as every object name must be. */
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** What the cluster lends the Lease table: its one resourceVersion counter. */
export interface VersionSource {
  /** Fills uid and creationTimestamp when missing and sets a new resourceVersion. */
  stamp(obj: Lease): void;
  /** The resourceVersion of the last write. */
  current(): string;
  /** Sorts and pages a list answer. */
  page(kind: string, all: Lease[], query: ListQuery): ObjectList<Lease>;
}

/** `DeleteOptions.preconditions`. */
interface Preconditions {
  uid?: string;
  resourceVersion?: string;
}

/** RFC 3339 with exactly six fractional digits, as `metav1.MicroTime` is written. */
const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$/;

const keyOf = (namespace: string, name: string): string => `${namespace}/${name}`;

/** The API server's bound on an object's annotations, names and values together, in bytes (apimachinery's TotalAnnotationSizeLimitB). */
const MAX_ANNOTATION_BYTES = 256 * 1024;

/**
 * `coordination.k8s.io/v1` Leases with the API server's concurrency rules:
 * every write gets a new `resourceVersion`; a create of an existing name is
 * 409 AlreadyExists; an update or delete whose `resourceVersion` (or uid)
 * precondition is stale is 409 Conflict; lists take label and field selectors.
 */
export class LeaseTable {
  private readonly leases = new Map<string, Lease>();

  constructor(private readonly versions: VersionSource) {}

  /** Every Lease, copied. */
  all(): Lease[] {
    return [...this.leases.values()].map((l) => structuredClone(l));
  }

  /** `POST /apis/coordination.k8s.io/v1/namespaces/{ns}/leases`; with `dryRun` (`?dryRun=All`), checked and answered as created, but not stored. */
  create(namespace: string, body: unknown, dryRun = false): Lease {
    const lease = this.checked(namespace, body);
    const name = lease.metadata.name;
    if (this.leases.has(keyOf(namespace, name))) throw alreadyExists(LEASES, name);
    if (lease.metadata.resourceVersion) throw invalid('Lease', name, 'metadata.resourceVersion', 'must not be set on create');
    delete lease.metadata.uid;
    delete lease.metadata.creationTimestamp;
    if (dryRun) return { ...lease, apiVersion: API_VERSION, kind: 'Lease', metadata: { ...lease.metadata, namespace } };
    return this.store(namespace, lease);
  }

  /** `GET .../leases/{name}`. */
  read(namespace: string, name: string): Lease {
    const lease = this.leases.get(keyOf(namespace, name));
    if (!lease) throw notFound(LEASES, name);
    return structuredClone(lease);
  }

  /**
   * `PUT .../leases/{name}`, as the API server's registry does it for Leases
   * (AllowCreateOnUpdate true, AllowUnconditionalUpdate false): an existing
   * Lease is replaced only from its current `metadata.resourceVersion` (409
   * Conflict when stale, 422 when missing); a missing Lease is created (201),
   * whatever resourceVersion the body carries, unless the body names a uid,
   * whose precondition then fails (409).
   */
  replace(namespace: string, name: string, body: unknown): [number, Lease] {
    const lease = this.checked(namespace, body);
    if (lease.metadata.name !== name) throw badRequest('the name of the object does not match the name on the URL');
    const current = this.leases.get(keyOf(namespace, name));
    const version = lease.metadata.resourceVersion;
    if (!current) {
      const uid = lease.metadata.uid;
      if (uid) throw conflict(LEASES, name, `Precondition failed: UID in precondition: ${uid}, UID in object meta: `);
      delete lease.metadata.resourceVersion;
      delete lease.metadata.creationTimestamp;
      return [201, this.store(namespace, lease)];
    }
    if (!version) throw invalid('leases.coordination.k8s.io', name, 'metadata.resourceVersion', 'Invalid value: 0x0: must be specified for an update');
    if (version !== current.metadata.resourceVersion) throw conflict(LEASES, name);
    lease.metadata.uid = current.metadata.uid!;
    lease.metadata.creationTimestamp = current.metadata.creationTimestamp!;
    return [200, this.store(namespace, lease)];
  }

  /** `DELETE .../leases/{name}`, honouring `preconditions` (uid, resourceVersion) in the body's DeleteOptions. */
  delete(namespace: string, name: string, body: unknown): Status {
    const current = this.leases.get(keyOf(namespace, name));
    if (!current) throw notFound(LEASES, name);
    const pre = ((body ?? {}) as { preconditions?: Preconditions }).preconditions ?? {};
    if (pre.uid !== undefined && pre.uid !== current.metadata.uid) throw conflict(LEASES, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`);
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== current.metadata.resourceVersion) {
      throw conflict(LEASES, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`);
    }
    this.leases.delete(keyOf(namespace, name));
    return { ...success(200), details: { name, group: LEASES.group!, kind: LEASES.resource, uid: current.metadata.uid! } } as Status;
  }

  /** `GET .../namespaces/{ns}/leases` (or every namespace's), with label and field selectors, `limit` and `continue`. */
  list(namespace: string | undefined, query: ListQuery): ObjectList<Lease> {
    const byField = fieldSelector<Lease>(query.fieldSelector, { 'metadata.name': (l) => l.metadata.name, 'metadata.namespace': (l) => l.metadata.namespace ?? '' });
    const byLabel = labelSelector(query.labelSelector);
    const matching = [...this.leases.values()].filter((l) => (namespace === undefined || l.metadata.namespace === namespace) && byField(l) && byLabel(l.metadata.labels));
    return this.versions.page('LeaseList', matching, query);
  }

  /** The body as a Lease of `namespace`, or the API server's 400/422. */
  private checked(namespace: string, body: unknown): Lease {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the object provided is unrecognized (must be of type Lease)');
    const lease = structuredClone(body) as Lease;
    const name = lease.metadata?.name;
    if (typeof name !== 'string' || name === '') throw invalid('Lease', '', 'metadata.name', 'name or generateName is required');
    if (name.length > 253 || !SUBDOMAIN.test(name)) throw invalid('Lease', name, 'metadata.name', 'a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \'-\' or \'.\', and must start and end with an alphanumeric character');
    if (lease.metadata.namespace !== undefined && lease.metadata.namespace !== namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    const annotationBytes = Object.entries(lease.metadata.annotations ?? {}).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(String(v)), 0);
    if (annotationBytes > MAX_ANNOTATION_BYTES) throw invalid('Lease', name, 'metadata.annotations', `Too long: must have at most ${MAX_ANNOTATION_BYTES} bytes`);
    for (const field of ['acquireTime', 'renewTime'] as const) {
      const value = lease.spec?.[field];
      // MicroTime: the API server parses exactly six fractional digits and refuses Date#toISOString()'s three.
      if (value !== undefined && (typeof value !== 'string' || !MICRO_TIME.test(value))) {
        throw badRequest(`Lease in version "v1" cannot be handled as a Lease: parsing time ${JSON.stringify(value)} as "2006-01-02T15:04:05.000000Z07:00": spec.${field} is not a MicroTime`);
      }
    }
    return lease;
  }

  private store(namespace: string, lease: Lease): Lease {
    lease.apiVersion = API_VERSION;
    lease.kind = 'Lease';
    lease.metadata.namespace = namespace;
    this.versions.stamp(lease);
    this.leases.set(keyOf(namespace, lease.metadata.name), lease);
    return structuredClone(lease);
  }
}
