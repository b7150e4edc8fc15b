import { useState } from 'preact/hooks';
import { get, post } from '../api';
import { fmtNumber, t } from '../i18n';
import { useSession } from '../session';
import { Card, Err, Field, Loading, Meter, onSubmit, Table, useAction, useLoad } from '../ui';

interface Quota {
  tenant_id: number;
  service: string;
  remaining: number;
}

/** Quota-metered services; Fangtang photo uploads are the one the seeds document. */
const QUOTA_SERVICES = ['fangtang'];

export function QuotasPage() {
  const { me, tenants } = useSession();
  const shown = me.operator ? tenants : tenants.filter((x) => x.id === me.tenant_id);
  const list = useLoad(
    () => Promise.all(shown.flatMap((tn) => QUOTA_SERVICES.map((service) => get<Quota>('/quotas', { tenant_id: tn.id, service })))),
    [shown.map((x) => x.id).join(',')],
  );
  const max = Math.max(1, ...(list.data ?? []).map((q) => q.remaining));
  const act = useAction();
  const [form, setForm] = useState({ tenant_id: '', service: 'fangtang', units: '100' });
  return (
    <>
      <h1>{t('quotasTitle')}</h1>
      <Card>
        <Err error={list.error} />
        {list.loading && !list.data ? (
          <Loading />
        ) : (
          <Table<Quota>
            testid="quotas"
            rowKey={(q) => `${q.tenant_id}:${q.service}`}
            rows={list.data ?? []}
            cols={[
              { label: t('tenant'), render: (q) => shown.find((x) => x.id === q.tenant_id)?.name ?? q.tenant_id },
              { label: t('service'), render: (q) => (q.service === 'fangtang' ? t('fangtangUploads') : q.service) },
              { label: t('remaining'), render: (q) => <span data-testid={`quota-${q.tenant_id}-${q.service}`}>{fmtNumber(q.remaining)}</span>, class: 'num' },
              { label: '', render: (q) => <Meter value={q.remaining} max={max} label={t('remaining')} /> },
            ]}
          />
        )}
      </Card>
      {me.operator && (
        <Card title={t('topUp')}>
          <form
            class="form-grid"
            data-testid="topup-form"
            onSubmit={onSubmit(() =>
              act.run(async () => {
                await post('/quotas', { tenant_id: Number(form.tenant_id), service: form.service.trim(), units: Number(form.units) });
                list.reload();
              }),
            )}
          >
            <Field label={t('tenant')}>
              <select name="tenant_id" required value={form.tenant_id} onChange={(e) => setForm({ ...form, tenant_id: e.currentTarget.value })}>
                <option value="" disabled>
                  —
                </option>
                {tenants.map((tn) => (
                  <option value={tn.id}>
                    {tn.id} · {tn.name}
                  </option>
                ))}
              </select>
            </Field>
            <Field label={t('service')}>
              <input name="service" required maxLength={40} list="quota-services" value={form.service} onInput={(e) => setForm({ ...form, service: e.currentTarget.value })} />
              <datalist id="quota-services">
                {QUOTA_SERVICES.map((s) => (
                  <option value={s} />
                ))}
              </datalist>
            </Field>
            <Field label={t('units')}>
              <input name="units" type="number" required step={1} value={form.units} onInput={(e) => setForm({ ...form, units: e.currentTarget.value })} />
            </Field>
            <div class="form-actions">
              <button type="submit" class="primary" disabled={act.busy}>
                {t('topUp')}
              </button>
            </div>
          </form>
          <Err error={act.error} />
        </Card>
      )}
    </>
  );
}
