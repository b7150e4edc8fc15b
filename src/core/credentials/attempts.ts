/**
 * Password guessing: failed password checks are counted per account in the limits store (Redis
 * when configured, so every server counts together). Once an account has `loginMaxFailures`
 * failures within a `loginWindowSeconds` window (aligned to the clock on Redis), every attempt on
 * it — right or wrong — is refused with RATE_LIMITED (Retry-After: the rest of the window) without
 * checking the password. Counted per account, not per address: guesses spread over many addresses
 * still add up. The price is that someone who knows a name can keep its owner out for a window;
 * wallets' pay passwords have their own lock (services/ledger). Concurrent attempts are counted as
 * they fail, so a burst can run at most its own size past the limit.
 */
import type { Ctx } from '../context.js';
import { DomainError, type ErrorCode } from '../errors.js';

export async function guardPassword<T>(ctx: Ctx, scope: string, account: string, failures: readonly ErrorCode[], check: () => Promise<T>): Promise<T> {
  const max = ctx.config.loginMaxFailures;
  const windowMs = ctx.config.loginWindowSeconds * 1000;
  if (max <= 0 || windowMs <= 0) return check();
  const key = `pw:${scope}:${String(account).slice(0, 200)}`;
  const seen = await ctx.limits.count(key, windowMs);
  if (seen.n >= max) {
    throw new DomainError('RATE_LIMITED', `too many failed password attempts for this account; try again in ${Math.ceil(seen.resetMs / 1000)} s`, {
      details: { retryAfterMs: seen.resetMs },
    });
  }
  try {
    return await check();
  } catch (e) {
    if (e instanceof DomainError && failures.includes(e.code)) await ctx.limits.hit(key, max, windowMs);
    throw e;
  }
}
