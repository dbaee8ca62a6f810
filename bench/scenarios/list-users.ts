import { performance } from 'node:perf_hooks';
import { createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import getPort from 'get-port';
import { pageToken } from '../../src/application/list-users-page.js';
import { UserManagementService, type ListUsersRequest } from '../../src/gen/identity/v1/user_management_pb.js';
import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase } from '../lib/database.js';
import type { ResultRow } from '../lib/report.js';
import { seedDatabase } from '../lib/seed.js';
import { startScenarioService } from '../lib/service.js';
import { summarize } from '../lib/stats.js';

const SETTINGS = {
  full: { small: 10_000, large: 1_000_000, rounds: 400 },
  quick: { small: 10_000, large: 100_000, rounds: 50 },
};
const MAX_GROWTH = 1.2;
const WARMUP_ROUNDS = 20;

type Request = Partial<Omit<ListUsersRequest, '$typeName'>>;

interface Side {
  readonly label: string;
  readonly client: Client<typeof UserManagementService>;
  /** The three requests measured: first page, a page from the middle of the ids, an email prefix. */
  readonly requests: Readonly<Record<'first page' | 'deep page' | 'email prefix', Request>>;
}

/**
 * ListUsers (issue 14) on the management port with 10,000 and 1,000,000 users: the first page,
 * a page starting at the middle id (keyset: no offset to walk), and an email prefix matching
 * about a ninth of the users. Calls alternate between the two sizes one at a time, from this
 * process over one HTTP/2 connection each, so that whatever else the machine does hits both alike.
 */
export async function listUsers(ctx: BenchContext): Promise<ResultRow[]> {
  const settings = pick(ctx, SETTINGS);
  const sides: Side[] = [];
  for (const count of [settings.small, settings.large]) {
    const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
    const started = Date.now();
    const users = await seedDatabase(db, count, ctx.bcryptCost);
    ctx.log(`seeded ${count.toLocaleString('en-US')} users in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const port = await getPort({ host: '127.0.0.1' });
    await startScenarioService(ctx, db, { MANAGEMENT_PORT: String(port), MANAGEMENT_INSECURE: 'true', OUTBOX_RELAY: 'off' });
    const middle = ((await db.knex('users').select('id').orderBy('id').offset(Math.floor(count / 2)).first()) as { id: string }).id;
    sides.push({
      label: `${count.toLocaleString('en-US')} users`,
      client: createClient(UserManagementService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` })),
      requests: {
        'first page': { pageSize: 50 },
        'deep page': { pageSize: 50, pageToken: pageToken.encode({ afterId: middle, status: undefined, emailKeyPrefix: '' }) },
        // Seeded emails are <prefix><n>@seed.example: `<prefix>1` matches n = 1, 10-19, 100-199, ...
        'email prefix': { pageSize: 50, emailPrefix: `${users.emailPrefix}1` },
      },
    });
  }
  const [small, large] = sides as [Side, Side];
  const rows: ResultRow[] = [];
  for (const name of ['first page', 'deep page', 'email prefix'] as const) {
    ctx.log(`ListUsers ${name}: ${settings.rounds} rounds alternating between ${small.label} and ${large.label}`);
    const samples: [number[], number[]] = [[], []];
    let errors = 0;
    for (let round = 0; round < settings.rounds + WARMUP_ROUNDS; round++) {
      // Alternate which size goes first, so neither always follows the other.
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const index of order) {
        const side = sides[index]!;
        const started = performance.now();
        const page = await side.client.listUsers(side.requests[name]).catch(() => undefined);
        const ms = performance.now() - started;
        if (page === undefined || page.users.length !== 50) errors++;
        else if (round >= WARMUP_ROUNDS) samples[index]!.push(ms);
      }
    }
    const [atSmall, atLarge] = samples.map(summarize) as [ReturnType<typeof summarize>, ReturnType<typeof summarize>];
    const growth = atLarge.p99 / atSmall.p99;
    rows.push({
      scenario: 'list-users',
      measure: `ListUsers ${name} p99, ${large.label} vs ${small.label}`,
      service: { value: atLarge.p99, unit: 'ms', label: large.label },
      baseline: { value: atSmall.p99, unit: 'ms', label: small.label },
      ratio: growth,
      target: `grows < ${Math.round((MAX_GROWTH - 1) * 100)} %`,
      pass: growth < MAX_GROWTH && errors === 0,
      notes: `p50 ${atLarge.p50.toFixed(2)} vs ${atSmall.p50.toFixed(2)} ms; ${atLarge.count}+${atSmall.count} calls; ${errors} errors or short pages`,
    });
  }
  return rows;
}
