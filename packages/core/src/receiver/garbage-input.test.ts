/**
 * Garbage input: thousands of random, broken or hostile bodies, generated
 * deterministically (seeded PRNG), sent over real HTTP with keep-alive and
 * bounded concurrency to every alert path. None may crash the receiver; each
 * gets a 4xx with a JSON reason, except bodies this file knows to be valid
 * (real payloads, or a real payload with only an ignored field changed), which
 * get a 200.
 */
import { Agent, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCore, type TestCore } from '../../test/support/start-core.js';
import { readFixture } from '../../test/support/fixtures.js';
import { seededRandom } from '../../test/support/seeded-random.js';

// ---------------------------------------------------------------- inputs


type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const prometheusCapture = readFixture<Array<{ path: string; body: JsonObject[] }>>('prometheus-2.42-api-v2-alerts.json');
const webhookFiring = readFixture<JsonObject>('alertmanager-0.25-webhook-firing.json');
const webhookResolved = readFixture<JsonObject>('alertmanager-0.25-webhook-resolved.json');
/** Prometheus' first (firing) body, and the first resolved one: its endsAt went back, to when it resolved. */
const v2Firing = prometheusCapture[0]!.body;
const v2Resolved = prometheusCapture.find((e, i) => i > 0 && Date.parse(String(e.body[0]!.endsAt)) < Date.parse(String(prometheusCapture[i - 1]!.body[0]!.endsAt)))!.body;

const ALERT_PATHS = ['/api/v2/alerts', '/api/v1/alerts', '/webhook/alertmanager'] as const;
type AlertPath = (typeof ALERT_PATHS)[number];
const POSTABLE_PATHS = ['/api/v2/alerts', '/api/v1/alerts'] as const;

class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = seededRandom(seed);
  }
  float(): number {
    return this.next();
  }
  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = this.int(256);
    return out;
  }
}

/** What a case must get back. */
type Expectation = { accepted: number } | 'rejected';

interface Case {
  name: string;
  path: string;
  body: Buffer;
  expect: Expectation;
  method?: string;
  /** Default application/json; null sends no Content-Type. */
  contentType?: string | null;
  /** Send without Content-Length (chunked), so the receiver has to count. */
  chunked?: boolean;
}

const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');
const jsonBody = (value: Json): Buffer => utf8(JSON.stringify(value));
const clone = <T extends Json>(value: T): T => structuredClone(value);

/** Strict: valid UTF-8 and valid JSON. */
function strictJson(body: Buffer): { ok: true; value: Json } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) as Json };
  } catch {
    return { ok: false };
  }
}
/** Parses as JSON once invalid UTF-8 is replaced by U+FFFD (what a lenient decoder would see). */
function lenientlyJson(body: Buffer): boolean {
  try {
    JSON.parse(body.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

/**
 * For bodies that are random (not derived from a valid payload): the only
 * valid ones are an empty array on the postable paths, which nothing random
 * here can otherwise satisfy (alerts need labels.alertname, webhooks version "4").
 */
function randomBodyExpectation(path: AlertPath, body: Buffer): Expectation {
  const parsed = strictJson(body);
  if (parsed.ok && path !== '/webhook/alertmanager' && Array.isArray(parsed.value) && parsed.value.length === 0) return { accepted: 0 };
  return 'rejected';
}

// ------------------------------------------------------- case generators

function fixtureCases(): Case[] {
  const cases: Case[] = [];
  prometheusCapture.forEach((entry, i) => {
    for (const path of POSTABLE_PATHS) cases.push({ name: `prometheus capture #${i} on ${path}`, path, body: jsonBody(entry.body), expect: { accepted: entry.body.length } });
  });
  cases.push({ name: 'webhook firing fixture', path: '/webhook/alertmanager', body: jsonBody(webhookFiring), expect: { accepted: 1 } });
  cases.push({ name: 'webhook resolved fixture', path: '/webhook/alertmanager', body: jsonBody(webhookResolved), expect: { accepted: 1 } });
  return cases;
}

/** Every real payload under each media type a browser may send cross-site without a preflight, and under none. */
function mediaTypeCases(): Case[] {
  const types = ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=----x', null];
  return fixtureCases().flatMap((c) => types.map((contentType): Case => ({ ...c, name: `${c.name} sent as ${contentType ?? 'no Content-Type'}`, contentType, expect: 'rejected' })));
}

function randomBytesCases(rng: Rng, count: number): Case[] {
  const contentTypes = ['application/json', 'text/plain', 'application/octet-stream', 'application/x-www-form-urlencoded', null];
  const cases: Case[] = [];
  for (let i = 0; i < count; i++) {
    const length = rng.float() < 0.9 ? rng.int(512) : rng.int(64 * 1024);
    const body = rng.bytes(length);
    const contentType = rng.pick(contentTypes);
    // Only application/json is read: any other media type is refused before the body is.
    const expect = (path: AlertPath): Expectation => (contentType === 'application/json' ? randomBodyExpectation(path, body) : 'rejected');
    for (const path of ALERT_PATHS) cases.push({ name: `random bytes #${i} (${length} B) on ${path}`, path, body, expect: expect(path), contentType });
  }
  return cases;
}

/** Strings of JSON's own characters: almost JSON, nearly never JSON. */
function jsonishCases(rng: Rng, count: number): Case[] {
  const tokens = ['[', ']', '{', '}', ':', ',', '"', '"alertname"', '"labels"', '"alerts"', '"version"', '"4"', 'true', 'false', 'null', '0', '-1', '1e9', '"x"', ' ', '\\', '\\u12', '\n', '"2026-11-25T03:32:16.258Z"'];
  const cases: Case[] = [];
  for (let i = 0; i < count; i++) {
    let text = '';
    const n = 1 + rng.int(40);
    for (let j = 0; j < n; j++) text += rng.pick(tokens);
    const body = utf8(text);
    for (const path of ALERT_PATHS) cases.push({ name: `JSON-ish #${i} ${JSON.stringify(text.slice(0, 60))} on ${path}`, path, body, expect: randomBodyExpectation(path, body) });
  }
  return cases;
}

/** Random well-formed JSON values, with keys that are never field names core reads. */
function randomJsonCases(rng: Rng, count: number): Case[] {
  const reserved = new Set(['labels', 'alerts', 'version', 'alertname', 'annotations', 'status', 'startsAt', 'endsAt']);
  const key = (): string => {
    for (;;) {
      const k = Array.from({ length: 1 + rng.int(8) }, () => String.fromCharCode(97 + rng.int(26))).join('');
      if (!reserved.has(k)) return k;
    }
  };
  const value = (depth: number): Json => {
    const r = rng.int(depth > 4 ? 5 : 8);
    switch (r) {
      case 0: return null;
      case 1: return rng.float() < 0.5;
      case 2: return rng.float() < 0.5 ? rng.int(1e6) - 5e5 : (rng.float() - 0.5) * 1e300;
      case 3: return key();
      case 4: return '\u0000\uffff\u2028 ' + key();
      case 5: case 6: return Array.from({ length: rng.int(5) }, () => value(depth + 1));
      default: return Object.fromEntries(Array.from({ length: rng.int(5) }, () => [key(), value(depth + 1)]));
    }
  };
  const cases: Case[] = [];
  for (let i = 0; i < count; i++) {
    const body = jsonBody(value(0));
    for (const path of ALERT_PATHS) cases.push({ name: `random JSON #${i} ${body.toString('utf8', 0, 60)} on ${path}`, path, body, expect: randomBodyExpectation(path, body) });
  }
  return cases;
}

/** Every proper prefix (strided) of a real compact payload: never valid JSON. */
function truncationCases(): Case[] {
  const sources: Array<{ name: string; paths: readonly AlertPath[]; body: Buffer }> = [
    { name: 'v2 firing', paths: POSTABLE_PATHS, body: jsonBody(v2Firing) },
    { name: 'v2 resolved', paths: POSTABLE_PATHS, body: jsonBody(v2Resolved) },
    { name: 'webhook firing', paths: ['/webhook/alertmanager'], body: jsonBody(webhookFiring) },
    { name: 'webhook resolved', paths: ['/webhook/alertmanager'], body: jsonBody(webhookResolved) },
  ];
  const cases: Case[] = [];
  for (const source of sources) {
    const stride = Math.max(1, Math.floor(source.body.length / 150));
    for (let length = 0; length < source.body.length; length += stride) {
      for (const path of source.paths) cases.push({ name: `${source.name} truncated to ${length} of ${source.body.length} B on ${path}`, path, body: source.body.subarray(0, length), expect: 'rejected' });
    }
    // The last byte gone too: `...}` without its closing bracket.
    for (const path of source.paths) cases.push({ name: `${source.name} without its last byte on ${path}`, path, body: source.body.subarray(0, source.body.length - 1), expect: 'rejected' });
  }
  return cases;
}

/** Real payloads with a few random bytes overwritten, kept only when that broke the JSON. */
function byteFlipCases(rng: Rng, perSource: number): Case[] {
  const sources: Array<{ name: string; path: AlertPath; body: Buffer }> = [
    { name: 'v2 firing', path: '/api/v2/alerts', body: jsonBody(v2Firing) },
    { name: 'v2 resolved', path: '/api/v1/alerts', body: jsonBody(v2Resolved) },
    { name: 'webhook firing', path: '/webhook/alertmanager', body: jsonBody(webhookFiring) },
    { name: 'webhook resolved', path: '/webhook/alertmanager', body: jsonBody(webhookResolved) },
  ];
  const structural = [...'{}[]:,"\\'].map((c) => c.charCodeAt(0));
  const cases: Case[] = [];
  for (const source of sources) {
    let made = 0;
    for (let attempt = 0; made < perSource && attempt < perSource * 20; attempt++) {
      const body = Buffer.from(source.body);
      const flips = 1 + rng.int(3);
      for (let f = 0; f < flips; f++) {
        // Mostly hit JSON's structure; sometimes any byte.
        const positions = [...body.keys()].filter((p) => structural.includes(body[p]!));
        const at = rng.float() < 0.8 ? rng.pick(positions) : rng.int(body.length);
        body[at] = rng.float() < 0.5 ? rng.pick(structural) : rng.int(256);
      }
      // Only bodies that are not JSON by any reading: still-valid ones have unknown validity.
      if (lenientlyJson(body)) continue;
      made++;
      cases.push({ name: `${source.name} with ${flips} byte(s) flipped #${made} on ${source.path}`, path: source.path, body, expect: 'rejected' });
    }
  }
  return cases;
}

// What core reads, by field, as the README's "Events" table says; everything else is ignored.
type Kind = 'alerts' | 'alert' | 'labels' | 'alertname' | 'labelValue' | 'annotations' | 'annotationValue' | 'time' | 'string' | 'alertStatus' | 'version' | 'ignored';
const REQUIRED: ReadonlySet<Kind> = new Set(['alerts', 'alert', 'labels', 'alertname', 'alertStatus', 'version']);
const RAW = (literal: string): string => `\u0000raw:${literal}\u0000`;
/** Wrong values for each kind (all must be refused). RAW(...) is spliced into the JSON text as is. */
const WRONG: Record<Exclude<Kind, 'ignored'>, Json[]> = {
  alerts: [null, 42, 'alerts', {}, true, { 0: {} }],
  alert: [null, 42, 'alert', [], true, [['labels', {}]]],
  labels: [null, 42, 'labels', [], true, [['alertname', 'X']], {}],
  alertname: [null, 42, true, [], {}, '', RAW('1e400')],
  // null is no wrong value: Alertmanager 0.25 drops a null label and reads a null annotation as "" (bad-input.test.ts).
  labelValue: [42, true, [], {}, ['x'], RAW('123456789012345678901234567890123456789')],
  annotations: [42, 'annotations', [], true],
  annotationValue: [42, false, [], { text: 'x' }, RAW('-1e400')],
  time: [42, true, [], {}, 'yesterday', '2026-13-45T99:99:99Z', '2026-11-25', '2026-11-25T03:32:16', '1764041536', RAW('1764041536258')],
  string: [42, true, [], {}, RAW('1e308')],
  alertStatus: [null, 42, '', 'pending', 'FIRING', true],
  version: [null, 4, '3', '', '4.0', RAW('4e0')],
};
const IGNORED_VALUES: Json[] = [null, 42, 'x', [], { deep: [[[{}]]] }, true];

function kindOf(path: ReadonlyArray<string | number>, webhook: boolean): Kind {
  const p = webhook ? path : ['alerts', ...path];
  const [top, , field, sub] = p;
  if (p.length === 1 && top === 'alerts') return 'alerts';
  if (webhook && p.length === 1) return top === 'version' ? 'version' : top === 'externalURL' || top === 'groupKey' ? 'string' : 'ignored';
  if (top !== 'alerts') return 'ignored';
  if (p.length === 2) return 'alert';
  if (p.length === 3) {
    switch (field) {
      case 'labels': return 'labels';
      case 'annotations': return 'annotations';
      case 'startsAt': case 'endsAt': return 'time';
      case 'generatorURL': return 'string';
      case 'status': return webhook ? 'alertStatus' : 'ignored';
      case 'fingerprint': return webhook ? 'string' : 'ignored';
      default: return 'ignored';
    }
  }
  if (field === 'labels') return sub === 'alertname' ? 'alertname' : 'labelValue';
  if (field === 'annotations') return 'annotationValue';
  return 'ignored';
}

function setAt(root: Json, path: ReadonlyArray<string | number>, value: Json | undefined): void {
  let node = root as Record<string | number, Json>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, Json>;
  const last = path[path.length - 1]!;
  if (value === undefined) {
    if (Array.isArray(node)) node.splice(last as number, 1);
    else delete node[last];
  } else node[last] = value;
}

function paths(value: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (value === null || typeof value !== 'object') return [];
  const keys: Array<string | number> = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
  return keys.flatMap((k) => [[...prefix, k], ...paths((value as Record<string | number, Json>)[k]!, [...prefix, k])]);
}

function render(value: Json): Buffer {
  // RAW markers become literal JSON text (numbers JSON.stringify cannot write).
  return utf8(JSON.stringify(value).replace(/"\\u0000raw:([^"]*)\\u0000"/g, '$1'));
}

/** Each field of a real payload given each wrong type, removed, or (where ignored) anything at all. */
function wrongTypeCases(): Case[] {
  const sources: Array<{ name: string; paths: readonly AlertPath[]; payload: Json; webhook: boolean }> = [
    { name: 'v2 firing', paths: POSTABLE_PATHS, payload: v2Firing, webhook: false },
    { name: 'webhook firing', paths: ['/webhook/alertmanager'], payload: webhookFiring, webhook: true },
    { name: 'webhook resolved', paths: ['/webhook/alertmanager'], payload: webhookResolved, webhook: true },
  ];
  const cases: Case[] = [];
  const alertsIn = (payload: Json, webhook: boolean): number => ((webhook ? (payload as JsonObject).alerts : payload) as Json[]).length;
  for (const source of sources) {
    for (const path of [[], ...paths(source.payload)]) {
      const kind = path.length === 0 ? (source.webhook ? 'ignored' : 'alerts') : kindOf(path, source.webhook);
      const where = path.length === 0 ? '(root)' : path.join('.');
      const variants: Array<{ label: string; value: Json | undefined; expect: Expectation }> = [];
      if (path.length === 0) {
        // The whole body: not an array of alerts, not a webhook payload.
        for (const v of WRONG.alerts) variants.push({ label: JSON.stringify(v), value: v, expect: 'rejected' });
      } else if (kind === 'ignored') {
        for (const v of IGNORED_VALUES) variants.push({ label: JSON.stringify(v), value: v, expect: { accepted: alertsIn(source.payload, source.webhook) } });
        variants.push({ label: 'removed', value: undefined, expect: { accepted: alertsIn(source.payload, source.webhook) } });
      } else {
        for (const v of WRONG[kind]) variants.push({ label: typeof v === 'string' && v.startsWith('\u0000raw:') ? v.slice(5, -1) : JSON.stringify(v), value: v, expect: 'rejected' });
        // Removing an alert from the array leaves a smaller valid batch; removing a required field does not.
        if (kind === 'alert') variants.push({ label: 'removed', value: undefined, expect: { accepted: alertsIn(source.payload, source.webhook) - 1 } });
        else variants.push({ label: 'removed', value: undefined, expect: REQUIRED.has(kind) ? 'rejected' : { accepted: alertsIn(source.payload, source.webhook) } });
      }
      for (const variant of variants) {
        let body: Buffer;
        if (path.length === 0) {
          body = render(variant.value!);
        } else {
          const payload = clone(source.payload);
          setAt(payload, path, variant.value);
          body = render(payload);
        }
        for (const p of source.paths) cases.push({ name: `${source.name}: ${where} = ${variant.label} (${kind}) on ${p}`, path: p, body, expect: variant.expect });
      }
    }
    // Unknown fields at the alert and payload level are ignored.
    const withExtra = clone(source.payload);
    const firstAlert = (source.webhook ? (withExtra as JsonObject).alerts : withExtra) as JsonObject[];
    firstAlert[0]!.hollowtreesUnknown = { nested: [1, 'two', null] };
    if (source.webhook) (withExtra as JsonObject).anotherUnknown = [true];
    for (const p of source.paths) cases.push({ name: `${source.name} with unknown fields on ${p}`, path: p, body: render(withExtra), expect: { accepted: alertsIn(source.payload, source.webhook) } });
  }
  return cases;
}

/** Deep nesting, huge numbers, oversized bodies and batches. */
function extremeCases(): Case[] {
  const cases: Case[] = [];
  const forAll = (name: string, body: Buffer, expect: Expectation | ((path: AlertPath) => Expectation), paths: readonly AlertPath[] = ALERT_PATHS): void => {
    for (const path of paths) cases.push({ name: `${name} on ${path}`, path, body, expect: typeof expect === 'function' ? expect(path) : expect });
  };
  const deepArrays = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);
  const deepObjects = (depth: number): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  const v2 = JSON.stringify(v2Firing);
  const wh = JSON.stringify(webhookFiring);

  // Deep nesting at the root, inside read fields (refused) and inside ignored fields (fine).
  forAll('200k nested arrays', utf8(deepArrays(200_000)), 'rejected');
  forAll('100k nested objects', utf8(deepObjects(100_000)), 'rejected');
  forAll('100k unclosed arrays', utf8('['.repeat(100_000)), 'rejected');
  forAll('600k nested arrays (over the body limit)', utf8(deepArrays(600_000)), 'rejected');
  const deepIn = (text: string, needle: string, deep: string): Buffer => {
    expect(text).toContain(needle);
    return utf8(text.replace(needle, deep));
  };
  forAll('100k nested arrays as a label value', deepIn(v2, '"i-0abc123"', deepArrays(100_000)), 'rejected', POSTABLE_PATHS);
  forAll('100k nested objects as an annotation value', deepIn(v2, '"AWS sent a spot instance-action notice"', deepObjects(100_000)), 'rejected', POSTABLE_PATHS);
  forAll('100k nested arrays as the alerts', deepIn(wh, '"alerts":[', `"alerts":${deepArrays(100_000)},"x":[`), 'rejected', ['/webhook/alertmanager']);
  // Ignored fields are ignored up to 10,000 levels, Go's (so Alertmanager's) bound; deeper is refused, as Alertmanager refuses it.
  forAll('9,000 nested objects in an unknown alert field', deepIn(v2, '"labels":', `"unknown":${deepObjects(9_000)},"labels":`), { accepted: 1 }, POSTABLE_PATHS);
  forAll('9,000 nested arrays in groupLabels (ignored)', deepIn(wh, '"groupLabels":{"instance_id":"i-0abc123"}', `"groupLabels":${deepArrays(9_000)}`), { accepted: 1 }, ['/webhook/alertmanager']);
  forAll('100k nested objects in an unknown alert field', deepIn(v2, '"labels":', `"unknown":${deepObjects(100_000)},"labels":`), 'rejected', POSTABLE_PATHS);
  forAll('100k nested arrays in groupLabels', deepIn(wh, '"groupLabels":{"instance_id":"i-0abc123"}', `"groupLabels":${deepArrays(100_000)}`), 'rejected', ['/webhook/alertmanager']);

  // Huge and odd numbers.
  for (const literal of ['1e400', '-1e400', '123456789012345678901234567890123456789', '-0', '1E+308', '0.00000000000000000000000000000001', '9007199254740993', `1${'0'.repeat(100_000)}`]) {
    const short = literal.length > 40 ? `${literal.slice(0, 12)}... (${literal.length} digits)` : literal;
    forAll(`the number ${short} as the body`, utf8(literal), 'rejected');
    forAll(`[${short}] as the body`, utf8(`[${literal}]`), 'rejected');
    forAll(`the number ${short} as labels.instance_id`, deepIn(v2, '"i-0abc123"', literal), 'rejected', POSTABLE_PATHS);
    forAll(`the number ${short} as startsAt`, deepIn(v2, '"2026-11-25T03:32:16.258Z"', literal), 'rejected', POSTABLE_PATHS);
    forAll(`the number ${short} as version`, deepIn(wh, '"version":"4"', `"version":${literal}`), 'rejected', ['/webhook/alertmanager']);
  }

  // Oversized: body limit (413), batch limit (413), label limits (400).
  const bigAnnotation = JSON.stringify([{ labels: { alertname: 'Big' }, annotations: { summary: 'x'.repeat(1_100_000) } }]);
  forAll('a 1.1 MB body', utf8(bigAnnotation), 'rejected');
  cases.push({ name: 'a 1.1 MB chunked body (no Content-Length) on /api/v2/alerts', path: '/api/v2/alerts', body: utf8(bigAnnotation), expect: 'rejected', chunked: true });
  cases.push({ name: 'a small chunked body (no Content-Length) on /api/v2/alerts', path: '/api/v2/alerts', body: utf8(v2), expect: { accepted: 1 }, chunked: true });
  const manyAlerts = JSON.stringify(Array.from({ length: 10_001 }, (_, i) => ({ labels: { alertname: 'Many', i: String(i) } })));
  forAll('10,001 alerts in one request', utf8(manyAlerts), 'rejected', POSTABLE_PATHS);
  forAll('10,001 alerts in one webhook', utf8(JSON.stringify({ ...webhookFiring, alerts: Array.from({ length: 10_001 }, () => (webhookFiring.alerts as Json[])[0]!) })), 'rejected', ['/webhook/alertmanager']);
  forAll('a 5,000-character label value', deepIn(v2, '"i-0abc123"', JSON.stringify('i'.repeat(5_000))), 'rejected', POSTABLE_PATHS);
  forAll('a 5,000-character label name', deepIn(v2, '"instance_id"', JSON.stringify('l'.repeat(5_000))), 'rejected', POSTABLE_PATHS);
  const manyLabels = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`l${i}`, 'v']));
  forAll('200 labels on one alert', utf8(JSON.stringify([{ labels: { alertname: 'Wide', ...manyLabels } }])), 'rejected', POSTABLE_PATHS);

  // Neither arrays nor payloads.
  for (const text of ['[]', '', ' ', '\n\n', 'null', 'true', '"[]"', '{}', '[null]', '[[]]', '[{}]', '[""]', '{"version":"4"}', '{"alerts":[]}', 'undefined', 'NaN', "[{'labels':{}}]", '[1,]', '\ufeff[]']) {
    forAll(`${JSON.stringify(text)} as the body`, utf8(text), (path) => (path !== '/webhook/alertmanager' && text === '[]' ? { accepted: 0 } : 'rejected'));
  }
  return cases;
}

/**
 * Real payloads with invalid UTF-8 inside a string. JSON text must be UTF-8
 * (RFC 8259 section 8.1); decoding these leniently would silently change a
 * label (an instance id, say) into something the sender never sent.
 */
function invalidUtf8Cases(): Case[] {
  const sequences: Record<string, number[]> = {
    'a lone 0xFF': [0xff],
    'a lone continuation byte': [0x80],
    'a truncated 2-byte sequence': [0xc3],
    'an invalid continuation (C3 28)': [0xc3, 0x28],
    'an overlong slash (C0 AF)': [0xc0, 0xaf],
    'an encoded surrogate (ED A0 80)': [0xed, 0xa0, 0x80],
    'a code point above U+10FFFF (F4 90 80 80)': [0xf4, 0x90, 0x80, 0x80],
    'a truncated 4-byte sequence (F0 9F 98)': [0xf0, 0x9f, 0x98],
  };
  const targets: Array<{ name: string; paths: readonly AlertPath[]; text: string; needle: string }> = [
    { name: 'labels.instance_id', paths: POSTABLE_PATHS, text: JSON.stringify(v2Firing), needle: 'i-0abc123' },
    { name: 'labels.alertname', paths: POSTABLE_PATHS, text: JSON.stringify(v2Firing), needle: 'SpotTerminationNotice' },
    { name: 'annotations.summary', paths: POSTABLE_PATHS, text: JSON.stringify(v2Firing), needle: 'will be reclaimed' },
    { name: 'a label name', paths: POSTABLE_PATHS, text: JSON.stringify(v2Firing), needle: 'cluster_name' },
    { name: 'webhook labels.instance_id', paths: ['/webhook/alertmanager'], text: JSON.stringify(webhookFiring), needle: 'i-0abc123' },
    { name: 'webhook generatorURL', paths: ['/webhook/alertmanager'], text: JSON.stringify(webhookFiring), needle: 'http://vm:19190/graph' },
  ];
  const cases: Case[] = [];
  for (const target of targets) {
    const at = target.text.indexOf(target.needle) + 2;
    for (const [name, bytes] of Object.entries(sequences)) {
      const before = utf8(target.text.slice(0, at));
      const body = Buffer.concat([before, Buffer.from(bytes), utf8(target.text.slice(at))]);
      for (const path of target.paths) cases.push({ name: `${name} inside ${target.name} on ${path}`, path, body, expect: 'rejected' });
    }
  }
  return cases;
}

function wrongMethodAndPathCases(): Case[] {
  const cases: Case[] = [];
  for (const path of ALERT_PATHS) {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) cases.push({ name: `${method} ${path}`, path, method, body: method === 'GET' || method === 'DELETE' ? Buffer.alloc(0) : jsonBody(v2Firing), expect: 'rejected' });
  }
  for (const path of ['/api/v2/alert', '/api/v2/alerts/', '/API/V2/ALERTS', '/webhook', '/webhook/alertmanager/x', '/%00', '/..%2f..%2fetc/passwd', `/${'a'.repeat(8_000)}`]) {
    cases.push({ name: `POST ${path.slice(0, 40)}`, path, body: jsonBody(v2Firing), expect: 'rejected' });
  }
  return cases;
}

// ------------------------------------------------------------- sending

interface Outcome {
  status: number;
  contentType: string;
  text: string;
  error?: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 16 });

function send(baseUrl: URL, c: Case): Promise<Outcome> {
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = {};
    if (c.contentType !== null) headers['content-type'] = c.contentType ?? 'application/json';
    if (!c.chunked) headers['content-length'] = c.body.length;
    let settled = false;
    const done = (outcome: Outcome): void => {
      if (!settled) {
        settled = true;
        resolve(outcome);
      }
    };
    const req = request({ host: baseUrl.hostname, port: baseUrl.port, path: c.path, method: c.method ?? 'POST', headers, agent, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => done({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => done({ status: res.statusCode ?? 0, contentType: '', text: '', error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    // A refused upload may be cut off by the server after it answered: the answer counts.
    req.on('error', (err) => setTimeout(() => done({ status: 0, contentType: '', text: '', error: err.message }), 50));
    if (c.chunked) {
      for (let i = 0; i < c.body.length; i += 64 * 1024) req.write(c.body.subarray(i, i + 64 * 1024));
      req.end();
    } else req.end(c.body);
  });
}

async function sendAll(baseUrl: URL, cases: readonly Case[], concurrency = 16): Promise<Outcome[]> {
  const outcomes = new Array<Outcome>(cases.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < cases.length) {
        const i = next++;
        outcomes[i] = await send(baseUrl, cases[i]!);
      }
    }),
  );
  return outcomes;
}

/** Mismatches between what each case must get and what it got, described for a failure message. */
function mismatches(cases: readonly Case[], outcomes: readonly Outcome[]): string[] {
  const problems: string[] = [];
  cases.forEach((c, i) => {
    const o = outcomes[i]!;
    const got = `${o.status}${o.error ? ` (${o.error})` : ''} ${o.text.slice(0, 200)}`;
    if (c.expect === 'rejected') {
      if (o.status < 400 || o.status > 499) return void problems.push(`${c.name}: expected a 4xx, got ${got}`);
      // The HTTP layer's own 400 (malformed request line) has no body; every receiver refusal has a JSON reason.
      let reason: { status?: unknown; errorType?: unknown; error?: unknown } = {};
      try {
        reason = JSON.parse(o.text) as typeof reason;
      } catch {
        // checked below
      }
      if (!o.contentType.startsWith('application/json') || reason.status !== 'error' || typeof reason.errorType !== 'string' || typeof reason.error !== 'string' || reason.error === '') {
        problems.push(`${c.name}: a ${o.status} without a JSON reason: ${got}`);
      }
    } else {
      let accepted: unknown;
      try {
        accepted = (JSON.parse(o.text) as { accepted?: unknown }).accepted;
      } catch {
        // checked below
      }
      if (o.status !== 200 || accepted !== c.expect.accepted) problems.push(`${c.name}: expected 200 with ${c.expect.accepted} accepted, got ${got}`);
    }
  });
  return problems;
}

// ---------------------------------------------------------------- tests

const config = `
plugins:
  logged: { type: log }
flows:
  # Nothing sent here matches: accepted events are counted as unmatched, no run starts.
  none:
    allowedEvents: [never.sent.by.this.test]
    plugins: [logged]
`;

describe('the receiver under garbage input', () => {
  let core: TestCore;
  let baseUrl: URL;
  const total = { sent: 0, rejected: 0, accepted: 0 };

  beforeAll(async () => {
    core = await startTestCore(config);
    baseUrl = new URL(core.url);
  });
  afterAll(async () => {
    agent.destroy();
    await core?.close();
  });

  // No time bound: a body that hangs the receiver fails the test by its timeout; speed is the bench's to report.
  async function check(cases: readonly Case[]): Promise<void> {
    const outcomes = await sendAll(baseUrl, cases);
    total.sent += cases.length;
    total.rejected += outcomes.filter((o) => o.status >= 400 && o.status <= 499).length;
    total.accepted += outcomes.filter((o) => o.status === 200).length;
    const problems = mismatches(cases, outcomes);
    expect(problems.slice(0, 15), `${problems.length} of ${cases.length} cases got the wrong answer`).toEqual([]);
  }

  it('accepts every real Prometheus and Alertmanager payload with 200', async () => {
    const cases = fixtureCases();
    expect(cases.length).toBe(prometheusCapture.length * 2 + 2);
    await check(cases);
  });

  it('refuses every real payload sent as another media type than application/json, or none, with a 4xx', async () => {
    await check(mediaTypeCases());
  });

  it('refuses random bytes with a 4xx and a JSON reason on every alert path', async () => {
    await check(randomBytesCases(new Rng(0x5eed0001), 400));
  });

  it('refuses JSON-like noise and random JSON values with a 4xx on every alert path', async () => {
    const rng = new Rng(0x5eed0002);
    const cases = [...jsonishCases(rng, 250), ...randomJsonCases(rng, 250)];
    // Only an empty array on a postable path is valid, and every such 2xx is one of those.
    expect(cases.filter((c) => c.expect !== 'rejected').every((c) => c.body.toString() === '[]' && c.path !== '/webhook/alertmanager')).toBe(true);
    await check(cases);
  });

  it('refuses every truncation and structural corruption of a real payload with a 4xx', async () => {
    const cases = [...truncationCases(), ...byteFlipCases(new Rng(0x5eed0003), 100)];
    expect(cases.every((c) => c.expect === 'rejected')).toBe(true);
    await check(cases);
  });

  it('refuses a wrong type or a missing required field at each field of a real payload, and ignores fields it does not read', async () => {
    const cases = wrongTypeCases();
    await check(cases);
  });

  it('refuses deep nesting, huge numbers and oversized bodies with a 4xx, unless the nesting is in an ignored field', async () => {
    await check(extremeCases());
  });

  it('refuses wrong methods and unknown paths with a 4xx', async () => {
    await check(wrongMethodAndPathCases());
  });

  it('refuses a real payload made invalid UTF-8 with a 4xx instead of decoding it leniently', async () => {
    await check(invalidUtf8Cases());
  });

  it('is still healthy and ready afterwards, logged no internal error, and counted every refusal', async () => {
    expect(total.sent).toBeGreaterThan(3_000);
    expect((await fetch(`${core.url}/-/healthy`)).status).toBe(200);
    expect((await fetch(`${core.url}/-/ready`)).status).toBe(200);
    expect(core.logs.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
    const rejected = (await core.metrics.receiver.requestsRejected.get()).values.reduce((sum, v) => sum + v.value, 0);
    expect(rejected).toBe(total.rejected);
    expect(rejected + total.accepted).toBe(total.sent);
  });
});
