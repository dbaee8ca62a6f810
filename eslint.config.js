// @ts-check
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/**
 * The layers, enforced: dependencies point inward only. src/app (the composition root) and
 * src/main.ts are the only code that sees every layer.
 */
/** @param {string} name @param {string} message */
const layer = (name, message) => ({ group: [`**/${name}/**`, `**/${name}`], message });
const APP = layer('app', 'only src/main.ts starts the composition root');
const INFRASTRUCTURE = layer('infrastructure', 'reach infrastructure through a port in src/application/ports, wired in src/app');
const TRANSPORT = layer('transport', 'transport calls inward; nothing inward calls it');
const APPLICATION = layer('application', 'the domain knows nothing of use cases or ports');
/** @param {string[]} files @param {{ group: string[], message: string }[]} patterns @returns {import('eslint').Linter.Config} */
const boundaries = (files, patterns) => ({ files, rules: { 'no-restricted-imports': ['error', { patterns }] } });

export default defineConfig(
  { ignores: ['dist/', 'src/gen/', 'packages/*/src/gen/', 'node_modules/', 'coverage/', 'bench/results/', 'data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { process: 'readonly', Buffer: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-deprecated': 'warn',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  boundaries(['src/domain/**'], [
    APPLICATION,
    INFRASTRUCTURE,
    TRANSPORT,
    APP,
    { group: ['**/gen/**', '@connectrpc/*', '@bufbuild/*', 'knex', 'pg', 'pino', '@nats-io/*', 'bcrypt', 'jose'], message: 'the domain has no I/O and no framework' },
  ]),
  boundaries(['src/application/**'], [INFRASTRUCTURE, TRANSPORT, APP]),
  boundaries(['src/transport/**'], [INFRASTRUCTURE, APP]),
  boundaries(['src/infrastructure/**'], [TRANSPORT, APP]),
  {
    // The launcher imports whichever entry exists; its type is the module's, not known here.
    files: ['bin/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // Tests read loosely typed JSON from grpc-js and database rows.
    files: ['tests/**/*.ts', 'bench/**/*.ts', 'packages/*/tests/**/*.ts', 'examples/*/tests/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
