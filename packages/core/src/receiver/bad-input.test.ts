/**
 * Bad input, table-driven: malformed and hostile requests sent over real
 * HTTP (node:http, or a raw socket where an HTTP client refuses to send such
 * bytes), each with the status and error text core must answer with.
 *
 * Decisions this table pins down (what core does, on purpose):
 * - The alert paths take only Content-Type application/json (parameters such
 *   as charset allowed, the body must be UTF-8 anyway), as Prometheus and
 *   Alertmanager send it; anything else, or none, is 415 before the body is
 *   read, so a web page cannot make a browser post alerts without a CORS
 *   preflight (which gets 405). Content-Encoding is not decoded: a gzip
 *   body is 415, naming the coding, before it is read.
 * - A UTF-8 byte order mark is not stripped (RFC 8259 forbids sending one),
 *   and a body that is not valid UTF-8 is refused rather than having its
 *   bytes replaced, which could merge two instances' label values into one group.
 * - Duplicate JSON keys: the last one wins (as in Go's encoding/json).
 * - Times: RFC 3339 with any number of fractional digits (kept to nanoseconds),
 *   within a protobuf Timestamp's years 0001-9999 UTC; a leap second is refused
 *   (Go, which Prometheus and Alertmanager are written in, never writes one).
 * - A `__proto__` key where core ignores fields is dropped; as a label or
 *   annotation name it is refused (400), whatever its value: JavaScript code
 *   down the line (core's, a plugin's) could drop it or set a prototype with it.
 * - Paths are matched byte for byte: no dot-segment or percent decoding, no
 *   trailing-slash or case folding; a query string is ignored.
 * - Requests Node's HTTP parser refuses (bad method, malformed header, framing
 *   conflicts, oversized headers) never reach core's handler: they get a bare
 *   `400 Bad Request` without a JSON body, counted in
 *   hollowtrees_requests_rejected_total as `bad_request` (the table marks them `bare`). A
 *   framing error inside the body (a bad chunk) comes after core took the
 *   request: the client gets the same bare 400, and core counts it as `bad_data`.
 * - A client that hangs up before its body is complete is counted as
 *   `bad_data` (nobody is left to read the answer).
 * - A client that stalls (timeouts at the end of this file) loses its request
 *   slot after the body timeout (408 in JSON) and its connection after the
 *   headers timeout (a bare 408) or the idle timeout, whether or not it reads.
 * - With auth on, every path but the probes answers 401 before the body or
 *   the route is looked at, so an unauthenticated client learns nothing.
 */
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RejectReason } from './http-error.js';
import { readFixture } from '../../test/support/fixtures.js';
import { startRecordingPlugin, type RecordingPlugin } from '../../test/support/recording-plugin.js';
import { startTestCore, type TestCore } from '../../test/support/start-core.js';

const MAX_BODY = 1024 * 1024;
const TOKEN = 'bad-input-token-7f3a';
const BASIC_USER = 'prometheus';
const BASIC_PASSWORD = 'pa55:word';

/** One flow taking every alert into the recording plugin, under the given `server` section. */
const coreConfig = (server: string, plugin: string): string => `
server:
${server}
plugins:
  rec: { type: grpc, address: "${plugin}", timeout: 5s, retry: { attempts: 1 } }
flows:
  everything:
    allowedEvents: [prometheus.server.alert.*, prometheus.server.alert.*.resolved]
    groupBy: [instance_id]
    cooldown: 1h
    plugins: [rec]
`;
const openConfig = (plugin: string): string =>
  coreConfig(`  limits: { maxBodyBytes: ${MAX_BODY}, maxAlertsPerRequest: 5, maxLabelsPerAlert: 5, maxLabelLength: 64, maxConcurrentRequests: 2 }`, plugin);
const authConfig = (plugin: string): string =>
  coreConfig(`  auth:\n    bearerToken: ${TOKEN}\n    basic: { username: ${BASIC_USER}, password: "${BASIC_PASSWORD}" }`, plugin);

// ---------------------------------------------------------------- senders

/** One HTTP answer as the client saw it. `status` 0: no answer (the client hung up first). */
interface Reply {
  status: number;
  reasonPhrase: string;
  headers: Record<string, string>;
  body: string;
}

type Send = (port: number) => Promise<Reply>;

/** A request through node:http (no URL parsing, so the path goes out byte for byte). */
function http(method: string, path: string, body?: string | Buffer, headers: Record<string, string | string[]> = {}): Send {
  return (port) =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            reasonPhrase: res.statusMessage ?? '',
            headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, String(v)])),
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
}

/** JSON POST through node:http. */
const post = (path: string, body: unknown, headers: Record<string, string | string[]> = {}): Send =>
  http('POST', path, typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), { 'content-type': 'application/json', ...headers });

/** Parses the first final (non-1xx) response out of raw bytes. */
function parseRaw(raw: Buffer): Reply | undefined {
  let text = raw.toString('latin1');
  for (;;) {
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const [statusLine, ...headerLines] = text.slice(0, end).split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine!);
    if (!m) return undefined;
    const status = Number(m[1]);
    const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    let rest = text.slice(end + 4);
    if (status < 200) {
      text = rest;
      continue;
    }
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (Buffer.byteLength(rest, 'latin1') < length) return undefined;
      rest = rest.slice(0, length);
    } else if (headers['transfer-encoding'] === 'chunked') {
      if (!rest.includes('0\r\n\r\n')) return undefined;
      let body = '';
      for (;;) {
        const nl = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, nl), 16);
        if (!size) break;
        body += rest.slice(nl + 2, nl + 2 + size);
        rest = rest.slice(nl + 2 + size + 2);
      }
      rest = body;
    }
    return { status, reasonPhrase: m[2]!, headers, body: Buffer.from(rest, 'latin1').toString('utf8') };
  }
}

interface RawOptions {
  /** Send `data`, wait this long, then destroy the socket without reading an answer. */
  hangUpAfterMs?: number;
  /** Written one after another, `gapMs` apart, before hanging up (a slowloris trickle). */
  trickle?: Array<string | Buffer>;
  gapMs?: number;
}

/** Raw bytes on a TCP socket, for what no HTTP client would send. */
function raw(data: string | Buffer, options: RawOptions = {}): Send {
  return (port) =>
    new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const received: Buffer[] = [];
      let settled = false;
      const finish = (reply: Reply | Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (reply instanceof Error) reject(reply);
        else resolve(reply);
      };
      const timer = setTimeout(() => finish(new Error(`no complete answer within 10 s; got ${JSON.stringify(Buffer.concat(received).toString('latin1').slice(0, 200))}`)), 10_000);
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        if (options.hangUpAfterMs === undefined) {
          const reply = parseRaw(Buffer.concat(received));
          if (reply) finish(reply);
        }
      });
      socket.on('error', () => {}); // a reset after the answer is fine; the close handler decides
      socket.on('close', () => {
        const got = Buffer.concat(received);
        if (options.hangUpAfterMs !== undefined) finish({ status: got.length ? -1 : 0, reasonPhrase: '', headers: {}, body: got.toString('latin1') });
        else finish(parseRaw(got) ?? new Error(`connection closed without a complete answer; got ${JSON.stringify(got.toString('latin1').slice(0, 200))}`));
      });
      socket.write(data);
      if (options.hangUpAfterMs !== undefined) {
        void (async () => {
          for (const piece of options.trickle ?? []) {
            await new Promise((r) => setTimeout(r, options.gapMs ?? 50));
            if (!socket.destroyed) socket.write(piece);
          }
          await new Promise((r) => setTimeout(r, options.hangUpAfterMs));
          socket.destroy();
        })();
      }
    });
}

/** `METHOD path HTTP/1.1` with `Host` and `Connection: close`, the extra header lines, and a body. */
function rawRequest(requestLine: string, headerLines: string[] = [], body: string | Buffer = ''): Buffer {
  const head = [requestLine, 'Host: 127.0.0.1', 'Connection: close', ...headerLines].join('\r\n') + '\r\n\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1')]);
}

/**
 * Holds `maxConcurrentRequests` uploads open mid-body, then sends requests
 * until one is refused for overload; the held uploads are then completed.
 */
function overload(held: number): Send {
  return async (port) => {
    const sockets = await Promise.all(
      Array.from({ length: held }, () =>
        new Promise<ReturnType<typeof connect>>((resolve) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.on('error', () => {});
          s.write(rawRequest('POST /api/v2/alerts HTTP/1.1', ['Content-Type: application/json', 'Content-Length: 2'], '['));
        }),
      ),
    );
    try {
      for (let i = 0; i < 100; i++) {
        const reply = await post('/api/v2/alerts', '[]')(port);
        if (reply.status !== 200) return reply;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('never refused for overload');
    } finally {
      // Completing the held uploads frees their slots with a plain 200 (an empty batch).
      await Promise.all(sockets.map((s) => new Promise<void>((resolve) => {
        s.resume(); // read the 200, so the socket sees the server's close
        s.on('close', () => resolve());
        s.end(']');
      })));
    }
  };
}

// ---------------------------------------------------------------- payloads

const alert = (instance: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ labels: { alertname: 'BadInput', instance_id: instance }, ...extra });
const webhook = (alerts: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ version: '4', groupKey: '{}:{instance_id="x"}', externalURL: 'http://am:9093', alerts, ...extra });
const firing = (instance: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ ...alert(instance), status: 'firing', ...extra });
const nested = (depth: number, open: string, close: string, inner = ''): string => open.repeat(depth) + inner + close.repeat(depth);
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const utf8 = (...parts: Array<string | number[]>): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
const V2 = '/api/v2/alerts';
const V1 = '/api/v1/alerts';
const WH = '/webhook/alertmanager';
const H = ['Content-Type: application/json'];

// ---------------------------------------------------------------- the table
/**
 * Times a sender could put in startsAt: [what, value, accepted]. RFC 3339 allows any number of
 * fractional digits (core keeps nanoseconds); everything else must be a 400, never a 500.
 */
const hostileTimes: Array<[string, string, boolean]> = [
  ['10 fractional digits', '2026-11-25T10:00:00.1234567890Z', true],
  ['100 fractional digits', `2026-11-25T10:00:00.${'1'.repeat(100)}Z`, true],
  ['an offset of -00:00', '2026-11-25T10:00:00-00:00', true],
  ['an offset of +23:59', '2026-11-25T10:00:00+23:59', true],
  ['the last nanosecond of year 9999', '9999-12-31T23:59:59.999999999Z', true],
  ['the first second of year 0001 after Go\'s zero time', '0001-01-01T00:00:01Z', true],
  ['month 13', '2026-13-01T10:00:00Z', false],
  ['month 00', '2026-00-10T10:00:00Z', false],
  ['day 32', '2026-01-32T10:00:00Z', false],
  ['February 29 in a common year', '2026-02-29T10:00:00Z', false],
  ['hour 24', '2026-11-25T24:00:00Z', false],
  ['minute 60', '2026-11-25T10:60:00Z', false],
  ['a leap second (:60)', '2016-12-31T23:59:60Z', false],
  ['an offset of +99:99', '2026-11-25T10:00:00+99:99', false],
  ['an offset of +24:00', '2026-11-25T10:00:00+24:00', false],
  ['an offset without a colon', '2026-11-25T10:00:00+0100', false],
  ['year 0000', '0000-01-01T00:00:00Z', false],
  ['year 0001 moved into year 0000 by its offset', '0001-01-01T00:30:00+01:00', false],
  ['year 9999 moved into year 10000 by its offset', '9999-12-31T23:00:00-05:00', false],
  ['a five-digit year', '10000-01-01T00:00:00Z', false],
  ['an expanded year (+275760)', '+275760-09-13T00:00:00Z', false],
  ['a huge year', `${'9'.repeat(40)}-01-01T00:00:00Z`, false],
  ['a dot and no fractional digits', '2026-11-25T10:00:00.Z', false],
  ['no seconds', '2026-11-25T10:00Z', false],
  ['a space instead of T', '2026-11-25 10:00:00Z', false],
  ['full-width digits', '\uff12026-11-25T10:00:00Z', false],
];


interface Row {
  /** The behaviour, as the test name. */
  name: string;
  /** Which instance: the open one (small limits) or the one with auth on. */
  core?: 'auth';
  send: Send;
  /** Expected status; 0 = no answer, the client hung up first. */
  status: number;
  /**
   * Expected error text: a substring of the JSON `error` (exact for 401s);
   * for a `bare` answer from Node's HTTP parser, the status line's reason phrase.
   */
  error?: string;
  /** The `errorType` and the rejection counter's reason; none for 200s; `bad_request` when left out on a bare answer. */
  reason?: RejectReason;
  /** The rejection counter's reason where it is not `reason`: a GET without credentials of a path that takes no events counts as `unauthorized_read`. */
  counted?: RejectReason;
  /** The answer comes from Node's HTTP parser: no JSON body (counted only if core had taken the request). */
  bare?: boolean;
  /** For a 200, or a 400 that refused some alerts of a batch and took the others: the number of alerts accepted. */
  accepted?: number;
  /** A response header that must be present (name, substring). */
  header?: [string, string];
}

const rows: Row[] = [
  // --- methods and paths
  { name: 'refuses GET on the v2 alert path with 405 and Allow: POST', send: http('GET', V2), status: 405, error: 'GET is not allowed on /api/v2/alerts; use POST', reason: 'method_not_allowed', header: ['allow', 'POST'] },
  { name: 'refuses PUT on the v1 alert path with 405', send: http('PUT', V1, '[]'), status: 405, error: 'PUT is not allowed on /api/v1/alerts; use POST', reason: 'method_not_allowed' },
  { name: 'refuses DELETE on the webhook path with 405', send: http('DELETE', WH), status: 405, error: 'DELETE is not allowed on /webhook/alertmanager; use POST', reason: 'method_not_allowed' },
  { name: 'refuses PATCH on the v2 alert path with 405', send: http('PATCH', V2, '[]'), status: 405, error: 'PATCH is not allowed on /api/v2/alerts', reason: 'method_not_allowed' },
  { name: 'refuses a CORS preflight OPTIONS on the v1 alert path with 405', send: http('OPTIONS', V1, undefined, { origin: 'http://evil.example', 'access-control-request-method': 'POST' }), status: 405, error: 'OPTIONS is not allowed on /api/v1/alerts', reason: 'method_not_allowed' },
  { name: 'refuses HEAD on an alert path with 405 and Allow: POST, without a body', send: http('HEAD', V2), status: 405, reason: 'method_not_allowed', header: ['allow', 'POST'] },
  { name: 'refuses POST on /-/healthy with 405', send: post('/-/healthy', '[]'), status: 405, error: 'POST is not allowed on /-/healthy; use GET', reason: 'method_not_allowed', header: ['allow', 'GET'] },
  { name: 'refuses POST on /-/ready with 405', send: post('/-/ready', '{}'), status: 405, error: 'POST is not allowed on /-/ready; use GET', reason: 'method_not_allowed' },
  { name: 'refuses POST on /metrics with 405', send: post('/metrics', ''), status: 405, error: 'POST is not allowed on /metrics; use GET', reason: 'method_not_allowed' },
  { name: 'refuses PUT on the status API with 405', send: http('PUT', '/api/v1/status', '{}'), status: 405, error: 'PUT is not allowed on /api/v1/status; use GET', reason: 'method_not_allowed' },
  { name: 'refuses DELETE on the flows status with 405', send: http('DELETE', '/api/v1/status/flows'), status: 405, error: 'DELETE is not allowed on /api/v1/status/flows', reason: 'method_not_allowed' },
  { name: 'refuses POST on the groups status with 405', send: post('/api/v1/status/groups', '{}'), status: 405, error: 'POST is not allowed on /api/v1/status/groups', reason: 'method_not_allowed' },
  { name: 'refuses DELETE on the runs status with 405', send: http('DELETE', '/api/v1/status/runs'), status: 405, error: 'DELETE is not allowed on /api/v1/status/runs', reason: 'method_not_allowed' },
  { name: 'answers an unknown API version with 404', send: post('/api/v3/alerts', [alert('bad-v3')]), status: 404, error: 'no route for /api/v3/alerts', reason: 'not_found' },
  { name: 'answers GET / with 404', send: http('GET', '/'), status: 404, error: 'no route for /', reason: 'not_found' },
  { name: 'does not fold a trailing slash onto an alert path', send: post('/api/v2/alerts/', [alert('bad-slash')]), status: 404, error: 'no route for /api/v2/alerts/', reason: 'not_found' },
  { name: 'does not fold case in paths', send: post('/API/V2/ALERTS', [alert('bad-case')]), status: 404, error: 'no route for /API/V2/ALERTS', reason: 'not_found' },
  { name: 'does not percent-decode paths', send: post('/api/v2/%61lerts', [alert('bad-pct')]), status: 404, error: 'no route for /api/v2/%61lerts', reason: 'not_found' },
  { name: 'does not resolve a ../ traversal out of an alert path', send: post('/api/v2/alerts/../x', [alert('bad-trav1')]), status: 404, error: 'no route for /api/v2/alerts/../x', reason: 'not_found' },
  { name: 'does not resolve a ../ traversal into an alert path', send: post('/api/v2/../v2/alerts', [alert('bad-trav2')]), status: 404, error: 'no route for /api/v2/../v2/alerts', reason: 'not_found' },
  { name: 'does not decode an encoded %2e%2e traversal to /metrics', send: http('GET', '/api/v2/alerts/%2e%2e/%2e%2e/%2e%2e/metrics'), status: 404, error: 'no route for /api/v2/alerts/%2e%2e/%2e%2e/%2e%2e/metrics', reason: 'not_found' },
  { name: 'does not collapse a double slash', send: post('//api/v2/alerts', [alert('bad-dslash')]), status: 404, error: 'no route for //api/v2/alerts', reason: 'not_found' },
  { name: 'treats a fragment sent on the wire as part of the path', send: raw(rawRequest('POST /api/v2/alerts#x HTTP/1.1', [...H, 'Content-Length: 2'], '[]')), status: 404, error: 'no route for /api/v2/alerts#x', reason: 'not_found' },
  { name: 'does not proxy an absolute-form request target', send: raw(rawRequest('POST http://evil.example/api/v2/alerts HTTP/1.1', [...H, 'Content-Length: 2'], '[]')), status: 404, error: 'no route for http://evil.example/api/v2/alerts', reason: 'not_found' },
  { name: 'answers the asterisk-form OPTIONS * with 404', send: raw(rawRequest('OPTIONS * HTTP/1.1')), status: 404, error: 'no route for *', reason: 'not_found' },
  { name: 'answers an 8 KB path with 404', send: http('GET', `/${'a'.repeat(8_000)}`), status: 404, error: 'no route for /aaaa', reason: 'not_found' },
  { name: 'answers an encoded CRLF in the path with 404 and no injected header', send: http('GET', '/-/healthy%0d%0aSet-Cookie:%20x=1'), status: 404, error: 'no route for /-/healthy%0d%0aSet-Cookie:%20x=1', reason: 'not_found' },
  { name: 'ignores a query string on an alert path but still validates the body', send: post(`${V2}?debug=true&limit=0`, 'nope'), status: 400, error: 'body is not valid JSON', reason: 'bad_json' },
  { name: 'ignores a query string on an alert path and accepts a valid body', send: post(`${V2}?x=%00&x=2`, [alert('ok-query')]), status: 200, accepted: 1 },

  // --- HTTP framing, refused by Node's parser before core's handler
  { name: 'refuses an unknown method token', send: raw(rawRequest('FOO /api/v2/alerts HTTP/1.1', ['Content-Length: 2'], '[]')), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses a method with an invalid character', send: raw(rawRequest('G@T /-/healthy HTTP/1.1')), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses a header name with a space', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, ['Bad Header: y', 'Content-Length: 2'], '[]')), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses a header line without a colon', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, ['NoColonHere', 'Content-Length: 2'], '[]')), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses an obsolete folded header line', send: raw(rawRequest('GET /-/healthy HTTP/1.1', ['X-A: a', '  folded'])), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses a NUL byte in a header value', send: raw(rawRequest('GET /-/healthy HTTP/1.1', ['X-A: a\u0000b'])), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses a NUL byte in the request target', send: raw(rawRequest('GET /-/heal\u0000thy HTTP/1.1')), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses 20 KB of headers with 431', send: raw(rawRequest('GET /-/healthy HTTP/1.1', [`X-Big: ${'a'.repeat(20_000)}`])), status: 431, error: 'Request Header Fields Too Large', bare: true },
  { name: 'refuses bare LF line endings', send: raw('GET /-/healthy HTTP/1.1\nHost: x\nConnection: close\n\n'), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses an unknown HTTP version', send: raw(rawRequest('GET /-/healthy HTTP/9.9')), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses an HTTP/2 connection preface', send: raw('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses a negative Content-Length', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, ['Content-Length: -1'], '[]')), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses a non-numeric Content-Length', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, ['Content-Length: abc'], '[]')), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses a Content-Length of 20 digits', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, ['Content-Length: 99999999999999999999'], '[]')), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses two different Content-Length headers', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, ['Content-Length: 2', 'Content-Length: 3'], '[]')), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses Content-Length together with chunked Transfer-Encoding (smuggling)', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, ['Content-Length: 2', 'Transfer-Encoding: chunked'], '2\r\n[]\r\n0\r\n\r\n')), status: 400, error: 'Bad Request', bare: true },
  { name: 'refuses a chunk size that is not hex', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, [...H, 'Transfer-Encoding: chunked'], 'zz\r\n[]\r\n0\r\n\r\n')), status: 400, error: 'Bad Request', bare: true, reason: 'bad_data' },
  { name: 'refuses Transfer-Encoding gzip without chunked', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, [...H, 'Transfer-Encoding: gzip'], '[]')), status: 400, error: 'Bad Request', bare: true, reason: 'bad_data' },
  { name: 'refuses a gzip transfer coding before chunked with 415 naming it, not as invalid UTF-8', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, [...H, 'Transfer-Encoding: gzip, chunked'], Buffer.concat([Buffer.from('a\r\n'), Buffer.from('1f8b0800000000000003', 'hex'), Buffer.from('\r\n0\r\n\r\n')]))), status: 415, error: 'Transfer-Encoding "gzip, chunked" is not taken: send the body uncompressed', reason: 'unsupported_media_type', header: ['accept-encoding', 'identity'] },
  { name: 'refuses Transfer-Encoding where chunked is not last', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, ['Transfer-Encoding: chunked, gzip'], '2\r\n[]\r\n0\r\n\r\n')), status: 400, error: 'Bad Request', bare: true },
  { name: 'answers an unknown Expect with 417', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, [...H, 'Expect: teapot', 'Content-Length: 2'], '[]')), status: 417, error: 'Expectation Failed', bare: true },
  { name: 'ignores a WebSocket upgrade on an alert path (405 for GET)', send: raw(rawRequest(`GET ${V2} HTTP/1.1`, ['Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='])), status: 405, error: 'GET is not allowed on /api/v2/alerts', reason: 'method_not_allowed' },
  { name: 'reads an HTTP/1.0 POST without Content-Length as an empty body', send: raw(`POST ${V2} HTTP/1.0\r\nContent-Type: application/json\r\n\r\n`), status: 400, error: 'body is not valid JSON: Unexpected end of JSON input', reason: 'bad_json' },
  { name: 'honours Content-Length: a request pipelined after the body is a separate request', send: raw(Buffer.from(`POST ${V2} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)), status: 200, accepted: 0 },
  { name: 'refuses a declared Content-Length over the limit before the body arrives', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, [...H, `Content-Length: ${MAX_BODY + 1}`])), status: 413, error: `request body is larger than the limit of ${MAX_BODY} bytes`, reason: 'too_large' },
  { name: 'refuses a body over the limit sent with Content-Length', send: post(V2, JSON.stringify([alert('bad-big', { annotations: { pad: 'x'.repeat(MAX_BODY) } })])), status: 413, error: `request body is larger than the limit of ${MAX_BODY} bytes`, reason: 'too_large' },
  { name: 'refuses a body over the limit streamed chunked without Content-Length', send: post(V2, JSON.stringify([alert('bad-bigchunked', { annotations: { pad: 'x'.repeat(MAX_BODY) } })]), { 'transfer-encoding': 'chunked' }), status: 413, error: `request body is larger than the limit of ${MAX_BODY} bytes`, reason: 'too_large' },
  { name: 'counts a body shorter than its Content-Length, then a hang-up, as bad data', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, [...H, 'Content-Length: 100'], '[{"labels":{"alertname":"A","instance_id":"bad-short"}}'), { hangUpAfterMs: 150 }), status: 0, reason: 'bad_data' },
  { name: 'counts a chunk shorter than its declared size, then a hang-up, as bad data', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, [...H, 'Transfer-Encoding: chunked'], 'ff\r\n[]\r\n0\r\n\r\n'), { hangUpAfterMs: 150 }), status: 0, reason: 'bad_data' },
  { name: 'counts a slowloris trickle of body bytes, then a hang-up, as bad data', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, [...H, 'Content-Length: 64'], '['), { trickle: ['{', '"', 'l'], gapMs: 60, hangUpAfterMs: 100 }), status: 0, reason: 'bad_data' },
  { name: 'ignores a hang-up in the middle of the headers', send: raw(`POST ${V2} HTTP/1.1\r\nHost: x\r\nContent-Le`, { hangUpAfterMs: 150 }), status: 0 },
  { name: 'refuses a request when maxConcurrentRequests uploads are in progress with 503 overloaded', send: overload(2), status: 503, error: 'too many requests at once; retry later', reason: 'overloaded', header: ['retry-after', '1'] },

  // --- bodies that are not JSON
  { name: 'refuses an empty body as bad JSON', send: post(V2, ''), status: 400, error: 'body is not valid JSON: Unexpected end of JSON input', reason: 'bad_json' },
  { name: 'refuses a whitespace-only body as bad JSON', send: post(V2, ' \r\n\t '), status: 400, error: 'body is not valid JSON', reason: 'bad_json' },
  { name: 'refuses a body with a UTF-8 byte order mark (not stripped)', send: post(V2, `\ufeff${JSON.stringify([alert('bad-bom')])}`), status: 400, error: 'body is not valid JSON', reason: 'bad_json' },
  { name: 'refuses plain text as bad JSON', send: post(V2, 'alertname=Spot'), status: 400, error: 'body is not valid JSON', reason: 'bad_json' },
  { name: 'refuses truncated JSON', send: post(V2, '[{"labels":{"alertname":"A","instance_id":"bad-trunc"}'), status: 400, error: 'body is not valid JSON', reason: 'bad_json' },
  { name: 'refuses trailing garbage after the JSON', send: post(V2, `${JSON.stringify([alert('bad-trailing')])}x`), status: 400, error: 'body is not valid JSON', reason: 'bad_json' },
  { name: 'refuses two concatenated JSON documents', send: post(V2, `${JSON.stringify([alert('bad-two1')])}${JSON.stringify([alert('bad-two2')])}`), status: 400, error: 'body is not valid JSON', reason: 'bad_json' },
  { name: 'refuses single-quoted JSON', send: post(V2, "[{'labels':{'alertname':'A','instance_id':'bad-quote'}}]"), status: 400, error: 'body is not valid JSON', reason: 'bad_json' },
  { name: 'refuses JSON with comments', send: post(V2, '[/* c */{"labels":{"alertname":"A","instance_id":"bad-comment"}}]'), status: 400, error: 'body is not valid JSON', reason: 'bad_json' },
  { name: 'refuses NaN as a JSON value', send: post(V2, '[{"labels":{"alertname":"A","instance_id":"bad-nan"},"x":NaN}]'), status: 400, error: 'body is not valid JSON', reason: 'bad_json' },
  { name: 'refuses a raw NUL byte in the body', send: post(V2, utf8('[{"labels":{"alertname":"A","instance_id":"bad-nul"}}', [0], ']')), status: 400, error: 'body is not valid JSON', reason: 'bad_json' },
  { name: 'refuses a raw NUL byte inside a JSON string', send: post(V2, utf8('[{"labels":{"alertname":"A","instance_id":"bad-', [0], 'nul"}}]')), status: 400, error: 'Bad control character in string literal', reason: 'bad_json' },
  { name: 'refuses invalid UTF-8 (0xff 0xfe) instead of replacing it', send: post(V2, utf8('[{"labels":{"alertname":"A","instance_id":"bad-', [0xff, 0xfe], '"}}]')), status: 400, error: 'body is not valid UTF-8', reason: 'bad_json' },
  { name: 'refuses an overlong UTF-8 encoding of "/"', send: post(V2, utf8('[{"labels":{"alertname":"A","instance_id":"bad-', [0xc0, 0xaf], '"}}]')), status: 400, error: 'body is not valid UTF-8', reason: 'bad_json' },
  { name: 'refuses a UTF-8-encoded surrogate half', send: post(V2, utf8('[{"labels":{"alertname":"A","instance_id":"bad-', [0xed, 0xa0, 0x80], '"}}]')), status: 400, error: 'body is not valid UTF-8', reason: 'bad_json' },
  { name: 'refuses UTF-16 JSON even when the Content-Type says so', send: post(V2, Buffer.from(JSON.stringify([alert('bad-utf16')]), 'utf16le'), { 'content-type': 'application/json; charset=utf-16le' }), status: 400, error: 'body is not valid JSON', reason: 'bad_json' },
  { name: 'refuses Content-Encoding: gzip with 415 naming it, not as invalid UTF-8', send: post(V2, Buffer.from('1f8b0800000000000003', 'hex'), { 'content-encoding': 'gzip' }), status: 415, error: 'Content-Encoding "gzip" is not taken', reason: 'unsupported_media_type', header: ['accept-encoding', 'identity'] },

  // --- media types: only application/json (what a browser cannot send cross-site without a preflight)
  ...([
    ['text/plain', 'text/plain'],
    ['text/plain with a charset, as fetch() sends a string body', 'text/plain;charset=UTF-8'],
    ['form-urlencoded', 'application/x-www-form-urlencoded'],
    ['multipart/form-data', 'multipart/form-data; boundary=x'],
    ['application/jsonp', 'application/jsonp'],
    ['application/json-seq', 'application/json-seq'],
    ['application/cloudevents+json on an alert path', 'application/cloudevents+json'],
    ['text/json', 'text/json'],
    ['a bare application/', 'application/'],
    ['a type without a subtype', 'json'],
    ['an empty Content-Type', ''],
    ['application/json behind another type in a parameter', 'text/plain; x=application/json'],
  ] as const).map(([what, type], i): Row => ({ name: `refuses a valid JSON body sent as ${what} with 415`, send: post(i % 3 === 0 ? V1 : i % 3 === 1 ? V2 : WH, JSON.stringify([alert(`bad-ctype-${i}`)]), { 'content-type': type }), status: 415, error: 'Content-Type must be application/json', reason: 'unsupported_media_type' })),
  { name: 'refuses a valid JSON body sent without a Content-Type with 415', send: http('POST', V1, JSON.stringify([alert('bad-no-ctype')])), status: 415, error: 'Content-Type must be application/json; the request has none', reason: 'unsupported_media_type' },
  { name: 'refuses a form post to the webhook path with 415 before reading the body', send: raw(rawRequest(`POST ${WH} HTTP/1.1`, ['Content-Type: application/x-www-form-urlencoded', 'Content-Length: 999999999'])), status: 415, error: 'Content-Type must be application/json, got "application/x-www-form-urlencoded"', reason: 'unsupported_media_type' },
  { name: 'accepts application/json with a charset parameter', send: post(V2, JSON.stringify([alert('ok-ctype-charset')]), { 'content-type': 'application/json; charset=utf-8' }), status: 200, accepted: 1 },
  { name: 'accepts the media type in any case, with spaces around it', send: post(V2, JSON.stringify([alert('ok-ctype-case')]), { 'content-type': ' Application/JSON ' }), status: 200, accepted: 1 },

  // --- JSON of the wrong shape (v2 and v1)
  { name: 'refuses null as the body', send: post(V2, 'null'), status: 400, error: 'alerts: expected a JSON array of alerts', reason: 'bad_data' },
  { name: 'refuses an object where the alert array is expected', send: post(V2, { alerts: [alert('bad-obj')] }), status: 400, error: 'alerts: expected a JSON array of alerts', reason: 'bad_data' },
  { name: 'refuses a string as the body', send: post(V1, '"[]"'), status: 400, error: 'alerts: expected a JSON array of alerts', reason: 'bad_data' },
  { name: 'refuses a number as the body', send: post(V1, '42'), status: 400, error: 'alerts: expected a JSON array of alerts', reason: 'bad_data' },
  { name: 'refuses a webhook payload posted to the v2 path', send: post(V2, webhook([firing('bad-wh-on-v2')])), status: 400, error: 'alerts: expected a JSON array of alerts', reason: 'bad_data' },
  { name: 'refuses a null alert', send: post(V2, [null]), status: 400, error: 'alerts[0]: Invalid input: expected object, received null', reason: 'bad_data' },
  { name: 'refuses an array where an alert object is expected', send: post(V2, [[alert('bad-arr')]]), status: 400, error: 'alerts[0]: Invalid input: expected object, received array', reason: 'bad_data' },
  { name: 'refuses a string where an alert object is expected', send: post(V1, ['alertname=A']), status: 400, error: 'alerts[0]: Invalid input: expected object, received string', reason: 'bad_data' },
  { name: 'refuses an alert without labels', send: post(V2, [{ annotations: { summary: 'x' } }]), status: 400, error: 'alerts[0].labels: required', reason: 'bad_data' },
  { name: 'refuses null labels', send: post(V2, [{ labels: null }]), status: 400, error: 'alerts[0].labels: Invalid input: expected object, received null', reason: 'bad_data' },
  { name: 'refuses labels as an array', send: post(V2, [{ labels: [['alertname', 'A']] }]), status: 400, error: 'alerts[0].labels: Invalid input: expected object, received array', reason: 'bad_data' },
  { name: 'refuses labels as a string', send: post(V2, [{ labels: 'alertname="A"' }]), status: 400, error: 'alerts[0].labels: Invalid input: expected object, received string', reason: 'bad_data' },
  { name: 'refuses labels without alertname', send: post(V2, [{ labels: { instance_id: 'bad-noname' } }]), status: 400, error: 'alerts[0].labels.alertname: required: labels.alertname', reason: 'bad_data' },
  { name: 'refuses an empty alertname', send: post(V2, [{ labels: { alertname: '', instance_id: 'bad-emptyname' } }]), status: 400, error: 'alerts[0].labels.alertname: required: labels.alertname', reason: 'bad_data' },
  { name: 'refuses a number as alertname', send: post(V2, [{ labels: { alertname: 5, instance_id: 'bad-numname' } }]), status: 400, error: 'alerts[0].labels.alertname: expected a string value', reason: 'bad_data' },
  { name: 'refuses a number as a label value', send: post(V2, [{ labels: { alertname: 'A', instance_id: 12345 } }]), status: 400, error: 'alerts[0].labels.instance_id: expected a string value', reason: 'bad_data' },
  // Alertmanager 0.25 reads a null label value as "" and drops the label (an empty label is an absent one); a null annotation value is "".
  { name: 'accepts null as a label value, dropping the label, as Alertmanager 0.25 does', send: post(V2, [{ labels: { alertname: 'A', instance_id: 'ok-null-label', x: null } }]), status: 200, accepted: 1 },
  { name: 'accepts null as an annotation value, as Alertmanager 0.25 does', send: post(V2, [alert('ok-null-annotation', { annotations: { summary: null } })]), status: 200, accepted: 1 },
  { name: 'refuses a boolean as a label value', send: post(V1, [{ labels: { alertname: 'A', instance_id: 'bad-bool', spot: true } }]), status: 400, error: 'alerts[0].labels.spot: expected a string value', reason: 'bad_data' },
  { name: 'refuses an object as a label value', send: post(V2, [{ labels: { alertname: 'A', instance_id: { id: 'bad-objlabel' } } }]), status: 400, error: 'alerts[0].labels.instance_id: expected a string value', reason: 'bad_data' },
  { name: 'refuses annotations as an array', send: post(V2, [alert('bad-annarr', { annotations: ['summary'] })]), status: 400, error: 'alerts[0].annotations: Invalid input: expected object, received array', reason: 'bad_data' },
  // Alertmanager 0.25 takes null startsAt, endsAt, generatorURL and annotations as unset: so does core.
  ...(['annotations', 'startsAt', 'endsAt', 'generatorURL'] as const).map((field): Row => ({ name: `accepts null ${field} as unset, as Alertmanager 0.25 does`, send: post(V2, [alert(`ok-null-${field}`, { [field]: null })]), status: 200, accepted: 1 })),
  { name: 'refuses a number as an annotation value', send: post(V2, [alert('bad-annnum', { annotations: { summary: 1 } })]), status: 400, error: 'alerts[0].annotations.summary: expected a string value', reason: 'bad_data' },
  { name: 'refuses startsAt that is not a time', send: post(V2, [alert('bad-starts', { startsAt: 'yesterday' })]), status: 400, error: 'alerts[0].startsAt: expected an RFC 3339 time', reason: 'bad_data' },
  { name: 'refuses startsAt without a time zone', send: post(V2, [alert('bad-startslocal', { startsAt: '2026-11-25T10:00:00' })]), status: 400, error: 'alerts[0].startsAt: expected an RFC 3339 time', reason: 'bad_data' },
  { name: 'refuses startsAt as a Unix timestamp number', send: post(V2, [alert('bad-startsnum', { startsAt: 1_764_064_800 })]), status: 400, error: 'alerts[0].startsAt: expected an RFC 3339 time', reason: 'bad_data' },
  { name: 'refuses endsAt garbage', send: post(V2, [alert('bad-ends', { endsAt: '2026-13-45T99:00:00Z' })]), status: 400, error: 'alerts[0].endsAt: expected an RFC 3339 time', reason: 'bad_data' },
  // Hostile times: what zod's RFC 3339 pattern lets through must also fit a protobuf Timestamp (years 0001-9999 UTC).
  ...hostileTimes.map(([what, time, accepted], i): Row => accepted
    ? { name: `accepts startsAt with ${what}`, send: post(V2, [alert(`ok-time-${i}`, { startsAt: time })]), status: 200, accepted: 1 }
    : { name: `refuses startsAt with ${what}, naming the field`, send: post(V2, [alert(`bad-time-${i}`, { startsAt: time })]), status: 400, error: 'alerts[0].startsAt: expected an RFC 3339 time', reason: 'bad_data' }),
  { name: 'refuses endsAt moved past year 9999 by its offset in a webhook alert', send: post(WH, webhook([firing('bad-whtime', { endsAt: '9999-12-31T23:30:00-01:00' })])), status: 400, error: 'alerts[0].endsAt: expected an RFC 3339 time', reason: 'bad_data' },
  { name: 'accepts webhook endsAt with 30 fractional digits', send: post(WH, webhook([firing('ok-whtime', { endsAt: `2026-11-25T10:00:00.${'9'.repeat(30)}Z` })])), status: 200, accepted: 1 },
  { name: 'refuses generatorURL as a number', send: post(V2, [alert('bad-gen', { generatorURL: 42 })]), status: 400, error: 'alerts[0].generatorURL: Invalid input: expected string, received number', reason: 'bad_data' },
  { name: 'refuses generatorURL as an object', send: post(V1, [alert('bad-genobj', { generatorURL: { href: 'http://x' } })]), status: 400, error: 'alerts[0].generatorURL: Invalid input: expected string, received object', reason: 'bad_data' },
  { name: 'takes the first alert of a batch whose second is bad, and refuses the second naming its index', send: post(V2, [alert('ok-batch-first'), { labels: { instance_id: 'bad-batch-second' } }]), status: 400, error: 'alerts[1].labels.alertname: required: labels.alertname (1 of 2 alerts refused; the other 1 were accepted)', reason: 'bad_data', accepted: 1 },
  { name: 'takes the valid alerts of a webhook whose first is bad', send: post(WH, webhook([{ ...firing('bad-whbatch-first'), labels: { instance_id: 'bad-whbatch-first' } }, firing('ok-whbatch-second'), firing('ok-whbatch-third')])), status: 400, error: 'alerts[0].labels.alertname: required: labels.alertname (1 of 3 alerts refused; the other 2 were accepted)', reason: 'bad_data', accepted: 2 },
  { name: 'takes the valid alert of a batch whose other has a label over maxLabelLength', send: post(V1, [{ labels: { alertname: 'A', instance_id: `bad-${'l'.repeat(70)}` } }, alert('ok-batch-longlabel')]), status: 400, error: 'alerts[0].labels.instance_id: longer than the limit of 64 characters (1 of 2 alerts refused; the other 1 were accepted)', reason: 'bad_data', accepted: 1 },
  { name: 'takes the last of duplicate keys, so an empty duplicate alertname is refused', send: post(V2, '[{"labels":{"alertname":"A","instance_id":"bad-dup","alertname":""}}]'), status: 400, error: 'alerts[0].labels.alertname: required: labels.alertname', reason: 'bad_data' },
  { name: 'takes the last of duplicate labels objects', send: post(V2, '[{"labels":{"alertname":"A","instance_id":"bad-dup2"},"labels":{"instance_id":"bad-dup3"}}]'), status: 400, error: 'alerts[0].labels.alertname: required: labels.alertname', reason: 'bad_data' },
  // Bodies up to 10,000 levels deep (Go's encoding/json, so Alertmanager's, bound) are parsed; deeper ones are refused unparsed.
  { name: 'refuses 10,000 levels of nested arrays with 400, without a stack overflow', send: post(V2, nested(10_000, '[', ']')), status: 400, error: 'alerts[0]: Invalid input: expected object, received array', reason: 'bad_data' },
  { name: 'refuses 10,000 levels of nested objects with 400, without a stack overflow', send: post(V2, nested(10_000, '{"a":', '}', '1')), status: 400, error: 'alerts: expected a JSON array of alerts', reason: 'bad_data' },
  { name: 'refuses 9,997 levels of nesting inside a label value', send: post(V2, `[{"labels":{"alertname":"A","instance_id":${nested(9_997, '[', ']')}}}]`), status: 400, error: 'alerts[0].labels.instance_id: expected a string value', reason: 'bad_data' },
  { name: 'ignores 9,998 levels of nesting in an unknown field and accepts the alert', send: post(V2, `[{"labels":{"alertname":"BadInput","instance_id":"ok-deep-extra"},"extra":${nested(9_998, '{"a":', '}', 'null')}}]`), status: 200, accepted: 1 },
  { name: 'refuses 100,000 levels of nested arrays unparsed, as Alertmanager would', send: post(V2, nested(100_000, '[', ']')), status: 400, error: 'body: nested more than 10000 levels deep', reason: 'bad_data' },
  { name: 'refuses 50,000 levels of nesting in an unknown field, as Alertmanager would', send: post(V2, `[{"labels":{"alertname":"BadInput","instance_id":"bad-deep-extra"},"extra":${nested(50_000, '{"a":', '}', 'null')}}]`), status: 400, error: 'body: nested more than 10000 levels deep', reason: 'bad_data' },
  { name: 'refuses 9,999 levels of nesting in an unknown field, one past the bound', send: post(V2, `[{"labels":{"alertname":"BadInput","instance_id":"bad-deep-extra1"},"extra":${nested(9_999, '{"a":', '}', 'null')}}]`), status: 400, error: 'body: nested more than 10000 levels deep', reason: 'bad_data' },

  // --- prototype pollution attempts: an ignored __proto__ field is dropped; a __proto__ label or annotation is refused; nothing polluted
  { name: 'drops a __proto__ key on an alert without polluting Object.prototype', send: post(V2, `[{"labels":{"alertname":"BadInput","instance_id":"ok-proto-alert"},"__proto__":{"polluted":"yes"}}]`), status: 200, accepted: 1 },
  { name: 'refuses an object as the value of a __proto__ label, like any non-string label value', send: post(V2, `[{"labels":{"alertname":"BadInput","instance_id":"bad-proto-label","__proto__":{"polluted":"yes"}}}]`), status: 400, error: 'alerts[0].labels.__proto__: expected a string value', reason: 'bad_data' },
  { name: 'refuses a number as the value of a __proto__ label', send: post(V1, `[{"labels":{"alertname":"BadInput","instance_id":"bad-proto-num","__proto__":42}}]`), status: 400, error: 'alerts[0].labels.__proto__: expected a string value', reason: 'bad_data' },
  { name: 'refuses a __proto__ label with a string value, naming the reserved name', send: post(V2, `[{"labels":{"alertname":"BadInput","instance_id":"bad-proto-str","__proto__":"x"}}]`), status: 400, error: 'alerts[0].labels.__proto__: the name "__proto__" is reserved', reason: 'bad_data' },
  { name: 'refuses an object as the value of a __proto__ annotation', send: post(V2, `[{"labels":{"alertname":"BadInput","instance_id":"bad-proto-ann"},"annotations":{"__proto__":{"polluted":"yes"}}}]`), status: 400, error: 'alerts[0].annotations.__proto__: expected a string value', reason: 'bad_data' },
  { name: 'refuses a __proto__ annotation with a string value', send: post(V2, `[{"labels":{"alertname":"BadInput","instance_id":"bad-proto-annstr"},"annotations":{"__proto__":"x"}}]`), status: 400, error: 'alerts[0].annotations.__proto__: the name "__proto__" is reserved', reason: 'bad_data' },
  { name: 'refuses a __proto__ label in a webhook alert', send: post(WH, `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"BadInput","instance_id":"bad-proto-wh","__proto__":["x"]}}]}`), status: 400, error: 'alerts[0].labels.__proto__: expected a string value', reason: 'bad_data' },
  { name: 'refuses a labels object hidden under __proto__', send: post(V2, `[{"labels":{"__proto__":{"alertname":"A","instance_id":"bad-proto-hidden"}}}]`), status: 400, error: 'alerts[0].labels.__proto__: expected a string value', reason: 'bad_data' },

  // --- limits
  { name: 'refuses more alerts than maxAlertsPerRequest on v2 with 413', send: post(V2, Array.from({ length: 6 }, (_, i) => alert(`bad-many-${i}`))), status: 413, error: 'request carries 6 alerts, more than the limit of 5', reason: 'too_many_alerts' },
  { name: 'refuses more alerts than maxAlertsPerRequest on v1 with 413', send: post(V1, Array.from({ length: 7 }, (_, i) => alert(`bad-many1-${i}`))), status: 413, error: 'request carries 7 alerts, more than the limit of 5', reason: 'too_many_alerts' },
  { name: 'refuses more alerts than maxAlertsPerRequest in a webhook with 413', send: post(WH, webhook(Array.from({ length: 6 }, (_, i) => firing(`bad-manywh-${i}`)))), status: 413, error: 'request carries 6 alerts, more than the limit of 5', reason: 'too_many_alerts' },
  { name: 'counts 10,000 alerts before validating any of them', send: post(V2, `[${Array.from({ length: 10_000 }, () => 'null').join(',')}]`), status: 413, error: 'request carries 10000 alerts, more than the limit of 5', reason: 'too_many_alerts' },
  { name: 'refuses a label with a 100,000-character name and a number value, naming the first 64 characters', send: post(V2, [{ labels: { alertname: 'A', instance_id: 'bad-longname', [`n${'x'.repeat(99_999)}`]: 1 } }]), status: 400, error: `alerts[0].labels.n${'x'.repeat(63)}: expected a string value`, reason: 'bad_data' },
  { name: 'refuses an annotation with a 100,000-character name and a number value, naming the first 64 characters', send: post(V1, [alert('bad-longann', { annotations: { [`n${'x'.repeat(99_999)}`]: 1 } })]), status: 400, error: `alerts[0].annotations.n${'x'.repeat(63)}: expected a string value`, reason: 'bad_data' },
  { name: 'refuses a webhook whose five alerts each have a 100,000-character label name, naming each shortened', send: post(WH, webhook(Array.from({ length: 5 }, (_, i) => firing(`bad-longname-${i}`, { labels: { alertname: 'A', [`n${'x'.repeat(99_999)}`]: 1 } })))), status: 400, error: `alerts[4].labels.n${'x'.repeat(63)}: expected a string value`, reason: 'bad_data' },
  { name: 'lists the first five problems of a batch whose every alert is bad, and counts the rest', send: post(V2, Array.from({ length: 5 }, (_, i) => alert(`bad-many-${i}`, { labels: { alertname: 'A', instance_id: `bad-many-${i}`, a: 1, b: 2, c: 3 } }))), status: 400, error: 'alerts[0].labels.a: expected a string value; alerts[0].labels.b: expected a string value; alerts[0].labels.c: expected a string value; alerts[1].labels.a: expected a string value; alerts[1].labels.b: expected a string value; and 10 more', reason: 'bad_data' },
  { name: 'refuses more annotations than maxLabelsPerAlert', send: post(V2, [alert('bad-annotations', { annotations: { a: '1', b: '2', c: '3', d: '4', e: '5', f: '6' } })]), status: 400, error: 'alerts[0].annotations: 6 annotations, more than the limit of 5', reason: 'bad_data' },
  { name: 'refuses a webhook alert with more annotations than maxLabelsPerAlert', send: post(WH, webhook([firing('bad-whannotations', { annotations: { a: '1', b: '2', c: '3', d: '4', e: '5', f: '6' } })])), status: 400, error: 'alerts[0].annotations: 6 annotations, more than the limit of 5', reason: 'bad_data' },
  { name: 'accepts as many annotations as maxLabelsPerAlert', send: post(V2, [alert('ok-annotations', { annotations: { a: '1', b: '2', c: '3', d: '4', e: '5' } })]), status: 200, accepted: 1 },
  { name: 'refuses more labels than maxLabelsPerAlert', send: post(V2, [{ labels: { alertname: 'A', instance_id: 'bad-labels', a: '1', b: '2', c: '3', d: '4' } }]), status: 400, error: 'alerts[0].labels: 6 labels, more than the limit of 5', reason: 'bad_data' },
  { name: 'refuses a label value longer than maxLabelLength', send: post(V2, [{ labels: { alertname: 'A', instance_id: `bad-${'v'.repeat(70)}` } }]), status: 400, error: 'alerts[0].labels.instance_id: longer than the limit of 64 characters', reason: 'bad_data' },
  { name: 'refuses a label name longer than maxLabelLength', send: post(V2, [{ labels: { alertname: 'A', instance_id: 'bad-longname', ['n'.repeat(100)]: 'v' } }]), status: 400, error: `alerts[0].labels.${'n'.repeat(64)}: longer than the limit of 64 characters`, reason: 'bad_data' },
  { name: 'refuses a label over the limits in a later webhook alert, and takes the first', send: post(WH, webhook([firing('ok-whl-0'), { ...firing('bad-whl-1'), labels: { alertname: 'A', instance_id: 'x'.repeat(65) } }])), status: 400, error: 'alerts[1].labels.instance_id: longer than the limit of 64 characters (1 of 2 alerts refused; the other 1 were accepted)', reason: 'bad_data', accepted: 1 },

  // --- webhook payloads
  { name: 'refuses webhook version "3"', send: post(WH, webhook([firing('bad-v3')], { version: '3' })), status: 400, error: 'version: expected version "4" (Alertmanager webhook payload)', reason: 'bad_data' },
  { name: 'refuses a webhook payload without version', send: post(WH, { alerts: [firing('bad-nover')] }), status: 400, error: 'version: expected version "4"', reason: 'bad_data' },
  { name: 'refuses webhook version as the number 4', send: post(WH, webhook([firing('bad-vnum')], { version: 4 })), status: 400, error: 'version: expected version "4"', reason: 'bad_data' },
  { name: 'refuses webhook version null', send: post(WH, webhook([firing('bad-vnull')], { version: null })), status: 400, error: 'version: expected version "4"', reason: 'bad_data' },
  { name: 'refuses a webhook payload without alerts', send: post(WH, { version: '4' }), status: 400, error: 'alerts: required (expected array)', reason: 'bad_data' },
  { name: 'refuses webhook alerts as an object', send: post(WH, webhook({ 0: firing('bad-whobj') })), status: 400, error: 'alerts: Invalid input: expected array, received object', reason: 'bad_data' },
  { name: 'refuses webhook alerts null', send: post(WH, webhook(null)), status: 400, error: 'alerts: Invalid input: expected array, received null', reason: 'bad_data' },
  { name: 'refuses an alert array posted to the webhook path', send: post(WH, [firing('bad-arr-on-wh')]), status: 400, error: 'body: expected an Alertmanager webhook payload, a JSON object with version "4" (a JSON array of alerts goes to /api/v2/alerts)', reason: 'bad_data' },
  { name: 'refuses null posted to the webhook path', send: post(WH, 'null'), status: 400, error: 'body: expected an Alertmanager webhook payload', reason: 'bad_data' },
  { name: 'refuses webhook status "pending"', send: post(WH, webhook([firing('bad-pending', { status: 'pending' })])), status: 400, error: 'alerts[0].status: Invalid option: expected one of "firing"|"resolved"', reason: 'bad_data' },
  { name: 'refuses webhook status in upper case', send: post(WH, webhook([firing('bad-upper', { status: 'FIRING' })])), status: 400, error: 'alerts[0].status: Invalid option', reason: 'bad_data' },
  { name: 'refuses a webhook alert without status', send: post(WH, webhook([alert('bad-nostatus')])), status: 400, error: 'alerts[0].status: Invalid option', reason: 'bad_data' },
  { name: 'refuses webhook groupKey as a number', send: post(WH, webhook([firing('bad-gk')], { groupKey: 5 })), status: 400, error: 'groupKey: Invalid input: expected string, received number', reason: 'bad_data' },
  { name: 'refuses webhook externalURL as an object', send: post(WH, webhook([firing('bad-ext')], { externalURL: {} })), status: 400, error: 'externalURL: Invalid input: expected string, received object', reason: 'bad_data' },
  { name: 'refuses webhook fingerprint as a number', send: post(WH, webhook([firing('bad-fp', { fingerprint: 7 })])), status: 400, error: 'alerts[0].fingerprint: Invalid input: expected string, received number', reason: 'bad_data' },
  { name: 'refuses webhook endsAt garbage', send: post(WH, webhook([firing('bad-whends', { endsAt: 'soon' })])), status: 400, error: 'alerts[0].endsAt: expected an RFC 3339 time', reason: 'bad_data' },

  // --- auth (a second instance with a bearer token and basic auth)
  { name: 'refuses a request without Authorization with 401 and a challenge', core: 'auth', send: post(V2, [alert('bad-noauth')]), status: 401, error: 'unauthorized', reason: 'unauthorized', header: ['www-authenticate', 'Bearer realm="hollowtrees"'] },
  { name: 'refuses a wrong bearer token with 401', core: 'auth', send: post(V2, [alert('bad-wrongtoken')], { authorization: 'Bearer not-the-token' }), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'refuses a bearer token that is a prefix of the real one', core: 'auth', send: post(V2, [alert('bad-prefix')], { authorization: `Bearer ${TOKEN.slice(0, -1)}` }), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'refuses the real token with a suffix', core: 'auth', send: post(V2, [alert('bad-suffix')], { authorization: `Bearer ${TOKEN}x` }), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'refuses "Bearer" with no token', core: 'auth', send: post(V2, [alert('bad-notoken')], { authorization: 'Bearer' }), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'refuses the right token under the Basic scheme', core: 'auth', send: post(V2, [alert('bad-tokenbasic')], { authorization: `Basic ${TOKEN}` }), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'refuses the right token under an unknown scheme', core: 'auth', send: post(V2, [alert('bad-scheme')], { authorization: `Token ${TOKEN}` }), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'refuses the bare token without a scheme', core: 'auth', send: post(V2, [alert('bad-bare')], { authorization: TOKEN }), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'refuses basic auth with a wrong password', core: 'auth', send: post(V2, [alert('bad-basicpw')], { authorization: basic(BASIC_USER, 'wrong') }), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'refuses basic auth with a wrong user', core: 'auth', send: post(V2, [alert('bad-basicuser')], { authorization: basic('admin', BASIC_PASSWORD) }), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'refuses basic auth that is not base64', core: 'auth', send: post(V2, [alert('bad-b64')], { authorization: 'Basic !!!not*base64' }), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'refuses basic auth without a colon', core: 'auth', send: post(V2, [alert('bad-nocolon')], { authorization: `Basic ${Buffer.from(BASIC_USER).toString('base64')}` }), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'refuses a 10 KB bearer token', core: 'auth', send: post(V2, [alert('bad-hugetoken')], { authorization: `Bearer ${'t'.repeat(10_000)}` }), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'refuses Latin-1 bytes in the Authorization header', core: 'auth', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, [...H, `Authorization: Bearer ${TOKEN}\u00e9`, 'Content-Length: 2'], '[]')), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'keeps the first of two Authorization headers (wrong, then right)', core: 'auth', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, [...H, 'Authorization: Bearer wrong', `Authorization: Bearer ${TOKEN}`, 'Content-Length: 2'], '[]')), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'answers 401, not 400, to bad JSON without credentials', core: 'auth', send: post(V2, '{{{'), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'answers 401, not 404, to an unknown path without credentials', core: 'auth', send: post('/api/v3/alerts', '[]'), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'answers 401, not 405, to a wrong method without credentials', core: 'auth', send: http('GET', V2), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'answers 401, not 413, to an oversized upload without credentials', core: 'auth', send: raw(rawRequest(`POST ${V2} HTTP/1.1`, [...H, 'Content-Length: 999999999'])), status: 401, error: 'unauthorized', reason: 'unauthorized' },
  { name: 'protects /metrics', core: 'auth', send: http('GET', '/metrics'), status: 401, error: 'unauthorized', reason: 'unauthorized', counted: 'unauthorized_read' },
  { name: 'protects the status API', core: 'auth', send: http('GET', '/api/v1/status/runs', undefined, { authorization: 'Bearer wrong' }), status: 401, error: 'unauthorized', reason: 'unauthorized', counted: 'unauthorized_read' },
  { name: 'checks the body after auth: bad JSON with the right token is a 400', core: 'auth', send: post(V2, '{{{', { authorization: `Bearer ${TOKEN}` }), status: 400, error: 'body is not valid JSON', reason: 'bad_json' },
  { name: 'takes the auth scheme case-insensitively (RFC 7235)', core: 'auth', send: post(V2, [alert('ok-auth-lower')], { authorization: `bearer ${TOKEN}` }), status: 200, accepted: 1 },
  { name: 'accepts the right basic credentials (password with a colon)', core: 'auth', send: post(WH, webhook([firing('ok-auth-basic')]), { authorization: basic(BASIC_USER, BASIC_PASSWORD) }), status: 200, accepted: 1 },
];

// ---------------------------------------------------------------- the tests

/** The rejection counter, by reason, read from the registry. */
async function rejectedByReason(core: TestCore): Promise<Record<string, number>> {
  const metric = await core.metrics.registry.getSingleMetric('hollowtrees_requests_rejected_total')!.get();
  return Object.fromEntries(metric.values.map((v) => [String(v.labels.reason), v.value]));
}

async function eventsReceived(core: TestCore): Promise<number> {
  const metric = await core.metrics.registry.getSingleMetric('hollowtrees_events_received_total')!.get();
  return metric.values.reduce((n, v) => n + v.value, 0);
}

describe('receiver under bad input', () => {
  let plugin: RecordingPlugin;
  let open: TestCore;
  let auth: TestCore;
  const seen = { open: { rejected: {} as Record<string, number>, accepted: 0 }, auth: { rejected: {} as Record<string, number>, accepted: 0 } };

  beforeAll(async () => {
    plugin = await startRecordingPlugin();
    open = await startTestCore(openConfig(plugin.address));
    auth = await startTestCore(authConfig(plugin.address));
  });
  afterAll(async () => {
    await open?.close();
    await auth?.close();
    await plugin?.close();
  });

  it('has a table of at least 60 distinct requests', () => {
    expect(rows.length).toBeGreaterThanOrEqual(60);
    expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
  });

  it.each(rows)('$name (answers $status)', async (row) => {
    const core = row.core === 'auth' ? auth : open;
    const tally = seen[row.core ?? 'open'];
    const reply = await row.send(core.port);

    expect(reply.status, reply.body.slice(0, 300)).toBe(row.status);
    const reason = row.counted ?? row.reason ?? (row.bare ? 'bad_request' : undefined);
    if (reason) tally.rejected[reason] = (tally.rejected[reason] ?? 0) + 1;
    if (row.header) expect(reply.headers[row.header[0]]).toContain(row.header[1]);

    if (row.status === 0) {
      // The client hung up: nothing came back, and the server did not answer early.
      expect(reply.body).toBe('');
      return;
    }
    if (row.bare) {
      expect(reply.reasonPhrase).toBe(row.error);
      expect(reply.body.trim() === '' || !reply.body.trim().startsWith('{')).toBe(true);
      return;
    }
    if (row.status === 200) {
      expect(JSON.parse(reply.body)).toEqual({ status: 'success', accepted: row.accepted });
      tally.accepted += row.accepted!;
      return;
    }
    // Never a 5xx, except the documented 503 for overload.
    if (row.reason !== 'overloaded') expect(reply.status).toBeLessThan(500);
    expect(reply.headers['content-type']).toBe('application/json');
    // HEAD: no body is sent; the status and the Allow header say it all.
    if (reply.body === '' && row.error === undefined) return;
    const json = JSON.parse(reply.body) as { status: string; errorType: string; error: string; accepted?: number };
    expect(json.accepted).toBe(row.accepted);
    tally.accepted += row.accepted ?? 0;
    expect(json.status).toBe('error');
    expect(json.errorType).toBe(row.reason);
    if (row.status === 401) expect(json.error).toBe(row.error); // says nothing about which part failed
    else expect(json.error).toContain(row.error);
    // A refusal names what and where, but never echoes a sender's megabyte back (nor keeps it as the source's lastError).
    expect(reply.body.length).toBeLessThan(2_048);
  });

  it('stays healthy and ready after every bad request', async () => {
    for (const core of [open, auth]) {
      expect((await http('GET', '/-/healthy')(core.port)).status).toBe(200);
      expect((await http('GET', '/-/ready')(core.port)).status).toBe(200);
    }
  });

  it('leaves Object.prototype unpolluted', () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('polluted');
  });

  it('counts every rejected request once, under its reason', async () => {
    for (const [core, tally] of [[open, seen.open], [auth, seen.auth]] as const) {
      // A hang-up is counted when the server notices the closed socket: give it a moment.
      await expect.poll(() => rejectedByReason(core), { timeout: 5_000, interval: 50 }).toEqual(expect.objectContaining(tally.rejected));
      const counted = await rejectedByReason(core);
      expect(Object.fromEntries(Object.entries(counted).filter(([, n]) => n > 0))).toEqual(tally.rejected);
      expect(counted.internal ?? 0).toBe(0);
    }
  });

  it('starts no flow run for a rejected request: only accepted alerts reach the engine', async () => {
    const accepted = seen.open.accepted + seen.auth.accepted;
    expect(await eventsReceived(open)).toBe(seen.open.accepted);
    expect(await eventsReceived(auth)).toBe(seen.auth.accepted);
    // Each accepted alert has its own instance_id, so each starts exactly one run.
    await plugin.waitForCalls(accepted);
    await new Promise((r) => setTimeout(r, 200)); // a stray run would show up by now
    const instances = plugin.calls.map((c) => (c.event.data as { labels: Record<string, string> }).labels.instance_id);
    expect(instances.filter((i) => !i?.startsWith('ok-'))).toEqual([]);
    expect(plugin.calls).toHaveLength(accepted);
    const groups = [...open.engine.groups(), ...auth.engine.groups()].map((g) => g.key);
    expect(groups.filter((k) => !k.includes('ok-'))).toEqual([]);
  });

  it('still accepts and runs a valid alert as Prometheus sends it', async () => {
    const fixture = readFixture<Array<{ body: Array<{ labels: Record<string, string> }> }>>('prometheus-2.42-api-v2-alerts.json');
    const sent = fixture[0]!.body.map((a) => ({ ...a, labels: { ...a.labels, instance_id: 'ok-after-table' }, endsAt: new Date(Date.now() + 60_000).toISOString() }));
    const before = plugin.calls.length;
    const res = await open.post(V2, sent);
    expect(res).toEqual({ status: 200, json: { status: 'success', accepted: 1 } });
    const calls = await plugin.waitForCalls(before + 1);
    const call = calls[before]!;
    expect(call.event.type).toBe('prometheus.server.alert.SpotTerminationNotice');
    expect((call.event.data as { labels: Record<string, string> }).labels.instance_id).toBe('ok-after-table');
    await expect.poll(() => open.engine.recentRuns().find((r) => r.groupKey.includes('ok-after-table'))?.outcome).toBe('succeeded');
  });
});

// ---------------------------------------------------------------- timeouts

/** Short timeouts, so a stalled client is cut off within the test; the body one is well under the idle one. */
const TIMEOUTS = { headers: 500, body: 2_000, idle: 3_000 };
const SLOTS = 4;
const timeoutConfig = (plugin: string): string =>
  coreConfig(`  limits: { maxConcurrentRequests: ${SLOTS} }\n  timeouts: { headers: ${TIMEOUTS.headers}ms, body: ${TIMEOUTS.body}ms, idle: ${TIMEOUTS.idle}ms }`, plugin);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A connection that sends `data`, then neither sends nor reads anything (its socket is paused from the start). */
function stalled(port: number, data: string | Buffer): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(data, () => resolve(socket)));
    socket.pause();
    socket.on('error', () => {}); // the server may reset it: these tests are about the server letting go
  });
}

/** Resumes reading a paused socket: resolves with what it received once the server has closed it, or after `ms`. */
function drain(socket: Socket, ms: number): Promise<{ closed: boolean; received: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = (closed: boolean): void => resolve({ closed, received: Buffer.concat(chunks).toString('latin1') });
    const timer = setTimeout(() => done(false), ms);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('close', () => {
      clearTimeout(timer);
      done(true);
    });
    socket.resume();
  });
}

describe('receiver timeouts: a stalled client loses its slot and its connection', () => {
  let plugin: RecordingPlugin;
  let core: TestCore;

  beforeAll(async () => {
    plugin = await startRecordingPlugin();
    core = await startTestCore(timeoutConfig(plugin.address));
  });
  afterAll(async () => {
    await core?.close();
    await plugin?.close();
  });

  it('frees every slot held by uploads stalled after one body byte whose clients never read: a normal alert gets 200 while they stay connected', async () => {
    const uploads = await Promise.all(Array.from({ length: 10 * SLOTS }, () => stalled(core.port, rawRequest(`POST ${V2} HTTP/1.1`, [...H, 'Content-Length: 100'], '['))));
    try {
      // The stalled uploads hold every slot: an alert is refused for overload.
      let reply = await post(V2, [alert('stall-probe')])(core.port);
      for (let i = 0; reply.status !== 503 && i < 50; i++) reply = await post(V2, [alert('stall-probe')])(core.port);
      expect(reply.status, reply.body).toBe(503);
      expect(JSON.parse(reply.body).errorType).toBe('overloaded');
      // Within the body timeout (plus slack for a busy machine) they lose their slots.
      const deadline = Date.now() + TIMEOUTS.body + 5_000;
      while (reply.status !== 200 && Date.now() < deadline) {
        await sleep(50);
        reply = await post(V2, [alert('stall-after')])(core.port);
      }
      expect(reply.status, reply.body).toBe(200);
      expect(uploads.filter((s) => s.destroyed)).toEqual([]);
      expect((await rejectedByReason(core)).timeout).toBeGreaterThanOrEqual(SLOTS);
    } finally {
      for (const s of uploads) s.destroy();
    }
  });

  it('answers a stalled upload whose client reads with 408 and a JSON reason, and closes the connection', async () => {
    const reply = await raw(rawRequest(`POST ${V2} HTTP/1.1`, [...H, 'Content-Length: 100'], '[{"labels":'))(core.port);
    expect(reply.status).toBe(408);
    expect(reply.headers.connection).toBe('close');
    expect(JSON.parse(reply.body)).toEqual({ status: 'error', errorType: 'timeout', error: `request body not complete within ${TIMEOUTS.body / 1_000}s` });
  });

  it('answers headers that never end with a bare 408 and counts it as a timeout', async () => {
    const before = (await rejectedByReason(core)).timeout ?? 0;
    const reply = await raw(`POST ${V2} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n`)(core.port);
    expect(reply.status).toBe(408);
    expect(reply.reasonPhrase).toBe('Request Timeout');
    expect((await rejectedByReason(core)).timeout).toBe(before + 1);
  });

  it('destroys connections stalled in their headers whose clients never read, well before the idle timeout', async () => {
    const sockets = await Promise.all(Array.from({ length: 5 }, () => stalled(core.port, `POST ${V2} HTTP/1.1\r\nHost: x\r\n`)));
    // Headers timeout, Node's check (an eighth of a second here), then one second to read the bare 408.
    await sleep(TIMEOUTS.headers + 125 + 1_000 + 400);
    // A write to a destroyed peer is answered with a reset; a half-closed one would take it silently.
    const outcomes = await Promise.all(
      sockets.map(
        (socket) =>
          new Promise<string>((resolve) => {
            socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
            socket.write('X');
            setTimeout(() => socket.write('X'), 200);
            setTimeout(() => resolve('still open'), 1_500);
          }),
      ),
    );
    for (const socket of sockets) socket.destroy();
    expect(outcomes.filter((o) => o !== 'EPIPE' && o !== 'ECONNRESET')).toEqual([]);
  });

  it('closes a connection whose client stops reading the answers it asked for, after the idle timeout', async () => {
    // Far more answers than the socket buffers hold: the server's writes stall and nothing moves.
    const asked = 5_000;
    const renders = vi.spyOn(core.metrics.registry, 'metrics');
    const socket = await stalled(core.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(asked));
    // Until the server renders no more answers, its writes stalled: on a busy machine filling the buffers takes seconds.
    let seen = 0;
    while (renders.mock.calls.length === 0 || renders.mock.calls.length !== seen) {
      seen = renders.mock.calls.length;
      await sleep(500);
    }
    renders.mockRestore();
    await sleep(TIMEOUTS.idle + 1_000);
    const { closed, received } = await drain(socket, 5_000);
    socket.destroy();
    expect(closed).toBe(true);
    expect(received.split('HTTP/1.1 200 OK').length - 1).toBeLessThan(asked);
  });

  it('still answers probes and alerts afterwards', async () => {
    expect((await http('GET', '/-/healthy')(core.port)).status).toBe(200);
    expect((await post(V2, [alert('stall-last')])(core.port)).status).toBe(200);
  });
});
