const MASK = '********';

/** A connection URL fit for logs and `identity config`: its password masked. */
export function maskUrlPassword(value: string): string {
  try {
    const url = new URL(value);
    if (url.password !== '') url.password = MASK;
    return url.toString();
  } catch {
    return MASK; // not a URL we can take apart: show none of it
  }
}

/**
 * NATS_URL may list several servers, and NATS reads a user without a password as a token
 * (`nats://s3cr3t@host`): both the password and such a token are masked.
 */
export function maskNatsUrl(value: string): string {
  return value
    .split(',')
    .map((server) => {
      try {
        const url = new URL(server.trim());
        if (url.password !== '') url.password = MASK;
        else if (url.username !== '') url.username = MASK;
        return url.toString();
      } catch {
        return MASK;
      }
    })
    .join(',');
}
