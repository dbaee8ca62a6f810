#!/usr/bin/env node
// The `identity` command. An image runs the compiled dist/; a source checkout runs src/
// through tsx, so the command never runs stale compiled code there.
import { existsSync } from 'node:fs';

const source = new URL('../src/main.ts', import.meta.url);
const compiled = new URL('../dist/main.js', import.meta.url);

async function load() {
  if (existsSync(source)) {
    try {
      const { register } = await import('tsx/esm/api');
      register();
      return await import(source.href);
    } catch (error) {
      if (/** @type {{ code?: string }} */ (error).code !== 'ERR_MODULE_NOT_FOUND' || !existsSync(compiled)) throw error;
    }
  }
  return import(compiled.href);
}

const { main } = await load();
await main(process.argv.slice(2));
