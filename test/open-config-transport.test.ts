// A refused openDatabase leaves nothing of the transports it made: every option is checked before
// a transport is made, and when a transport list's later configuration is refused by the
// transport itself, the ones made for the earlier entries are disconnected. Observable with the
// memory transport, which takes its peer id in its hub when it is made.
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '@rhizome/sync';

const opened: Database[] = [];
afterEach(async () => {
  for (const db of opened.splice(0)) await db.close();
});

describe('openDatabase refused: the transports it made are released', () => {
  it('an invalid readOnly / exclusive option is refused before the transport takes its peer id', async () => {
    const transport = { mode: 'memory' as const, hub: 'open-config-ro', peerId: 'p-ro' };
    await expect(openDatabase({ id: 'open-config-ro', transport, readOnly: true })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'readOnly' });
    await expect(openDatabase({ id: 'open-config-ro', transport, exclusive: 'yes' as unknown as boolean })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'exclusive' });
    // The same peer id is free for the next, valid open.
    const db = await openDatabase({ id: 'open-config-ro', transport });
    opened.push(db);
    expect(db.id).toBe('open-config-ro');
  });

  it("a transport list whose later entry the transport refuses disconnects the earlier entries' transports", async () => {
    const first = { mode: 'memory' as const, hub: 'open-config-list', peerId: 'p-list' };
    const refused = { mode: 'memory' as const, hub: 'open-config-list-2', maxMessageSize: -1 };
    await expect(openDatabase({ id: 'open-config-list', transport: [first, refused] })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'maxMessageSize' });
    const db = await openDatabase({ id: 'open-config-list', transport: [first] });
    opened.push(db);
    expect(db.id).toBe('open-config-list');
  });
});
