import { readFileSync } from 'node:fs';

/** Where Linux keeps the running kernel's boot id: new at every boot of the VM, the same in every container on it. */
export const BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id';

/** What a boot id is: the UUID the kernel draws at boot. */
const BOOT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The running kernel's boot id read from `path`, or undefined where there is none (not Linux) or it is no UUID. */
export function readBootId(path: string = BOOT_ID_PATH): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
  return BOOT_ID.test(text) ? text : undefined;
}
