import { defineConfig } from 'vitest/config';

// Three levels, as in the style guide: unit (pure logic, no I/O), int (real PostgreSQL and
// NATS through the infrastructure adapters), e2e (the real server over HTTP/2 with real clients).
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['tests/unit/**/*.unit.spec.ts'] } },
      {
        extends: true,
        test: { name: 'int', include: ['tests/int/**/*.int.spec.ts'], globalSetup: ['tests/helpers/global-setup.ts'] },
      },
      {
        extends: true,
        test: { name: 'e2e', include: ['tests/e2e/**/*.e2e.spec.ts'], globalSetup: ['tests/helpers/global-setup.ts'] },
      },
    ],
  },
});
