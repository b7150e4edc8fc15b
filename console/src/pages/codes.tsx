/**
 * Dynamic codes: templates with a field editor, records with in-place edits (the next scan shows
 * them), batch import from CSV with progress, Excel and QR ZIP export, scan charts (REST /code-*).
 */
import { useState } from 'preact/hooks';
import { download, get, patch, post, put, REST, type ApiDoc } from '../api';
import type { AreaProps } from '../app';
import { errorText, fmtTime, t, tr } from '../i18n';
import { go, href, navigate } from '../router';
import { useSession } from '../session';
import { Card, Copy, Err, Field, Loading, Modal, onSubmit, Pager, Table, Tabs, useAction, useLoad } from '../ui';
import { BackLink, TenantField, TenantPicker, tenantName } from './common';
import { QrPreview } from './qr';
import { StatsPanel } from './stats';

const TYPES = ['single_line', 'multi_line', 'number', 'date', 'single_choice', 'multi_choice', 'location', 'image', 'file', 'audio', 'video'] as const;
type FieldType = (typeof TYPES)[number];
interface FieldDef {
  name: string;
  type: FieldType;
  options?: string[];
  required?: boolean;
}
interface Template {
  id: number;
  tenant_id: number;
  template_num: string;
  title: string;
  fields: FieldDef[];
  style: { qr?: { fg?: string; bg?: string; ecl?: string }; accent?: string };
  api_enabled: boolean;
  api_key: string | null;
  created_at: number;
  updated_at: number;
}
interface CodeRecord {
  id: number;
  template_id: number;
  code: string;
  web_url: string;
  values: string[];
  version: number;
  created_at: number;
  updated_at: number;
}

const L = {
  title: ['动态码', 'Dynamic codes'],
  templates: ['模板', 'Templates'],
  newTemplate: ['新建模板', 'New template'],
  num: ['编号', 'Number'],
  tplTitle: ['模板名称', 'Template title'],
  fields: ['字段', 'Fields'],
  fieldName: ['字段名', 'Field name'],
  fieldType: ['类型', 'Type'],
  options: ['选项（每行一个）', 'Options (one a line)'],
  required: ['必填', 'Required'],
  addField: ['添加字段', 'Add field'],
  up: ['上移', 'Move up'],
  down: ['下移', 'Move down'],
  remove: ['移除', 'Remove'],
  fieldsHint: ['已有码记录时，只能改名或在末尾追加字段。', 'Once a template has records, fields can only be renamed or appended.'],
  records: ['码记录', 'Records'],
  editor: ['模板设置', 'Template'],
  import: ['批量导入', 'Batch import'],
  stats: ['扫描统计', 'Scans'],
  api: ['cli.im 接口', 'cli.im API'],
  code: ['码', 'Code'],
  version: ['版本', 'Version'],
  newRecord: ['新建码', 'New code'],
  editRecord: ['编辑码内容', 'Edit the code'],
  editHint: ['码与图片不变，下一次扫码即显示新内容。', 'The code and its image stay; the next scan shows the new values.'],
  history: ['修改记录', 'History'],
  actor: ['操作者', 'By'],
  importHint: ['粘贴 CSV（或选择文件）：每行一个码，列按字段顺序；首行为字段名时跳过。选项可写序号或选项文字。', 'Paste CSV (or pick a file): one code a line, columns in field order; a first line of field names is skipped. Choices may be given by number or by their text.'],
  rows: ['行', 'rows'],
  importing: ['导入中', 'Importing'],
  imported: ['已导入 {n} 个码', '{n} codes imported'],
  importFailed: ['第 {from}–{to} 行失败（该批未写入）：', 'Rows {from}–{to} failed (that batch was not written): '],
  exportQrPng: ['导出二维码 ZIP（PNG）', 'QR codes ZIP (PNG)'],
  exportQrSvg: ['导出二维码 ZIP（SVG）', 'QR codes ZIP (SVG)'],
  apiEnabled: ['已开放 cli.im 接口', 'cli.im API enabled'],
  apiDisabled: ['未开放 cli.im 接口', 'cli.im API disabled'],
  enable: ['开放', 'Enable'],
  disable: ['关闭', 'Disable'],
  ownKey: ['使用模板独立密钥', "Give the template its own key"],
  apiKey: ['接口密钥 ID', 'api_key'],
  apiSecret: ['接口密钥（只显示这一次）', 'Secret (shown this once)'],
  accent: ['落地页主题色', 'Landing page accent'],
  qrColour: ['二维码颜色', 'QR colour'],
  open: ['打开', 'Open'],
  types: {
    single_line: ['单行文本', 'single line'],
    multi_line: ['多行文本', 'multi-line'],
    number: ['数字', 'number'],
    date: ['日期', 'date'],
    single_choice: ['单选项', 'single choice'],
    multi_choice: ['多选项', 'multiple choice'],
    location: ['定位', 'location'],
    image: ['图片', 'image'],
    file: ['文件', 'file'],
    audio: ['音频', 'audio'],
    video: ['视频', 'video'],
  },
} as const;

const typeLabel = (ty: string) => (ty in L.types ? tr(L.types[ty as FieldType]) : ty);

/** Field types as the running server's schema lists them (falls back to the known list). */
function typesFrom(doc: ApiDoc | undefined): string[] {
  const s = doc?.paths?.[`${REST}/code-templates`]?.post?.requestBody?.content?.['application/json']?.schema;
  const ty = s?.properties?.fields?.items?.properties?.type;
  const list = (ty?.anyOf ?? []).map((x: { const?: string }) => x.const).filter(Boolean) as string[];
  return list.length ? list : [...TYPES];
}

export function display(f: FieldDef, v: string): string {
  if (!v) return '';
  if (f.type === 'single_choice') return f.options?.[Number(v) - 1] ?? v;
  if (f.type === 'multi_choice')
    return v
      .split(',')
      .map((x) => f.options?.[Number(x) - 1] ?? x)
      .join('、');
  if (f.type === 'location') {
    try {
      return (JSON.parse(v) as { address: string }).address;
    } catch {
      return v;
    }
  }
  return v;
}

export function CodesPage({ rest }: AreaProps) {
  if (rest[0]) return <TemplatePage id={Number(rest[0])} />;
  return <TemplateList />;
}

// ---------------------------------------------------------------------------------------------

function FieldEditor({ fields, onChange, types }: { fields: FieldDef[]; onChange: (f: FieldDef[]) => void; types: string[] }) {
  const set = (i: number, f: Partial<FieldDef>) => onChange(fields.map((x, j) => (j === i ? { ...x, ...f } : x)));
  const move = (i: number, d: number) => {
    const next = [...fields];
    [next[i], next[i + d]] = [next[i + d], next[i]];
    onChange(next);
  };
  return (
    <div class="field-editor" data-testid="field-editor">
      {fields.map((f, i) => (
        <div class="field-row" data-field={i}>
          <Field label={tr(L.fieldName)}>
            <input name={`field-name-${i}`} required maxLength={50} value={f.name} onInput={(e) => set(i, { name: e.currentTarget.value })} />
          </Field>
          <Field label={tr(L.fieldType)}>
            <select name={`field-type-${i}`} value={f.type} onChange={(e) => set(i, { type: e.currentTarget.value as FieldType, options: /choice/.test(e.currentTarget.value) ? (f.options ?? ['']) : undefined })}>
              {types.map((ty) => (
                <option value={ty}>{typeLabel(ty)}</option>
              ))}
            </select>
          </Field>
          {(f.type === 'single_choice' || f.type === 'multi_choice') && (
            <Field label={tr(L.options)}>
              <textarea name={`field-options-${i}`} rows={3} value={(f.options ?? []).join('\n')} onInput={(e) => set(i, { options: e.currentTarget.value.split('\n') })} />
            </Field>
          )}
          <label class="check">
            <input type="checkbox" checked={!!f.required} onChange={(e) => set(i, { required: e.currentTarget.checked })} />
            {tr(L.required)}
          </label>
          <span class="row-actions">
            <button type="button" class="small" aria-label={tr(L.up)} disabled={i === 0} onClick={() => move(i, -1)}>
              ↑
            </button>
            <button type="button" class="small" aria-label={tr(L.down)} disabled={i === fields.length - 1} onClick={() => move(i, 1)}>
              ↓
            </button>
            <button type="button" class="small danger" disabled={fields.length === 1} onClick={() => onChange(fields.filter((_, j) => j !== i))}>
              {tr(L.remove)}
            </button>
          </span>
        </div>
      ))}
      <button type="button" data-testid="add-field" onClick={() => onChange([...fields, { name: '', type: 'single_line' }])}>
        + {tr(L.addField)}
      </button>
    </div>
  );
}

const cleanFields = (fields: FieldDef[]): FieldDef[] =>
  fields.map((f) => ({
    name: f.name.trim(),
    type: f.type,
    ...(f.type === 'single_choice' || f.type === 'multi_choice' ? { options: (f.options ?? []).map((o) => o.trim()).filter(Boolean) } : {}),
    ...(f.required ? { required: true } : {}),
  }));

function TemplateList() {
  const { me, tenants, doc } = useSession();
  const [tenant, setTenant] = useState<number | undefined>(undefined);
  const list = useLoad(() => get<Template[]>('/code-templates', { tenant_id: tenant }), [tenant]);
  const [form, setForm] = useState<{ title: string; tenant_id: string; fields: FieldDef[] }>({ title: '', tenant_id: '', fields: [{ name: '', type: 'single_line' }] });
  const act = useAction();
  return (
    <>
      <h1>{tr(L.title)}</h1>
      <Card actions={<TenantPicker value={tenant} onChange={setTenant} />} title={tr(L.templates)}>
        <Err error={list.error} />
        {list.loading && !list.data ? (
          <Loading />
        ) : (
          <Table<Template>
            testid="templates"
            rowKey={(x) => x.id}
            rows={list.data ?? []}
            onRow={(x) => navigate(`codes/${x.id}`)}
            cols={[
              { label: tr(L.num), render: (x) => <code>{x.template_num}</code> },
              {
                label: tr(L.tplTitle),
                render: (x) => (
                  <a href={href(`codes/${x.id}`)} onClick={go(`codes/${x.id}`)}>
                    {x.title}
                  </a>
                ),
              },
              { label: tr(L.fields), render: (x) => x.fields.map((f) => f.name).join('、') },
              { label: t('tenant'), render: (x) => tenantName(tenants, x.tenant_id) },
              { label: tr(L.api), render: (x) => (x.api_enabled ? <span class="badge ok">{tr(L.apiEnabled)}</span> : <span class="badge">{tr(L.apiDisabled)}</span>) },
            ]}
          />
        )}
      </Card>
      <Card title={tr(L.newTemplate)}>
        <form
          data-testid="template-form"
          onSubmit={onSubmit(() =>
            act.run(async () => {
              const x = await post<Template>('/code-templates', { title: form.title.trim(), fields: cleanFields(form.fields), ...(me.operator && form.tenant_id ? { tenant_id: Number(form.tenant_id) } : {}) });
              navigate(`codes/${x.id}`);
            }),
          )}
        >
          <div class="form-grid">
            <Field label={tr(L.tplTitle)}>
              <input name="title" required maxLength={100} value={form.title} onInput={(e) => setForm({ ...form, title: e.currentTarget.value })} />
            </Field>
            <TenantField value={form.tenant_id} onChange={(v) => setForm({ ...form, tenant_id: v })} />
          </div>
          <h3>{tr(L.fields)}</h3>
          <FieldEditor fields={form.fields} types={typesFrom(doc)} onChange={(fields) => setForm({ ...form, fields })} />
          <div class="form-actions">
            <button type="submit" class="primary" disabled={act.busy}>
              {t('create')}
            </button>
          </div>
        </form>
        <Err error={act.error} />
      </Card>
    </>
  );
}

// ---------------------------------------------------------------------------------------------

type Tab = 'records' | 'import' | 'editor' | 'api' | 'stats';

function TemplatePage({ id }: { id: number }) {
  const tpl = useLoad(() => get<Template>(`/code-templates/${id}`), [id]);
  const [tab, setTab] = useState<Tab>('records');
  const x = tpl.data;
  if (tpl.error) return <Err error={tpl.error} />;
  if (!x) return <Loading />;
  return (
    <>
      <BackLink to="codes" />
      <h1 data-testid="template-title">
        <code>{x.template_num}</code> {x.title}
      </h1>
      <Tabs<Tab>
        tabs={[
          ['records', tr(L.records)],
          ['import', tr(L.import)],
          ['editor', tr(L.editor)],
          ['api', tr(L.api)],
          ['stats', tr(L.stats)],
        ]}
        value={tab}
        onChange={setTab}
      />
      {tab === 'records' && <Records tpl={x} />}
      {tab === 'import' && <Import tpl={x} />}
      {tab === 'editor' && <TemplateEditor tpl={x} onSaved={tpl.reload} />}
      {tab === 'api' && <ApiSettings tpl={x} onSaved={tpl.reload} />}
      {tab === 'stats' && <StatsPanel path={`/code-templates/${x.id}/stats`} />}
    </>
  );
}

const PAGE = 25;

function Records({ tpl }: { tpl: Template }) {
  const [page, setPage] = useState(1);
  const recs = useLoad(() => get<CodeRecord[]>(`/code-templates/${tpl.id}/records`, { limit: PAGE, offset: (page - 1) * PAGE }), [tpl.id, page]);
  const [editing, setEditing] = useState<CodeRecord | 'new' | null>(null);
  const [open, setOpen] = useState<CodeRecord | null>(null);
  const act = useAction();
  const shown = tpl.fields.slice(0, 4);
  return (
    <Card
      actions={
        <>
          <button type="button" class="primary" data-testid="new-record" onClick={() => setEditing('new')}>
            + {tr(L.newRecord)}
          </button>
          <button type="button" data-testid="export-xlsx" onClick={() => act.run(() => download('GET', `/code-templates/${tpl.id}/export.xlsx`, `${tpl.template_num}.xlsx`))}>
            {t('exportXlsx')}
          </button>
          <button type="button" data-testid="export-zip" onClick={() => act.run(() => download('GET', `/code-templates/${tpl.id}/qr.zip`, `${tpl.template_num}-qr.zip`, undefined, { format: 'png' }))}>
            {tr(L.exportQrPng)}
          </button>
          <button type="button" onClick={() => act.run(() => download('GET', `/code-templates/${tpl.id}/qr.zip`, `${tpl.template_num}-qr-svg.zip`, undefined, { format: 'svg' }))}>
            {tr(L.exportQrSvg)}
          </button>
        </>
      }
    >
      <Err error={recs.error || act.error} />
      {recs.loading && !recs.data ? (
        <Loading />
      ) : (
        <Table<CodeRecord>
          testid="records"
          rowKey={(r) => r.id}
          rows={recs.data ?? []}
          cols={[
            { label: tr(L.code), render: (r) => <code>{r.code}</code> },
            ...shown.map((f) => ({ label: f.name, render: (r: CodeRecord) => <span class="clip">{display(f, r.values[tpl.fields.indexOf(f)] ?? '')}</span> })),
            { label: tr(L.version), render: (r) => r.version, class: 'num' },
            { label: t('updated'), render: (r) => fmtTime(r.updated_at) },
            {
              label: '',
              render: (r) => (
                <span class="row-actions">
                  <button type="button" class="small" data-testid={`edit-${r.id}`} onClick={() => setEditing(r)}>
                    {t('edit')}
                  </button>
                  <button type="button" class="small" onClick={() => setOpen(r)}>
                    {t('details')}
                  </button>
                </span>
              ),
            },
          ]}
        />
      )}
      <Pager page={page} size={PAGE} more={(recs.data?.length ?? 0) >= PAGE} onPage={setPage} />
      {editing && (
        <RecordDialog
          tpl={tpl}
          record={editing === 'new' ? null : editing}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            recs.reload();
          }}
        />
      )}
      {open && <RecordDetail tpl={tpl} record={open} onClose={() => setOpen(null)} />}
    </Card>
  );
}

function ValueInput({ f, i, value, onChange }: { f: FieldDef; i: number; value: string; onChange: (v: string) => void }) {
  const name = `value-${i}`;
  switch (f.type) {
    case 'multi_line':
      return <textarea name={name} rows={3} value={value} onInput={(e) => onChange(e.currentTarget.value)} />;
    case 'number':
      return <input name={name} inputMode="decimal" value={value} onInput={(e) => onChange(e.currentTarget.value)} />;
    case 'date':
      return <input name={name} type="date" value={value} onInput={(e) => onChange(e.currentTarget.value)} />;
    case 'single_choice':
      return (
        <select name={name} value={value} onChange={(e) => onChange(e.currentTarget.value)}>
          <option value="">—</option>
          {(f.options ?? []).map((o, j) => (
            <option value={String(j + 1)}>{o}</option>
          ))}
        </select>
      );
    case 'multi_choice': {
      const on = new Set(value ? value.split(',') : []);
      return (
        <div class="checks">
          {(f.options ?? []).map((o, j) => (
            <label class="check">
              <input
                type="checkbox"
                name={`${name}-${j + 1}`}
                checked={on.has(String(j + 1))}
                onChange={(e) => {
                  const next = new Set(on);
                  if (e.currentTarget.checked) next.add(String(j + 1));
                  else next.delete(String(j + 1));
                  onChange([...next].sort((a, b) => Number(a) - Number(b)).join(','));
                }}
              />
              {o}
            </label>
          ))}
        </div>
      );
    }
    case 'location': {
      let address = value;
      try {
        address = value ? (JSON.parse(value) as { address: string }).address : '';
      } catch {
        /* plain text */
      }
      return <input name={name} value={address} onInput={(e) => onChange(e.currentTarget.value ? JSON.stringify({ address: e.currentTarget.value }) : '')} />;
    }
    case 'audio':
    case 'video':
      return <input name={name} disabled value="" />;
    case 'image':
    case 'file':
      return <input name={name} type="url" placeholder="https://" value={value} onInput={(e) => onChange(e.currentTarget.value)} />;
    default:
      return <input name={name} value={value} onInput={(e) => onChange(e.currentTarget.value)} />;
  }
}

function RecordDialog({ tpl, record, onClose, onSaved }: { tpl: Template; record: CodeRecord | null; onClose: () => void; onSaved: () => void }) {
  const [values, setValues] = useState<string[]>(record ? tpl.fields.map((_, i) => record.values[i] ?? '') : tpl.fields.map(() => ''));
  const act = useAction();
  return (
    <Modal title={record ? `${tr(L.editRecord)} ${record.code}` : tr(L.newRecord)} onClose={onClose} testid="record-dialog">
      {record && <p class="muted">{tr(L.editHint)}</p>}
      <form
        class="form-grid"
        onSubmit={onSubmit(() =>
          act.run(async () => {
            if (record) await patch(`/code-records/${record.id}`, { values });
            else await post(`/code-templates/${tpl.id}/records`, { records: [values] });
            onSaved();
          }),
        )}
      >
        {tpl.fields.map((f, i) => (
          <Field label={`${f.name}${f.required ? ' *' : ''} · ${typeLabel(f.type)}`} wide={f.type === 'multi_line' || f.type === 'multi_choice'}>
            <ValueInput f={f} i={i} value={values[i]} onChange={(v) => setValues(values.map((x, j) => (j === i ? v : x)))} />
          </Field>
        ))}
        <div class="form-actions">
          <button type="submit" class="primary" disabled={act.busy}>
            {t('save')}
          </button>
          <button type="button" onClick={onClose}>
            {t('cancel')}
          </button>
        </div>
      </form>
      <Err error={act.error} />
    </Modal>
  );
}

function RecordDetail({ tpl, record, onClose }: { tpl: Template; record: CodeRecord; onClose: () => void }) {
  const hist = useLoad(() => get<{ version: number; values: string[]; actor: string; at: number }[]>(`/code-records/${record.id}/history`), [record.id]);
  return (
    <Modal title={`${tr(L.code)} ${record.code}`} onClose={onClose} testid="record-detail">
      <dl class="kv">
        <dt>URL</dt>
        <dd>
          <Copy text={record.web_url} />{' '}
          <a href={record.web_url} target="_blank" rel="noopener">
            {tr(L.open)}
          </a>
        </dd>
        {tpl.fields.map((f, i) => (
          <>
            <dt>{f.name}</dt>
            <dd class="clip">{display(f, record.values[i] ?? '') || '—'}</dd>
          </>
        ))}
      </dl>
      <QrPreview path={`/code-records/${record.id}/qr`} name={`${tpl.template_num}-${record.code}`} />
      <h3>{tr(L.history)}</h3>
      <Err error={hist.error} />
      <Table
        rowKey={(h) => h.version}
        rows={hist.data ?? []}
        cols={[
          { label: tr(L.version), render: (h) => h.version },
          { label: tr(L.actor), render: (h) => h.actor },
          { label: t('updated'), render: (h) => fmtTime(h.at) },
          { label: tr(L.fields), render: (h) => <span class="clip">{h.values.map((v, i) => (tpl.fields[i] ? display(tpl.fields[i], v) : v)).filter(Boolean).join(' · ')}</span> },
        ]}
      />
      <StatsPanel path={`/code-records/${record.id}/stats`} />
    </Modal>
  );
}

/** CSV rows (RFC 4180 quotes; commas, tabs or semicolons), empty lines dropped. */
export function parseCsv(text: string): string[][] {
  const firstLine = text.split(/\r?\n/, 1)[0] ?? '';
  const sep = firstLine.includes('\t') ? '\t' : firstLine.includes(',') ? ',' : firstLine.includes(';') ? ';' : ',';
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"' && cell === '') quoted = true;
    else if (c === sep) {
      row.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      if (row.some((x) => x !== '')) rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  row.push(cell);
  if (row.some((x) => x !== '')) rows.push(row);
  return rows;
}

/** A CSV cell in the wire format of its field: choices by text become their numbers. */
function wireValue(f: FieldDef, v: string): string {
  const s = v.trim();
  if (!s) return '';
  if (f.type === 'single_choice') {
    const j = (f.options ?? []).indexOf(s);
    return j >= 0 ? String(j + 1) : s;
  }
  if (f.type === 'multi_choice')
    return s
      .split(/[,，、|]/)
      .map((p) => {
        const j = (f.options ?? []).indexOf(p.trim());
        return j >= 0 ? String(j + 1) : p.trim();
      })
      .join(',');
  if (f.type === 'location' && !s.startsWith('{')) return JSON.stringify({ address: s });
  return s;
}

const CHUNK = 200;

function Import({ tpl }: { tpl: Template }) {
  const [text, setText] = useState('');
  const [progress, setProgress] = useState<{ done: number; total: number; error?: string } | null>(null);
  const [busy, setBusy] = useState(false);
  let rows = parseCsv(text);
  if (rows.length && rows[0].map((c) => c.trim()).join('\u0000') === tpl.fields.map((f) => f.name).join('\u0000')) rows = rows.slice(1);
  const run = async () => {
    setBusy(true);
    const values = rows.map((r) => tpl.fields.map((f, i) => wireValue(f, r[i] ?? '')));
    let done = 0;
    setProgress({ done, total: values.length });
    for (let i = 0; i < values.length; i += CHUNK) {
      try {
        await post(`/code-templates/${tpl.id}/records`, { records: values.slice(i, i + CHUNK) });
        done += Math.min(CHUNK, values.length - i);
        setProgress({ done, total: values.length });
      } catch (e) {
        setProgress({ done, total: values.length, error: `${tr(L.importFailed).replace('{from}', String(i + 1)).replace('{to}', String(Math.min(i + CHUNK, values.length)))}${errorText(e)}` });
        break;
      }
    }
    setBusy(false);
  };
  return (
    <Card>
      <p class="muted">{tr(L.importHint)}</p>
      <p class="muted">
        {tr(L.fields)}: {tpl.fields.map((f) => `${f.name} (${typeLabel(f.type)})`).join(', ')}
      </p>
      <input
        type="file"
        accept=".csv,.tsv,.txt,text/csv"
        data-testid="import-file"
        onChange={async (e) => {
          const f = e.currentTarget.files?.[0];
          if (f) setText(await f.text());
        }}
      />
      <textarea data-testid="import-text" rows={8} value={text} onInput={(e) => setText(e.currentTarget.value)} placeholder={tpl.fields.map((f) => f.name).join(',')} />
      <div class="form-actions">
        <button type="button" class="primary" data-testid="import-run" disabled={busy || rows.length === 0} onClick={run}>
          {tr(L.import)} ({rows.length} {tr(L.rows)})
        </button>
      </div>
      {progress && (
        <div data-testid="import-progress">
          <div class="progress" role="progressbar" aria-valuenow={progress.done} aria-valuemax={progress.total}>
            <div style={{ width: `${progress.total ? (progress.done / progress.total) * 100 : 0}%` }} />
          </div>
          <p class={progress.error ? 'error' : progress.done === progress.total ? 'ok-text' : 'muted'} data-testid="import-status">
            {progress.error ?? (progress.done === progress.total ? tr(L.imported).replace('{n}', String(progress.done)) : `${tr(L.importing)} ${progress.done} / ${progress.total}`)}
          </p>
        </div>
      )}
    </Card>
  );
}

function TemplateEditor({ tpl, onSaved }: { tpl: Template; onSaved: () => void }) {
  const { doc } = useSession();
  const [title, setTitle] = useState(tpl.title);
  const [fields, setFields] = useState<FieldDef[]>(tpl.fields);
  const [accent, setAccent] = useState(tpl.style.accent ?? '#c8102e');
  const [fg, setFg] = useState(tpl.style.qr?.fg ?? '#000000');
  const [saved, setSaved] = useState(false);
  const act = useAction();
  return (
    <Card>
      <form
        data-testid="template-editor"
        onInput={() => setSaved(false)}
        onSubmit={onSubmit(() =>
          act.run(async () => {
            await patch(`/code-templates/${tpl.id}`, { title: title.trim(), fields: cleanFields(fields), style: { ...tpl.style, accent, qr: { ...(tpl.style.qr ?? {}), fg } } });
            setSaved(true);
            onSaved();
          }),
        )}
      >
        <div class="form-grid">
          <Field label={tr(L.tplTitle)}>
            <input name="title" required maxLength={100} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
          </Field>
          <Field label={tr(L.accent)}>
            <input name="accent" type="color" value={accent} onInput={(e) => setAccent(e.currentTarget.value)} />
          </Field>
          <Field label={tr(L.qrColour)}>
            <input name="fg" type="color" value={fg} onInput={(e) => setFg(e.currentTarget.value)} />
          </Field>
        </div>
        <h3>{tr(L.fields)}</h3>
        <p class="muted">{tr(L.fieldsHint)}</p>
        <FieldEditor fields={fields} types={typesFrom(doc)} onChange={setFields} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled={act.busy}>
            {t('save')}
          </button>
          {saved && <span class="ok-text">{t('saved')}</span>}
        </div>
      </form>
      <Err error={act.error} />
    </Card>
  );
}

function ApiSettings({ tpl, onSaved }: { tpl: Template; onSaved: () => void }) {
  const [ownKey, setOwnKey] = useState(true);
  const [ip, setIp] = useState('');
  const [shown, setShown] = useState<{ api_key: string | null; api_secret: string | null } | null>(null);
  const act = useAction();
  const send = (enabled: boolean) =>
    act.run(async () => {
      const r = await put<{ api_key: string | null; api_secret: string | null }>(`/code-templates/${tpl.id}/api`, {
        enabled,
        own_key: ownKey,
        ip_allow: ip
          .split(/[\s,]+/)
          .map((s) => s.trim())
          .filter(Boolean),
      });
      setShown(r);
      onSaved();
    });
  return (
    <Card>
      <p>{tpl.api_enabled ? <span class="badge ok">{tr(L.apiEnabled)}</span> : <span class="badge">{tr(L.apiDisabled)}</span>}</p>
      {tpl.api_key && (
        <p>
          {tr(L.apiKey)}: <code>{tpl.api_key}</code>
        </p>
      )}
      <div class="form-grid">
        <label class="check">
          <input type="checkbox" checked={ownKey} onChange={(e) => setOwnKey(e.currentTarget.checked)} />
          {tr(L.ownKey)}
        </label>
        <Field label={t('ipAllow')} wide>
          <textarea rows={2} value={ip} onInput={(e) => setIp(e.currentTarget.value)} />
        </Field>
      </div>
      <div class="form-actions">
        <button type="button" class="primary" data-testid="api-enable" disabled={act.busy} onClick={() => send(true)}>
          {tr(L.enable)}
        </button>
        <button type="button" data-testid="api-disable" disabled={act.busy || !tpl.api_enabled} onClick={() => send(false)}>
          {tr(L.disable)}
        </button>
      </div>
      <Err error={act.error} />
      {shown?.api_secret && (
        <dl class="kv" data-testid="api-secret">
          <dt>{tr(L.apiKey)}</dt>
          <dd>
            <Copy text={shown.api_key ?? ''} />
          </dd>
          <dt>{tr(L.apiSecret)}</dt>
          <dd>
            <Copy text={shown.api_secret} />
          </dd>
        </dl>
      )}
    </Card>
  );
}

