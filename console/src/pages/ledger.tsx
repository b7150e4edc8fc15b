/** Ledger: the developer account, wallets and balances, transfers, content, statements and their Excel export (REST /ledger). */
import { useState } from 'preact/hooks';
import { download, get, post } from '../api';
import { fmtTime, t, tr } from '../i18n';
import { useSession } from '../session';
import { Card, Copy, Err, Field, Loading, onSubmit, Pager, Table, Tabs, useAction, useLoad } from '../ui';
import type { AppRow } from './apps';

const L = {
  title: ['账本', 'Ledger'],
  myAccount: ['我的开发者账户', 'My developer account'],
  balance: ['余额', 'Balance'],
  confirmed: ['已确认', 'Confirmed'],
  unconfirmed: ['未确认', 'Unconfirmed'],
  app: ['应用', 'App'],
  pickApp: ['选择一个应用', 'Pick an app'],
  wallets: ['钱包', 'Wallets'],
  transfers: ['转账', 'Transfers'],
  contents: ['内容', 'Content'],
  statements: ['对账单', 'Statements'],
  wallet: ['钱包用户名', 'Wallet username'],
  held: ['冻结', 'Held'],
  lockedUntil: ['锁定至', 'Locked until'],
  newWallet: ['新建钱包', 'New wallet'],
  payPassword: ['支付密码', 'Pay password'],
  newTransfer: ['新建转账', 'New transfer'],
  from: ['付款钱包', 'From wallet'],
  fromDeveloper: ['从开发者账户付款', "Pay from the developer's account"],
  to: ['收款钱包', 'To wallet'],
  amount: ['金额（ULD）', 'Amount (ULD)'],
  txid: ['交易号', 'Transaction'],
  kind: ['类型', 'Kind'],
  debit: ['借方账户', 'Debit account'],
  credit: ['贷方账户', 'Credit account'],
  fund: ['发行（充值）', 'Issue (fund)'],
  fundHint: ['从平台发行账户转入开发者账户（填开发者用户名）或某应用的钱包。', "From the platform's issuing account to a developer account (give the username) or a wallet of an app."],
  developer: ['开发者用户名', 'Developer username'],
  audit: ['检查账本', 'Audit the ledger'],
  auditOk: ['账本平衡', 'The ledger balances'],
  auditBad: ['账本不平衡！', 'The ledger does not balance!'],
  titleCol: ['标题', 'Title'],
  author: ['作者', 'Author'],
  customer: ['买家', 'Customer'],
  price: ['价格', 'Price'],
  claim: ['内容 ID', 'Claim ID'],
  role: ['角色', 'Role'],
  publisher: ['发布者', 'publisher'],
  customerRole: ['买家', 'customer'],
  show: ['查看', 'Show'],
  idem: ['幂等键（可选）', 'Idempotency key (optional)'],
  replayed: ['重复请求，返回原交易', 'replayed: the original transfer'],
} as const;

interface Balance {
  total_uld: string;
  confirmed_uld: string;
  unconfirmed_uld: string;
  unmatured_uld: string;
}
interface Transfer {
  id: number;
  txid: string;
  kind: string;
  debit_account: number;
  credit_account: number;
  amount_uld: string;
  idempotency_key: string;
  created_at: number;
  replayed?: boolean;
}
interface Wallet {
  id: number;
  username: string;
  balance_uld: string;
  held_uld: string;
  locked_until: number | null;
  created_at: number;
}
interface Content {
  id: number;
  claim_id: string;
  title: string;
  author: string;
  tags: string[];
  price_uld: string;
  content_type: string;
  created_at: number;
}
interface Purchase {
  id: number;
  claim_id: string;
  title: string;
  author: string;
  customer: string;
  price_uld: string;
  txid: string;
  created_at: number;
}
type Paged<K extends string, T> = { total: number; pages: number } & Record<K, T[]>;

const PAGE = 20;
type Tab = 'wallets' | 'transfers' | 'contents' | 'statements';

export function LedgerPage() {
  const { me } = useSession();
  const apps = useLoad(() => get<AppRow[]>('/apps'), []);
  const [appId, setAppId] = useState<number | undefined>(undefined);
  const [tab, setTab] = useState<Tab>('wallets');
  const list = apps.data ?? [];
  const chosen = appId ?? (list.find((a) => a.services.includes('ulord')) ?? list.find((a) => a.tenant_id === me.tenant_id))?.id;
  return (
    <>
      <h1>{tr(L.title)}</h1>
      {me.kind === 'developer' && <MyAccount />}
      {me.operator && <Operator apps={list} />}
      <Card
        actions={
          <label class="field inline">
            <span>{tr(L.app)}</span>
            <select data-testid="ledger-app" value={chosen ?? ''} onChange={(e) => setAppId(Number(e.currentTarget.value))}>
              {!chosen && <option value="">{tr(L.pickApp)}</option>}
              {list.map((a) => (
                <option value={a.id}>
                  {a.id} · {a.name}
                </option>
              ))}
            </select>
          </label>
        }
      >
        <Err error={apps.error} />
        <Tabs<Tab>
          tabs={[
            ['wallets', tr(L.wallets)],
            ['transfers', tr(L.transfers)],
            ['contents', tr(L.contents)],
            ['statements', tr(L.statements)],
          ]}
          value={tab}
          onChange={setTab}
        />
        {chosen === undefined ? (
          <div class="empty">{tr(L.pickApp)}</div>
        ) : tab === 'wallets' ? (
          <Wallets key={chosen} appId={chosen} />
        ) : tab === 'transfers' ? (
          <Transfers key={chosen} appId={chosen} />
        ) : tab === 'contents' ? (
          <Contents key={chosen} appId={chosen} />
        ) : (
          <Statements key={chosen} appId={chosen} />
        )}
      </Card>
    </>
  );
}

function MyAccount() {
  const b = useLoad(() => get<Balance>('/ledger/developer'), []);
  return (
    <Card title={tr(L.myAccount)} testid="my-account">
      <Err error={b.error} />
      {b.data ? (
        <div class="figures">
          <div>
            <b data-testid="my-balance">{b.data.total_uld}</b>
            <span>{tr(L.balance)} (ULD)</span>
          </div>
          <div>
            <b>{b.data.confirmed_uld}</b>
            <span>{tr(L.confirmed)}</span>
          </div>
          <div>
            <b>{b.data.unconfirmed_uld}</b>
            <span>{tr(L.unconfirmed)}</span>
          </div>
        </div>
      ) : (
        !b.error && <Loading />
      )}
    </Card>
  );
}

function Operator({ apps }: { apps: AppRow[] }) {
  const act = useAction();
  const [form, setForm] = useState({ developer: '', app_id: '', wallet: '', amount: '' });
  const [done, setDone] = useState<Transfer | null>(null);
  const [audit, setAudit] = useState<unknown>(null);
  return (
    <Card title={tr(L.fund)}>
      <p class="muted">{tr(L.fundHint)}</p>
      <form
        class="form-grid"
        data-testid="fund-form"
        onSubmit={onSubmit(() =>
          act.run(async () => {
            const target = form.developer.trim() ? { developer: form.developer.trim() } : { app_id: Number(form.app_id), wallet: form.wallet.trim() };
            setDone(await post<Transfer>('/ledger/fund', { ...target, amount: form.amount.trim(), idempotency_key: `console-${Date.now()}-${Math.random().toString(36).slice(2)}` }));
          }),
        )}
      >
        <Field label={tr(L.developer)}>
          <input name="developer" value={form.developer} onInput={(e) => setForm({ ...form, developer: e.currentTarget.value })} />
        </Field>
        <Field label={tr(L.app)}>
          <select name="app_id" value={form.app_id} onChange={(e) => setForm({ ...form, app_id: e.currentTarget.value })} disabled={!!form.developer.trim()}>
            <option value="">—</option>
            {apps.map((a) => (
              <option value={a.id}>
                {a.id} · {a.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label={tr(L.wallet)}>
          <input name="wallet" value={form.wallet} disabled={!!form.developer.trim()} onInput={(e) => setForm({ ...form, wallet: e.currentTarget.value })} />
        </Field>
        <Field label={tr(L.amount)}>
          <input name="amount" required inputMode="decimal" pattern="[0-9]+(\.[0-9]{1,8})?" value={form.amount} onInput={(e) => setForm({ ...form, amount: e.currentTarget.value })} />
        </Field>
        <div class="form-actions">
          <button type="submit" class="primary" disabled={act.busy}>
            {tr(L.fund)}
          </button>
          <button
            type="button"
            data-testid="audit"
            disabled={act.busy}
            onClick={() =>
              act.run(async () => {
                setAudit(await get('/ledger/audit'));
              })
            }
          >
            {tr(L.audit)}
          </button>
        </div>
      </form>
      <Err error={act.error} />
      {done && (
        <p class="ok-text" data-testid="fund-done">
          {done.amount_uld} ULD · {tr(L.txid)} <code>{done.txid}</code>
        </p>
      )}
      {audit !== null && <AuditResult audit={audit as Audit} />}
    </Card>
  );
}

interface Audit {
  issued: number;
  held: number;
  mismatched: number[];
  negative: number[];
  transfers: number;
}

function AuditResult({ audit }: { audit: Audit }) {
  const ok = audit.issued === audit.held && !audit.mismatched?.length && !audit.negative?.length;
  return (
    <div data-testid="audit-result">
      <span class={ok ? 'badge ok' : 'badge bad'}>{ok ? tr(L.auditOk) : tr(L.auditBad)}</span>
      <pre class="pre">{JSON.stringify(audit, null, 2)}</pre>
    </div>
  );
}

function Wallets({ appId }: { appId: number }) {
  const [page, setPage] = useState(1);
  const ws = useLoad(() => get<Paged<'wallets', Wallet>>(`/ledger/apps/${appId}/wallets`, { page, num: PAGE }), [appId, page]);
  const [form, setForm] = useState({ username: '', pay_password: '' });
  const act = useAction();
  return (
    <>
      <form
        class="form-row"
        data-testid="wallet-form"
        onSubmit={onSubmit(() =>
          act.run(async () => {
            await post(`/ledger/apps/${appId}/wallets`, { username: form.username.trim(), pay_password: form.pay_password });
            setForm({ username: '', pay_password: '' });
            ws.reload();
          }),
        )}
      >
        <Field label={tr(L.wallet)}>
          <input name="username" required maxLength={64} value={form.username} onInput={(e) => setForm({ ...form, username: e.currentTarget.value })} />
        </Field>
        <Field label={tr(L.payPassword)}>
          <input name="pay_password" type="password" autocomplete="new-password" required value={form.pay_password} onInput={(e) => setForm({ ...form, pay_password: e.currentTarget.value })} />
        </Field>
        <button type="submit" disabled={act.busy}>
          {tr(L.newWallet)}
        </button>
      </form>
      <Err error={act.error || ws.error} />
      <Table<Wallet>
        testid="wallets"
        rowKey={(w) => w.id}
        rows={ws.data?.wallets ?? []}
        cols={[
          { label: tr(L.wallet), render: (w) => w.username },
          { label: tr(L.balance), render: (w) => <span data-testid={`balance-${w.username}`}>{w.balance_uld}</span>, class: 'num' },
          { label: tr(L.held), render: (w) => w.held_uld, class: 'num' },
          { label: tr(L.lockedUntil), render: (w) => (w.locked_until ? fmtTime(w.locked_until) : '—') },
          { label: t('created'), render: (w) => fmtTime(w.created_at) },
        ]}
      />
      <Pager page={page} size={PAGE} total={ws.data?.total} onPage={setPage} />
    </>
  );
}

function Transfers({ appId }: { appId: number }) {
  const [page, setPage] = useState(1);
  const tx = useLoad(() => get<Paged<'transfers', Transfer>>(`/ledger/apps/${appId}/transfers`, { page, num: PAGE }), [appId, page]);
  const [form, setForm] = useState({ from: '', from_developer: false, pay_password: '', to: '', amount: '', idempotency_key: '' });
  const [last, setLast] = useState<Transfer | null>(null);
  const act = useAction();
  return (
    <>
      <form
        class="form-grid"
        data-testid="transfer-form"
        onSubmit={onSubmit(() =>
          act.run(async () => {
            const r = await post<Transfer>(`/ledger/apps/${appId}/transfers`, {
              ...(form.from_developer ? { from_developer: true } : { from: form.from.trim(), pay_password: form.pay_password }),
              to: form.to.trim(),
              amount: form.amount.trim(),
              idempotency_key: form.idempotency_key.trim() || `console-${Date.now()}-${Math.random().toString(36).slice(2)}`,
            });
            setLast(r);
            tx.reload();
          }),
        )}
      >
        <label class="check wide">
          <input type="checkbox" name="from_developer" checked={form.from_developer} onChange={(e) => setForm({ ...form, from_developer: e.currentTarget.checked })} />
          {tr(L.fromDeveloper)}
        </label>
        {!form.from_developer && (
          <>
            <Field label={tr(L.from)}>
              <input name="from" required maxLength={64} value={form.from} onInput={(e) => setForm({ ...form, from: e.currentTarget.value })} />
            </Field>
            <Field label={tr(L.payPassword)}>
              <input name="pay_password" type="password" autocomplete="off" value={form.pay_password} onInput={(e) => setForm({ ...form, pay_password: e.currentTarget.value })} />
            </Field>
          </>
        )}
        <Field label={tr(L.to)}>
          <input name="to" required maxLength={64} value={form.to} onInput={(e) => setForm({ ...form, to: e.currentTarget.value })} />
        </Field>
        <Field label={tr(L.amount)}>
          <input name="amount" required inputMode="decimal" pattern="[0-9]+(\.[0-9]{1,8})?" value={form.amount} onInput={(e) => setForm({ ...form, amount: e.currentTarget.value })} />
        </Field>
        <Field label={tr(L.idem)}>
          <input name="idempotency_key" maxLength={128} value={form.idempotency_key} onInput={(e) => setForm({ ...form, idempotency_key: e.currentTarget.value })} />
        </Field>
        <div class="form-actions">
          <button type="submit" class="primary" disabled={act.busy}>
            {tr(L.newTransfer)}
          </button>
        </div>
      </form>
      <Err error={act.error || tx.error} />
      {last && (
        <p class="ok-text" data-testid="transfer-done">
          {last.amount_uld} ULD → {form.to} · <code>{last.txid}</code> {last.replayed && `(${tr(L.replayed)})`}
        </p>
      )}
      <Table<Transfer>
        testid="transfers"
        rowKey={(x) => x.id}
        rows={tx.data?.transfers ?? []}
        cols={[
          { label: t('created'), render: (x) => fmtTime(x.created_at) },
          { label: tr(L.kind), render: (x) => x.kind },
          { label: tr(L.debit), render: (x) => x.debit_account },
          { label: tr(L.credit), render: (x) => x.credit_account },
          { label: tr(L.amount), render: (x) => x.amount_uld, class: 'num' },
          { label: tr(L.txid), render: (x) => <code class="clip">{x.txid.slice(0, 16)}…</code> },
        ]}
      />
      <Pager page={page} size={PAGE} total={tx.data?.total} onPage={setPage} />
    </>
  );
}

function Contents({ appId }: { appId: number }) {
  const [page, setPage] = useState(1);
  const cs = useLoad(() => get<Paged<'contents', Content>>(`/ledger/apps/${appId}/contents`, { page, num: PAGE }), [appId, page]);
  return (
    <>
      <Err error={cs.error} />
      <Table<Content>
        testid="contents"
        rowKey={(c) => c.id}
        rows={cs.data?.contents ?? []}
        cols={[
          { label: tr(L.titleCol), render: (c) => c.title },
          { label: tr(L.author), render: (c) => c.author },
          { label: tr(L.price), render: (c) => c.price_uld, class: 'num' },
          { label: tr(L.claim), render: (c) => <Copy text={c.claim_id} /> },
          { label: t('created'), render: (c) => fmtTime(c.created_at) },
        ]}
      />
      <Pager page={page} size={PAGE} total={cs.data?.total} onPage={setPage} />
    </>
  );
}

function Statements({ appId }: { appId: number }) {
  const [q, setQ] = useState({ role: 'customer' as 'customer' | 'publisher', username: '' });
  const [shown, setShown] = useState<typeof q | null>(null);
  const [page, setPage] = useState(1);
  const st = useLoad(() => (shown ? get<Paged<'records', Purchase>>(`/ledger/apps/${appId}/statements`, { ...shown, page, num: PAGE }) : Promise.resolve(undefined)), [appId, JSON.stringify(shown), page]);
  const act = useAction();
  return (
    <>
      <form
        class="form-row"
        data-testid="statement-form"
        onSubmit={onSubmit(() => {
          setShown({ ...q, username: q.username.trim() });
          setPage(1);
        })}
      >
        <Field label={tr(L.role)}>
          <select name="role" value={q.role} onChange={(e) => setQ({ ...q, role: e.currentTarget.value as 'customer' | 'publisher' })}>
            <option value="customer">{tr(L.customerRole)}</option>
            <option value="publisher">{tr(L.publisher)}</option>
          </select>
        </Field>
        <Field label={tr(L.wallet)}>
          <input name="username" required maxLength={64} value={q.username} onInput={(e) => setQ({ ...q, username: e.currentTarget.value })} />
        </Field>
        <button type="submit">{tr(L.show)}</button>
        <button
          type="button"
          data-testid="statement-xlsx"
          disabled={!q.username.trim() || act.busy}
          onClick={() => act.run(() => download('GET', `/ledger/apps/${appId}/statements.xlsx`, `statement-${q.role}-${q.username.trim()}.xlsx`, undefined, { role: q.role, username: q.username.trim() }))}
        >
          {t('exportXlsx')}
        </button>
      </form>
      <Err error={st.error || act.error} />
      {shown && (
        <>
          <Table<Purchase>
            testid="statement"
            rowKey={(r) => r.id}
            rows={st.data?.records ?? []}
            cols={[
              { label: t('created'), render: (r) => fmtTime(r.created_at) },
              { label: tr(L.titleCol), render: (r) => r.title },
              { label: tr(L.author), render: (r) => r.author },
              { label: tr(L.customer), render: (r) => r.customer },
              { label: tr(L.price), render: (r) => r.price_uld, class: 'num' },
            ]}
          />
          <Pager page={page} size={PAGE} total={st.data?.total} onPage={setPage} />
        </>
      )}
    </>
  );
}
