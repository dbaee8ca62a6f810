/**
 * NATS_URL lists the servers of a cluster separated by commas, each as the client accepts it:
 * `nats://host:port`, `host:port` or `host`. nats.js wants them as a list: handed the whole
 * string it takes it for one server.
 */
export function natsServers(value: string): string[] {
  return value.split(',').map((server) => server.trim());
}

export function isNatsServer(server: string): boolean {
  return server !== '' && URL.canParse(server.includes('://') ? server : `nats://${server}`);
}
