/** Reports: list, versions with their files, recall, the proof bundle (REST /reports). */
import { useState } from 'preact/hooks';
import { download, downloadWith, get, hasPath, post } from '../api';
import type { AreaProps } from '../app';
import { fmtBytes, fmtNumber, fmtTime, t, tr } from '../i18n';
import { go, href, navigate } from '../router';
import { useSession } from '../session';
import { Card, Err, Field, Loading, Modal, onSubmit, Table, useAction, useLoad } from '../ui';
import { BackLink, TenantPicker, tenantName } from './common';
import { QrPreview } from './qr';

interface Meta {
  title: string;
  type: string;
  period: string;
  geom: string;
}
interface Report extends Meta {
  tenant_id: number;
  report_id: string;
  status: 'valid' | 'recalled' | string;
  version: number;
  created_at: number;
  updated_at: number;
  recalled_at: number | null;
  last_tlog_index: number;
}
interface Version extends Meta {
  version: number;
  action: string;
  meta_hash: string;
  sha256: string;
  size: number;
  file_name: string | null;
  content_type: string;
  tlog_index: number;
  created_at: number;
}
interface Bundle {
  format: string;
  entries: { index: number }[];
  checkpoint: string;
  log: { origin: string; verifier_key: string };
}

const L = {
  title: ['报告', 'Reports'],
  reportId: ['报告编号', 'Report ID'],
  name: ['标题', 'Title'],
  type: ['类型', 'Type'],
  period: ['周期', 'Period'],
  geom: ['地域', 'Region'],
  version: ['版本', 'Version'],
  versions: ['版本记录', 'Versions'],
  action: ['操作', 'Action'],
  size: ['大小', 'Size'],
  file: ['文件', 'File'],
  logIndex: ['日志序号', 'Log index'],
  valid: ['有效', 'valid'],
  recalled: ['已撤回', 'recalled'],
  recalledAt: ['撤回时间', 'Recalled at'],
  recall: ['撤回报告', 'Recall the report'],
  recallHint: ['撤回需提交与登记时完全一致的元数据。撤回不可恢复。', 'A recall must carry exactly the registered metadata. It cannot be undone.'],
  confirmRecall: ['确定撤回此报告？', 'Recall this report?'],
  proof: ['透明日志证明', 'Transparency log proof'],
  proofHint: ['证明包含报告的每条日志记录、包含证明、签名检查点与日志公钥，可用 menhu verify 离线校验。', 'The bundle holds every log entry of the report with inclusion proofs, the signed checkpoint and the log key; `menhu verify` checks a file against it offline.'],
  downloadProof: ['下载证明包', 'Download the proof bundle'],
  entries: ['日志记录', 'Log entries'],
  checkpoint: ['检查点', 'Checkpoint'],
  more: ['更多', 'More'],
  first: ['第一页', 'First page'],
  registered: ['报告通过 MiningLamp 接口登记（commitreport / updatereport）。', 'Reports are registered through the MiningLamp API (commitreport / updatereport).'],
  qr: ['报告二维码', 'The report\'s QR code'],
  qrHint: ['扫码打开报告核验页。', 'Scanning it opens the report\'s verification page.'],
  noLink: ['报告还没有短链接：盖章一份 PDF（或调用 generateqr）即生成。', 'The report has no short link yet: stamping a PDF (or calling generateqr) creates it.'],
  stamp: ['在 PDF 上盖二维码', 'Stamp the QR on a PDF'],
  stampHint: ['二维码盖在第 1 页所选的角上（按读者所见方向）。', 'The QR goes on page 1, in the chosen corner as a reader sees the page.'],
  pdf: ['PDF 文件', 'PDF file'],
  corner: ['位置', 'Corner'],
  qrSize: ['边长（磅）', 'Size (points)'],
  stamped: ['已生成盖章 PDF，短链接：', 'Stamped PDF downloaded; short link: '],
  corners: {
    'top-right': ['右上', 'top right'],
    'top-left': ['左上', 'top left'],
    'bottom-right': ['右下', 'bottom right'],
    'bottom-left': ['左下', 'bottom left'],
  },
} as const;

const PAGE = 50;

export function ReportsPage({ rest }: AreaProps) {
  if (rest.length >= 2) return <ReportDetail tenantId={Number(rest[0])} reportId={decodeURIComponent(rest[1])} />;
  return <ReportList />;
}

function StatusBadge({ status }: { status: string }) {
  return status === 'recalled' ? <span class="badge bad">{tr(L.recalled)}</span> : <span class="badge ok">{tr(L.valid)}</span>;
}

function ReportList() {
  const { tenants, me } = useSession();
  const [tenant, setTenant] = useState<number | undefined>(me.operator ? undefined : me.tenant_id);
  const [cursors, setCursors] = useState<string[]>([]);
  const after = cursors[cursors.length - 1];
  const list = useLoad(() => get<Report[]>('/reports', { tenant_id: tenant, limit: PAGE, after }), [tenant, after]);
  const rows = list.data ?? [];
  return (
    <>
      <h1>{tr(L.title)}</h1>
      <p class="muted">{tr(L.registered)}</p>
      <Card
        actions={
          <TenantPicker
            value={tenant}
            onChange={(v) => {
              setTenant(v);
              setCursors([]);
            }}
          />
        }
      >
        <Err error={list.error} />
        {list.loading && !list.data ? (
          <Loading />
        ) : (
          <Table<Report>
            testid="reports"
            rowKey={(r) => `${r.tenant_id}/${r.report_id}`}
            rows={rows}
            onRow={(r) => navigate(`reports/${r.tenant_id}/${encodeURIComponent(r.report_id)}`)}
            cols={[
              {
                label: tr(L.reportId),
                render: (r) => (
                  <a href={href(`reports/${r.tenant_id}/${encodeURIComponent(r.report_id)}`)} onClick={go(`reports/${r.tenant_id}/${encodeURIComponent(r.report_id)}`)}>
                    <code>{r.report_id}</code>
                  </a>
                ),
              },
              { label: tr(L.name), render: (r) => r.title },
              { label: tr(L.type), render: (r) => r.type },
              { label: tr(L.period), render: (r) => r.period },
              { label: t('tenant'), render: (r) => tenantName(tenants, r.tenant_id) },
              { label: tr(L.version), render: (r) => r.version, class: 'num' },
              { label: t('status'), render: (r) => <StatusBadge status={r.status} /> },
              { label: t('updated'), render: (r) => fmtTime(r.updated_at) },
            ]}
          />
        )}
        <div class="pager">
          <button type="button" disabled={!cursors.length} onClick={() => setCursors([])}>
            {tr(L.first)}
          </button>
          <button type="button" disabled={rows.length < PAGE} onClick={() => setCursors([...cursors, rows[rows.length - 1].report_id])}>
            {t('next')}
          </button>
        </div>
      </Card>
    </>
  );
}

function ReportDetail({ tenantId, reportId }: { tenantId: number; reportId: string }) {
  const { me, tenants, doc } = useSession();
  const q: Record<string, number | undefined> = me.operator ? { tenant_id: tenantId } : {};
  const path = `/reports/${encodeURIComponent(reportId)}`;
  const rep = useLoad(() => get<Report & { versions: Version[] }>(path, q), [path, tenantId]);
  const [recalling, setRecalling] = useState(false);
  const [bundle, setBundle] = useState<Bundle | null>(null);
  const [stamps, setStamps] = useState(0);
  const act = useAction();
  const r = rep.data;
  if (rep.error) return <Err error={rep.error} />;
  if (!r) return <Loading />;
  const name = reportId.replace(/[^\w.-]/g, '_');
  return (
    <>
      <BackLink to="reports" />
      <h1 data-testid="report-title">
        <code>{r.report_id}</code> <StatusBadge status={r.status} />
      </h1>
      <Card>
        <dl class="kv">
          <dt>{tr(L.name)}</dt>
          <dd>{r.title}</dd>
          <dt>{tr(L.type)}</dt>
          <dd>{r.type}</dd>
          <dt>{tr(L.period)}</dt>
          <dd>{r.period}</dd>
          <dt>{tr(L.geom)}</dt>
          <dd>{r.geom}</dd>
          <dt>{t('tenant')}</dt>
          <dd>{tenantName(tenants, r.tenant_id)}</dd>
          <dt>{tr(L.version)}</dt>
          <dd>{r.version}</dd>
          <dt>{t('created')}</dt>
          <dd>{fmtTime(r.created_at)}</dd>
          {r.recalled_at && (
            <>
              <dt>{tr(L.recalledAt)}</dt>
              <dd>{fmtTime(r.recalled_at)}</dd>
            </>
          )}
        </dl>
        <div class="form-actions">
          <button type="button" data-testid="report-file" onClick={() => act.run(() => download('GET', `${path}/file`, r.versions[r.versions.length - 1]?.file_name ?? `${name}.pdf`, undefined, q))}>
            {t('download')} {tr(L.file)}
          </button>
          {r.status !== 'recalled' && (
            <button type="button" class="danger" data-testid="recall" onClick={() => setRecalling(true)}>
              {tr(L.recall)}
            </button>
          )}
        </div>
        <Err error={act.error} />
      </Card>
      {hasPath(doc, '/links') && <ReportQr key={stamps} tenantId={r.tenant_id} reportId={r.report_id} name={name} />}
      {hasPath(doc, '/reports/{report_id}/stamp', 'post') && <Stamp path={path} query={q} name={name} onDone={() => setStamps(stamps + 1)} />}
      <Card title={tr(L.versions)}>
        <Table<Version>
          testid="versions"
          rowKey={(v) => v.version}
          rows={r.versions}
          cols={[
            { label: tr(L.version), render: (v) => v.version, class: 'num' },
            { label: tr(L.action), render: (v) => v.action },
            { label: tr(L.name), render: (v) => v.title },
            { label: tr(L.file), render: (v) => v.file_name ?? '—' },
            { label: tr(L.size), render: (v) => fmtBytes(v.size), class: 'num' },
            { label: 'SHA-256', render: (v) => <code title={v.sha256}>{v.sha256.slice(0, 16)}…</code> },
            { label: tr(L.logIndex), render: (v) => v.tlog_index, class: 'num' },
            { label: t('created'), render: (v) => fmtTime(v.created_at) },
            {
              label: '',
              render: (v) =>
                v.size > 0 ? (
                  <button type="button" class="small" onClick={() => act.run(() => download('GET', `${path}/file`, v.file_name ?? `${name}-v${v.version}`, undefined, { ...q, version: v.version }))}>
                    {t('download')}
                  </button>
                ) : null,
            },
          ]}
        />
      </Card>
      <Card title={tr(L.proof)} testid="proof">
        <p class="muted">{tr(L.proofHint)}</p>
        <div class="form-actions">
          <button
            type="button"
            data-testid="proof-download"
            onClick={() =>
              act.run(async () => {
                const blob = await download('GET', `${path}/proof`, `${name}.proof.json`, undefined, q);
                setBundle(JSON.parse(await blob.text()) as Bundle);
              })
            }
          >
            {tr(L.downloadProof)}
          </button>
        </div>
        {bundle && (
          <dl class="kv" data-testid="proof-summary">
            <dt>{tr(L.entries)}</dt>
            <dd>{bundle.entries.map((e) => e.index).join(', ')}</dd>
            <dt>{tr(L.checkpoint)}</dt>
            <dd>
              <pre class="pre">{bundle.checkpoint}</pre>
            </dd>
          </dl>
        )}
      </Card>
      {recalling && <RecallDialog path={path} query={q} report={r} onClose={() => setRecalling(false)} onDone={() => rep.reload()} />}
    </>
  );
}

interface LinkRow {
  code: string;
  short_url: string;
  target_ref: string;
}

function ReportQr({ tenantId, reportId, name }: { tenantId: number; reportId: string; name: string }) {
  const { me } = useSession();
  const link = useLoad(async () => {
    const rows = await get<LinkRow[]>('/links', { kind: 'report', limit: 1000, ...(me.operator ? { tenant_id: tenantId } : {}) });
    return rows.find((l) => l.target_ref === reportId) ?? null;
  }, [tenantId, reportId]);
  return (
    <Card title={tr(L.qr)} testid="report-qr">
      <Err error={link.error} />
      {link.data === undefined ? (
        !link.error && <Loading />
      ) : link.data === null ? (
        <p class="muted">{tr(L.noLink)}</p>
      ) : (
        <>
          <p class="muted">
            {tr(L.qrHint)}{' '}
            <a href={link.data.short_url} target="_blank" rel="noopener" data-testid="report-link">
              {link.data.short_url}
            </a>
          </p>
          <QrPreview path={`/links/${encodeURIComponent(link.data.code)}/qr`} name={name} />
        </>
      )}
    </Card>
  );
}

const CORNERS = ['top-right', 'top-left', 'bottom-right', 'bottom-left'] as const;

function Stamp({ path, query, name, onDone }: { path: string; query: Record<string, number | undefined>; name: string; onDone: () => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [corner, setCorner] = useState<(typeof CORNERS)[number]>('top-right');
  const [size, setSize] = useState('72');
  const [link, setLink] = useState<string | null>(null);
  const act = useAction();
  return (
    <Card title={tr(L.stamp)} testid="stamp">
      <p class="muted">{tr(L.stampHint)}</p>
      <form
        class="form-row"
        onSubmit={onSubmit(() =>
          act.run(async () => {
            if (!file) return;
            const pdf = file.type === 'application/pdf' ? file : new Blob([file], { type: 'application/pdf' });
            const r = await downloadWith('POST', `${path}/stamp`, `${name}-stamped.pdf`, pdf, { ...query, corner, size: Number(size) });
            setLink(r.headers.get('x-menhu-link'));
            onDone();
          }),
        )}
      >
        <Field label={tr(L.pdf)}>
          <input type="file" name="pdf" accept="application/pdf,.pdf" required onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
        </Field>
        <Field label={tr(L.corner)}>
          <select name="corner" value={corner} onChange={(e) => setCorner(e.currentTarget.value as (typeof CORNERS)[number])}>
            {CORNERS.map((c) => (
              <option value={c}>{tr(L.corners[c])}</option>
            ))}
          </select>
        </Field>
        <Field label={tr(L.qrSize)}>
          <input name="size" type="number" min={18} max={1000} value={size} onInput={(e) => setSize(e.currentTarget.value)} />
        </Field>
        <button type="submit" class="primary" disabled={act.busy || !file}>
          {tr(L.stamp)}
        </button>
      </form>
      <Err error={act.error} />
      {link && (
        <p class="ok-text" data-testid="stamped">
          {tr(L.stamped)}
          <code>{link}</code>
        </p>
      )}
    </Card>
  );
}

function RecallDialog({ path, query, report, onClose, onDone }: { path: string; query: Record<string, number | undefined>; report: Report; onClose: () => void; onDone: () => void }) {
  const [meta, setMeta] = useState<Meta>({ title: report.title, type: report.type, period: report.period, geom: report.geom });
  const act = useAction();
  const field = (k: keyof Meta, label: string) => (
    <Field label={label}>
      <input name={k} value={meta[k]} maxLength={1000} onInput={(e) => setMeta({ ...meta, [k]: e.currentTarget.value })} />
    </Field>
  );
  return (
    <Modal title={tr(L.recall)} onClose={onClose} testid="recall-dialog">
      <p class="warn">{tr(L.recallHint)}</p>
      <form
        class="form-grid"
        onSubmit={onSubmit(() =>
          act.run(async () => {
            if (!confirm(tr(L.confirmRecall))) return;
            await post(`${path}/recall`, meta, query);
            onClose();
            onDone();
          }),
        )}
      >
        {field('title', tr(L.name))}
        {field('type', tr(L.type))}
        {field('period', tr(L.period))}
        {field('geom', tr(L.geom))}
        <div class="form-actions">
          <button type="submit" class="primary" disabled={act.busy}>
            {tr(L.recall)}
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
