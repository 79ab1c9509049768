import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A plugin in a process of its own, whose handler never answers. */
export interface StuckPluginProcess {
  child: ChildProcess;
  port: number;
  /** Resolves once the calls asked for reached the handler. */
  allIn: Promise<void>;
  /** Kills the process (SIGKILL, as a crash would) and resolves once it is gone. */
  kill(): Promise<void>;
}

/**
 * Starts a plugin process on the built package (`pnpm build` first) whose handler never
 * answers, and tells when `inFlight` calls reached it. `defer` registers its cleanup.
 */
export async function stuckPluginProcess(inFlight: number, defer: (cleanup: () => unknown) => void): Promise<StuckPluginProcess> {
  const script = `
    import { serve } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
    let calls = 0;
    const server = await serve(0, { handle: () => { if (++calls === ${inFlight}) console.log('all in'); return new Promise(() => {}); } });
    console.log('port ' + server.port);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  defer(() => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout! });
  let allIn!: () => void;
  const allInPromise = new Promise<void>((resolve) => (allIn = resolve));
  const port = await new Promise<number>((resolve) =>
    lines.on('line', (line) => {
      if (line.startsWith('port ')) resolve(Number(line.slice(5)));
      if (line === 'all in') allIn();
    }),
  );
  const kill = async (): Promise<void> => {
    const died = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await died;
  };
  return { child, port, allIn: allInPromise, kill };
}
