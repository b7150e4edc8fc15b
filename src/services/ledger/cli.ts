/** `menhu ledger …`: operator funding from the issuing account, and the invariant audit. */
import type { Ctx } from '../../core/context.js';
import { findApp } from '../../core/credentials/apps.js';
import { DomainError } from '../../core/errors.js';
import { getDeveloper } from '../accounts/index.js';
import { formatUnits } from './amount.js';
import { audit, balanceOf, developerAccount, fund, wallet, type Account } from './index.js';

async function target(ctx: Ctx, spec: string): Promise<Account> {
  const slash = spec.indexOf('/');
  if (slash > 0) {
    const app = await findApp(ctx, spec.slice(0, slash), 'ulord');
    if (!app) throw new DomainError('KEY_UNKNOWN', `no Ulord app with key ${spec.slice(0, slash)}`);
    return wallet(ctx, app.id, spec.slice(slash + 1));
  }
  const row = await ctx.db.kysely.selectFrom('developers').select('id').where('username', '=', spec).executeTakeFirst();
  const d = row ? await getDeveloper(ctx, Number(row.id)) : null;
  if (!d) throw new DomainError('USER_UNKNOWN', `no developer ${spec}`);
  return developerAccount(ctx, d);
}

export async function ledgerCli(ctx: Ctx, pos: string[], key?: string): Promise<unknown> {
  const [sub, who, amount] = pos;
  if (sub === 'fund') {
    if (!who || !amount) throw new DomainError('MISSING_FIELD', 'usage: menhu ledger fund <developer|appkey/wallet> <amount> [--key K]');
    const acct = await target(ctx, who);
    const r = await fund(ctx, acct, amount, key);
    const b = await balanceOf(ctx, acct.id);
    return { txid: r.transfer.txid, amount: formatUnits(r.transfer.amount), replayed: r.replayed, account: acct.id, balance: formatUnits(b.total) };
  }
  if (sub === 'audit') {
    const a = await audit(ctx);
    return { ...a, issued: formatUnits(a.issued), held: formatUnits(a.held), ok: a.issued === a.held && !a.mismatched.length && !a.negative.length };
  }
  throw new DomainError('VALIDATION', 'usage: menhu ledger fund|audit …');
}
