import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startAwsStandIn } from './aws/index.js';
import { startKubeApiServer } from './kube/index.js';
import { LISTEN_BACKLOG } from './listen.js';

// `ss` reports a listening socket's accept-queue limit in its Send-Q column.
const SS = ['/usr/bin/ss', '/bin/ss'].find((p) => existsSync(p));

function acceptQueueLimit(port: number): number {
  const line = execFileSync(SS!, ['-ltnH', `sport = :${port}`], { encoding: 'utf8' }).trim().split('\n')[0] ?? '';
  return Number(line.split(/\s+/)[2]);
}

describe.skipIf(!SS)('stand-ins listen with a backlog for a wave of connections', () => {
  it('both stand-ins get the largest accept queue the kernel allows, not Node’s 511', async () => {
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    const kube = await startKubeApiServer();
    const aws = await startAwsStandIn();
    try {
      for (const url of [kube.url, aws.url]) expect(acceptQueueLimit(Number(new URL(url).port))).toBe(Math.min(LISTEN_BACKLOG, somaxconn));
    } finally {
      await kube.close();
      await aws.close();
    }
  });
});
