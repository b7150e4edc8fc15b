// Build of the web console: `vite build console` (from the repo root) writes dist/console/,
// which `menhu serve` serves at /console. Dev: `npx vite console` proxies the API to MENHU_URL.
import preact from '@preact/preset-vite';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/console/',
  plugins: [preact({ prerender: { enabled: false } })],
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2020',
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      '/rest': process.env.MENHU_URL ?? 'http://127.0.0.1:8080',
      '/s/': process.env.MENHU_URL ?? 'http://127.0.0.1:8080',
    },
  },
});
