import { invokeHandler, manualClock, testEvent } from '@hollowtrees/grpcplugin/testing';
import { describe, expect, it } from 'vitest';
import { ExampleHandler } from './example-handler.js';

// How to test a handler without core or gRPC: @hollowtrees/grpcplugin/testing builds the event
// and calls the handler with the context a served call gets.
describe('ExampleHandler', () => {
  it('logs the event with its flow and attempt, and answers with a message and an attribute', async () => {
    const lines: string[] = [];
    const event = testEvent({ labels: { instance_id: 'i-0abc123', node: 'ip-10-0-1-23' } });
    const outcome = await invokeHandler(new ExampleHandler((line) => lines.push(line)), event, { flow: 'spot', attempt: 2 });
    expect(outcome).toEqual({ ok: true, result: { status: 'ok', message: 'saw i-0abc123', attributes: { example_handled_at: expect.any(String) } } });
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      { msg: 'event received', flow: 'spot', attempt: 2, id: event.id, type: event.type, labels: { instance_id: 'i-0abc123', node: 'ip-10-0-1-23' } },
    ]);
  });

  it('answers well within a deadline that has not moved, leaving no timer behind', async () => {
    const clock = manualClock();
    const outcome = await invokeHandler(new ExampleHandler(() => {}), testEvent(), { timeoutMs: 1, clock });
    expect(outcome.ok && outcome.result.message).toMatch(/^saw /);
    expect(clock.sleeping).toBe(0);
  });
});
