import { describe, expect, it } from 'vitest';
import { parseRelayArgs } from '../args.js';
import { DEFAULT_MAILBOX_LIMITS, resolveMailboxOptions } from './options.js';

describe('mailbox options', () => {
  it('a path alone takes the defaults; limits are validated and named', () => {
    expect(resolveMailboxOptions('m.db')).toEqual({ ...DEFAULT_MAILBOX_LIMITS, path: 'm.db' });
    expect(resolveMailboxOptions({ path: 'm.db', maxMailboxBytes: 1000 }).maxEntryBytes).toBe(1000);
    expect(() => resolveMailboxOptions({ path: '' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'mailbox.path' }));
    expect(() => resolveMailboxOptions({ path: 'm.db', maxEntries: 0 })).toThrow(expect.objectContaining({ field: 'mailbox.maxEntries' }));
    expect(() => resolveMailboxOptions({ path: 'm.db', maxMailboxBytes: 10, maxEntryBytes: 11 })).toThrow(expect.objectContaining({ field: 'mailbox.maxEntryBytes' }));
    expect(() => resolveMailboxOptions({ path: 'm.db', bogus: 1 } as never)).toThrow(expect.objectContaining({ field: 'mailbox.bogus' }));
  });

  it('rhizome relay --mailbox FILE and its limit flags', () => {
    expect(parseRelayArgs(['--mailbox', 'box.db', '--mailbox-max-bytes', '1024', '--mailbox-max-mailboxes', '3', '--mailbox-ttl', '60'])).toMatchObject({
      mailbox: { path: 'box.db', maxMailboxBytes: 1024, maxMailboxes: 3, ttlSeconds: 60 },
    });
    expect(parseRelayArgs([])).not.toHaveProperty('mailbox');
    expect(() => parseRelayArgs(['--mailbox-max-bytes', '5'])).toThrow(expect.objectContaining({ field: '--mailbox' }));
    expect(() => parseRelayArgs(['--mailbox', 'x', '--mailbox-ttl', 'soon'])).toThrow(expect.objectContaining({ field: '--mailbox-ttl' }));
  });
});
