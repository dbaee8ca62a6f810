import { createServer } from 'node:net';

/**
 * A port free on 127.0.0.1 right now. The service logs at warn level during the bench (its
 * info lines would cost CPU on every call), so it cannot announce ports picked with PORT=0:
 * the bench picks them. The gap between close and the service's bind is milliseconds.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
