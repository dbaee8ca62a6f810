import { describe, expect, it } from 'vitest';
import { aUser } from '../fakes/user.builder.js';
import { wireFakes } from '../fakes/wiring.js';

const CLIENT = '203.0.113.7';

describe('Logout', () => {
  async function loggedIn() {
    const fakes = wireFakes();
    await fakes.users.save(aUser({ password: 'correct horse battery' }));
    const login = await fakes.useCases.authenticate.execute({ email: 'ann.lee@example.com', password: 'correct horse battery', clientAddress: CLIENT });
    return { ...fakes, login };
  }

  it('revokes the session of the refresh token, with its event, and audits it', async () => {
    const { useCases, sessions, outbox, audit, login } = await loggedIn();
    const events = outbox.events.length;
    await useCases.logout.execute({ refreshToken: login.refreshToken.reveal(), clientAddress: CLIENT });
    expect(sessions.all.map((s) => s.revokedReason)).toEqual(['logout']);
    expect(outbox.events.slice(events).map((e) => e.type)).toEqual(['identity.v1.SessionRevoked']);
    expect(audit.entries.at(-1)).toEqual({ action: 'logout', outcome: 'success', clientAddress: CLIENT, userId: login.user.id.value });
  });

  it('is quiet about a token it does not know or a session already ended: nothing written, nothing audited', async () => {
    const { useCases, outbox, audit, login } = await loggedIn();
    await useCases.logout.execute({ refreshToken: login.refreshToken.reveal(), clientAddress: CLIENT });
    const after = { events: outbox.events.length, entries: audit.entries.length };
    await useCases.logout.execute({ refreshToken: login.refreshToken.reveal(), clientAddress: CLIENT });
    await useCases.logout.execute({ refreshToken: 'x'.repeat(43), clientAddress: CLIENT });
    expect({ events: outbox.events.length, entries: audit.entries.length }).toEqual(after);
  });
});
