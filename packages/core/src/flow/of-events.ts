/** The items (groups, runs) of the events in `events`, all of them when undefined, in their order: what a status read of some events (`?eventId=`) lists. */
export function ofEvents<T extends { readonly eventId: string }>(items: readonly T[], events: ReadonlySet<string> | undefined): readonly T[] {
  return events ? items.filter((item) => events.has(item.eventId)) : items;
}
