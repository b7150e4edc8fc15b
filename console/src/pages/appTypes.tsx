import { useState } from 'preact/hooks';
import { del, get, post, put } from '../api';
import { t } from '../i18n';
import { useSession } from '../session';
import { Card, Err, Field, Loading, onSubmit, useAction, useLoad } from '../ui';

export interface AppTypeNode {
  id: number;
  name: string;
  des: string;
  parent_id: number | null;
  children?: AppTypeNode[];
}

export function flattenTypes(nodes: AppTypeNode[], depth = 0): { node: AppTypeNode; depth: number }[] {
  return nodes.flatMap((n) => [{ node: n, depth }, ...flattenTypes(n.children ?? [], depth + 1)]);
}

export function AppTypesPage() {
  const { me } = useSession();
  const tree = useLoad(() => get<AppTypeNode[]>('/app-types'), []);
  const act = useAction();
  const [form, setForm] = useState<{ id?: number; name: string; des: string; parent_id: string }>({ name: '', des: '', parent_id: '' });
  const flat = flattenTypes(tree.data ?? []);
  const save = () =>
    act.run(async () => {
      const body = { name: form.name.trim(), des: form.des, parent_id: form.parent_id ? Number(form.parent_id) : null };
      if (form.id) await put(`/app-types/${form.id}`, body);
      else await post('/app-types', body);
      setForm({ name: '', des: '', parent_id: '' });
      tree.reload();
    });

  const render = (nodes: AppTypeNode[]) => (
    <ul class="tree">
      {nodes.map((n) => (
        <li key={n.id} data-type-id={n.id}>
          <div class="tree-row">
            <strong>{n.name}</strong>
            {n.des && <span class="muted"> — {n.des}</span>}
            {me.operator && (
              <span class="row-actions">
                <button type="button" class="small" onClick={() => setForm({ name: '', des: '', parent_id: String(n.id) })}>
                  {t('addChild')}
                </button>
                <button type="button" class="small" onClick={() => setForm({ id: n.id, name: n.name, des: n.des, parent_id: n.parent_id ? String(n.parent_id) : '' })}>
                  {t('edit')}
                </button>
                <button
                  type="button"
                  class="small danger"
                  onClick={() =>
                    confirm(t('confirmDelete')) &&
                    act.run(async () => {
                      await del(`/app-types/${n.id}`);
                      tree.reload();
                    })
                  }
                >
                  {t('delete')}
                </button>
              </span>
            )}
          </div>
          {n.children?.length ? render(n.children) : null}
        </li>
      ))}
    </ul>
  );

  return (
    <>
      <h1>{t('appTypesTitle')}</h1>
      {me.operator ? (
        <Card title={form.id ? `${t('edit')} #${form.id}` : t('newAppType')}>
          <form class="form-grid" data-testid="app-type-form" onSubmit={onSubmit(save)}>
            <Field label={t('name')}>
              <input name="name" required maxLength={100} value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} />
            </Field>
            <Field label={t('description')}>
              <input name="des" maxLength={1000} value={form.des} onInput={(e) => setForm({ ...form, des: e.currentTarget.value })} />
            </Field>
            <Field label={t('parent')}>
              <select name="parent_id" value={form.parent_id} onChange={(e) => setForm({ ...form, parent_id: e.currentTarget.value })}>
                <option value="">{t('topLevel')}</option>
                {flat
                  .filter((f) => f.node.id !== form.id)
                  .map((f) => (
                    <option value={f.node.id}>{`${'— '.repeat(f.depth)}${f.node.name}`}</option>
                  ))}
              </select>
            </Field>
            <div class="form-actions">
              <button type="submit" class="primary" disabled={act.busy}>
                {form.id ? t('save') : t('create')}
              </button>
              {(form.id || form.parent_id) && (
                <button type="button" onClick={() => setForm({ name: '', des: '', parent_id: '' })}>
                  {t('cancel')}
                </button>
              )}
            </div>
          </form>
          <Err error={act.error} />
        </Card>
      ) : (
        <p class="muted">{t('readOnly')}</p>
      )}
      <Card testid="app-types">
        <Err error={tree.error} />
        {tree.loading && !tree.data ? <Loading /> : tree.data?.length ? render(tree.data) : <div class="empty">{t('empty')}</div>}
      </Card>
    </>
  );
}
