import { afterEach, describe, expect, it } from 'vitest';
import { CoreClient } from './core-client.js';
import { Cleanups, holdOtherGroups, OTHER_FLOW, startCoreWithConfig } from './test-support/watch-harness.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

describe('CoreClient', () => {
  it("groupsOf reads core's groups past the status API's first page, but gives up on more than maxGroupsRead rather than fill the watcher's memory", async () => {
    const core = cleanups.add(await startCoreWithConfig(`flows:\n${OTHER_FLOW}`, 'groups.yaml', {}), (c) => c.close());
    // One more than the status API's first page.
    await holdOtherGroups(core, 1_001);
    const signal = new AbortController().signal;
    const client = (maxGroupsRead: number): CoreClient => cleanups.add(new CoreClient({ coreUrl: core.url, maxGroupsRead }), (c) => c.close());

    expect(await client(1_001).groupsOf('other-1000', signal)).toEqual([expect.objectContaining({ flow: 'other', eventId: 'other-1000' })]);
    expect(await client(1_000).groupsOf('other-1000', signal)).toBeUndefined();
  });
});
