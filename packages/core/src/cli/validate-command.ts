import { readConfigFiles } from '../config/config-files.js';
import { loadConfigFile } from '../config/load-config.js';

/** `hollowtrees validate --config FILE`: checks the file and every file start-up reads from it. A bad one throws its ConfigError. */
export async function validateCommand(file: string): Promise<number> {
  const loaded = await loadConfigFile(file);
  await readConfigFiles(loaded); // what start-up reads and checks, with the same errors
  for (const warning of loaded.warnings) process.stderr.write(`warning: ${warning}\n`);
  const flows = Object.keys(loaded.config.flows);
  process.stdout.write(`${file}: valid (${flows.length} flow${flows.length === 1 ? '' : 's'}: ${flows.join(', ')})\n`);
  return 0;
}
