/** Short links: list, create, retarget, disable, QR image, scan statistics (REST /links). */
import { useState } from 'preact/hooks';
import { get, patch, post } from '../api';
import type { AreaProps } from '../app';
import { fmtTime, t, tr } from '../i18n';
import { go, href, navigate } from '../router';
import { useSession } from '../session';
import { Card, Copy, Err, Field, Loading, onSubmit, Pager, Table, useAction, useLoad } from '../ui';
import { TenantPicker, tenantName } from './common';
import { QrPreview } from './qr';
import { StatsPanel } from './stats';

interface Link {
  id: number;
  code: string;
  short_url: string;
  tenant_id: number;
  kind: 'url' | 'code' | 'report';
  target_ref: string;
  url: string | null;
  created_at: number;
  disabled: boolean;
}

const L = {
  title: ['短链接', 'Short links'],
  newLink: ['新建短链接', 'New short link'],
  url: ['目标网址', 'Target URL'],
  ref: ['幂等键（可选，默认为网址）', 'Idempotency key (optional; default: the URL)'],
  code: ['短码', 'Code'],
  shortUrl: ['短链接', 'Short link'],
  kind: ['类型', 'Kind'],
  target: ['目标', 'Target'],
  disabled: ['已停用', 'disabled'],
  enable: ['启用', 'Enable'],
  disable: ['停用', 'Disable'],
  kinds: { url: ['网址跳转', 'redirect'], code: ['动态码', 'dynamic code'], report: ['报告', 'report'] },
  allScans: ['全部链接的扫描', 'Scans of all links'],
} as const;

const PAGE = 20;

export function LinksPage({ rest }: AreaProps) {
  if (rest[0]) return <LinkDetail code={decodeURIComponent(rest[0])} />;
  return <LinkList />;
}

function LinkList() {
  const { me, tenants } = useSession();
  const [tenant, setTenant] = useState<number | undefined>(undefined);
  const [kind, setKind] = useState('');
  const [page, setPage] = useState(1);
  const links = useLoad(() => get<Link[]>('/links', { tenant_id: tenant, kind, limit: PAGE, offset: (page - 1) * PAGE }), [tenant, kind, page]);
  const [form, setForm] = useState({ url: '', ref: '', tenant_id: '' });
  const act = useAction();
  return (
    <>
      <h1>{tr(L.title)}</h1>
      <Card title={tr(L.newLink)}>
        <form
          class="form-grid"
          data-testid="link-form"
          onSubmit={onSubmit(() =>
            act.run(async () => {
              const l = await post<Link>('/links', { url: form.url.trim(), ...(form.ref.trim() ? { ref: form.ref.trim() } : {}), ...(me.operator && form.tenant_id ? { tenant_id: Number(form.tenant_id) } : {}) });
              navigate(`links/${encodeURIComponent(l.code)}`);
            }),
          )}
        >
          <Field label={tr(L.url)}>
            <input name="url" type="url" required maxLength={2048} placeholder="https://" value={form.url} onInput={(e) => setForm({ ...form, url: e.currentTarget.value })} />
          </Field>
          <Field label={tr(L.ref)}>
            <input name="ref" maxLength={200} value={form.ref} onInput={(e) => setForm({ ...form, ref: e.currentTarget.value })} />
          </Field>
          {me.operator && (
            <Field label={t('tenant')}>
              <select name="tenant_id" value={form.tenant_id} onChange={(e) => setForm({ ...form, tenant_id: e.currentTarget.value })}>
                <option value="">{me.tenant.name}</option>
                {tenants.map((tn) => (
                  <option value={tn.id}>
                    {tn.id} · {tn.name}
                  </option>
                ))}
              </select>
            </Field>
          )}
          <div class="form-actions">
            <button type="submit" class="primary" disabled={act.busy}>
              {t('create')}
            </button>
          </div>
        </form>
        <Err error={act.error} />
      </Card>
      <Card
        actions={
          <>
            <TenantPicker
              value={tenant}
              onChange={(v) => {
                setTenant(v);
                setPage(1);
              }}
            />
            <label class="field inline">
              <span>{tr(L.kind)}</span>
              <select
                value={kind}
                onChange={(e) => {
                  setKind(e.currentTarget.value);
                  setPage(1);
                }}
              >
                <option value="">{t('all')}</option>
                {(['url', 'code', 'report'] as const).map((k) => (
                  <option value={k}>{tr(L.kinds[k])}</option>
                ))}
              </select>
            </label>
          </>
        }
      >
        <Err error={links.error} />
        {links.loading && !links.data ? (
          <Loading />
        ) : (
          <Table<Link>
            testid="links"
            rowKey={(l) => l.code}
            rows={links.data ?? []}
            cols={[
              {
                label: tr(L.code),
                render: (l) => (
                  <a href={href(`links/${l.code}`)} onClick={go(`links/${l.code}`)}>
                    <code>{l.code}</code>
                  </a>
                ),
              },
              { label: tr(L.kind), render: (l) => tr(L.kinds[l.kind]) },
              { label: tr(L.target), render: (l) => <span class="clip">{l.url ?? l.target_ref}</span> },
              { label: t('tenant'), render: (l) => tenantName(tenants, l.tenant_id) },
              { label: t('created'), render: (l) => fmtTime(l.created_at) },
              { label: t('status'), render: (l) => (l.disabled ? <span class="badge bad">{tr(L.disabled)}</span> : <span class="badge ok">{t('active')}</span>) },
            ]}
          />
        )}
        <Pager page={page} size={PAGE} more={(links.data?.length ?? 0) >= PAGE} onPage={setPage} />
      </Card>
      <StatsPanel path="/links-stats" query={{ tenant_id: tenant }} title={tr(L.allScans)} />
    </>
  );
}

function LinkDetail({ code }: { code: string }) {
  const link = useLoad(() => get<Link>(`/links/${encodeURIComponent(code)}`), [code]);
  const [url, setUrl] = useState<string | null>(null);
  const act = useAction();
  const l = link.data;
  if (link.error) return <Err error={link.error} />;
  if (!l) return <Loading />;
  const path = `/links/${encodeURIComponent(l.code)}`;
  return (
    <>
      <p>
        <a href={href('links')} onClick={go('links')}>
          ← {t('back')}
        </a>
      </p>
      <h1 data-testid="link-title">
        <code>{l.code}</code> {l.disabled ? <span class="badge bad">{tr(L.disabled)}</span> : <span class="badge ok">{t('active')}</span>}
      </h1>
      <Card>
        <dl class="kv">
          <dt>{tr(L.shortUrl)}</dt>
          <dd>
            <Copy text={l.short_url} testid="short-url" />
          </dd>
          <dt>{tr(L.kind)}</dt>
          <dd>{tr(L.kinds[l.kind])}</dd>
          <dt>{tr(L.target)}</dt>
          <dd class="clip">{l.url ?? l.target_ref}</dd>
          <dt>{t('created')}</dt>
          <dd>{fmtTime(l.created_at)}</dd>
        </dl>
        {l.kind === 'url' && (
          <form
            class="form-row"
            data-testid="link-url-form"
            onSubmit={onSubmit(() =>
              act.run(async () => {
                await patch(path, { url: (url ?? l.url ?? '').trim() });
                link.reload();
              }),
            )}
          >
            <Field label={tr(L.url)}>
              <input name="url" type="url" required maxLength={2048} value={url ?? l.url ?? ''} onInput={(e) => setUrl(e.currentTarget.value)} />
            </Field>
            <button type="submit" disabled={act.busy}>
              {t('save')}
            </button>
          </form>
        )}
        <div class="form-actions">
          <button
            type="button"
            data-testid="link-toggle"
            class={l.disabled ? '' : 'danger'}
            disabled={act.busy}
            onClick={() =>
              act.run(async () => {
                await patch(path, { disabled: !l.disabled });
                link.reload();
              })
            }
          >
            {l.disabled ? tr(L.enable) : tr(L.disable)}
          </button>
        </div>
        <Err error={act.error} />
      </Card>
      <Card>
        <QrPreview path={`${path}/qr`} name={l.code} />
      </Card>
      <StatsPanel path={`${path}/stats`} />
    </>
  );
}
