/**
 * The two halves of every buffered write (scan events, the request log, the BQP call log):
 * a buffer the request path pushes into, flushed in order every `flushMs` or at `flushAt` items and
 * on demand; and multi-row insert statements for `db.batch`, their SQL built once per row count.
 */

/** An in-process buffer written in batches by `store`, one batch at a time, in order. */
export class BatchBuffer<T> {
  private items: T[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  /** Items refused because `max` were waiting (the store is far behind): shed rather than memory. */
  dropped = 0;

  constructor(
    private readonly o: {
      flushMs: number;
      flushAt: number;
      max: number;
      /** Writes a batch; it reports its own failures (a failed batch is lost, never retried). */
      store: (batch: T[]) => Promise<void>;
      /** Called at the first push: get the store ready (e.g. start the writer thread) before the first flush. */
      warm?: () => void;
    },
  ) {}

  push(item: T): void {
    if (this.o.warm) {
      this.o.warm();
      this.o.warm = undefined;
    }
    if (this.items.length >= this.o.max) {
      this.dropped++;
      return;
    }
    this.items.push(item);
    if (this.items.length >= this.o.flushAt) {
      if (!this.flushing) void this.flush(); // else the flush in flight takes them when it ends
    } else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, this.o.flushMs);
      this.timer.unref();
    }
  }

  /** Writes everything buffered now; resolves when it is stored (or reported lost). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.items.length === 0) return;
    const batch = this.items;
    this.items = [];
    this.flushing = this.o.store(batch).finally(() => {
      this.flushing = null;
    });
    await this.flushing;
    if (this.items.length >= this.o.flushAt) await this.flush();
  }
}

/** Rows per insert statement: far below SQLite's 32,766 parameters and PostgreSQL's 65,535 for any table here. */
export const INSERT_ROWS = 100;

const sqls = new Map<string, string>();
/**
 * Multi-row inserts of `params` (`width` values per row, in column order), INSERT_ROWS rows per
 * statement: `head` ("insert into t (a,b)"), `values (?,?),(?,?)` ($k on PostgreSQL), then `tail`
 * (an ON CONFLICT clause, or nothing). The SQL of each row count is built once.
 */
export function insertStatements(dialect: string, head: string, width: number, params: readonly unknown[], tail = ''): { sql: string; parameters: unknown[] }[] {
  const out: { sql: string; parameters: unknown[] }[] = [];
  const rows = params.length / width;
  for (let i = 0; i < rows; i += INSERT_ROWS) {
    const n = Math.min(INSERT_ROWS, rows - i);
    const key = `${dialect}\u0000${head}\u0000${tail}\u0000${n}`;
    let text = sqls.get(key);
    if (!text) {
      let k = 0;
      const row = `(${Array.from({ length: width }, () => '?').join(',')})`;
      const values = Array.from({ length: n }, () => (dialect === 'postgres' ? `(${Array.from({ length: width }, () => `$${++k}`).join(',')})` : row)).join(',');
      sqls.set(key, (text = `${head} values ${values}${tail ? ' ' + tail : ''}`));
    }
    out.push({ sql: text, parameters: params.slice(i * width, (i + n) * width) });
  }
  return out;
}
