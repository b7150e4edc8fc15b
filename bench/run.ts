/**
 * Runs a named benchmark: `npm run bench -- <name> [options]` runs bench/<name>.ts's default export.
 * `npm run bench` alone lists them.
 */
import { readdirSync } from 'node:fs';

const here = new URL('.', import.meta.url);
const names = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -3))
  .sort();
const [name, ...args] = process.argv.slice(2);
if (!name || !names.includes(name)) {
  console.log(`usage: npm run bench -- <name> [options]\nbenchmarks: ${names.join(', ')}`);
  process.exit(name ? 2 : 0);
}
const mod = (await import(new URL(`./${name}.ts`, here).href)) as { default: (args: string[]) => Promise<void> };
await mod.default(args);
