/**
 * Reads an answer's body up to `maxBytes`. One that declares more (`Content-Length`) or sends
 * more throws `tooLarge()` and is read no further (leaving the loop ends the stream), so a broken
 * or hostile peer that answers without end cannot fill the watcher's memory.
 */
export async function readBounded(body: AsyncIterable<Uint8Array>, declaredLength: string | null | undefined, maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
  if (Number(declaredLength) > maxBytes) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
