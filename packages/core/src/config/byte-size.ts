/**
 * Binary units only: `MB` is 10^6 bytes to some tools and 2^20 to others
 * (Prometheus reads it as 2^20), so it is refused rather than guessed. The
 * Kubernetes spellings (`Mi`) are taken too.
 */
const UNITS: Readonly<Record<string, number>> = { B: 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
const SIZE = /^(\d+)\s*(?:([KMGT]i)B?|(B))?$/;

/** Bytes from `64MiB`, `64Mi`, `512KiB`, `1GiB`, `1024B` or `1024`; undefined for anything else. */
export function parseByteSize(text: string): number | undefined {
  const match = SIZE.exec(text.trim());
  if (!match) return undefined;
  const bytes = Number(match[1]) * UNITS[match[2] ?? match[3] ?? 'B']!;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** `64MiB` for 67108864: the largest binary unit that divides `bytes`. */
export function formatByteSize(bytes: number): string {
  for (const unit of ['Ti', 'Gi', 'Mi', 'Ki'] as const) {
    if (bytes >= UNITS[unit]! && bytes % UNITS[unit]! === 0) return `${bytes / UNITS[unit]!}${unit}B`;
  }
  return `${bytes}B`;
}
