import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What a process started with {@link wallClockStepPreload} writes on stderr once its wall clock was stepped. */
export const WALL_CLOCK_STEPPED = 'wall clock stepped';

/** With this set in its environment, a process started with {@link wallClockStepPreload} starts on a wall clock stepped once already, as one started after the step. */
export const STARTS_STEPPED_ENV = 'HOLLOWTREES_TEST_STEPPED';

/**
 * A module to pass to `node --import` (e.g. in `NODE_OPTIONS`): each SIGUSR2 steps the process's wall clock
 * (`Date.now()`) `stepMs` forward, as NTP does after a VM resumed, leaves the monotonic clock (`performance.now()`)
 * alone, as the system does, and writes {@link WALL_CLOCK_STEPPED} on stderr.
 */
export function wallClockStepPreload(stepMs = 2 * 60 * 60 * 1000): string {
  const path = join(mkdtempSync(join(tmpdir(), 'hollowtrees-clock-step-')), 'step-wall-clock.mjs');
  writeFileSync(
    path,
    `const wall = Date.now;
let ahead = process.env.${STARTS_STEPPED_ENV} ? ${stepMs} : 0;
if (ahead) Object.defineProperty(performance, 'timeOrigin', { value: performance.timeOrigin + ahead });
Date.now = () => wall() + ahead;
process.on('SIGUSR2', () => {
  ahead += ${stepMs};
  process.stderr.write(${JSON.stringify(`${WALL_CLOCK_STEPPED}\n`)});
});
`,
  );
  return path;
}
