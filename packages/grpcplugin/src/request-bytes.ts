import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Code, PluginError } from './errors.js';
import { HandleRequest } from './gen/hollowtrees/plugin/v1/plugin.js';

/**
 * The writer every request is encoded with. An encode runs start to end without yielding, so one
 * writer serves all, and its buffer, grown once, is not grown again from a few bytes for every
 * call (`finish()` returns a copy).
 */
const writer = new BinaryWriter();

/**
 * `request`'s bytes. A PluginError INTERNAL for a value out of its field's range, as grpc-js
 * says of a request it cannot serialise.
 */
export function requestBytes(request: HandleRequest): Uint8Array {
  try {
    return HandleRequest.encode(request, writer).finish();
  } catch (err) {
    writer.finish(); // an encode that threw leaves the shared writer part-written
    throw new PluginError(Code.Internal, `request message serialization failure: ${(err as Error).message}`, { cause: err });
  }
}
