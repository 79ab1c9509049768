import { readBounded } from './bounded-body.js';
import { linkedSignal } from './linked-signal.js';

/**
 * The longest answer read. Every answer the watcher reads is a few hundred bytes (Azure's events list
 * a few KiB); a broken or hostile endpoint that answers without end would otherwise be read into
 * memory until the container is killed, and its notices with it.
 */
export const MAX_METADATA_ANSWER_BYTES = 1024 * 1024;

/** A metadata request that failed: no answer, or a status the watcher did not expect. */
export class MetadataError extends Error {
  override readonly name = 'MetadataError';
  constructor(
    message: string,
    /** The HTTP status, when there was an answer. */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** A metadata service's answer. */
export interface MetadataResponse {
  readonly status: number;
  readonly body: string;
  readonly headers: Headers;
}

/** Options of {@link metadataRequest}. */
export interface MetadataRequestOptions {
  method?: 'GET' | 'PUT' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Aborts the request (stop). */
  signal: AbortSignal;
  /** Gives up after this long. Default 5 s; hanging GETs pass their own. */
  timeoutMs?: number;
}

/**
 * One request to a link-local metadata service. Every status is returned (404 means "nothing
 * pending" to IMDS); only no usable answer (refused, reset, timed out, larger than
 * {@link MAX_METADATA_ANSWER_BYTES}) throws {@link MetadataError}.
 */
export async function metadataRequest(url: string, options: MetadataRequestOptions): Promise<MetadataResponse> {
  const linked = linkedSignal([options.signal]);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    linked.abort(new Error('no answer in time'));
  }, options.timeoutMs ?? 5_000);
  try {
    const res = await fetch(url, {
      method: options.method ?? 'GET',
      headers: options.headers ?? {},
      ...(options.body !== undefined && { body: options.body }),
      signal: linked.signal,
      redirect: 'error',
    });
    return { status: res.status, body: await boundedText(res, `${options.method ?? 'GET'} ${url}`), headers: res.headers };
  } catch (err) {
    if (options.signal.aborted) throw options.signal.reason;
    if (err instanceof MetadataError) throw err;
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    throw new MetadataError(`${options.method ?? 'GET'} ${url}: ${timedOut ? 'no answer in time' : `${(err as Error).message}${cause}`}`);
  } finally {
    clearTimeout(timer);
    linked.release();
  }
}

/** The answer's body as text, or a {@link MetadataError} naming `what` once it passes {@link MAX_METADATA_ANSWER_BYTES}. */
async function boundedText(res: Response, what: string): Promise<string> {
  if (!res.body) return '';
  const tooLarge = (): Error => new MetadataError(`${what}: HTTP ${res.status}, and the answer is larger than ${MAX_METADATA_ANSWER_BYTES} bytes`);
  try {
    return (await readBounded(res.body, res.headers.get('content-length'), MAX_METADATA_ANSWER_BYTES, tooLarge)).toString('utf8');
  } catch (err) {
    // Refused on its declared length, the body was never read: let its connection go.
    await res.body.cancel().catch(() => {});
    throw err;
  }
}

/** The body of a 200, or a {@link MetadataError} naming the path and the status. */
export function okBody(url: string, res: MetadataResponse): string {
  if (res.status !== 200) throw new MetadataError(`GET ${url}: HTTP ${res.status}${res.body ? ` ${res.body.slice(0, 200)}` : ''}`, res.status);
  return res.body;
}

/**
 * Parses a JSON body that must be an object or an array (`shape`), or throws a {@link MetadataError}
 * naming where it came from: a `null`, a string or a number (a broken IMDS or proxy) read as the
 * object would fail with a TypeError that names no URL, or be taken for an empty notice.
 */
export function jsonBody<T>(url: string, body: string, shape: 'object' | 'array'): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new MetadataError(`GET ${url}: not JSON: ${body.slice(0, 200)}`);
  }
  const isArray = Array.isArray(parsed);
  if (shape === 'array' ? !isArray : typeof parsed !== 'object' || parsed === null || isArray) throw new MetadataError(`GET ${url}: expected a JSON ${shape}, got ${body.slice(0, 200)}`);
  return parsed as T;
}

/**
 * An instance id read from `url`, or a {@link MetadataError} naming it when `body` is not of the
 * cloud's form (`pattern`): a broken proxy answering 200 with an empty body or a page would
 * otherwise be taken for the instance, and every such node's notices would share one blank id.
 */
export function instanceIdBody(url: string, body: string, pattern: RegExp): string {
  if (!pattern.test(body)) throw new MetadataError(`GET ${url}: not an instance id: "${body.slice(0, 200)}"`);
  return body;
}
