import { connectClient } from './clients.js';

export interface RegistrationLoad {
  /** Stops after the call in flight; resolves to how many registrations succeeded. */
  stop(): Promise<number>;
  registered(): number;
}

/**
 * Registers users one after another through `url` until stopped: the steady write load the
 * fault tests kill and restart things under. Every call must succeed; a failure rejects `stop`.
 */
export function registerContinuously(url: string, tag: string, password: string): RegistrationLoad {
  const client = connectClient(url);
  let stopped = false;
  let done = 0;
  const running = (async () => {
    while (!stopped) {
      await client.registerUser({ email: `${tag}.${done}.${Date.now()}@example.com`, password, firstName: 'Load', lastName: `N${done}` });
      done++;
    }
  })();
  return {
    registered: () => done,
    stop: async () => {
      stopped = true;
      await running;
      return done;
    },
  };
}
