import { useState } from 'preact/hooks';
import { del, get, patch, post, servicesFromDoc } from '../api';
import type { AreaProps } from '../app';
import { fmtTime, t } from '../i18n';
import { go, href, navigate } from '../router';
import { useSession } from '../session';
import { Card, Copy, Err, Field, Loading, Modal, onSubmit, Table, useAction, useLoad } from '../ui';
import { flattenTypes, type AppTypeNode } from './appTypes';
import { TenantPicker, tenantName } from './common';

export interface AppRow {
  id: number;
  tenant_id: number;
  developer_id: number | null;
  type_id: number | null;
  name: string;
  description: string | null;
  key: string;
  expires_at: number | null;
  blocked: boolean;
  ip_allow: string[];
  services: string[];
  rate_limit: number | null;
  secret_rotated_until: number | null;
  created_at: number;
  updated_at: number;
}
type WithSecret = AppRow & { secret: string };

export function AppsPage({ rest }: AreaProps) {
  if (rest[0]) return <AppDetail id={Number(rest[0])} />;
  return <AppList />;
}

function SecretModal({ app, rotated, onClose }: { app: WithSecret; rotated?: boolean; onClose: () => void }) {
  return (
    <Modal title={t('secretTitle')} onClose={onClose} testid="secret-modal">
      <p class="warn">{t('secretOnce')}</p>
      <dl class="kv">
        <dt>{t('key')}</dt>
        <dd>
          <Copy text={app.key} testid="new-key" />
        </dd>
        <dt>{t('secret')}</dt>
        <dd>
          <Copy text={app.secret} testid="new-secret" />
        </dd>
      </dl>
      {rotated && app.secret_rotated_until && <p class="muted">{t('oldValidUntil', { t: fmtTime(app.secret_rotated_until) })}</p>}
      <div class="form-actions">
        <button type="button" class="primary" onClick={onClose}>
          {t('close')}
        </button>
      </div>
    </Modal>
  );
}

function ServicesBox({ value, onChange }: { value: string[]; onChange: (v: string[]) => void }) {
  const { doc } = useSession();
  const all = servicesFromDoc(doc);
  return (
    <div class="checks" data-testid="services">
      {all.map((s) => (
        <label class="check">
          <input type="checkbox" value={s} checked={value.includes(s) || value.includes('*')} onChange={(e) => onChange(e.currentTarget.checked ? [...value.filter((x) => x !== '*'), s] : value.filter((x) => x !== s && x !== '*'))} />
          {s}
        </label>
      ))}
    </div>
  );
}

function TypeSelect({ value, onChange }: { value: string; onChange: (v: string) => void }) {
  const types = useLoad(() => get<AppTypeNode[]>('/app-types'), []);
  return (
    <select name="type_id" value={value} onChange={(e) => onChange(e.currentTarget.value)}>
      <option value="">{t('none')}</option>
      {flattenTypes(types.data ?? []).map((f) => (
        <option value={f.node.id}>{`${'— '.repeat(f.depth)}${f.node.name}`}</option>
      ))}
    </select>
  );
}

function AppList() {
  const { me, tenants } = useSession();
  const [tenant, setTenant] = useState<number | undefined>(undefined);
  const apps = useLoad(() => get<AppRow[]>('/apps', { tenant_id: tenant }), [tenant]);
  const [created, setCreated] = useState<WithSecret | null>(null);
  const [form, setForm] = useState({ name: '', description: '', tenant_id: '', type_id: '', services: ['native'] as string[] });
  const act = useAction();
  return (
    <>
      <h1>{t('appsTitle')}</h1>
      <Card title={t('newApp')}>
        <form
          class="form-grid"
          data-testid="app-form"
          onSubmit={onSubmit(() =>
            act.run(async () => {
              const a = await post<WithSecret>('/apps', {
                name: form.name.trim(),
                description: form.description.trim() || null,
                services: form.services,
                ...(form.type_id ? { type_id: Number(form.type_id) } : {}),
                ...(me.operator && form.tenant_id ? { tenant_id: Number(form.tenant_id) } : {}),
              });
              setCreated(a);
              setForm({ ...form, name: '', description: '' });
              apps.reload();
            }),
          )}
        >
          <Field label={t('name')}>
            <input name="name" required maxLength={200} value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} />
          </Field>
          <Field label={t('description')}>
            <input name="description" maxLength={2000} value={form.description} onInput={(e) => setForm({ ...form, description: e.currentTarget.value })} />
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
          <Field label={t('appType')}>
            <TypeSelect value={form.type_id} onChange={(v) => setForm({ ...form, type_id: v })} />
          </Field>
          <Field label={t('services')} wide>
            <ServicesBox value={form.services} onChange={(v) => setForm({ ...form, services: v })} />
          </Field>
          <div class="form-actions">
            <button type="submit" class="primary" disabled={act.busy}>
              {t('create')}
            </button>
          </div>
        </form>
        <Err error={act.error} />
      </Card>
      <Card actions={<TenantPicker value={tenant} onChange={setTenant} />}>
        <Err error={apps.error} />
        {apps.loading && !apps.data ? (
          <Loading />
        ) : (
          <Table<AppRow>
            testid="apps"
            rowKey={(a) => a.id}
            rows={apps.data ?? []}
            onRow={(a) => navigate(`apps/${a.id}`)}
            cols={[
              { label: t('id'), render: (a) => a.id },
              {
                label: t('name'),
                render: (a) => (
                  <a href={href(`apps/${a.id}`)} onClick={go(`apps/${a.id}`)}>
                    {a.name}
                  </a>
                ),
              },
              { label: t('tenant'), render: (a) => tenantName(tenants, a.tenant_id) },
              { label: t('key'), render: (a) => <code>{a.key}</code> },
              { label: t('services'), render: (a) => a.services.join(' ') },
              { label: t('status'), render: (a) => (a.blocked ? <span class="badge bad">{t('blocked')}</span> : <span class="badge ok">{t('active')}</span>) },
            ]}
          />
        )}
      </Card>
      {created && <SecretModal app={created} onClose={() => setCreated(null)} />}
    </>
  );
}

const toLocalInput = (ms: number | null) => (ms ? new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 16) : '');

function AppDetail({ id }: { id: number }) {
  const { tenants } = useSession();
  const app = useLoad(() => get<AppRow>(`/apps/${id}`), [id]);
  if (app.error) return <Err error={app.error} />;
  if (!app.data) return <Loading />;
  return <AppEditor key={app.data.id} app={app.data} tenantLabel={tenantName(tenants, app.data.tenant_id)} reload={app.reload} />;
}

function AppEditor({ app, tenantLabel, reload }: { app: AppRow; tenantLabel: string; reload: () => void }) {
  const [form, setForm] = useState({
    name: app.name,
    description: app.description ?? '',
    type_id: app.type_id ? String(app.type_id) : '',
    services: app.services,
    ip_allow: app.ip_allow.join('\n'),
    rate_limit: app.rate_limit === null ? '' : String(app.rate_limit),
    expires_at: toLocalInput(app.expires_at),
  });
  const [grace, setGrace] = useState('86400');
  const [rotated, setRotated] = useState<WithSecret | null>(null);
  const [saved, setSaved] = useState(false);
  const act = useAction();
  const save = () =>
    act.run(async () => {
      await patch(`/apps/${app.id}`, {
        name: form.name.trim(),
        description: form.description.trim() || null,
        type_id: form.type_id ? Number(form.type_id) : null,
        services: form.services,
        ip_allow: form.ip_allow
          .split(/[\s,]+/)
          .map((s) => s.trim())
          .filter(Boolean),
        rate_limit: form.rate_limit === '' ? null : Number(form.rate_limit),
        expires_at: form.expires_at ? new Date(form.expires_at).getTime() : null,
      });
      setSaved(true);
      reload();
    });
  return (
    <>
      <p>
        <a href={href('apps')} onClick={go('apps')}>
          ← {t('back')}
        </a>
      </p>
      <h1 data-testid="app-title">
        {app.name} {app.blocked ? <span class="badge bad">{t('blocked')}</span> : <span class="badge ok">{t('active')}</span>}
      </h1>
      <Card>
        <dl class="kv">
          <dt>{t('id')}</dt>
          <dd>{app.id}</dd>
          <dt>{t('tenant')}</dt>
          <dd>{tenantLabel}</dd>
          <dt>{t('key')}</dt>
          <dd>
            <Copy text={app.key} />
          </dd>
          <dt>{t('created')}</dt>
          <dd>{fmtTime(app.created_at)}</dd>
          <dt>{t('updated')}</dt>
          <dd>{fmtTime(app.updated_at)}</dd>
          {app.secret_rotated_until && app.secret_rotated_until > Date.now() && (
            <>
              <dt>{t('rotate')}</dt>
              <dd>{t('oldValidUntil', { t: fmtTime(app.secret_rotated_until) })}</dd>
            </>
          )}
        </dl>
        <div class="form-actions">
          <button
            type="button"
            class={app.blocked ? '' : 'danger'}
            data-testid="block"
            disabled={act.busy}
            onClick={() =>
              act.run(async () => {
                await patch(`/apps/${app.id}`, { blocked: !app.blocked });
                reload();
              })
            }
          >
            {app.blocked ? t('unblock') : t('block')}
          </button>
          <button
            type="button"
            class="danger"
            data-testid="delete-app"
            disabled={act.busy}
            onClick={() =>
              confirm(t('confirmDelete')) &&
              act.run(async () => {
                await del(`/apps/${app.id}`);
                navigate('apps');
              })
            }
          >
            {t('delete')}
          </button>
        </div>
        <Err error={act.error} />
      </Card>
      <Card title={t('rotate')}>
        <form
          class="form-row"
          data-testid="rotate-form"
          onSubmit={onSubmit(() =>
            act.run(async () => {
              setRotated(await post<WithSecret>(`/apps/${app.id}/rotate`, { grace_seconds: Number(grace) }));
            }),
          )}
        >
          <Field label={t('graceSeconds')}>
            <input name="grace_seconds" type="number" min={0} max={2592000} required value={grace} onInput={(e) => setGrace(e.currentTarget.value)} />
          </Field>
          <button type="submit" disabled={act.busy}>
            {t('rotate')}
          </button>
        </form>
      </Card>
      <Card title={t('appSettings')}>
        <form class="form-grid" data-testid="app-settings" onSubmit={onSubmit(save)} onInput={() => setSaved(false)}>
          <Field label={t('name')}>
            <input name="name" required maxLength={200} value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} />
          </Field>
          <Field label={t('description')}>
            <input name="description" maxLength={2000} value={form.description} onInput={(e) => setForm({ ...form, description: e.currentTarget.value })} />
          </Field>
          <Field label={t('appType')}>
            <TypeSelect value={form.type_id} onChange={(v) => setForm({ ...form, type_id: v })} />
          </Field>
          <Field label={t('rateLimit')}>
            <input name="rate_limit" type="number" min={0} step={1} value={form.rate_limit} onInput={(e) => setForm({ ...form, rate_limit: e.currentTarget.value })} />
          </Field>
          <Field label={t('expiresAt')}>
            <input name="expires_at" type="datetime-local" value={form.expires_at} onInput={(e) => setForm({ ...form, expires_at: e.currentTarget.value })} />
          </Field>
          <Field label={t('services')} wide>
            <ServicesBox value={form.services} onChange={(v) => setForm({ ...form, services: v })} />
          </Field>
          <Field label={t('ipAllow')} wide>
            <textarea name="ip_allow" rows={3} value={form.ip_allow} onInput={(e) => setForm({ ...form, ip_allow: e.currentTarget.value })} />
          </Field>
          <div class="form-actions">
            <button type="submit" class="primary" disabled={act.busy}>
              {t('save')}
            </button>
            {saved && <span class="ok-text">{t('saved')}</span>}
          </div>
        </form>
      </Card>
      {rotated && (
        <SecretModal
          app={rotated}
          rotated
          onClose={() => {
            setRotated(null);
            reload();
          }}
        />
      )}
    </>
  );
}
