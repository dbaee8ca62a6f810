import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

/** A TCP proxy to PostgreSQL that can be cut (connections reset, new ones refused) and restored. */
export async function tcpProxy(target: URL) {
  const sockets = new Set<Socket>();
  const server = createServer((downstream) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const socket of [downstream, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        downstream.destroy();
        upstream.destroy();
      });
    }
    downstream.pipe(upstream).pipe(downstream);
  });
  const listen = (port: number) => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const cut = async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  return {
    url(databaseUrl: string): string {
      const url = new URL(databaseUrl);
      url.port = String(port);
      return url.toString();
    },
    cut,
    restore: () => listen(port),
    async [Symbol.asyncDispose]() {
      if (server.listening) await cut();
    },
  };
}
