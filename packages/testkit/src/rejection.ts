/**
 * Resolves with the error `promise` rejects with, checked to be a `type`; fails
 * (rejects) when it resolves instead or rejects with something else.
 */
export async function rejectionOf<E extends Error>(promise: Promise<unknown>, type: abstract new (...args: never[]) => E): Promise<E> {
  let value: unknown;
  try {
    value = await promise;
  } catch (err) {
    if (err instanceof type) return err;
    throw new Error(`expected a rejection with ${type.name}, got ${String(err)}`, { cause: err });
  }
  throw new Error(`expected a rejection with ${type.name}, but it resolved with ${JSON.stringify(value)}`);
}
