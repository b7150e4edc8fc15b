import type { QrMatrix } from './matrix.js';

/** One path for all dark modules (horizontal runs merged), on a background rect; units are modules. */
export function matrixToSvg(m: QrMatrix, margin: number, scale: number, fg: string, bg: string, logo?: { href: string; x: number; size: number }): string {
  const n = m.size + 2 * margin;
  const px = n * scale;
  let d = '';
  for (let r = 0; r < m.size; r++) {
    const o = r * m.size;
    let c = 0;
    while (c < m.size) {
      if (!m.data[o + c]) {
        c++;
        continue;
      }
      const start = c;
      while (c < m.size && m.data[o + c]) c++;
      d += `M${start + margin} ${r + margin}h${c - start}v1h-${c - start}z`;
    }
  }
  const logoSvg = logo
    ? `<rect x="${logo.x}" y="${logo.x}" width="${logo.size}" height="${logo.size}" fill="${bg}"/><image x="${logo.x + 0.5}" y="${logo.x + 0.5}" width="${logo.size - 1}" height="${logo.size - 1}" preserveAspectRatio="xMidYMid meet" href="${logo.href}"/>`
    : '';
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${px}" height="${px}" viewBox="0 0 ${n} ${n}" shape-rendering="crispEdges">` +
    `<rect width="${n}" height="${n}" fill="${bg}"/><path fill="${fg}" d="${d}"/>${logoSvg}</svg>\n`
  );
}
