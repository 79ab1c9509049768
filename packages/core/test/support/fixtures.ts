import { readFileSync } from 'node:fs';

const FIXTURES = new URL('../../test-fixtures/', import.meta.url);

/** Reads a payload captured from real Prometheus 2.42 / Alertmanager 0.25 (see test-fixtures/README.md). */
export function readFixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as T;
}

/** An SQS message body after AWS's documented examples (see test-fixtures/aws-notices/README.md), as text. */
export function readNoticeSample(name: string): string {
  return readFileSync(new URL(`aws-notices/${name}`, FIXTURES), 'utf8');
}
