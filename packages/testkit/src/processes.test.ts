import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { busyPort, freePort, startOnFreePort } from './processes.js';

// A server as Hollowtrees' bins are: it says "the port is already in use" and exits 1 when it cannot bind.
const SERVER = `
const port = Number(process.argv[1]);
const server = require('node:http').createServer((req, res) => res.end('ok'));
server.once('error', (err) => {
  console.error(err.code === 'EADDRINUSE' ? 'cannot listen on 127.0.0.1:' + port + ': the port is already in use' : err.message);
  process.exit(1);
});
server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => server.close());
`;

describe('startOnFreePort', () => {
  it('starts the server again on a new port when another process took the first one between the pick and the bind', async () => {
    const taken = await busyPort();
    const ports: number[] = [];
    try {
      // The first attempt is pointed at the taken port, as the race would have it.
      const { proc, port } = await startOnFreePort('server', process.execPath, (free) => {
        ports.push(ports.length === 0 ? taken.port : free);
        return ['-e', SERVER, String(ports.at(-1))];
      }, '/');
      try {
        expect(ports).toHaveLength(2);
        expect(port).toBe(ports[1]);
        expect(port).not.toBe(taken.port);
        expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('ok');
      } finally {
        await proc.kill();
      }
    } finally {
      await taken.close();
    }
  });

  it('does not start again a server that failed for another reason', async () => {
    let attempts = 0;
    const starting = startOnFreePort('server', process.execPath, () => {
      attempts += 1;
      return ['-e', 'console.error("no config"); process.exit(1)'];
    }, '/');
    await expect(starting).rejects.toThrow(/no config/);
    expect(attempts).toBe(1);
  });
});

const PORT_RANGE = '/proc/sys/net/ipv4/ip_local_port_range';

describe.skipIf(!existsSync(PORT_RANGE))('freePort', () => {
  it('picks a port below the kernel\'s ephemeral range, where no listen(0) or outgoing connection can take it, and a server can listen on it', async () => {
    const ephemeralStart = Number(readFileSync(PORT_RANGE, 'utf8').trim().split(/\s+/)[0]);
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(20_000);
      expect(port).toBeLessThan(ephemeralStart);
    }
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(ports[0], '127.0.0.1', resolve);
    });
    await new Promise((resolve) => server.close(resolve));
  });
});
