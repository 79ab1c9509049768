import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { describe, expect, it } from 'vitest';
import { eventToProto } from './event-codec.js';
import { HandleStatus, HandleStreamRequest, HandleStreamResponse } from './gen/hollowtrees/plugin/v1/plugin.js';
import { decodeStreamRequest, encodeStreamResponse } from './served-stream-codec.js';
import { testEvent } from './test-support/plugin-pair.js';

describe("serve()'s HandleStream codec", () => {
  it('reads and writes ids up to 2^53 exactly as the generated code does', () => {
    const request: HandleStreamRequest = {
      calls: [
        { callId: 1, kind: { $case: 'call', value: { request: { event: eventToProto(testEvent), flow: 'f', attempt: 2, config: { k: 'v' } }, timeoutMs: 5_000 } } },
        { callId: Number.MAX_SAFE_INTEGER, kind: { $case: 'cancel', value: {} } },
        { callId: 0, kind: undefined },
      ],
    };
    expect(decodeStreamRequest(HandleStreamRequest.encode(request).finish())).toEqual(request);
    const response: HandleStreamResponse = {
      results: [
        { callId: 7, outcome: { $case: 'response', value: { status: HandleStatus.HANDLE_STATUS_SKIPPED, message: 'm', attributes: { a: 'b' } } } },
        { callId: Number.MAX_SAFE_INTEGER, outcome: { $case: 'status', value: { code: 4, message: 'deadline exceeded', notStarted: false } } },
        { callId: 8, outcome: { $case: 'status', value: { code: 14, message: 'plugin is shutting down', notStarted: true } } },
        { callId: 0, outcome: undefined },
      ],
    };
    expect(encodeStreamResponse(response)).toEqual(Buffer.from(HandleStreamResponse.encode(response).finish()));
  });

  it('keeps an id past 2^53 as a bigint, and writes it back as it came', () => {
    const largest = 2n ** 64n - 1n;
    const cancel = new BinaryWriter().uint32(10).fork().uint32(8).uint64(largest).uint32(26).fork().join().join().finish();
    expect(decodeStreamRequest(cancel).calls).toEqual([{ callId: largest, kind: { $case: 'cancel', value: {} } }]);
    const answer = new BinaryReader(encodeStreamResponse({ results: [{ callId: largest, outcome: { $case: 'status', value: { code: 1, message: 'call cancelled by the client', notStarted: false } } }] }));
    const result = new BinaryReader((answer.tag(), answer.bytes()));
    expect([result.tag()[0], BigInt(result.uint64())]).toEqual([1, largest]);
  });
});
