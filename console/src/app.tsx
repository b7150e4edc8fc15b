/** The console shell: session, language, responsive navigation, and the areas. */
import type { ComponentChildren, ComponentType } from 'preact';
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import { apiDoc, del, get, hasPath, post, setUnauthorizedHandler, type ApiDoc } from './api';
import { currentLang, setLang, t, type TKey } from './i18n';
import { AppTypesPage } from './pages/appTypes';
import { AppsPage } from './pages/apps';
import { CodesPage } from './pages/codes';
import { DevelopersPage } from './pages/developers';
import { LedgerPage } from './pages/ledger';
import { LinksPage } from './pages/links';
import { LoginPage } from './pages/login';
import { ObjectsPage } from './pages/objects';
import { PhotosPage } from './pages/photos';
import { QuotasPage } from './pages/quotas';
import { ReportsPage } from './pages/reports';
import { TenantsPage } from './pages/tenants';
import { RequestLogPage, UsagePage } from './pages/usage';
import { go, href, navigate, usePath } from './router';
import { SessionContext, type Me, type Session, type Tenant } from './session';
import { Loading } from './ui';

export interface AreaProps {
  /** Path segments after the area's own, e.g. ['12'] for /console/apps/12. */
  rest: string[];
}

interface Area {
  key: string;
  nav: TKey;
  section: 'platform' | 'services';
  page: ComponentType<AreaProps>;
  /** Shown only when the running server has this REST path (the service is installed). */
  needs?: string;
}

/** The areas, in nav order. Services add theirs here once their REST endpoints exist. */
export const AREAS: Area[] = [
  { key: 'apps', nav: 'navApps', section: 'platform', page: AppsPage },
  { key: 'tenants', nav: 'navTenants', section: 'platform', page: TenantsPage },
  { key: 'developers', nav: 'navDevelopers', section: 'platform', page: DevelopersPage },
  { key: 'app-types', nav: 'navAppTypes', section: 'platform', page: AppTypesPage },
  { key: 'quotas', nav: 'navQuotas', section: 'platform', page: QuotasPage },
  { key: 'usage', nav: 'navUsage', section: 'platform', page: UsagePage, needs: '/usage' },
  { key: 'requests', nav: 'navRequests', section: 'platform', page: RequestLogPage, needs: '/requests' },
  // services, each shown once its REST endpoints exist on the server
  { key: 'reports', nav: 'navReports', section: 'services', page: ReportsPage, needs: '/reports' },
  { key: 'codes', nav: 'navCodes', section: 'services', page: CodesPage, needs: '/code-templates' },
  { key: 'links', nav: 'navLinks', section: 'services', page: LinksPage, needs: '/links' },
  { key: 'ledger', nav: 'navLedger', section: 'services', page: LedgerPage, needs: '/ledger/developer' },
  { key: 'photos', nav: 'navPhotos', section: 'services', page: PhotosPage, needs: '/photo-jobs' },
  { key: 'objects', nav: 'navObjects', section: 'services', page: ObjectsPage, needs: '/objects' },
];

export function App() {
  const [lang, setLangState] = useState(currentLang());
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [doc, setDoc] = useState<ApiDoc>();
  const [tenants, setTenants] = useState<Tenant[]>([]);
  const path = usePath();

  const toggleLang = useCallback(() => {
    const l = currentLang() === 'zh' ? 'en' : 'zh';
    setLang(l);
    setLangState(l);
  }, []);

  const loadMe = useCallback(async () => {
    try {
      setMe(await get<Me>('/me'));
    } catch {
      setMe(null);
    }
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(() => setMe(null));
    void loadMe();
    apiDoc().then(setDoc, () => undefined);
  }, []);

  const reloadTenants = useCallback(() => {
    get<Tenant[]>('/tenants').then(setTenants, () => setTenants([]));
  }, []);
  useEffect(() => {
    if (me) reloadTenants();
  }, [me?.tenant_id, me?.developer?.id]);

  const session: Session | null = useMemo(() => (me ? { me, doc, tenants, reloadTenants } : null), [me, doc, tenants]);

  if (me === undefined) return <div class="boot">{t('loading')}</div>;
  if (!me || !session)
    return (
      <LoginPage
        lang={lang}
        onLang={toggleLang}
        onLogin={async (username, password) => {
          await post('/sessions', { username, password });
          await loadMe();
          if (!path) navigate('apps', true);
        }}
      />
    );

  const areas = AREAS.filter((a) => !a.needs || hasPath(doc, a.needs));
  const [first, ...rest] = path.split('/');
  const area = areas.find((a) => a.key === first);
  const logout = async () => {
    await del('/sessions').catch(() => undefined);
    setMe(null);
    navigate('', true);
  };

  return (
    <SessionContext.Provider value={session}>
      <Shell lang={lang} onLang={toggleLang} onLogout={logout} areas={areas} active={area?.key ?? ''} me={me} docLoaded={!!doc}>
        {area ? <area.page key={`${area.key}:${lang}`} rest={rest} /> : first ? <p>{t('notFound')}</p> : <Redirect to={areas[0].key} />}
      </Shell>
    </SessionContext.Provider>
  );
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, true), [to]);
  return <Loading />;
}

function Shell({ children, areas, active, me, lang, onLang, onLogout, docLoaded }: { children: ComponentChildren; areas: Area[]; active: string; me: Me; lang: string; onLang: () => void; onLogout: () => void; docLoaded: boolean }) {
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [active]);
  const section = (s: Area['section'], title: TKey) => {
    const list = areas.filter((a) => a.section === s);
    if (!list.length) return null;
    return (
      <>
        <div class="nav-section">{t(title)}</div>
        {list.map((a) => (
          <a
            href={href(a.key)}
            onClick={(e) => {
              setOpen(false);
              go(a.key)(e);
            }}
            class={a.key === active ? 'on' : ''} data-area={a.key} aria-current={a.key === active ? 'page' : undefined}>
            {t(a.nav)}
          </a>
        ))}
      </>
    );
  };
  return (
    <div class={open ? 'shell nav-open' : 'shell'} data-lang={lang}>
      <header class="top">
        <button type="button" class="icon burger" aria-label={t('menu')} aria-expanded={open} data-testid="menu" onClick={() => setOpen(!open)}>
          ☰
        </button>
        <a class="brand" href={href('')} onClick={go('')}>
          {t('brand')}
        </a>
        <div class="who" data-testid="who">
          <span class="user">{me.developer?.username ?? me.kind}</span>
          <span class={me.operator ? 'badge op' : 'badge'}>{me.operator ? t('operator') : t('developer')}</span>
          <span class="muted tenant-name">
            {t('tenant')}: {me.tenant.name}
          </span>
        </div>
        <button type="button" class="lang" data-testid="lang" onClick={onLang}>
          {t('switchLang')}
        </button>
        <button type="button" class="logout" data-testid="logout" onClick={onLogout}>
          {t('logout')}
        </button>
      </header>
      {/* data-doc: the service areas are known once the OpenAPI document has loaded */}
      <nav class="side" data-testid="nav" data-doc={docLoaded ? 'loaded' : 'pending'}>
        {section('platform', 'sectionPlatform')}
        {section('services', 'sectionServices')}
      </nav>
      <div class="scrim" onClick={() => setOpen(false)} />
      <main class="content">{children}</main>
    </div>
  );
}
