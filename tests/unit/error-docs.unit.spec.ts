import { readFileSync } from 'node:fs';
import { Code } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import { STATUS_BY_ERROR_CODE } from '../../src/transport/connect/error-mapper.js';

/**
 * The README's error table is what callers program against, so it may not drift from the
 * code (fastify pins its error docs the same way): every code the service can send is a row
 * there with the status it maps to, and every row names a code that exists. Issue 12.
 */
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const STATUS_NAME = (code: Code) => Code[code].replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
/** Rows of the form `| case | \`STATUS\` (\`IDENTITY.CODE\`) | notes |`. */
const documented = [...readme.matchAll(/^\|[^|\n]*\| `([A-Z_]+)` \(`([A-Z]+\.[A-Z_]+)`\)/gm)].map(([, status, code]) => ({ status, code }));

describe('README error table', () => {
  it.each(Object.entries(STATUS_BY_ERROR_CODE))('documents %s with its status', (code, status) => {
    expect(documented).toContainEqual({ code, status: STATUS_NAME(status) });
  });

  it('names no code the service does not have', () => {
    const known = new Set(Object.keys(STATUS_BY_ERROR_CODE));
    expect(documented.length).toBeGreaterThan(0);
    expect(documented.map((row) => row.code).filter((code) => code === undefined || !known.has(code))).toEqual([]);
  });
});
