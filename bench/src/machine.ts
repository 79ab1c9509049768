import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { ALERTMANAGER_BIN } from './targets.js';

/** The machine a run was measured on. */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  alertmanager: string;
  os: string;
}

export function describeMachine(): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  let alertmanager = 'not found';
  try {
    const out = execFileSync(ALERTMANAGER_BIN, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    alertmanager = /version (\S+)/.exec(out)?.[1] ?? out.split('\n')[0]!;
  } catch (err) {
    const out = String((err as { stderr?: string }).stderr ?? '');
    alertmanager = /version (\S+)/.exec(out)?.[1] ?? 'not found';
  }
  let os = 'linux';
  try {
    os = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    // keep the default
  }
  return { cpuModel, cores: cpus().length, memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10, node: process.version, alertmanager, os };
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15; ticks of 1/100 s on Linux.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds (user + system) a process and every process it started (those still running) have used. */
export function processTreeCpuSeconds(pid: number): number {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    // gone, or no children file (kernel without it): the process alone
  }
  return children.reduce((sum, child) => sum + processTreeCpuSeconds(child), processCpuSeconds(pid));
}

/** A thread's time on a CPU and time runnable but waiting for one (Linux schedstat), in ms. */
export interface ThreadTimes {
  onCpuMs: number;
  waitingMs: number;
}

/** Each thread of `pid` by thread id (the main thread's id is `pid`), from /proc/<pid>/task/<tid>/schedstat. */
export function threadTimes(pid: number): Map<number, ThreadTimes> {
  const times = new Map<number, ThreadTimes>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [onCpuNs, waitingNs] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      times.set(Number(tid), { onCpuMs: onCpuNs! / 1e6, waitingMs: waitingNs! / 1e6 });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return times;
}

/** A process's main thread and its other threads summed, over one span ({@link threadTimesBetween}). */
export interface ThreadSplit {
  main: ThreadTimes;
  others: ThreadTimes;
}

/**
 * What a process's threads did between two {@link threadTimes} of it: its main thread, and its
 * other threads summed (Node's worker threads, V8's and libuv's). A thread started in between
 * counts from zero.
 */
export function threadTimesBetween(pid: number, before: Map<number, ThreadTimes>, after: Map<number, ThreadTimes>): ThreadSplit {
  const main = { onCpuMs: 0, waitingMs: 0 };
  const others = { onCpuMs: 0, waitingMs: 0 };
  for (const [tid, end] of after) {
    const start = before.get(tid) ?? { onCpuMs: 0, waitingMs: 0 };
    const into = tid === pid ? main : others;
    into.onCpuMs += end.onCpuMs - start.onCpuMs;
    into.waitingMs += end.waitingMs - start.waitingMs;
  }
  return { main, others };
}

/** A {@link ThreadTimes} in words, for the log and the table. */
export function threadTimesText(t: ThreadTimes): string {
  return `ran ${t.onCpuMs.toFixed(0)} ms, waited for a CPU ${t.waitingMs.toFixed(0)} ms`;
}

/** A {@link ThreadSplit} in words, for the log and the table. */
export function threadSplitText(s: ThreadSplit): string {
  return `main thread ${threadTimesText(s.main)}; others ${threadTimesText(s.others)}`;
}
