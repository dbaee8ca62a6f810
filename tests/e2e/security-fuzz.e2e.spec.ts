import { ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { dictionary } from '@zxcvbn-ts/language-common';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadRequestSchema } from '../../src/gen/google/rpc/error_details_pb.js';
import { IdentityService } from '../../src/gen/identity/v1/identity_pb.js';
import { connectClient, grpc, GrpcIdentityClient, type Protocol } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';

/**
 * Property-based fuzzing of every field of every RPC through the real server and real
 * clients (grpc-js, and Connect-ES over the Connect JSON, gRPC and gRPC-Web protocols).
 *
 * The oracle is a small model of the contract's input rules, written from CONTRACT.md
 * independently of the service: each response must be exactly what the model predicts
 * (INVALID_ARGUMENT naming exactly the bad fields, ALREADY_EXISTS, UNAUTHENTICATED or OK),
 * which rules out INTERNAL and UNKNOWN; and no refused request leaves a row behind.
 */

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 200);
const PROPERTY_TIMEOUT_MS = 240_000;

let db: TestDatabase;
let service: TestService;
let grpcJs: GrpcIdentityClient;
const connect = new Map<Exclude<Via, 'grpc-js'>, Client<typeof IdentityService>>();

beforeAll(async () => {
  db = await createTestDatabase();
  // Throttling off: the fuzzer fails logins by the hundred, and throttling has its own file.
  service = await startTestService(testEnv(db, { LOGIN_THROTTLE: 'off' }));
  grpcJs = new GrpcIdentityClient(service.url);
  for (const protocol of ['connect', 'grpc', 'grpc-web'] as const) connect.set(protocol, connectClient(service.url, protocol));
  // The helper's Connect client sends protobuf; the Connect JSON codec is a path of its own.
  connect.set('connect-json', createClient(IdentityService, createConnectTransport({ baseUrl: service.url, httpVersion: '2', useBinaryFormat: false })));
});

afterAll(async () => {
  grpcJs?.close();
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

// ---- the client side ------------------------------------------------------------------

type Via = 'grpc-js' | 'connect-json' | Protocol;
const VIAS: readonly Via[] = ['grpc-js', 'connect', 'connect-json', 'grpc', 'grpc-web'];

/** Status codes by their gRPC numbers (Connect uses the same numbers). */
const S: Readonly<Record<keyof typeof grpc.status, number>> = grpc.status;

interface Answer {
  readonly code: number;
  readonly message: string;
  /** Field names of google.rpc.BadRequest (Connect-ES decodes details; for grpc-js, read from the message). */
  readonly badFields: string[];
  readonly response?: Record<string, unknown>;
}

type Method = 'registerUser' | 'authenticate' | 'verifyToken';

const SNAKE: Record<string, string> = { firstName: 'first_name', lastName: 'last_name' };

async function call(via: Via, method: Method, request: Record<string, string>): Promise<Answer> {
  if (via === 'grpc-js') {
    const snake = Object.fromEntries(Object.entries(request).map(([k, v]) => [SNAKE[k] ?? k, v]));
    try {
      const response = await grpcJs[method](snake);
      return { code: S.OK, message: '', badFields: [], response };
    } catch (e) {
      const error = e as grpc.ServiceError;
      if (typeof error.code !== 'number') throw e;
      const message = error.details;
      const badFields = error.code === grpc.status.INVALID_ARGUMENT ? message.split('; ').map((part) => part.slice(0, part.indexOf(':'))) : [];
      return { code: error.code, message, badFields: badFields.sort() };
    }
  }
  try {
    const client = connect.get(via)!;
    const response = (await (client[method] as (req: Record<string, string>) => Promise<unknown>)(request)) as Record<string, unknown>;
    return { code: S.OK, message: '', badFields: [], response };
  } catch (e) {
    const error = ConnectError.from(e);
    const badFields = error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
    return { code: error.code, message: error.rawMessage, badFields: badFields.sort() };
  }
}

/**
 * The string the server receives. grpc-js writes a lone surrogate as CESU-8 bytes (invalid
 * UTF-8) and the Connect JSON codec as a \uD800 escape, so both arrive as not well-formed;
 * Connect-ES's binary codecs (Connect, gRPC, gRPC-Web) replace it with U+FFFD before sending.
 */
/**
 * What the server receives. Connect-ES encodes with TextEncoder (lone surrogates become
 * U+FFFD). grpc-js's protobufjs writes strings under 40 UTF-16 units with its own encoder,
 * which keeps a lone surrogate as invalid UTF-8 bytes, and longer ones with Buffer#utf8Write,
 * which replaces it like TextEncoder (protobufjs src/writer_buffer.js, writeStringBuffer).
 */
const arriving = (via: Via, text: string) =>
  via === 'connect-json' || (via === 'grpc-js' && text.length < 40) ? text : text.toWellFormed();

// ---- the contract model ---------------------------------------------------------------

const CONTROL = /\p{Cc}/u;
const bytes = (text: string) => Buffer.byteLength(text, 'utf8');
const codePoints = (text: string) => [...text].length;
const COMMON = new Set((dictionary['passwords-common'] ?? []).map((word) => word.toLowerCase()));

/** Contract: trimmed, NFC, no Cc, one @, local 1–64 bytes, labels 1–63 bytes, whole ≤ 254; domain lower-cased. */
function modelEmail(raw: string): string | undefined {
  if (!raw.isWellFormed()) return undefined;
  const text = raw.trim().normalize('NFC');
  if (text.length === 0 || CONTROL.test(text)) return undefined;
  const parts = text.split('@');
  if (parts.length !== 2) return undefined;
  const [local = '', typedDomain = ''] = parts;
  const domain = typedDomain.toLowerCase();
  const address = `${local}@${domain}`;
  if (bytes(local) < 1 || bytes(local) > 64 || bytes(address) > 254) return undefined;
  if (!domain.split('.').every((label) => bytes(label) >= 1 && bytes(label) <= 63)) return undefined;
  return address;
}

/** Contract: trimmed, NFC, 1–50 code points, no Cc. */
function modelName(raw: string): string | undefined {
  if (!raw.isWellFormed()) return undefined;
  const text = raw.trim().normalize('NFC');
  return text.length > 0 && codePoints(text) <= 50 && !CONTROL.test(text) ? text : undefined;
}

/** Contract: NFKC, ≥ 8 characters, ≤ 72 bytes, not common, not the email; NUL refused (bcrypt would stop there). */
function modelNewPassword(raw: string, email: string | undefined): string | undefined {
  if (!raw.isWellFormed()) return undefined;
  const text = raw.normalize('NFKC');
  if (codePoints(text) < 8 || bytes(text) > 72 || text.includes('\0')) return undefined;
  const lower = text.toLowerCase();
  // Both sides under NFKC, so that an address typed with compatibility characters still counts as equal.
  if (COMMON.has(lower) || (email !== undefined && lower === email.normalize('NFKC').toLowerCase())) return undefined;
  return text;
}

/** Users the model knows: email key -> NFKC password. */
const users = new Map<string, string>();
/** Tokens issued by successful Authenticate calls. */
const issuedTokens: string[] = [];
/** User ids of successful registrations. */
const registeredIds = new Set<string>();

interface Expected {
  readonly code: number;
  readonly badFields: string[];
  /** Connect JSON only: the fields one of which the codec's message names. */
  readonly jsonFields?: string[];
}

/** Compares an answer with the model's expectation. */
function expectAnswer(answer: Answer, expected: Expected, context: string): void {
  expect({ code: answer.code, badFields: answer.badFields }, context).toEqual({ code: expected.code, badFields: expected.badFields });
  if (expected.jsonFields !== undefined) {
    const named = /^cannot decode field identity\.v1\.\w+\.(\w+) from JSON/.exec(answer.message)?.[1];
    expect(expected.jsonFields, context).toContain(named);
  }
}

/**
 * The Connect JSON codec parses a \uD800 escape itself and refuses it before any handler:
 * INVALID_ARGUMENT whose message names the first such field, with no google.rpc.BadRequest.
 */
function jsonEscapeRefusal(via: Via, fields: Record<string, string>): Expected | undefined {
  if (via !== 'connect-json') return undefined;
  const illFormed = Object.entries(fields).filter(([, value]) => !value.isWellFormed());
  return illFormed.length === 0 ? undefined : { code: S.INVALID_ARGUMENT, badFields: [], jsonFields: illFormed.map(([field]) => field) };
}

function expectRegister(via: Via, request: RegisterInput): Expected & { email?: string; firstName?: string; lastName?: string } {
  const refused = jsonEscapeRefusal(via, { email: request.email, password: request.password, first_name: request.firstName, last_name: request.lastName });
  if (refused !== undefined) return refused;
  const email = modelEmail(arriving(via, request.email));
  const firstName = modelName(arriving(via, request.firstName));
  const lastName = modelName(arriving(via, request.lastName));
  const password = modelNewPassword(arriving(via, request.password), email);
  const bad = Object.entries({ email, password, first_name: firstName, last_name: lastName })
    .filter(([, value]) => value === undefined)
    .map(([field]) => field)
    .sort();
  if (bad.length > 0) return { code: S.INVALID_ARGUMENT, badFields: bad };
  if (users.has(email!.toLowerCase())) return { code: S.ALREADY_EXISTS, badFields: [] };
  return { code: S.OK, badFields: [], email, firstName, lastName };
}

/** Contract: Authenticate only checks presence and byte limits; anything else that matches no user is UNAUTHENTICATED. */
function expectAuthenticate(via: Via, request: LoginInput): Expected {
  const refused = jsonEscapeRefusal(via, { email: request.email, password: request.password });
  if (refused !== undefined) return refused;
  const rawEmail = arriving(via, request.email);
  const rawPassword = arriving(via, request.password);
  const key = rawEmail.isWellFormed() ? rawEmail.trim().normalize('NFC').toLowerCase() : undefined;
  const password = rawPassword.isWellFormed() ? rawPassword.normalize('NFKC') : undefined;
  const bad: string[] = [];
  if (key === undefined || key.length === 0 || bytes(key) > 254) bad.push('email');
  if (password === undefined || password.length === 0 || bytes(password) > 72) bad.push('password');
  if (bad.length > 0) return { code: S.INVALID_ARGUMENT, badFields: bad };
  const matches = users.get(key!) === password && !password!.includes('\0');
  return { code: matches ? S.OK : S.UNAUTHENTICATED, badFields: [] };
}

function expectVerify(via: Via, token: string): Expected {
  const refused = jsonEscapeRefusal(via, { token });
  if (refused !== undefined) return refused;
  const arrived = arriving(via, token);
  if (!arrived.isWellFormed()) return { code: S.INVALID_ARGUMENT, badFields: ['token'] };
  return { code: issuedTokens.includes(arrived) ? S.OK : S.UNAUTHENTICATED, badFields: [] };
}

// ---- generators -------------------------------------------------------------------------

/** Unicode that breaks naive code: NUL and other controls, lone surrogates, bidi marks, combining marks, 4-byte emoji, ZWJ sequences, BOM, odd spaces, NFC/NFKC-changing characters, case mappings that change length. */
const EDGE_PIECES = [
  '\u0000', '\u0007', '\u001B', '\u007F', '\u0085', '\u009F',
  '\uD800', '\uDBFF', '\uDC00', '\uDFFF',
  '\u200E', '\u200F', '\u202A', '\u202E', '\u2066', '\u2069',
  '\u0301', '\u0308', '\u20DD', 'e\u0301', 'A\u030A', '\u1100\u1161',
  '😀', '👩‍👩‍👧‍👦', '🏳️‍🌈', '\u{1F1FA}\u{1F1F8}', '\u{10FFFF}', '\u{E0001}', '\u{1D400}',
  '\uFEFF', '\u200B', '\u200D', '\u2060', '\uFFFD', '\uFFFE', '\uFFFF',
  ' ', '\t', '\n', '\r', '\u000B', '\u00A0', '\u1680', '\u2028', '\u2029', '\u3000',
  '\uFB01', '\uFDFA', '\u2126', '\u212B', '\u00B2', '\uFF21', '\u1E9E', 'ß', '\u0130', '\u0131', '\u023A', 'ﬀ',
  '@', '.', '..', '@@', '"', "'", '\\', '%00', '%', '<script>', "' OR 1=1 --", '${x}', '{{x}}', '\u0000@',
  'a', 'Z', '9', 'é', '李', 'Ω',
];
const edgePiece = fc.constantFrom(...EDGE_PIECES);
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit));

/** Short strings mixing edge pieces with random code points and graphemes. */
const edgeString = (maxParts = 16) =>
  fc
    .array(fc.oneof({ weight: 4, arbitrary: edgePiece }, { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 3 }) }, { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 3 }) }, { weight: 1, arbitrary: loneSurrogate }), {
      maxLength: maxParts,
    })
    .map((parts) => parts.join(''));

const whitespaceOnly = fc.array(fc.constantFrom(' ', '\t', '\n', '\r', '\u00A0', '\u2028', '\u3000', '\uFEFF', '\u1680'), { minLength: 1, maxLength: 12 }).map((parts) => parts.join(''));

/**
 * Up to ~100 KB (80,000 UTF-16 units of a 1–4 byte piece; cut at an odd length the emoji
 * leaves a lone surrogate). Four such fields stay under the 1 MiB message limit in every protocol.
 */
const huge = fc.tuple(fc.constantFrom('a', 'é', '李', '😀', 'e\u0301', ' ', 'x@y.'), fc.integer({ min: 300, max: 80_000 })).map(([piece, length]) => piece.repeat(Math.ceil(length / piece.length)).slice(0, length));

const anyString = fc.oneof(
  { weight: 5, arbitrary: edgeString() },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 1, arbitrary: whitespaceOnly },
  { weight: 1, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: huge },
);

/** Mostly plausible addresses, with edge pieces in the local part and domain. */
const emailLike = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom('ann', 'Bob.Lee', 'x', 'o\'neil', 'zoë', '用户'), edgeString(4), fc.nat(1_000_000), fc.constantFrom('example.com', 'EXAMPLE.org', 'mail.例え.jp', 'xn--bcher-kva.de', 'ȺȺȺ.io')).map(([name, noise, n, domain]) => `${name}${noise}.${n}@${domain}`) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('', ' ', '\t', '\u00A0'), fc.constantFrom('Case', 'case'), fc.nat(1_000_000), fc.constantFrom('', ' ', '\n')).map(([before, name, n, after]) => `${before}${name}.${n}@Example.COM${after}`) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 60, max: 70 }), fc.integer({ min: 180, max: 200 })).map(([local, domain]) => `${'l'.repeat(local)}@${'d'.repeat(domain - 4).replace(/(.{60})/g, '$1.')}.com`) },
  { weight: 2, arbitrary: anyString },
);

const nameLike = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('Ann', 'Zoë', 'Ångström', "O'Brien", '李', 'José', ' Padded ', 'Ａｎｎ', 'Anne-Marie', 'x'.repeat(50), 'x'.repeat(51), '😀'.repeat(50), '😀'.repeat(51), 'e\u0301'.repeat(30)) },
  { weight: 3, arbitrary: anyString },
);

const passwordLike = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 8, maxLength: 30 }) },
  { weight: 2, arbitrary: fc.tuple(edgeString(8), fc.constantFrom('Horse-battery-9', 'correct horse', 'ﬁnal ﬁsh ﬂies', 'ｐａｓｓｗｏｒｄ１２３')).map(([noise, base]) => `${base}${noise}`) },
  { weight: 1, arbitrary: fc.constantFrom('password1', 'PASSWORD1', 'qwertyuiop', 'iloveyou', 'sunshine1', 'Trustno1', '12345678') },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('a', 'é', '€', '😀', '\uFDFA', '\uFB01'), fc.integer({ min: 66, max: 74 })).map(([last, ascii]) => `${'p'.repeat(ascii - bytes(last))}${last}`) },
  { weight: 2, arbitrary: anyString },
);

interface RegisterInput {
  email: string;
  password: string;
  firstName: string;
  lastName: string;
}
interface LoginInput {
  email: string;
  password: string;
}

/** Values that are valid yet unusual, so that requests with one hostile field otherwise pass. */
const validEmail = fc
  .tuple(fc.constantFrom('', ' ', '\u00A0'), fc.constantFrom('ann', 'Zoë', "o'neil", '用户', 'ÅSA', 'e\u0301va', 'x+tag'), fc.nat(10_000_000), fc.constantFrom('example.com', 'Example.ORG', 'mail.例え.jp', 'ȺȺ.io'))
  .map(([pad, name, n, domain]) => `${pad}${name}.${n}@${domain}${pad}`);
const validName = fc.oneof(fc.constantFrom('Ann', 'Zoë', 'Ångström', "O'Brien", '李', 'José', ' Padded ', 'Ａｎｎ', '😀'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }));
const validPassword = fc.oneof(fc.string({ unit: 'grapheme', minLength: 8, maxLength: 14 }), fc.constantFrom('Horse-battery-9', 'ﬁnal ﬁsh ﬂies', 'ｐａｓｓ ｗｏｒｄ ９', 'naïve café 12'));

const randomRegistration = fc.record({ email: emailLike, password: passwordLike, firstName: nameLike, lastName: nameLike });
/** A valid request with at most one field replaced by a hostile value. */
const oneFieldFuzzed = fc
  .tuple(fc.record({ email: validEmail, password: validPassword, firstName: validName, lastName: validName }), fc.constantFrom('email', 'password', 'firstName', 'lastName', 'none', 'none'), anyString)
  .map(([valid, field, hostile]) => (field === 'none' ? valid : { ...valid, [field]: hostile }));

const registerInput = fc
  .record({ input: fc.oneof({ weight: 2, arbitrary: randomRegistration }, { weight: 3, arbitrary: oneFieldFuzzed }), passwordIsEmail: fc.integer({ min: 0, max: 9 }).map((n) => n === 0), reuse: fc.tuple(fc.integer({ min: 0, max: 5 }), fc.nat()).map(([die, n]) => (die === 0 ? n : null)) })
  .map(({ input, passwordIsEmail, reuse }): RegisterInput => {
    const known = [...users.keys()];
    // One time in six an address already registered, in another case or with spaces around it.
    const email = reuse !== null && known.length > 0 ? ` ${known[reuse % known.length]!.toUpperCase()}` : input.email;
    return { ...input, email, password: passwordIsEmail ? email.trim().toUpperCase() : input.password };
  });

/** A password variant: the same (or an NFKC equivalent), or off by one character or one byte. */
function varyPassword(password: string, how: number): string {
  switch (how % 8) {
    case 0:
      return password;
    case 1:
      return password.normalize('NFKD');
    case 2:
      return `${password}x`;
    case 3:
      return password.slice(0, -1);
    case 4:
      return `${password.slice(0, -1)}${password.at(-1) === 'q' ? 'r' : 'q'}`;
    case 5:
      return `${password}\u0000`;
    case 6:
      return password.toUpperCase();
    default:
      return ` ${password}`;
  }
}

function varyEmail(key: string, how: number): string {
  switch (how % 4) {
    case 0:
      return key;
    case 1:
      return key.toUpperCase();
    case 2:
      return `\t${key} `;
    default:
      return key.normalize('NFD');
  }
}

const loginInput = fc.oneof(
  { weight: 3, arbitrary: fc.record({ email: emailLike, password: passwordLike }) },
  {
    weight: 4,
    arbitrary: fc.tuple(fc.nat(), fc.nat(), fc.nat()).map(([pick, emailHow, passwordHow]): LoginInput => {
      const known = [...users.entries()];
      if (known.length === 0) return { email: 'nobody@example.com', password: 'no users yet' };
      const [key, password] = known[pick % known.length]!;
      return { email: varyEmail(key, emailHow), password: varyPassword(password, passwordHow) };
    }),
  },
);

/** Tokens: random text, real ones, and real ones bent (payload altered, padded, cut, re-signed with alg none). */
const tokenInput = fc.oneof(
  { weight: 3, arbitrary: anyString },
  { weight: 1, arbitrary: fc.tuple(edgeString(4), edgeString(4), edgeString(4)).map((parts) => parts.join('.')) },
  {
    weight: 4,
    arbitrary: fc.tuple(fc.nat(), fc.nat(), fc.nat()).map(([pick, how, at]) => {
      if (issuedTokens.length === 0) return 'eyJhbGciOiJub25lIn0.e30.';
      const token = issuedTokens[pick % issuedTokens.length]!;
      const [header = '', payload = '', signature = ''] = token.split('.');
      switch (how % 7) {
        case 0:
          return token;
        case 1: {
          // A character in the middle of the payload: every bit of it is significant.
          const i = 1 + (at % (payload.length - 2));
          return `${header}.${payload.slice(0, i)}${payload[i] === 'A' ? 'B' : 'A'}${payload.slice(i + 1)}.${signature}`;
        }
        case 2:
          return ` ${token}`;
        case 3:
          return `${header}.${payload}`;
        case 4:
          return `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`;
        case 5:
          return `${token}\u0000`;
        default:
          return `${header}.${payload}.${signature}.${signature}`;
      }
    }),
  },
);

// ---- the database side --------------------------------------------------------------------

async function rowCounts(): Promise<{ users: number; outbox: number; attempts: number }> {
  const result = await db.knex.raw<{ rows: { users: string; outbox: string; attempts: string }[] }>(
    'select (select count(*) from users) as users, (select count(*) from outbox) as outbox, (select count(*) from login_attempts) as attempts',
  );
  const row = result.rows[0]!;
  return { users: Number(row.users), outbox: Number(row.outbox), attempts: Number(row.attempts) };
}

const describeInput = (value: unknown) => JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' && v.length > 120 ? `${v.slice(0, 60)}…(${v.length} units)` : v));

// ---- the properties -------------------------------------------------------------------------

/**
 * fc.assert, except that a failure reports the assertion (whose context truncates huge
 * strings) rather than fast-check's full print of a counterexample of up to 100 KB.
 */
async function checkProperty<T>(property: fc.IAsyncProperty<T>, parameters: fc.Parameters<T>): Promise<void> {
  const details = await fc.check(property, parameters);
  if (!details.failed) return;
  const error = details.errorInstance instanceof Error ? details.errorInstance : new Error(String(details.errorInstance));
  error.message = `property failed after ${details.numRuns} runs (seed ${details.seed}, path ${details.counterexamplePath}): ${error.message}`;
  throw error;
}

describe('fuzzing every RPC field through the real server', () => {
  it(
    'RegisterUser answers as the contract model says, and only OK answers write (one users row and one outbox row)',
    async () => {
      await checkProperty(
        fc.asyncProperty(fc.constantFrom(...VIAS), registerInput, async (via, input) => {
          const expected = expectRegister(via, input);
          const before = await rowCounts();
          const answer = await call(via, 'registerUser', { ...input });
          const after = await rowCounts();
          const context = `${via} ${describeInput(input)} -> ${answer.code} ${answer.message}`;
          expectAnswer(answer, expected, context);
          if (answer.code !== S.OK) {
            expect(after, context).toEqual(before);
            return;
          }
          expect(after, context).toEqual({ ...before, users: before.users + 1, outbox: before.outbox + 1 });
          const user = answer.response!['user'] as Record<string, unknown>;
          expect({ email: user['email'], first: user['first_name'] ?? user['firstName'], last: user['last_name'] ?? user['lastName'] }, context).toEqual({
            email: expected.email,
            first: expected.firstName,
            last: expected.lastName,
          });
          const id = user['id'] as string;
          registeredIds.add(id);
          users.set(expected.email!.toLowerCase(), input.password.toWellFormed().normalize('NFKC'));
          const row = (await db.knex('users').where({ id }).first()) as { email: string; email_key: string; password_hash: string };
          expect({ email: row.email, key: row.email_key }, context).toEqual({ email: expected.email, key: expected.email!.toLowerCase() });
          expect(row.password_hash).toMatch(/^\$2[ab]\$10\$/);
        }),
        // Stateful (the server and the model remember users): report the first failure, unshrunk.
        { numRuns: RUNS, endOnFailure: true },
      );
      // Every stored row belongs to an OK answer, with its one event.
      const ids = (await db.knex('users').pluck('id')) as string[];
      expect(new Set(ids)).toEqual(registeredIds);
      const events = (await db.knex('outbox').pluck('aggregate_id')) as string[];
      expect(events.sort()).toEqual([...registeredIds].sort());
      expect(registeredIds.size).toBeGreaterThanOrEqual(RUNS / 20); // the generators do reach the happy path
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'Authenticate answers as the contract model says and never writes a user, an event or (throttle off) a counter',
    async () => {
      const codes = new Map<number, number>();
      await checkProperty(
        fc.asyncProperty(fc.constantFrom(...VIAS), loginInput, async (via, input) => {
          const expected = expectAuthenticate(via, input);
          const before = await rowCounts();
          const answer = await call(via, 'authenticate', { ...input });
          const context = `${via} ${describeInput(input)} -> ${answer.code} ${answer.message}`;
          expectAnswer(answer, expected, context);
          if (answer.code === S.UNAUTHENTICATED) expect(answer.message, context).toBe('invalid email or password');
          if (answer.code === S.OK) {
            const token = (answer.response!['access_token'] ?? answer.response!['accessToken']) as string;
            expect(token, context).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
            issuedTokens.push(token);
          }
          expect(await rowCounts(), context).toEqual(before);
          codes.set(answer.code, (codes.get(answer.code) ?? 0) + 1);
        }),
        // Stateful (the server and the model remember users): report the first failure, unshrunk.
        { numRuns: RUNS, endOnFailure: true },
      );
      // The run covered every outcome, not only refusals.
      expect([...codes.keys()].sort((a, b) => a - b)).toEqual([S.OK, S.INVALID_ARGUMENT, S.UNAUTHENTICATED]);
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'VerifyToken answers as the contract model says and writes nothing',
    async () => {
      expect(issuedTokens.length).toBeGreaterThan(0);
      const before = await rowCounts();
      await checkProperty(
        fc.asyncProperty(fc.constantFrom(...VIAS), tokenInput, async (via, token) => {
          const expected = expectVerify(via, token);
          const answer = await call(via, 'verifyToken', { token });
          const context = `${via} ${describeInput(token)} -> ${answer.code} ${answer.message}`;
          expectAnswer(answer, expected, context);
          // A refused token gets no hint of why.
          if (answer.code === S.UNAUTHENTICATED) expect(answer.message, context).toBe('invalid token');
        }),
        // Stateful (the server and the model remember users): report the first failure, unshrunk.
        { numRuns: RUNS, endOnFailure: true },
      );
      expect(await rowCounts()).toEqual(before);
    },
    PROPERTY_TIMEOUT_MS,
  );
});
