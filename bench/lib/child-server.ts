/**
 * The child side of bench/lib/child.ts: answers the parent's commands, one handler each, and
 * exits when the parent disconnects (or dies), so no bench process outlives the run.
 */
export type Handlers = Record<string, (params: never) => Promise<unknown>>;

interface Request {
  readonly id: number;
  readonly command: string;
  readonly params: unknown;
}

export function serveParent(handlers: Handlers): void {
  if (process.send === undefined) throw new Error('this script is started by the bench (bench/run.ts), not directly');
  process.on('disconnect', () => process.exit(0));
  process.on('message', (request: Request) => {
    const handler = handlers[request.command];
    const reply = (message: object) => process.send?.({ id: request.id, ...message });
    if (handler === undefined) return reply({ error: `unknown command ${request.command}` });
    handler(request.params as never).then(
      (result) => reply({ result }),
      (error: unknown) => reply({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
  process.send({ ready: true });
}
