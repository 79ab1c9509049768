/**
 * `bytes`, when it can bound a gRPC message: a whole number of at least 1. A RangeError naming
 * `what` otherwise: grpc-js takes 0 as "refuse every message" (a plugin then refuses every call
 * while its health says SERVING) and NaN as no limit at all.
 */
export function checkedMessageBytes(what: string, bytes: number): number {
  if (Number.isSafeInteger(bytes) && bytes >= 1) return bytes;
  throw new RangeError(`${what} must be a whole number of bytes of at least 1, got ${bytes}`);
}
