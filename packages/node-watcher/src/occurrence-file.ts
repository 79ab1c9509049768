import { readFileSync, renameSync, writeFileSync } from 'node:fs';

/** What a watcher knows of one watched value's occurrences: whether the last read showed it, how many it saw, when the latest came back. */
export interface OccurrenceState {
  present: boolean;
  seen: number;
  /** When the latest occurrence came back (RFC 3339); absent for the first. */
  returnedAt?: string;
}

/** A state file that could not be read or written: which, and Node's error as its `cause`. */
export class StateFileError extends Error {
  override readonly name = 'StateFileError';
  constructor(
    readonly operation: 'read' | 'write',
    readonly path: string,
    cause: Error,
  ) {
    super(`cannot ${operation} ${path}: ${cause.message}`, { cause });
  }
}

/** What the file holds: whose states they are (instance and boot), and each watched value's. */
interface Contents {
  owner: string;
  values: Record<string, OccurrenceState>;
}

const isState = (s: unknown): s is OccurrenceState => {
  const o = s as Partial<OccurrenceState> | null;
  return typeof o === 'object' && o !== null && typeof o.present === 'boolean' && Number.isInteger(o.seen) && (o.returnedAt === undefined || typeof o.returnedAt === 'string');
};

/**
 * The occurrence states of one instance's boot, kept in a file across the watcher's restarts, so
 * that a watcher restarted during a maintenance that came back in the same boot still sends the id
 * of that occurrence, not the first one's. States of another instance or boot are not taken.
 */
export class OccurrenceFile {
  private values: Record<string, OccurrenceState>;

  /**
   * @param path the file (written whole, through a temporary file beside it)
   * @param owner the instance and boot the states belong to
   * @param failed told of a file that cannot be read or written: the watcher goes on with what it holds in memory
   */
  constructor(
    private readonly path: string,
    private readonly owner: string,
    private readonly failed: (err: StateFileError) => void,
  ) {
    this.values = OccurrenceFile.load(path, owner, failed);
    // Written now: a path it cannot write (no such directory, a read-only filesystem) is told at start,
    // not first at the maintenance the file was set for; a file of another boot or instance goes with it.
    this.write();
  }

  /** The states `path` holds for `owner`: none when it is missing, unreadable, garbled, or another's. */
  private static load(path: string, owner: string, failed: (err: StateFileError) => void): Record<string, OccurrenceState> {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') failed(new StateFileError('read', path, err as Error));
      return {};
    }
    try {
      const contents = JSON.parse(text) as Partial<Contents> | null;
      if (contents?.owner !== owner || typeof contents.values !== 'object' || contents.values === null) return {};
      return Object.fromEntries(Object.entries(contents.values).filter((e): e is [string, OccurrenceState] => isState(e[1])));
    } catch (err) {
      failed(new StateFileError('read', path, err as Error));
      return {};
    }
  }

  /** The state of `key` as last saved for this instance and boot, if any. */
  state(key: string): OccurrenceState | undefined {
    return this.values[key];
  }

  /** Saves the state of `key`. */
  save(key: string, state: OccurrenceState): void {
    this.values = { ...this.values, [key]: state };
    this.write();
  }

  private write(): void {
    const temporary = `${this.path}.tmp`;
    try {
      writeFileSync(temporary, JSON.stringify({ owner: this.owner, values: this.values } satisfies Contents));
      renameSync(temporary, this.path);
    } catch (err) {
      this.failed(new StateFileError('write', this.path, err as Error));
    }
  }
}
