/**
 * A trivial HTTP server that reads each body and answers 200, run in its own
 * process: the generator's ceiling on this machine, to show it is not what
 * limits the numbers measured against real targets.
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:http';

export interface NullServer {
  url: string;
  close(): void;
}

/** Forks a null server and resolves once it listens. */
export function startNullServer(): Promise<NullServer> {
  const child = fork(new URL(import.meta.url).pathname, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (port) => resolve({ url: `http://127.0.0.1:${port as number}`, close: () => child.kill('SIGKILL') }));
    child.once('exit', (code) => reject(new Error(`null server exited with ${code}`)));
  });
}

if (process.send && process.argv[1] === new URL(import.meta.url).pathname) {
  const reply = '{"status":"success"}';
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': reply.length });
      res.end(reply);
    });
  });
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as { port: number }).port));
}
