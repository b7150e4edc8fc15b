/** Photo jobs: upload a photo to restore, the jobs with live status and progress, input and result previews (REST /photo-jobs). */
import { useEffect, useState } from 'preact/hooks';
import { download, get, post, REST } from '../api';
import type { AreaProps } from '../app';
import { fmtBytes, fmtNumber, fmtTime, t, tr } from '../i18n';
import { go, href, navigate } from '../router';
import { useSession } from '../session';
import { Card, Err, Field, Loading, onSubmit, Table, useAction, useLoad } from '../ui';
import { BackLink, TenantField, TenantPicker, tenantName } from './common';

export interface PhotoJob {
  id: string;
  tenant_id: number;
  app_id: number | null;
  repair_type: string;
  rgb: [number, number, number] | null;
  status: 'queued' | 'running' | 'done' | 'failed';
  progress: number;
  attempts: number;
  error: string | null;
  input_type: string;
  result: { content_type: string; width: number; height: number; bytes: number } | null;
  charge: 'held' | 'committed' | 'refunded' | null;
  created_at: number;
  finished_at: number | null;
  expires_at: number | null;
  files_kept: boolean;
}

const L = {
  title: ['照片修复任务', 'Photo jobs'],
  intro: ['上传照片开始修复；同一任务也可通过方糖接口（/api/third/photo）查询。每次上传占用一次方糖上传配额，任务失败或取消时退回。', 'Upload a photo to start a restoration job; the same jobs are seen through the Fangtang API (/api/third/photo). Each upload holds one Fangtang upload, given back when the job fails or is cancelled.'],
  newJob: ['新建任务', 'New job'],
  photo: ['照片（JPEG、PNG、WebP）', 'Photo (JPEG, PNG, WebP)'],
  kind: ['修复类型', 'Repair'],
  colour: ['背景颜色', 'Background colour'],
  start: ['上传并开始', 'Upload and start'],
  uploadsLeft: ['剩余上传次数', 'Uploads left'],
  held: ['处理中占用', 'held by running jobs'],
  job: ['任务', 'Job'],
  progress: ['进度', 'Progress'],
  charge: ['计费', 'Charge'],
  app: ['应用', 'App'],
  console: ['控制台', 'console'],
  finished: ['完成时间', 'Finished'],
  expires: ['文件删除时间', 'Files deleted at'],
  filesGone: ['文件已按保留期删除', 'The files were deleted after the retention'],
  input: ['原图', 'Input'],
  result: ['结果', 'Result'],
  downloadInput: ['下载原图', 'Download the input'],
  downloadResult: ['下载结果', 'Download the result'],
  cancelJob: ['取消任务', 'Cancel the job'],
  confirmCancel: ['确定取消此任务？上传配额将退回。', 'Cancel this job? Its upload is given back.'],
  error: ['错误', 'Error'],
  attempts: ['尝试次数', 'Attempts'],
  size: ['尺寸', 'Size'],
  first: ['第一页', 'First page'],
  allKinds: ['全部类型', 'All repairs'],
  kinds: {
    sr: ['超分辨率', 'Super-resolution'],
    'repair,sr': ['修复 + 超分', 'Clean-up + super-resolution'],
    'colour,sr': ['上色 + 超分', 'Colourize + super-resolution'],
    'repair,colour,sr': ['修复 + 上色 + 超分', 'Clean-up + colourize + super-resolution'],
    bg: ['证件照换背景', 'ID photo background'],
  },
  statuses: {
    queued: ['排队中', 'queued'],
    running: ['处理中', 'running'],
    done: ['已完成', 'done'],
    failed: ['失败', 'failed'],
  },
  charges: {
    held: ['已占用', 'held'],
    committed: ['已扣除', 'charged'],
    refunded: ['已退回', 'refunded'],
  },
} as const;

const KINDS = Object.keys(L.kinds) as (keyof typeof L.kinds)[];
const STATUSES = Object.keys(L.statuses) as PhotoJob['status'][];
const PAGE = 20;
const active = (j: PhotoJob) => j.status === 'queued' || j.status === 'running';
const kindText = (k: string) => (k in L.kinds ? tr(L.kinds[k as keyof typeof L.kinds]) : k);
const hexToRgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(',');
const ext = (type: string) => (type === 'image/png' ? 'png' : type === 'image/webp' ? 'webp' : 'jpg');

export function PhotosPage({ rest }: AreaProps) {
  if (rest[0]) return <JobDetail id={rest[0]} />;
  return <JobList />;
}

export function StatusBadge({ job }: { job: PhotoJob }) {
  const cls = job.status === 'done' ? 'badge ok' : job.status === 'failed' ? 'badge bad' : job.status === 'running' ? 'badge warn' : 'badge';
  return (
    <span class={cls} data-status={job.status}>
      {tr(L.statuses[job.status])}
      {job.status === 'failed' && job.error === 'cancelled' ? ` · ${t('cancel')}` : ''}
    </span>
  );
}

function Progress({ job }: { job: PhotoJob }) {
  const pct = Math.round(job.progress * 100);
  return (
    <div class="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct} title={`${pct}%`}>
      <div style={{ width: `${pct}%` }} />
    </div>
  );
}

/** Reloads every second while `busy` (a job is queued or running). */
function usePoll(busy: boolean, reload: () => void, deps: unknown[]) {
  useEffect(() => {
    if (!busy) return;
    const timer = setTimeout(reload, 1000);
    return () => clearTimeout(timer);
  }, [busy, ...deps]);
}

function Quota({ tenantId, tick }: { tenantId: number; tick: number }) {
  const q = useLoad(() => get<{ remaining: number }>('/quotas', { service: 'fangtang', tenant_id: tenantId }), [tenantId, tick]);
  return (
    <div class="figures">
      <div>
        <div class="muted">{tr(L.uploadsLeft)}</div>
        <strong data-testid="uploads-left">{q.data ? fmtNumber(q.data.remaining) : '…'}</strong>
      </div>
    </div>
  );
}

function NewJob({ onCreated }: { onCreated: (j: PhotoJob) => void }) {
  const { me } = useSession();
  const [file, setFile] = useState<File | null>(null);
  const [kind, setKind] = useState<string>('sr');
  const [colour, setColour] = useState('#ffffff');
  const [tenant, setTenant] = useState('');
  const [tick, setTick] = useState(0);
  const act = useAction();
  const tenantId = tenant ? Number(tenant) : me.tenant_id;
  return (
    <Card title={tr(L.newJob)} testid="new-job">
      <Quota tenantId={tenantId} tick={tick} />
      <form
        class="form-grid"
        onSubmit={onSubmit(() =>
          act.run(async () => {
            if (!file) return;
            const j = await post<PhotoJob>('/photo-jobs', file, { repair_type: kind, rgb: kind === 'bg' ? hexToRgb(colour) : undefined, tenant_id: tenant || undefined });
            setTick((x) => x + 1);
            onCreated(j);
          }),
        )}
      >
        <Field label={tr(L.photo)}>
          <input name="photo" type="file" accept="image/jpeg,image/png,image/webp" required onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
        </Field>
        <Field label={tr(L.kind)}>
          <select name="repair_type" value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
            {KINDS.map((k) => (
              <option value={k}>{kindText(k)}</option>
            ))}
          </select>
        </Field>
        {kind === 'bg' && (
          <Field label={tr(L.colour)}>
            <input name="rgb" type="color" value={colour} onInput={(e) => setColour(e.currentTarget.value)} />
          </Field>
        )}
        <TenantField value={tenant} onChange={setTenant} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled={act.busy || !file}>
            {tr(L.start)}
          </button>
        </div>
      </form>
      <Err error={act.error} />
    </Card>
  );
}

function JobList() {
  const { me, tenants } = useSession();
  const [tenant, setTenant] = useState<number | undefined>(me.operator ? undefined : me.tenant_id);
  const [status, setStatus] = useState('');
  const [kind, setKind] = useState('');
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1];
  const list = useLoad(() => get<{ items: PhotoJob[]; next_cursor: string | null }>('/photo-jobs', { tenant_id: tenant, status, repair_type: kind, limit: PAGE, cursor }), [tenant, status, kind, cursor]);
  const rows = list.data?.items ?? [];
  usePoll(rows.some(active), list.reload, [list.data]);
  const reset = () => setCursors([]);
  return (
    <>
      <h1>{tr(L.title)}</h1>
      <p class="muted">{tr(L.intro)}</p>
      <NewJob
        onCreated={() => {
          reset();
          list.reload();
        }}
      />
      <Card
        actions={
          <>
            <label class="field inline">
              <span>{t('status')}</span>
              <select data-testid="status-filter" value={status} onChange={(e) => (setStatus(e.currentTarget.value), reset())}>
                <option value="">{t('all')}</option>
                {STATUSES.map((s) => (
                  <option value={s}>{tr(L.statuses[s])}</option>
                ))}
              </select>
            </label>
            <label class="field inline">
              <span>{tr(L.kind)}</span>
              <select data-testid="kind-filter" value={kind} onChange={(e) => (setKind(e.currentTarget.value), reset())}>
                <option value="">{tr(L.allKinds)}</option>
                {KINDS.map((k) => (
                  <option value={k}>{kindText(k)}</option>
                ))}
              </select>
            </label>
            <TenantPicker value={tenant} onChange={(v) => (setTenant(v), reset())} />
            <button type="button" onClick={list.reload}>
              {t('refresh')}
            </button>
          </>
        }
      >
        <Err error={list.error} />
        {list.loading && !list.data ? (
          <Loading />
        ) : (
          <Table<PhotoJob>
            testid="photo-jobs"
            rowKey={(j) => j.id}
            rows={rows}
            onRow={(j) => navigate(`photos/${j.id}`)}
            cols={[
              {
                label: tr(L.job),
                render: (j) => (
                  <a href={href(`photos/${j.id}`)} onClick={go(`photos/${j.id}`)} title={j.id}>
                    <code>{j.id.slice(0, 8)}</code>
                  </a>
                ),
              },
              { label: tr(L.kind), render: (j) => kindText(j.repair_type) },
              { label: t('status'), render: (j) => <StatusBadge job={j} /> },
              { label: tr(L.progress), render: (j) => <Progress job={j} /> },
              { label: tr(L.charge), render: (j) => (j.charge ? tr(L.charges[j.charge]) : '—') },
              ...(me.operator ? [{ label: t('tenant'), render: (j: PhotoJob) => tenantName(tenants, j.tenant_id) }] : []),
              { label: tr(L.app), render: (j) => (j.app_id === null ? tr(L.console) : `#${j.app_id}`) },
              { label: t('created'), render: (j) => fmtTime(j.created_at) },
            ]}
          />
        )}
        <div class="pager">
          <button type="button" disabled={!cursors.length} onClick={reset}>
            {tr(L.first)}
          </button>
          <button type="button" disabled={!list.data?.next_cursor} onClick={() => list.data?.next_cursor && setCursors([...cursors, list.data.next_cursor])}>
            {t('next')}
          </button>
        </div>
      </Card>
    </>
  );
}

function JobDetail({ id }: { id: string }) {
  const { me, tenants } = useSession();
  const job = useLoad(() => get<PhotoJob>(`/photo-jobs/${encodeURIComponent(id)}`), [id]);
  const act = useAction();
  const j = job.data;
  usePoll(!!j && active(j), job.reload, [job.data]);
  if (job.error) return <Err error={job.error} />;
  if (!j) return <Loading />;
  const file = (which: 'input' | 'result') => `${REST}/photo-jobs/${j.id}/${which}`;
  return (
    <>
      <BackLink to="photos" />
      <h1 data-testid="job-title">
        <code>{j.id.slice(0, 8)}</code> <StatusBadge job={j} />
      </h1>
      <Card>
        <Progress job={j} />
        <dl class="kv" style={{ marginTop: '10px' }}>
          <dt>{tr(L.job)}</dt>
          <dd>
            <code>{j.id}</code>
          </dd>
          <dt>{tr(L.kind)}</dt>
          <dd data-testid="job-kind">
            {kindText(j.repair_type)}
            {j.rgb && (
              <>
                {' '}
                <span class="swatch" style={{ background: `rgb(${j.rgb.join(',')})` }} /> {j.rgb.join(',')}
              </>
            )}
          </dd>
          <dt>{tr(L.progress)}</dt>
          <dd data-testid="job-progress">{Math.round(j.progress * 100)}%</dd>
          <dt>{tr(L.charge)}</dt>
          <dd data-testid="job-charge">{j.charge ? tr(L.charges[j.charge]) : '—'}</dd>
          {me.operator && (
            <>
              <dt>{t('tenant')}</dt>
              <dd>{tenantName(tenants, j.tenant_id)}</dd>
            </>
          )}
          <dt>{tr(L.app)}</dt>
          <dd>{j.app_id === null ? tr(L.console) : `#${j.app_id}`}</dd>
          <dt>{t('created')}</dt>
          <dd>{fmtTime(j.created_at)}</dd>
          <dt>{tr(L.finished)}</dt>
          <dd>{fmtTime(j.finished_at)}</dd>
          <dt>{tr(L.expires)}</dt>
          <dd>{fmtTime(j.expires_at)}</dd>
          <dt>{tr(L.attempts)}</dt>
          <dd>{j.attempts}</dd>
          {j.error && (
            <>
              <dt>{tr(L.error)}</dt>
              <dd data-testid="job-error">{j.error}</dd>
            </>
          )}
        </dl>
        {active(j) && (
          <div class="form-actions">
            <button
              type="button"
              class="danger"
              data-testid="cancel-job"
              disabled={act.busy}
              onClick={() => {
                if (!confirm(tr(L.confirmCancel))) return;
                void act.run(async () => {
                  await post(`/photo-jobs/${j.id}/cancel`);
                  job.reload();
                });
              }}
            >
              {tr(L.cancelJob)}
            </button>
          </div>
        )}
        <Err error={act.error} />
      </Card>
      {!j.files_kept ? (
        <p class="muted" data-testid="files-gone">
          {tr(L.filesGone)}
        </p>
      ) : (
        <div class="photo-pair">
          <Card title={tr(L.input)} testid="job-input">
            <img class="preview" src={file('input')} alt={tr(L.input)} />
            <div class="form-actions">
              <button type="button" data-testid="download-input" onClick={() => act.run(() => download('GET', `/photo-jobs/${j.id}/input`, `${j.id}-input.${ext(j.input_type)}`))}>
                {tr(L.downloadInput)}
              </button>
            </div>
          </Card>
          {j.status === 'done' && j.result && (
            <Card title={tr(L.result)} testid="job-result">
              <img class="preview" src={file('result')} alt={tr(L.result)} />
              <p class="muted" data-testid="result-size">
                {tr(L.size)}: {j.result.width} × {j.result.height} · {fmtBytes(j.result.bytes)}
              </p>
              <div class="form-actions">
                <button type="button" class="primary" data-testid="download-result" onClick={() => act.run(() => download('GET', `/photo-jobs/${j.id}/result`, `${j.id}-result.${ext(j.result!.content_type)}`))}>
                  {tr(L.downloadResult)}
                </button>
              </div>
            </Card>
          )}
        </div>
      )}
    </>
  );
}
