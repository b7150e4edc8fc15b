/** Declared objects (the BQP schema): objects, their fields and rules, and a rows browser with a `cond` filter bar for operators (REST /objects). */
import { useState } from 'preact/hooks';
import { ApiError, get, patch, REST } from '../api';
import type { AreaProps } from '../app';
import { fmtNumber, t, tr } from '../i18n';
import { go, href, navigate } from '../router';
import { useSession } from '../session';
import { Card, Err, Field, Loading, Modal, onSubmit, Table, Tabs, useAction, useLoad } from '../ui';
import { BackLink } from './common';

interface ObjField {
  name: string;
  type: string;
  length: number;
  required: boolean;
  readonly: boolean;
  readonly_for: string[];
  hidden: boolean;
  password: boolean;
  enum: Record<string, string> | null;
  attachment: boolean;
}
interface ObjDef {
  name: string;
  fields: ObjField[];
  virtual_fields: { name: string; type: string; object: string; field: string; default: boolean }[];
  sub_objects: { name: string; object: string; foreign_key: string; default: boolean }[];
  operations: Record<string, string[] | undefined>;
  row_filters: Record<string, Record<string, string> | undefined>;
  max_page_size: number;
}
interface Rows {
  columns: string[];
  items: Record<string, unknown>[];
  next_cursor: string | null;
  total: number | null;
}

const L = {
  title: ['对象', 'Objects'],
  intro: ['BQP 接口（/api/<对象>.query 等）按模式文件声明的对象。字段、规则与各角色可用的操作如下；运营者可浏览数据。', 'The objects the BQP API (/api/<Obj>.query and the rest) serves, as declared in the schema file: their fields, rules and the operations of each role. Operators can browse the rows.'],
  object: ['对象', 'Object'],
  fieldsN: ['字段数', 'Fields'],
  adminOps: ['管理员操作', 'Admin operations'],
  guestOps: ['访客操作', 'Guest operations'],
  fields: ['字段', 'Fields'],
  rows: ['数据', 'Rows'],
  type: ['类型', 'Type'],
  rules: ['规则', 'Rules'],
  values: ['枚举值', 'Values'],
  required: ['必填', 'required'],
  readonly: ['只读', 'readonly'],
  readonlyFor: ['只读（{r}）', 'readonly for {r}'],
  hidden: ['隐藏', 'hidden'],
  password: ['密码', 'password'],
  virtual: ['虚拟字段', 'Virtual fields'],
  via: ['来自', 'From'],
  subObjects: ['子对象', 'Sub-objects'],
  foreignKey: ['外键', 'Foreign key'],
  inDefault: ['默认返回', 'in res=*'],
  roles: ['角色与操作', 'Roles and operations'],
  role: ['角色', 'Role'],
  ops: ['操作', 'Operations'],
  rowFilter: ['行过滤', 'Row filter'],
  cond: ['条件（cond）', 'Condition (cond)'],
  condHint: ["例如 status='CR' and amount>100，或 name like '%店%'", "e.g. status='CR' and amount>100, or name like '%shop%'"],
  orderby: ['排序（orderby）', 'Order (orderby)'],
  pageSize: ['每页', 'Per page'],
  operatorsOnly: ['数据只对运营者开放：对象的表属于整个部署，不分租户。', 'Rows are for operators only: the objects’ tables belong to the whole deployment, not to a tenant.'],
  first: ['第一页', 'First page'],
  maxPage: ['每页最多 {n} 行', 'at most {n} rows a page'],
  editRow: ['编辑 {o} #{id}', 'Edit {o} #{id}'],
  saved: ['已保存', 'Saved'],
  noChange: ['没有修改', 'Nothing changed'],
  file: ['文件 #{id}', 'file #{id}'],
  editHint: ['按管理员角色的规则保存（与 BQP 的 set 相同）：只读字段不可改，空值清除字段。', 'Saved under the admin role’s rules, as a BQP set: readonly fields cannot change; an empty value clears a field.'],
} as const;

const ROLES = ['guest', 'user', 'employee', 'admin'] as const;

export function ObjectsPage({ rest }: AreaProps) {
  if (rest[0]) return <ObjectDetail name={decodeURIComponent(rest[0])} />;
  return <ObjectList />;
}

function ObjectList() {
  const list = useLoad(() => get<ObjDef[]>('/objects'), []);
  return (
    <>
      <h1>{tr(L.title)}</h1>
      <p class="muted">{tr(L.intro)}</p>
      <Card>
        <Err error={list.error} />
        {!list.data ? (
          <Loading />
        ) : (
          <Table<ObjDef>
            testid="objects"
            rowKey={(o) => o.name}
            rows={list.data}
            onRow={(o) => navigate(`objects/${o.name}`)}
            cols={[
              {
                label: tr(L.object),
                render: (o) => (
                  <a href={href(`objects/${o.name}`)} onClick={go(`objects/${o.name}`)}>
                    <code>{o.name}</code>
                  </a>
                ),
              },
              { label: tr(L.fieldsN), render: (o) => o.fields.filter((f) => !f.hidden).length + o.virtual_fields.length, class: 'num' },
              { label: tr(L.guestOps), render: (o) => (o.operations.guest ?? []).join(' ') || '—' },
              { label: tr(L.adminOps), render: (o) => (o.operations.admin ?? []).join(' ') || '—' },
            ]}
          />
        )}
      </Card>
    </>
  );
}

function Flags({ f }: { f: ObjField }) {
  const flags: [string, string][] = [];
  if (f.required) flags.push(['warn', tr(L.required)]);
  if (f.readonly) flags.push(['', tr(L.readonly)]);
  else if (f.readonly_for.length) flags.push(['', tr(L.readonlyFor).replace('{r}', f.readonly_for.join(', '))]);
  if (f.hidden) flags.push(['bad', tr(L.hidden)]);
  if (f.password) flags.push(['bad', tr(L.password)]);
  if (!flags.length) return <span class="muted">—</span>;
  return (
    <span class="checks">
      {flags.map(([cls, text]) => (
        <span class={`badge ${cls}`}>{text}</span>
      ))}
    </span>
  );
}

function ObjectDetail({ name }: { name: string }) {
  const { me } = useSession();
  const def = useLoad(() => get<ObjDef>(`/objects/${encodeURIComponent(name)}`), [name]);
  const [tab, setTab] = useState<'fields' | 'rows'>('rows');
  const o = def.data;
  if (def.error) return <Err error={def.error} />;
  if (!o) return <Loading />;
  return (
    <>
      <BackLink to="objects" />
      <h1 data-testid="object-title">
        <code>{o.name}</code>
      </h1>
      {me.operator ? (
        <>
          <Tabs
            tabs={[
              ['rows', tr(L.rows)],
              ['fields', tr(L.fields)],
            ]}
            value={tab}
            onChange={setTab}
          />
          {tab === 'rows' ? <RowsBrowser def={o} /> : <Schema def={o} />}
        </>
      ) : (
        <>
          <p class="muted" data-testid="operators-only">
            {tr(L.operatorsOnly)}
          </p>
          <Schema def={o} />
        </>
      )}
    </>
  );
}

function Schema({ def: o }: { def: ObjDef }) {
  return (
    <>
      <Card title={tr(L.fields)} testid="object-fields">
        <Table<ObjField>
          testid="fields"
          rowKey={(f) => f.name}
          rows={o.fields}
          cols={[
            { label: t('name'), render: (f) => <code>{f.name}</code> },
            { label: tr(L.type), render: (f) => `${f.type}${f.length ? `(${f.length})` : ''}` },
            { label: tr(L.rules), render: (f) => <Flags f={f} /> },
            {
              label: tr(L.values),
              render: (f) =>
                f.enum ? (
                  <span class="checks">
                    {Object.entries(f.enum).map(([k, v]) => (
                      <span>
                        <code>{k}</code> {v}
                      </span>
                    ))}
                  </span>
                ) : (
                  ''
                ),
            },
          ]}
        />
      </Card>
      {o.virtual_fields.length > 0 && (
        <Card title={tr(L.virtual)}>
          <Table
            rowKey={(v) => v.name}
            rows={o.virtual_fields}
            cols={[
              { label: t('name'), render: (v) => <code>{v.name}</code> },
              { label: tr(L.type), render: (v) => v.type },
              { label: tr(L.via), render: (v) => <code>{`${v.object}.${v.field}`}</code> },
              { label: tr(L.inDefault), render: (v) => (v.default ? t('yes') : t('no')) },
            ]}
          />
        </Card>
      )}
      {o.sub_objects.length > 0 && (
        <Card title={tr(L.subObjects)}>
          <Table
            rowKey={(s) => s.name}
            rows={o.sub_objects}
            cols={[
              { label: t('name'), render: (s) => <code>{s.name}</code> },
              {
                label: tr(L.object),
                render: (s) => (
                  <a href={href(`objects/${s.object}`)} onClick={go(`objects/${s.object}`)}>
                    <code>{s.object}</code>
                  </a>
                ),
              },
              { label: tr(L.foreignKey), render: (s) => <code>{s.foreign_key}</code> },
              { label: tr(L.inDefault), render: (s) => (s.default ? t('yes') : t('no')) },
            ]}
          />
        </Card>
      )}
      <Card title={tr(L.roles)} testid="object-roles">
        <Table
          rowKey={(r) => r}
          rows={[...ROLES]}
          cols={[
            { label: tr(L.role), render: (r) => r },
            { label: tr(L.ops), render: (r) => (o.operations[r] ?? []).join(' ') || '—' },
            {
              label: tr(L.rowFilter),
              render: (r) =>
                Object.entries(o.row_filters[r] ?? {})
                  .map(([f, v]) => `${f} = $${v}`)
                  .join(', ') || '—',
            },
          ]}
        />
        <p class="muted">{tr(L.maxPage).replace('{n}', fmtNumber(o.max_page_size))}</p>
      </Card>
    </>
  );
}

const attUrl = (obj: string, id: string, thumb = false) => `${REST}/objects/${encodeURIComponent(obj)}/attachments/${encodeURIComponent(id)}${thumb ? '?thumb=true' : ''}`;

/** An attachment id (or a comma-separated list): images as small pictures, other files as download links. */
function AttPreview({ obj, value }: { obj: string; value: unknown }) {
  const ids = cellText(value)
    .split(',')
    .map((x) => x.trim().split(':')[0])
    .filter((x) => /^\d{1,15}$/.test(x));
  if (!ids.length) return <span class="muted">{cellText(value)}</span>;
  return (
    <span class="checks">
      {ids.map((id) => (
        <AttOne obj={obj} id={id} />
      ))}
    </span>
  );
}

function AttOne({ obj, id }: { obj: string; id: string }) {
  const [notImage, setNotImage] = useState(false);
  const url = attUrl(obj, id);
  return (
    <a href={url} target="_blank" rel="noopener" data-testid="att-link" data-att={id}>
      {notImage ? tr(L.file).replace('{id}', id) : <img class="att-thumb" src={url} alt={tr(L.file).replace('{id}', id)} loading="lazy" onError={() => setNotImage(true)} />}
    </a>
  );
}

const editable = (f: ObjField) => f.name !== 'id' && !f.hidden && !f.password;
const locked = (f: ObjField) => f.readonly || f.readonly_for.includes('admin');

/** The value a form shows for a stored one: enums by their key (a query may answer with the text). */
function formValue(f: ObjField, v: unknown): string {
  const s = cellText(v);
  if (f.enum && !(s in f.enum)) return Object.entries(f.enum).find(([, text]) => text === s)?.[0] ?? s;
  return s;
}

function EditRow({ def, row, onClose, onSaved }: { def: ObjDef; row: Record<string, unknown>; onClose: () => void; onSaved: () => void }) {
  const fields = def.fields.filter(editable);
  const initial = Object.fromEntries(fields.map((f) => [f.name, formValue(f, row[f.name])]));
  const [form, setForm] = useState<Record<string, string>>(initial);
  const [note, setNote] = useState('');
  const act = useAction();
  const fieldErr = act.error instanceof ApiError && act.error.field ? act.error.field : null;
  const id = String(row.id);
  return (
    <Modal title={tr(L.editRow).replace('{o}', def.name).replace('{id}', id)} onClose={onClose} testid="edit-row">
      <form
        data-testid="edit-form"
        onSubmit={onSubmit(async () => {
          const changed = Object.fromEntries(fields.filter((f) => !locked(f) && form[f.name] !== initial[f.name]).map((f) => [f.name, form[f.name] === '' ? null : form[f.name]]));
          if (!Object.keys(changed).length) return setNote(tr(L.noChange));
          const r = await act.run(() => patch(`/objects/${encodeURIComponent(def.name)}/rows/${encodeURIComponent(id)}`, changed));
          if (r) {
            setNote(tr(L.saved));
            onSaved();
          }
        })}
      >
        <p class="muted">{tr(L.editHint)}</p>
        {fields.map((f) => (
          <Field label={`${f.name}${f.required ? ' *' : ''}`}>
            {f.enum ? (
              <select name={f.name} disabled={locked(f)} value={form[f.name]} onChange={(e) => setForm({ ...form, [f.name]: e.currentTarget.value })}>
                {(!f.required || !(form[f.name] in f.enum)) && <option value="">—</option>}
                {Object.entries(f.enum).map(([k, text]) => (
                  <option value={k}>{`${k} ${text}`}</option>
                ))}
              </select>
            ) : (
              <input
                name={f.name}
                disabled={locked(f)}
                maxLength={f.type === 'text' && f.length ? f.length : undefined}
                inputMode={['int', 'dec', 'real', 'flag'].includes(f.type) ? 'decimal' : undefined}
                placeholder={f.type === 'datetime' ? 'YYYY-MM-DD hh:mm:ss' : f.type === 'date' ? 'YYYY-MM-DD' : undefined}
                value={form[f.name]}
                onInput={(e) => setForm({ ...form, [f.name]: e.currentTarget.value })}
              />
            )}
            {f.attachment && form[f.name] && <AttPreview obj={def.name} value={form[f.name]} />}
            {fieldErr === f.name && (
              <div class="error" role="alert" data-testid="field-error">
                {(act.error as ApiError).message}
              </div>
            )}
          </Field>
        ))}
        {!fieldErr && <Err error={act.error} />}
        {note && !act.error && (
          <p class="muted" data-testid="edit-note">
            {note}
          </p>
        )}
        <div class="form-actions">
          <button type="submit" class="primary" disabled={act.busy}>
            {t('save')}
          </button>
          <button type="button" onClick={onClose}>
            {t('close')}
          </button>
        </div>
      </form>
    </Modal>
  );
}

const cellText = (v: unknown): string => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));

function RowsBrowser({ def }: { def: ObjDef }) {
  const [draft, setDraft] = useState({ cond: '', orderby: '', limit: '20' });
  const [query, setQuery] = useState(draft);
  const [cursors, setCursors] = useState<string[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const cursor = cursors[cursors.length - 1];
  const rows = useLoad(async () => {
    const r = await get<Rows>(`/objects/${encodeURIComponent(def.name)}/rows`, { cond: query.cond, orderby: query.orderby, limit: query.limit, cursor });
    if (r.total !== null) setTotal(r.total);
    return r;
  }, [def.name, query, cursor]);
  const data = rows.data;
  const [editing, setEditing] = useState<Record<string, unknown> | null>(null);
  const canEdit = (def.operations.admin ?? []).includes('set');
  const att = new Set(def.fields.filter((f) => f.attachment).map((f) => f.name));
  return (
    <Card testid="object-rows">
      {editing && <EditRow def={def} row={editing} onClose={() => setEditing(null)} onSaved={rows.reload} />}
      <form
        class="filter-bar"
        data-testid="rows-filter"
        onSubmit={onSubmit(() => {
          setCursors([]);
          setTotal(null);
          setQuery({ ...draft });
        })}
      >
        <Field label={tr(L.cond)}>
          <input name="cond" maxLength={4000} placeholder={tr(L.condHint)} value={draft.cond} onInput={(e) => setDraft({ ...draft, cond: e.currentTarget.value })} />
        </Field>
        <div class="field narrow">
          <span>{tr(L.orderby)}</span>
          <input name="orderby" maxLength={500} placeholder="id desc" value={draft.orderby} onInput={(e) => setDraft({ ...draft, orderby: e.currentTarget.value })} />
        </div>
        <div class="field narrow">
          <span>{tr(L.pageSize)}</span>
          <select name="limit" value={draft.limit} onChange={(e) => setDraft({ ...draft, limit: e.currentTarget.value })}>
            {['10', '20', '50', '100'].map((n) => (
              <option value={n}>{n}</option>
            ))}
          </select>
        </div>
        <button type="submit" class="primary">
          {t('search')}
        </button>
      </form>
      <Err error={rows.error} />
      {rows.loading && !data ? (
        <Loading />
      ) : data ? (
        <Table<Record<string, unknown>>
          testid="rows"
          rowKey={(r) => String(r.id ?? JSON.stringify(r))}
          rows={data.items}
          cols={[
            ...data.columns.map((c) => ({
              label: c,
              class: typeof data.items[0]?.[c] === 'number' && !att.has(c) ? 'num' : undefined,
              render: (r: Record<string, unknown>) => {
                if (att.has(c) && r[c] !== null && r[c] !== undefined && r[c] !== '') return <AttPreview obj={def.name} value={r[c]} />;
                const text = cellText(r[c]);
                return (
                  <span class="cell-clip" title={text}>
                    {text}
                  </span>
                );
              },
            })),
            ...(canEdit && data.columns.includes('id')
              ? [
                  {
                    label: '',
                    render: (r: Record<string, unknown>) => (
                      <button type="button" data-testid="edit-row-button" onClick={() => setEditing(r)}>
                        {t('edit')}
                      </button>
                    ),
                  },
                ]
              : []),
          ]}
        />
      ) : null}
      <div class="pager">
        <button type="button" disabled={!cursors.length} onClick={() => setCursors([])}>
          {tr(L.first)}
        </button>
        <span>{t('page', { n: cursors.length + 1 })}</span>
        {total !== null && (
          <span class="muted" data-testid="rows-total">
            {t('total', { n: fmtNumber(total) })}
          </span>
        )}
        <button type="button" data-testid="rows-next" disabled={!data?.next_cursor || !data.items.length || (total !== null && (cursors.length + 1) * Number(query.limit) >= total)} onClick={() => data?.next_cursor && setCursors([...cursors, data.next_cursor])}>
          {t('next')}
        </button>
      </div>
    </Card>
  );
}
