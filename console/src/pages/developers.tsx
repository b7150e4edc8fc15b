import { useState } from 'preact/hooks';
import { get, patch, post } from '../api';
import { t } from '../i18n';
import { useSession } from '../session';
import { Card, Err, Field, Loading, onSubmit, Table, useAction, useLoad } from '../ui';
import { TenantPicker, tenantName } from './common';

interface Developer {
  id: number;
  tenant_id: number;
  username: string;
  email: string | null;
  telephone: string | null;
  role: string;
}
interface Role {
  id: number;
  name: string;
  des: string;
}

export function DevelopersPage() {
  const { me, tenants } = useSession();
  const [tenant, setTenant] = useState<number | undefined>(undefined);
  const devs = useLoad(() => get<Developer[]>('/developers', { tenant_id: tenant }), [tenant]);
  const roles = useLoad(() => get<Role[]>('/roles').catch(() => [] as Role[]), []);
  const roleNames = roles.data?.length ? roles.data.map((r) => r.name) : ['admin', 'normal', 'blocked'];
  const act = useAction();
  const [form, setForm] = useState({ username: '', password: '', email: '', telephone: '', role: 'normal', tenant_id: '' });
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });
  const roleAct = useAction();
  const [roleForm, setRoleForm] = useState({ name: '', des: '' });

  return (
    <>
      <h1>{t('developersTitle')}</h1>
      <Card title={t('newDeveloper')}>
        <form
          class="form-grid"
          data-testid="developer-form"
          onSubmit={onSubmit(() =>
            act.run(async () => {
              await post('/developers', {
                username: form.username.trim(),
                password: form.password,
                email: form.email.trim() || null,
                telephone: form.telephone.trim() || null,
                ...(me.operator ? { role: form.role, ...(form.tenant_id ? { tenant_id: Number(form.tenant_id) } : {}) } : {}),
              });
              setForm({ ...form, username: '', password: '', email: '', telephone: '' });
              devs.reload();
            }),
          )}
        >
          <Field label={t('username')}>
            <input name="username" required maxLength={64} value={form.username} onInput={set('username')} />
          </Field>
          <Field label={t('password')}>
            <input name="password" type="password" required minLength={4} autocomplete="new-password" value={form.password} onInput={set('password')} />
          </Field>
          <Field label={t('email')}>
            <input name="email" type="email" value={form.email} onInput={set('email')} />
          </Field>
          <Field label={t('telephone')}>
            <input name="telephone" value={form.telephone} onInput={set('telephone')} />
          </Field>
          {me.operator && (
            <>
              <Field label={t('role')}>
                <select name="role" value={form.role} onChange={set('role')}>
                  {roleNames.map((r) => (
                    <option value={r}>{r}</option>
                  ))}
                </select>
              </Field>
              <Field label={t('tenant')}>
                <select name="tenant_id" value={form.tenant_id} onChange={set('tenant_id')}>
                  <option value="">{me.tenant.name}</option>
                  {tenants.map((tn) => (
                    <option value={tn.id}>
                      {tn.id} · {tn.name}
                    </option>
                  ))}
                </select>
              </Field>
            </>
          )}
          <div class="form-actions">
            <button type="submit" class="primary" disabled={act.busy}>
              {t('create')}
            </button>
          </div>
        </form>
        <Err error={act.error} />
      </Card>
      <Card actions={<TenantPicker value={tenant} onChange={setTenant} />}>
        <Err error={devs.error || roleAct.error} />
        {devs.loading && !devs.data ? (
          <Loading />
        ) : (
          <Table<Developer>
            testid="developers"
            rowKey={(r) => r.id}
            rows={devs.data ?? []}
            cols={[
              { label: t('id'), render: (r) => r.id },
              { label: t('username'), render: (r) => r.username },
              { label: t('tenant'), render: (r) => tenantName(tenants, r.tenant_id) },
              { label: t('email'), render: (r) => r.email ?? '—' },
              { label: t('telephone'), render: (r) => r.telephone ?? '—' },
              {
                label: t('role'),
                render: (r) =>
                  me.operator ? (
                    <select
                      aria-label={t('changeRole')}
                      data-testid={`role-${r.id}`}
                      value={r.role}
                      onChange={(e) => {
                        const role = e.currentTarget.value;
                        void roleAct.run(async () => {
                          await patch(`/developers/${r.id}`, { role });
                          devs.reload();
                        });
                      }}
                    >
                      {(roleNames.includes(r.role) ? roleNames : [...roleNames, r.role]).map((n) => (
                        <option value={n}>{n}</option>
                      ))}
                    </select>
                  ) : (
                    <span class="badge">{r.role}</span>
                  ),
              },
            ]}
          />
        )}
      </Card>
      <Card title={t('rolesTitle')}>
        <Table<Role>
          testid="roles"
          rowKey={(r) => r.id}
          rows={roles.data ?? []}
          cols={[
            { label: t('name'), render: (r) => r.name },
            { label: t('description'), render: (r) => r.des || '—' },
          ]}
        />
        {me.operator && (
          <form
            class="form-row"
            data-testid="role-form"
            onSubmit={onSubmit(() =>
              roleAct.run(async () => {
                await post('/roles', { name: roleForm.name.trim(), des: roleForm.des });
                setRoleForm({ name: '', des: '' });
                roles.reload();
              }),
            )}
          >
            <Field label={t('name')}>
              <input required maxLength={100} value={roleForm.name} onInput={(e) => setRoleForm({ ...roleForm, name: e.currentTarget.value })} />
            </Field>
            <Field label={t('description')}>
              <input maxLength={1000} value={roleForm.des} onInput={(e) => setRoleForm({ ...roleForm, des: e.currentTarget.value })} />
            </Field>
            <button type="submit" disabled={roleAct.busy}>
              {t('newRole')}
            </button>
          </form>
        )}
      </Card>
    </>
  );
}
