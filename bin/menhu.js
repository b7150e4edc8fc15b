#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  // some dependencies are ES modules loaded with require(), which Node supports from 20.19 on
  console.error(`menhu needs Node.js 20.19 or later; this is ${process.version}.`);
  process.exit(1);
}
const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  console.error('menhu is not built yet: run `npm run build` (npm install does it for you).');
  process.exit(1);
}
await import(main);
