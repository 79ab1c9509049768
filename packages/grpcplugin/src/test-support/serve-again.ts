import type { EventHandler } from '../handler.js';
import { serve, type PluginServer, type ServeOptions } from '../serve.js';

/**
 * serve() on `port`. A plugin restarted on the port it gave back can find it taken for a moment: another test file,
 * running beside this one, may have been given it as a connection's local port. Tried again for up to 5 s then.
 */
export async function serveAgainOn(port: number, handler: EventHandler, options: ServeOptions): Promise<PluginServer> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      return await serve(port, handler, options);
    } catch (err) {
      if (port === 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
