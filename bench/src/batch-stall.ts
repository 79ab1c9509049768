/**
 * `node bench/dist/batch-stall.js` (after `pnpm build`): how long one large
 * batch holds Hollowtrees' event loop. While one POST of 10,000 alerts (about
 * 4.3 MB, each for a new instance) is handled, a separate prober process asks
 * `/-/healthy` back to back on its own keep-alive connection; the longest wait
 * for an answer is the stall. The prober is forked so that the plugin's work in
 * this process does not delay it. Two kinds of rounds, alternating: `receiver`
 * (an alertname no flow takes: parsing, validation and dispatch only) and
 * `runs` (the bench's flow: every alert starts a run on the gRPC plugin, 1,000
 * at once, the rest queued). `STALL_ROUNDS` rounds of each (default 5).
 */
import { fork } from 'node:child_process';
import { Agent, request } from 'node:http';
import { pollUntil } from '@hollowtrees/testkit';
import { BENCH_ALERTNAME, alertsBody } from './alerts.js';
import { startPluginSink } from './sinks.js';
import { summarize } from './stats.js';
import { postAlerts, startHollowtrees } from './targets.js';

const BATCH = 10_000;
const ROUNDS = Number(process.env.STALL_ROUNDS ?? 5);
type Kind = 'receiver' | 'runs';

/** The prober: GET /-/healthy in a loop until told to stop, then report every wait in ms. */
async function probe(url: string): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request(`${url}/-/healthy`, { agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
  let probing = false;
  let waits: number[] = [];
  process.on('message', (command) => {
    if (command === 'start') {
      waits = [];
      probing = true;
      void (async () => {
        while (probing) {
          const started = performance.now();
          await get();
          waits.push(performance.now() - started);
        }
        process.send!(waits);
      })();
    } else if (command === 'stop') probing = false;
    else if (command === 'exit') process.exit(0);
  });
  await get(); // warm the connection
  process.send!('ready');
}

async function main(): Promise<void> {
  const sink = await startPluginSink();
  const target = await startHollowtrees({ pluginAddress: sink.address, maxBodyBytes: 16 * 1024 * 1024 });
  const prober = fork(new URL(import.meta.url).pathname, ['probe', target.url], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = (): Promise<unknown> => new Promise((resolve) => prober.once('message', resolve));
  try {
    await next(); // ready
    const stalls: Record<Kind, number[]> = { receiver: [], runs: [] };
    let runs = 0;
    for (let n = 0; n < 2 * ROUNDS; n++) {
      const round = Math.floor(n / 2);
      const kind: Kind = n % 2 === 0 ? 'receiver' : 'runs';
      const matched = alertsBody(`stall-${round}-`, 0, BATCH);
      const body = kind === 'runs' ? matched : matched.replaceAll(`"alertname":"${BENCH_ALERTNAME}"`, '"alertname":"NoFlowTakesThis"');
      prober.send('start');
      const started = performance.now();
      await postAlerts(target.url, body);
      const postMs = performance.now() - started;
      const reported = next();
      prober.send('stop');
      const waits = (await reported) as number[];
      const stall = Math.max(...waits);
      stalls[kind].push(stall);
      console.log(JSON.stringify({ kind, round, alerts: BATCH, bodyBytes: body.length, postMs: Math.round(postMs), probes: waits.length, longestHealthyWaitMs: Math.round(stall) }));
      // The next round starts once every run of this one has reached the plugin.
      if (kind === 'runs') runs += BATCH;
      await pollUntil(() => sink.received >= runs, 120_000, () => `${sink.received} of ${runs} plugin calls`);
    }
    for (const kind of ['receiver', 'runs'] as const) {
      const s = summarize(stalls[kind]);
      console.log(JSON.stringify({ kind, longestHealthyWaitMs: { min: Math.round(s.min), median: Math.round(s.p50), max: Math.round(s.max) } }));
    }
  } finally {
    prober.send('exit');
    await target.stop();
    await sink.close();
  }
}

if (process.argv[2] === 'probe') void probe(process.argv[3]!);
else await main();
