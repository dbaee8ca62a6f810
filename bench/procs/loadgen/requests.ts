import { randomBytes } from 'node:crypto';
import type { RequestSpec } from './spec.js';

export interface Call {
  readonly rpc: string;
  readonly request: object;
}

/** Turns a request spec into the n-th call's request. */
export function requestSource(spec: RequestSpec): (n: number) => Call {
  switch (spec.rpc) {
    case 'VerifyToken':
      return (n) => ({ rpc: 'VerifyToken', request: { token: spec.tokens[n % spec.tokens.length] } });
    case 'Authenticate': {
      const { emailPrefix, count, order } = spec.users;
      const user = (n: number) => (order === 'random' ? 1 + Math.floor(Math.random() * count) : 1 + (n % count));
      return (n) => ({ rpc: 'Authenticate', request: { email: `${emailPrefix}${user(n)}@seed.example`, password: spec.password } });
    }
    case 'RegisterUser': {
      // A tag per source: a later run with the same prefix never collides (ALREADY_EXISTS).
      const tag = randomBytes(3).toString('hex');
      let registered = 0;
      return () => {
        registered++;
        return {
          rpc: 'RegisterUser',
          request: { email: `${spec.emailPrefix}${tag}-${registered}@bench.example`, password: spec.password, first_name: 'Bench', last_name: `User ${registered}` },
        };
      };
    }
  }
}
