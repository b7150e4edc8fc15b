// The few parts of autocannon the benches use (the package ships no types).
declare module 'autocannon' {
  namespace autocannon {
    interface Stats {
      average: number;
      p50: number;
      p99: number;
    }
    interface Result {
      requests: Stats;
      latency: Stats;
      non2xx: number;
      errors: number;
      timeouts: number;
    }
    interface Request {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
      setupRequest?: (req: Record<string, unknown>, context: Record<string, unknown>) => Record<string, unknown>;
    }
    interface Options {
      url: string;
      connections?: number;
      duration?: number;
      pipelining?: number;
      requests?: Request[];
    }
  }
  function autocannon(opts: autocannon.Options, cb: (err: Error | null, res: autocannon.Result) => void): unknown;
  export default autocannon;
}
