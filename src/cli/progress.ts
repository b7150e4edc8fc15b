/** A one-line progress bar on stderr for long CLI work (a plain line per 10% when not a TTY). */
export function progressBar(label: string): { update(done: number, total: number, phase?: string): void; end(): void } {
  const tty = process.stderr.isTTY;
  let lastPct = -1;
  let lastPhase = '';
  return {
    update(done, total, phase = label) {
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
      if (phase !== lastPhase) {
        if (tty && lastPhase) process.stderr.write('\n');
        lastPhase = phase;
        lastPct = -1;
      }
      if (tty) {
        if (pct === lastPct) return;
        const width = 30;
        const fill = Math.round((pct / 100) * width);
        process.stderr.write(`\r${phase.padEnd(10)} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(pct).padStart(3)}%  ${done}/${total}`);
      } else if (pct >= lastPct + 10 || done === total) {
        if (pct === lastPct) return;
        process.stderr.write(`${phase}: ${pct}% (${done}/${total})\n`);
      }
      lastPct = pct;
    },
    end() {
      if (tty && lastPhase) process.stderr.write('\n');
    },
  };
}
