import { useState } from 'preact/hooks';
import { post } from '../api';
import { fmtTime, t } from '../i18n';
import { useSession, type Tenant } from '../session';
import { Card, Err, Field, onSubmit, Table, useAction } from '../ui';

export function TenantsPage() {
  const { me, tenants, reloadTenants } = useSession();
  const [name, setName] = useState('');
  const act = useAction();
  return (
    <>
      <h1>{t('tenantsTitle')}</h1>
      {me.operator && (
        <Card title={t('newTenant')}>
          <form
            class="form-row"
            data-testid="tenant-form"
            onSubmit={onSubmit(() =>
              act.run(async () => {
                await post('/tenants', { name: name.trim() });
                setName('');
                reloadTenants();
              }),
            )}
          >
            <Field label={t('tenantName')}>
              <input name="name" required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
            </Field>
            <button type="submit" class="primary" disabled={act.busy}>
              {t('create')}
            </button>
          </form>
          <Err error={act.error} />
        </Card>
      )}
      <Card>
        <Table<Tenant>
          testid="tenants"
          rowKey={(r) => r.id}
          rows={tenants}
          cols={[
            { label: t('id'), render: (r) => r.id },
            { label: t('name'), render: (r) => r.name },
            { label: t('created'), render: (r) => fmtTime(r.created_at) },
          ]}
        />
      </Card>
    </>
  );
}
