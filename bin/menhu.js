#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  console.error('menhu is not built yet: run `npm run build` (npm install does it for you).');
  process.exit(1);
}
await import(main);
