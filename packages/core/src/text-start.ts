/**
 * The first `max` UTF-16 code units of `text`, one fewer when the cut would split a surrogate pair (an emoji): a lone
 * half is no character, and a JSON reader in another language may refuse it.
 */
export function textStart(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}
