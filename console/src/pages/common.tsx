import { t } from '../i18n';
import { useSession } from '../session';

/** Operators pick a tenant (or all); developers see their own and nothing to pick. */
export function TenantPicker({ value, onChange, allowAll = true, label }: { value: number | undefined; onChange: (id: number | undefined) => void; allowAll?: boolean; label?: string }) {
  const { me, tenants } = useSession();
  if (!me.operator) return null;
  return (
    <label class="field inline">
      <span>{label ?? t('tenant')}</span>
      <select data-testid="tenant-picker" value={value === undefined ? '' : String(value)} onChange={(e) => onChange(e.currentTarget.value ? Number(e.currentTarget.value) : undefined)}>
        {allowAll && <option value="">{t('all')}</option>}
        {tenants.map((tn) => (
          <option value={tn.id}>
            {tn.id} · {tn.name}
          </option>
        ))}
      </select>
    </label>
  );
}

export function tenantName(tenants: { id: number; name: string }[], id: number): string {
  return tenants.find((x) => x.id === id)?.name ?? `#${id}`;
}
