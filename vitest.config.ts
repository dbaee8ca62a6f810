import { defineConfig } from 'vitest/config';

// Three levels, as in the style guide: unit (pure logic, no I/O), int (real PostgreSQL and
// NATS through the infrastructure adapters), e2e (the real server over HTTP/2 with real clients);
// and events: the subscriber package (packages/) and its example (examples/) against real NATS.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Off unless asked for: `npm run test:unit` passes --coverage (and `npm test` runs it
    // first); int and e2e run without it, as they do not count towards the gate. The
    // thresholds gate the inner layers, which the unit project alone must cover (issue 12).
    coverage: {
      provider: 'v8',
      include: ['src/domain/**/*.ts', 'src/application/**/*.ts'],
      reporter: ['text-summary', ['text', { skipFull: true }]],
      thresholds: { lines: 90, statements: 90, functions: 90, branches: 90 },
    },
    projects: [
      { extends: true, test: { name: 'unit', include: ['tests/unit/**/*.unit.spec.ts'] } },
      {
        extends: true,
        test: { name: 'int', include: ['tests/int/**/*.int.spec.ts'], globalSetup: ['tests/helpers/global-setup.ts'] },
      },
      {
        // The subscriber kit and its example, against the real stream (and their pure parts).
        extends: true,
        test: { name: 'events', include: ['packages/*/tests/**/*.spec.ts', 'examples/*/tests/**/*.spec.ts'], globalSetup: ['tests/helpers/global-setup.ts'] },
      },
      {
        extends: true,
        test: { name: 'e2e', include: ['tests/e2e/**/*.e2e.spec.ts'], globalSetup: ['tests/helpers/global-setup.ts'] },
      },
    ],
  },
});
