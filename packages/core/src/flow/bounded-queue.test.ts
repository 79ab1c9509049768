import { describe, expect, it } from 'vitest';
import { BoundedQueue, SharedSlots } from './bounded-queue.js';

describe('BoundedQueue', () => {
  it('runs a long queue in order, each task once, through the compactions of its backlog', async () => {
    const queue = new BoundedQueue(1, 5_000);
    const ran: number[] = [];
    for (let i = 0; i < 3_000; i++) expect(queue.offer(async () => void ran.push(i))).toBe(true);
    expect([queue.active, queue.depth]).toEqual([1, 2_999]);
    await queue.idle();
    expect(ran).toEqual(Array.from({ length: 3_000 }, (_, i) => i));
    expect([queue.active, queue.depth]).toEqual([0, 0]);
  });

  it('refuses past its capacity unless forced, and goes on after a task that fails', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const queue = new BoundedQueue(1, 2);
    const ran: string[] = [];
    expect(queue.offer(async () => {
      await gate;
      throw new Error('a task that fails');
    })).toBe(true);
    expect(queue.offer(async () => void ran.push('b'))).toBe(true);
    expect(queue.offer(async () => void ran.push('c'))).toBe(true);
    expect(queue.offer(async () => void ran.push('refused'))).toBe(false);
    expect(queue.offer(async () => void ran.push('forced'), { force: true })).toBe(true);
    expect(queue.depth).toBe(3);
    let idle = false;
    const done = queue.idle().then(() => (idle = true));
    await Promise.resolve();
    expect(idle).toBe(false);
    release();
    await done;
    expect(ran).toEqual(['b', 'c', 'forced']);
    await expect(queue.idle()).resolves.toBeUndefined();
  });

  it('is idle only once the last of its running tasks has finished', async () => {
    const gates: Array<() => void> = [];
    const queue = new BoundedQueue(2, 10);
    for (let i = 0; i < 2; i++) queue.offer(() => new Promise<void>((resolve) => gates.push(resolve)));
    let idle = false;
    const done = queue.idle().then(() => (idle = true));
    gates[0]!();
    await new Promise((r) => setImmediate(r));
    expect([idle, queue.active]).toEqual([false, 1]);
    gates[1]!();
    await done;
    expect(queue.active).toBe(0);
  });

  it('queues sharing slots run at most the newest one\'s concurrency in all, the older queue\'s backlog first', async () => {
    const slots = new SharedSlots();
    const gates: Array<() => void> = [];
    const ran: string[] = [];
    const task = (name: string) => () => new Promise<void>((resolve) => {
      ran.push(name);
      gates.push(resolve);
    });
    const old = new BoundedQueue(1, 10, slots);
    for (const name of ['old 1', 'old 2', 'old 3']) old.offer(task(name));
    // A reload raised the concurrency to 2: the old backlog takes the new slot at once, ahead of the new queue.
    const fresh = new BoundedQueue(2, 10, slots);
    fresh.offer(task('new 1'));
    expect(ran).toEqual(['old 1', 'old 2']);
    gates.shift()!();
    await new Promise((r) => setImmediate(r));
    expect(ran).toEqual(['old 1', 'old 2', 'old 3']);
    expect([old.active, fresh.active, fresh.depth]).toEqual([2, 0, 1]);
    gates.shift()!();
    await new Promise((r) => setImmediate(r));
    expect(ran).toEqual(['old 1', 'old 2', 'old 3', 'new 1']);
    for (const open of gates.splice(0)) open();
    await Promise.all([old.idle(), fresh.idle()]);
    expect(slots.running).toBe(0);
  });
});
