import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * V8's full collection of the calling thread's heap, as a function. V8 collects a heap when it
 * allocates, so one that stopped allocating keeps its garbage for good, and Node has no call to
 * collect it: V8 gives `gc` to each context made once `--expose-gc` is set. The flag is the
 * process's (contexts made before keep no `gc`); only the context made here is given one to use.
 */
export function fullCollection(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
