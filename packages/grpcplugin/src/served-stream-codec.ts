import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { PluginError } from './errors.js';
import { CallStatus, HandleCall, HandleResponse, PluginServiceService, type StreamCall, type StreamResult } from './gen/hollowtrees/plugin/v1/plugin.js';

/**
 * The id of a call on a served `HandleStream`: a uint64 the client chooses (a client of another
 * language may well draw it at random). The generated decoder throws for one past 2^53, and gRPC
 * then ended the whole stream, every call on it with it; here such an id is a bigint, any smaller
 * one a number, so each id has one form and is answered as it came.
 */
export type CallId = number | bigint;

/** A `StreamCall` as {@link decodeStreamRequest} reads it. */
export interface ServedCall {
  callId: CallId;
  kind: StreamCall['kind'];
}

/** A `StreamResult` as {@link encodeStreamResponse} writes it. */
export interface ServedResult {
  callId: CallId;
  outcome: StreamResult['outcome'];
}

/** The answer of a call that failed with `err` (a {@link PluginError}, or anything it makes one of); `notStarted`: see `CallStatus.not_started`. */
export function failedResult(callId: CallId, err: unknown, notStarted = false): ServedResult {
  const { code, message } = PluginError.from(err);
  return { callId, outcome: { $case: 'status', value: { code, message, notStarted } } };
}

/** A `HandleStreamRequest` as the server reads it. */
export interface ServedStreamRequest {
  calls: ServedCall[];
}

/** A `HandleStreamResponse` as the server writes it. */
export interface ServedStreamResponse {
  results: ServedResult[];
}

const MAX_NUMBER_ID = BigInt(Number.MAX_SAFE_INTEGER);

/** A uint64 as read (a string where BigInt is missing) as its one {@link CallId} form. */
function callIdOf(value: bigint | string): CallId {
  const id = BigInt(value);
  return id <= MAX_NUMBER_ID ? Number(id) : id;
}

function decodeCall(reader: BinaryReader, length: number): ServedCall {
  const end = reader.pos + length;
  const call: ServedCall = { callId: 0, kind: undefined };
  while (reader.pos < end) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.Varint) call.callId = callIdOf(reader.uint64());
    else if (field === 2 && wireType === WireType.LengthDelimited) call.kind = { $case: 'call', value: HandleCall.decode(reader, reader.uint32()) };
    else if (field === 3 && wireType === WireType.LengthDelimited) {
      reader.skip(wireType); // HandleCancel has no fields
      call.kind = { $case: 'cancel', value: {} };
    } else reader.skip(wireType, field);
  }
  return call;
}

/** `HandleStreamRequest`'s bytes as the generated decoder reads them, but for call ids past 2^53 (see {@link CallId}). */
export function decodeStreamRequest(bytes: Uint8Array): ServedStreamRequest {
  const reader = new BinaryReader(bytes);
  const calls: ServedCall[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) calls.push(decodeCall(reader, reader.uint32()));
    else reader.skip(wireType, field);
  }
  return { calls };
}

/** `HandleStreamResponse`'s bytes, each answer under its call's id as it came. */
export function encodeStreamResponse({ results }: ServedStreamResponse): Buffer {
  const writer = new BinaryWriter();
  for (const { callId, outcome } of results) {
    writer.uint32((1 << 3) | WireType.LengthDelimited).fork();
    if (callId !== 0) writer.uint32((1 << 3) | WireType.Varint).uint64(callId);
    if (outcome?.$case === 'response') HandleResponse.encode(outcome.value, writer.uint32((2 << 3) | WireType.LengthDelimited).fork()).join();
    else if (outcome?.$case === 'status') CallStatus.encode(outcome.value, writer.uint32((3 << 3) | WireType.LengthDelimited).fork()).join();
    writer.join();
  }
  return Buffer.from(writer.finish());
}

/** The plugin service as `serve()` registers it: `HandleStream` read and written with the codec above. */
export const servedPluginService = {
  ...PluginServiceService,
  handleStream: { ...PluginServiceService.handleStream, requestDeserialize: decodeStreamRequest, responseSerialize: encodeStreamResponse },
};
