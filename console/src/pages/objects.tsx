/** Declared objects (the BQP schema): objects, their fields and rules, and a rows browser with a `cond` filter bar for operators (REST /objects). */
import { useState } from 'preact/hooks';
import { get } from '../api';
import type { AreaProps } from '../app';
import { fmtNumber, t, tr } from '../i18n';
import { go, href, navigate } from '../router';
import { useSession } from '../session';
import { Card, Err, Field, Loading, onSubmit, Table, Tabs, useLoad } from '../ui';
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
  return (
    <Card testid="object-rows">
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
          cols={data.columns.map((c) => ({
            label: c,
            class: typeof data.items[0]?.[c] === 'number' ? 'num' : undefined,
            render: (r: Record<string, unknown>) => {
              const text = cellText(r[c]);
              return (
                <span class="cell-clip" title={text}>
                  {text}
                </span>
              );
            },
          }))}
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
