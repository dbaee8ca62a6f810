import type { AddressInfo, Server } from 'node:net';

/** Listens and resolves with the bound address (port 0 picks a free one), or rejects on EADDRINUSE and the like. */
export function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
