/**
 * Native REST for the ledger under /rest/v1/ledger: operator funding and audit, wallets, transfers
 * (Idempotency-Key header), content, statements (JSON and Excel), uploads and downloads.
 * Amounts go out both as exact decimal text (`*_uld`) and as integer units of 1e-8 ULD.
 */
import { Type, type Static } from '@sinclair/typebox';
import ExcelJS from 'exceljs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Ctx } from '../../core/context.js';
import { getApp } from '../../core/credentials/apps.js';
import { DomainError } from '../../core/errors.js';
import * as accounts from '../../services/accounts/index.js';
import { formatUnits } from '../../services/ledger/amount.js';
import * as content from '../../services/ledger/content.js';
import * as ledger from '../../services/ledger/index.js';
import { header } from '../http.js';
import { requireOperator, requirePrincipal } from './auth.js';

const Amount = Type.Union([Type.String({ maxLength: 40 }), Type.Number()], { description: 'decimal ULD, at most 8 places (send text for exactness)' });
const AppParams = Type.Object({ app_id: Type.Integer({ minimum: 1 }) });
const Paging = Type.Object({ page: Type.Optional(Type.Integer({ minimum: 1, default: 1 })), num: Type.Optional(Type.Integer({ minimum: 1, maximum: content.MAX_PAGE_SIZE, default: 50 })) });
const BalanceOut = Type.Object({ total_uld: Type.String(), confirmed_uld: Type.String(), unconfirmed_uld: Type.String(), unmatured_uld: Type.String(), total: Type.Integer(), confirmed: Type.Integer(), unconfirmed: Type.Integer(), unmatured: Type.Integer() });
const TransferOut = Type.Object({
  id: Type.Integer(),
  txid: Type.String(),
  kind: Type.String(),
  debit_account: Type.Integer(),
  credit_account: Type.Integer(),
  amount: Type.Integer(),
  amount_uld: Type.String(),
  idempotency_key: Type.String(),
  created_at: Type.Integer(),
  replayed: Type.Optional(Type.Boolean()),
});
const err = { 400: Type.Ref('Problem'), 401: Type.Ref('Problem'), 402: Type.Ref('Problem'), 403: Type.Ref('Problem'), 404: Type.Ref('Problem'), 409: Type.Ref('Problem'), 423: Type.Ref('Problem') };

const balanceOut = (b: ledger.Balance) => ({
  total_uld: formatUnits(b.total),
  confirmed_uld: formatUnits(b.confirmed),
  unconfirmed_uld: formatUnits(b.unconfirmed),
  unmatured_uld: formatUnits(b.unmatured),
  ...b,
});
const transferOut = (t: ledger.Transfer, replayed?: boolean) => ({
  id: t.id,
  txid: t.txid,
  kind: t.kind,
  debit_account: t.debit_id,
  credit_account: t.credit_id,
  amount: t.amount,
  amount_uld: formatUnits(t.amount),
  idempotency_key: t.idem_key,
  created_at: t.created_at,
  ...(replayed === undefined ? {} : { replayed }),
});

export async function ledgerRest(root: FastifyInstance, ctx: Ctx): Promise<void> {
  await root.register(async (app) => {
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: ctx.config.uploadLimit }, (_req, b, done) => done(null, b));

    async function appOf(req: FastifyRequest, id: number): Promise<ledger.AppRef> {
      const p = requirePrincipal(req);
      const a = await getApp(ctx, id);
      if (!a || (!p.operator && a.tenantId !== p.tenantId)) throw new DomainError('NOT_FOUND', `no app ${id}`, { field: 'app_id' });
      return { id: a.id, tenantId: a.tenantId, developerId: a.developerId };
    }

    // --- operators ------------------------------------------------------------------------------
    const Fund = Type.Object(
      {
        developer: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'developer username' })),
        app_id: Type.Optional(Type.Integer({ minimum: 1 })),
        wallet: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'wallet username in app_id' })),
        amount: Amount,
        idempotency_key: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
      },
      { additionalProperties: false },
    );
    app.post<{ Body: Static<typeof Fund> }>(
      '/ledger/fund',
      { schema: { tags: ['ledger'], summary: 'Issue ULD from the platform issuing account to a developer account or a wallet (operators)', body: Fund, response: { 200: TransferOut, ...err } } },
      async (req) => {
        requireOperator(req);
        const target = await fundTarget(ctx, req.body);
        const r = await ledger.fund(ctx, target, req.body.amount, header(req, 'idempotency-key') ?? req.body.idempotency_key);
        return transferOut(r.transfer, r.replayed);
      },
    );
    app.get('/ledger/audit', { schema: { tags: ['ledger'], summary: 'Check the ledger invariants (operators)', response: { ...err } } }, async (req) => {
      requireOperator(req);
      return ledger.audit(ctx);
    });
    app.get('/ledger/developer', { schema: { tags: ['ledger'], summary: "The calling developer's own account balance", response: { 200: BalanceOut, ...err } } }, async (req) => {
      const p = requirePrincipal(req);
      if (p.kind !== 'developer') throw new DomainError('FORBIDDEN', 'log in as a developer');
      return balanceOut(await ledger.balanceOf(ctx, (await ledger.developerAccount(ctx, p.developer)).id));
    });

    // --- wallets -------------------------------------------------------------------------------
    app.get<{ Params: Static<typeof AppParams>; Querystring: Static<typeof Paging> }>(
      '/ledger/apps/:app_id/wallets',
      { schema: { tags: ['ledger'], params: AppParams, querystring: Paging, response: { ...err } } },
      async (req) => {
        const a = await appOf(req, req.params.app_id);
        const { page = 1, num = 50 } = req.query;
        const r = await ledger.listWallets(ctx, a.id, page, num);
        return { total: r.total, pages: content.pages(r.total, num), wallets: r.rows.map((w) => ({ id: w.id, username: w.owner, balance_uld: formatUnits(w.balance), held_uld: formatUnits(w.pending), locked_until: w.locked_until || null, created_at: w.created_at })) };
      },
    );
    const WalletIn = Type.Object({ username: Type.String({ minLength: 1, maxLength: 64 }), pay_password: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });
    app.post<{ Params: Static<typeof AppParams>; Body: Static<typeof WalletIn> }>(
      '/ledger/apps/:app_id/wallets',
      { schema: { tags: ['ledger'], params: AppParams, body: WalletIn, response: { 201: Type.Object({ id: Type.Integer(), username: Type.String() }), ...err } } },
      async (req, reply) => {
        const a = await appOf(req, req.params.app_id);
        const w = await ledger.createWallet(ctx, a, req.body.username, req.body.pay_password);
        return reply.code(201).send({ id: w.id, username: w.owner });
      },
    );
    const WalletParams = Type.Object({ app_id: Type.Integer({ minimum: 1 }), username: Type.String({ minLength: 1, maxLength: 64 }) });
    app.get<{ Params: Static<typeof WalletParams> }>(
      '/ledger/apps/:app_id/wallets/:username',
      { schema: { tags: ['ledger'], summary: "A wallet's balance (the app's owner needs no pay password)", params: WalletParams, response: { 200: BalanceOut, ...err } } },
      async (req) => {
        const a = await appOf(req, req.params.app_id);
        return balanceOut(await ledger.balanceOf(ctx, (await ledger.wallet(ctx, a.id, req.params.username)).id));
      },
    );

    // --- transfers -----------------------------------------------------------------------------
    const TransferIn = Type.Object(
      {
        from: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'paying wallet; leave out with from_developer' })),
        from_developer: Type.Optional(Type.Boolean({ description: "pay from the app developer's account" })),
        pay_password: Type.Optional(Type.String({ maxLength: 200 })),
        to: Type.String({ minLength: 1, maxLength: 64 }),
        amount: Amount,
        idempotency_key: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
      },
      { additionalProperties: false },
    );
    app.post<{ Params: Static<typeof AppParams>; Body: Static<typeof TransferIn> }>(
      '/ledger/apps/:app_id/transfers',
      { schema: { tags: ['ledger'], summary: 'Pay between wallets of an app; send Idempotency-Key to make retries safe', params: AppParams, body: TransferIn, response: { 200: TransferOut, 201: TransferOut, ...err } } },
      async (req, reply) => {
        const a = await appOf(req, req.params.app_id);
        const b = req.body;
        const r = await ledger.pay(ctx, { app: a, isDeveloper: !!b.from_developer, sendUser: b.from, payPassword: b.pay_password, recvUser: b.to, amount: b.amount, idempotencyKey: header(req, 'idempotency-key') ?? b.idempotency_key });
        return reply.code(r.replayed ? 200 : 201).send(transferOut(r.transfer, r.replayed));
      },
    );
    app.get<{ Params: Static<typeof AppParams>; Querystring: Static<typeof Paging> }>(
      '/ledger/apps/:app_id/transfers',
      { schema: { tags: ['ledger'], params: AppParams, querystring: Paging, response: { ...err } } },
      async (req) => {
        const a = await appOf(req, req.params.app_id);
        const { page = 1, num = 50 } = req.query;
        const r = await ledger.listTransfers(ctx, { appId: a.id }, page, num);
        return { total: r.total, pages: content.pages(r.total, num), transfers: r.rows.map((t) => transferOut(t)) };
      },
    );

    // --- content -------------------------------------------------------------------------------
    app.get<{ Params: Static<typeof AppParams>; Querystring: Static<typeof Paging> }>(
      '/ledger/apps/:app_id/contents',
      { schema: { tags: ['ledger'], params: AppParams, querystring: Paging, response: { ...err } } },
      async (req) => {
        const a = await appOf(req, req.params.app_id);
        const { page = 1, num = 50 } = req.query;
        const r = await content.listContent(ctx, a.id, page, num);
        return { total: r.total, pages: content.pages(r.total, num), contents: r.rows.map((c) => ({ ...c, tags: JSON.parse(c.tags), price_uld: formatUnits(c.price) })) };
      },
    );
    const PublishIn = Type.Object(
      {
        author: Type.String({ minLength: 1, maxLength: 64 }),
        title: Type.String({ minLength: 1, maxLength: 200 }),
        tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32 })),
        ipfs_hash: Type.String({ minLength: 1, maxLength: 200 }),
        price: Amount,
        content_type: Type.Optional(Type.String({ maxLength: 40 })),
        description: Type.Optional(Type.String({ maxLength: 4000 })),
        pay_password: Type.String({ minLength: 1, maxLength: 200 }),
      },
      { additionalProperties: false },
    );
    app.post<{ Params: Static<typeof AppParams>; Body: Static<typeof PublishIn> }>(
      '/ledger/apps/:app_id/contents',
      { schema: { tags: ['ledger'], summary: 'Publish content (negative price: an ad)', params: AppParams, body: PublishIn, response: { 201: Type.Object({ id: Type.Integer(), claim_id: Type.String() }), ...err } } },
      async (req, reply) => {
        const a = await appOf(req, req.params.app_id);
        const c = await content.publish(ctx, a, { ...req.body, tag: req.body.tags });
        return reply.code(201).send({ id: c.id, claim_id: c.claim_id });
      },
    );
    const ClaimParams = Type.Object({ app_id: Type.Integer({ minimum: 1 }), claim_id: Type.String({ pattern: '^[0-9a-f]{40}$' }) });
    const ConsumeIn = Type.Object({ username: Type.String({ minLength: 1, maxLength: 64 }), customer_pay_password: Type.Optional(Type.String({ maxLength: 200 })), author_pay_password: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false });
    app.post<{ Params: Static<typeof ClaimParams>; Body: Static<typeof ConsumeIn> }>(
      '/ledger/apps/:app_id/contents/:claim_id/consume',
      { schema: { tags: ['ledger'], summary: 'Consume (buy once) content', params: ClaimParams, body: ConsumeIn, response: { ...err } } },
      async (req) => {
        const a = await appOf(req, req.params.app_id);
        return content.consume(ctx, a, { ...req.body, claim_id: req.params.claim_id });
      },
    );
    const Who = Type.Object({ username: Type.String({ minLength: 1, maxLength: 64 }) });
    app.get<{ Params: Static<typeof ClaimParams>; Querystring: Static<typeof Who> }>(
      '/ledger/apps/:app_id/contents/:claim_id/download',
      { schema: { tags: ['ledger'], summary: 'Download the file of content the user bought (or wrote)', params: ClaimParams, querystring: Who, response: { ...err } } },
      async (req, reply) => {
        const a = await appOf(req, req.params.app_id);
        const d = await content.download(ctx, a.id, req.query.username, req.params.claim_id);
        reply.header('content-length', d.size).header('x-ipfs-hash', d.content.ipfs_hash);
        return reply.type(d.contentType).send(d.body);
      },
    );
    app.post<{ Params: Static<typeof AppParams> }>(
      '/ledger/apps/:app_id/uploads',
      { bodyLimit: ctx.config.uploadLimit, schema: { tags: ['ledger'], summary: 'Store a file (application/octet-stream) and answer its IPFS CIDs (v0 as `ipfs add`, v1 raw leaves)', params: AppParams, response: { ...err } } },
      async (req, reply) => {
        const a = await appOf(req, req.params.app_id);
        if (!Buffer.isBuffer(req.body)) throw new DomainError('UNSUPPORTED_MEDIA', 'send the file as application/octet-stream');
        const type = header(req, 'x-content-type') ?? 'application/octet-stream';
        return reply.code(201).send(await content.storeUpload(ctx, a, req.body, type));
      },
    );

    // --- statements ----------------------------------------------------------------------------
    const StatementQuery = Type.Object({ role: Type.Union([Type.Literal('publisher'), Type.Literal('customer')]), username: Type.String({ minLength: 1, maxLength: 64 }), page: Type.Optional(Type.Integer({ minimum: 1, default: 1 })), num: Type.Optional(Type.Integer({ minimum: 1, maximum: content.MAX_PAGE_SIZE, default: 50 })) });
    app.get<{ Params: Static<typeof AppParams>; Querystring: Static<typeof StatementQuery> }>(
      '/ledger/apps/:app_id/statements',
      { schema: { tags: ['ledger'], params: AppParams, querystring: StatementQuery, response: { ...err } } },
      async (req) => {
        const a = await appOf(req, req.params.app_id);
        const { page = 1, num = 50 } = req.query;
        const s = await content.statement(ctx, a.id, req.query.role, req.query.username, page, num);
        return { total: s.total, pages: content.pages(s.total, num), records: s.records.map((r) => ({ ...r, price_uld: formatUnits(r.price) })) };
      },
    );
    const XlsxQuery = Type.Object({ role: Type.Union([Type.Literal('publisher'), Type.Literal('customer')]), username: Type.String({ minLength: 1, maxLength: 64 }) });
    app.get<{ Params: Static<typeof AppParams>; Querystring: Static<typeof XlsxQuery> }>(
      '/ledger/apps/:app_id/statements.xlsx',
      { schema: { tags: ['ledger'], summary: 'The whole statement as an Excel workbook (at most 100,000 rows)', params: AppParams, querystring: XlsxQuery, response: { ...err } } },
      async (req, reply) => {
        const a = await appOf(req, req.params.app_id);
        const wb = new ExcelJS.Workbook();
        wb.created = new Date(ctx.clock.now());
        const ws = wb.addWorksheet(`${req.query.role} ${req.query.username}`.slice(0, 31).replace(/[\\/*?:[\]]/g, '_'));
        ws.columns = [
          { header: 'time (UTC)', key: 'time', width: 22 },
          { header: 'claim_id', key: 'claim_id', width: 44 },
          { header: 'title', key: 'title', width: 30 },
          { header: 'author', key: 'author', width: 16 },
          { header: 'customer', key: 'customer', width: 16 },
          { header: 'price (ULD)', key: 'price', width: 16 },
          { header: 'txid', key: 'txid', width: 66 },
        ];
        for (let page = 1; page <= 1000; page++) {
          const s = await content.statement(ctx, a.id, req.query.role, req.query.username, page, content.MAX_PAGE_SIZE);
          for (const r of s.records) {
            // amounts as text: the exact decimal, not a binary float
            ws.addRow({ time: new Date(r.created_at).toISOString().replace('T', ' ').slice(0, 19), claim_id: r.claim_id, title: r.title, author: r.author, customer: r.customer, price: formatUnits(r.price), txid: r.txid });
          }
          if (page * content.MAX_PAGE_SIZE >= s.total) break;
        }
        ws.getRow(1).font = { bold: true };
        const buf = Buffer.from(await wb.xlsx.writeBuffer());
        return reply
          .type('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet')
          .header('content-disposition', `attachment; filename="statement-${req.query.role}.xlsx"`)
          .send(buf);
      },
    );
  });
}

/** The account an operator funds: a developer (by username) or a wallet (app_id + wallet). */
export async function fundTarget(ctx: Ctx, t: { developer?: string; app_id?: number; wallet?: string }): Promise<ledger.Account> {
  if (t.developer && (t.wallet || t.app_id)) throw new DomainError('VALIDATION', 'give either developer, or app_id and wallet', { field: 'developer' });
  if (t.developer) {
    const row = await ctx.db.kysely.selectFrom('developers').select('id').where('username', '=', t.developer).executeTakeFirst();
    const d = row ? await accounts.getDeveloper(ctx, Number(row.id)) : null;
    if (!d) throw new DomainError('USER_UNKNOWN', `no developer ${t.developer}`, { field: 'developer' });
    return ledger.developerAccount(ctx, d);
  }
  if (t.app_id && t.wallet) return ledger.wallet(ctx, t.app_id, t.wallet, 'wallet');
  throw new DomainError('MISSING_FIELD', 'give developer, or app_id and wallet', { field: 'developer' });
}
