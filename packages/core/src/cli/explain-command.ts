import { readFile } from 'node:fs/promises';
import { loadConfigFile } from '../config/load-config.js';
import { fileProblem } from '../file-problem.js';
import { explainEvent, formatExplanation } from '../explain/explain-event.js';
import { ExplainInputError, readExplainInput } from '../explain/read-events.js';
import { EXIT_USAGE } from './exit-codes.js';

/**
 * `hollowtrees explain --config FILE [INPUT]`: what each flow of `file` would do with the alert or event in
 * `input` (a file, or stdin when absent or `-`). A bad configuration throws its ConfigError.
 */
export async function explainCommand(file: string, input: string | undefined): Promise<number> {
  const loaded = await loadConfigFile(file);
  const name = input === undefined || input === '-' ? '<stdin>' : input;
  let body: Buffer;
  try {
    body = name === '<stdin>' ? await readStdin() : await readFile(name);
  } catch (err) {
    process.stderr.write(`hollowtrees explain: ${name}: cannot read: ${fileProblem(err) ?? String(err)}\n`);
    return EXIT_USAGE;
  }
  let read;
  try {
    read = await readExplainInput(body, new Date(), loaded.config.server.limits, process.env.AWS_REGION);
  } catch (err) {
    if (!(err instanceof ExplainInputError)) throw err;
    process.stderr.write(`hollowtrees explain: ${name}: ${err.message}\n`);
    return EXIT_USAGE;
  }
  for (const event of read.events) process.stdout.write(formatExplanation(event, explainEvent(event, loaded.config.flows)));
  // The receiver takes the other alerts of such a batch, but answers it 400: still input to fix.
  if (read.refused === undefined) return 0;
  process.stderr.write(`hollowtrees explain: ${name}: the receiver would refuse ${read.refused}\n`);
  return EXIT_USAGE;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
