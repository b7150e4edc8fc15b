/**
 * Every text of the console in Chinese and English: one entry a key, [中文, English].
 * The language is kept in localStorage and defaults to the browser's.
 */
export type Lang = 'zh' | 'en';

const T = {
  // shell
  brand: ['门户控制台', 'menhu console'],
  language: ['语言', 'Language'],
  switchLang: ['English', '中文'],
  logout: ['退出登录', 'Log out'],
  menu: ['菜单', 'Menu'],
  operator: ['运营者', 'operator'],
  developer: ['开发者', 'developer'],
  tenant: ['租户', 'Tenant'],
  loading: ['加载中…', 'Loading…'],
  notFound: ['页面不存在', 'Page not found'],
  // nav
  navTenants: ['租户', 'Tenants'],
  navDevelopers: ['开发者与角色', 'Developers & roles'],
  navAppTypes: ['应用类型', 'App types'],
  navApps: ['应用', 'Apps'],
  navQuotas: ['配额', 'Quotas'],
  navReports: ['报告', 'Reports'],
  navCodes: ['动态码', 'Dynamic codes'],
  navLinks: ['短链接', 'Short links'],
  navPhotos: ['照片任务', 'Photo jobs'],
  navLedger: ['账本', 'Ledger'],
  navObjects: ['对象', 'Objects'],
  navUsage: ['用量', 'Usage'],
  navRequests: ['请求日志', 'Request log'],
  sectionPlatform: ['平台', 'Platform'],
  sectionServices: ['服务', 'Services'],
  // login
  loginTitle: ['登录', 'Log in'],
  loginHint: ['运营者与开发者使用同一入口；开发者只看到自己的租户。', 'Operators and developers log in here; a developer sees only their own tenant.'],
  username: ['用户名', 'Username'],
  password: ['密码', 'Password'],
  login: ['登录', 'Log in'],
  // generic
  id: ['编号', 'ID'],
  name: ['名称', 'Name'],
  description: ['描述', 'Description'],
  created: ['创建时间', 'Created'],
  updated: ['更新时间', 'Updated'],
  actions: ['操作', 'Actions'],
  create: ['创建', 'Create'],
  save: ['保存', 'Save'],
  saved: ['已保存', 'Saved'],
  cancel: ['取消', 'Cancel'],
  close: ['关闭', 'Close'],
  edit: ['编辑', 'Edit'],
  delete: ['删除', 'Delete'],
  confirmDelete: ['确定删除？', 'Delete it?'],
  refresh: ['刷新', 'Refresh'],
  search: ['查询', 'Search'],
  all: ['全部', 'All'],
  none: ['无', 'none'],
  empty: ['暂无数据', 'Nothing here yet'],
  yes: ['是', 'yes'],
  no: ['否', 'no'],
  copy: ['复制', 'Copy'],
  copied: ['已复制', 'Copied'],
  status: ['状态', 'Status'],
  back: ['返回', 'Back'],
  prev: ['上一页', 'Previous'],
  next: ['下一页', 'Next'],
  page: ['第 {n} 页', 'Page {n}'],
  total: ['共 {n} 条', '{n} in all'],
  download: ['下载', 'Download'],
  upload: ['上传', 'Upload'],
  exportXlsx: ['导出 Excel', 'Export Excel'],
  details: ['详情', 'Details'],
  readOnly: ['仅运营者可修改', 'Only operators can change this'],
  // tenants
  tenantsTitle: ['租户', 'Tenants'],
  newTenant: ['新建租户', 'New tenant'],
  tenantName: ['租户名称', 'Tenant name'],
  // developers
  developersTitle: ['开发者', 'Developers'],
  newDeveloper: ['新建开发者', 'New developer'],
  email: ['邮箱', 'Email'],
  telephone: ['电话', 'Telephone'],
  role: ['角色', 'Role'],
  changeRole: ['修改角色', 'Change role'],
  rolesTitle: ['角色', 'Roles'],
  newRole: ['新建角色', 'New role'],
  // app types
  appTypesTitle: ['应用类型', 'App types'],
  newAppType: ['新建类型', 'New type'],
  parent: ['上级', 'Parent'],
  topLevel: ['（顶级）', '(top level)'],
  addChild: ['添加子类型', 'Add child'],
  // apps
  appsTitle: ['应用', 'Apps'],
  newApp: ['新建应用', 'New app'],
  key: ['密钥 ID', 'Key'],
  secret: ['密钥', 'Secret'],
  services: ['服务', 'Services'],
  appType: ['类型', 'Type'],
  blocked: ['已封禁', 'blocked'],
  active: ['正常', 'active'],
  block: ['封禁', 'Block'],
  unblock: ['解封', 'Unblock'],
  rotate: ['轮换密钥', 'Rotate secret'],
  graceSeconds: ['旧密钥宽限期（秒）', 'Old secret stays valid (seconds)'],
  previousSecret: ['旧密钥', 'Previous secret'],
  oldValidUntil: ['旧密钥有效至 {t}', 'The old secret stays valid until {t}'],
  secretOnce: ['请立即保存：密钥只显示这一次。', 'Save it now: the secret is shown this once.'],
  secretTitle: ['应用密钥', 'App secret'],
  ipAllow: ['IP 白名单（每行一个地址或 CIDR，空 = 不限）', 'IP allow-list (one address or CIDR a line; empty = any)'],
  rateLimit: ['速率限制（次/秒，空 = 默认）', 'Rate limit (requests/second; empty = default)'],
  expiresAt: ['过期时间', 'Expires'],
  never: ['永不', 'never'],
  appSettings: ['应用设置', 'App settings'],
  // quotas
  quotasTitle: ['配额', 'Quotas'],
  service: ['服务', 'Service'],
  remaining: ['剩余', 'Remaining'],
  topUp: ['充值', 'Top up'],
  units: ['数量（负数为扣回）', 'Units (negative takes back)'],
  fangtangUploads: ['方糖照片上传次数', 'Fangtang photo uploads'],
  // errors
  errGeneric: ['出错了', 'Something went wrong'],
  errNetwork: ['无法连接服务器', 'Cannot reach the server'],
} satisfies Record<string, readonly [string, string]>;

export type TKey = keyof typeof T;

/** Domain error codes as the API returns them, in words. The server's detail follows. */
const ERRORS: Record<string, readonly [string, string]> = {
  NOT_LOGGED_IN: ['未登录或会话已过期', 'Not logged in, or the session expired'],
  FORBIDDEN: ['无权执行此操作', 'You may not do this'],
  USER_UNKNOWN: ['用户不存在', 'No such user'],
  PASSWORD_INVALID: ['密码错误', 'Wrong password'],
  USER_BLOCKED: ['用户已被封禁', 'This user is blocked'],
  USER_EXISTS: ['用户名已存在', 'That username is taken'],
  LOCKED: ['尝试次数过多，请稍后再试', 'Too many tries; try again later'],
  VALIDATION: ['输入有误', 'Check the input'],
  NOT_FOUND: ['不存在', 'Not found'],
  CONFLICT: ['冲突', 'Conflict'],
  HAS_DEPENDENTS: ['仍被引用，无法删除', 'Still in use; cannot remove'],
  QUOTA_EXHAUSTED: ['配额已用完', 'Quota used up'],
  INSUFFICIENT_FUNDS: ['余额不足', 'Insufficient funds'],
  RATE_LIMITED: ['请求过于频繁', 'Too many requests'],
  PAYLOAD_TOO_LARGE: ['文件过大', 'Too large'],
  BAD_REQUEST: ['请求格式错误', 'Malformed request'],
  GONE: ['已过期', 'Expired'],
  UNAVAILABLE: ['服务暂不可用', 'Service unavailable'],
  INTERNAL: ['服务器内部错误', 'Internal server error'],
};

const stored = (): Lang | null => {
  try {
    const v = localStorage.getItem('menhu.lang');
    return v === 'zh' || v === 'en' ? v : null;
  } catch {
    return null;
  }
};

let lang: Lang = stored() ?? (typeof navigator !== 'undefined' && /^zh/i.test(navigator.language) ? 'zh' : 'en');

export const currentLang = (): Lang => lang;

export function setLang(l: Lang): void {
  lang = l;
  document.documentElement.lang = l === 'zh' ? 'zh-CN' : 'en';
  try {
    localStorage.setItem('menhu.lang', l);
  } catch {
    /* private mode */
  }
}

/** A text in the current language; {name} placeholders are filled from vars. */
export function t(key: TKey, vars: Record<string, string | number> = {}): string {
  const s = T[key][lang === 'zh' ? 0 : 1];
  return s.replace(/\{(\w+)\}/g, (_, k: string) => String(vars[k] ?? `{${k}}`));
}

/** Adds texts of a service area (kept beside its page) to the dictionary. */
export function tr(pair: readonly [string, string]): string {
  return pair[lang === 'zh' ? 0 : 1];
}

export function errorText(e: unknown): string {
  if (e && typeof e === 'object' && 'code' in e) {
    const code = String((e as { code: string }).code);
    const words = ERRORS[code];
    const detail = (e as unknown as Error).message;
    return words ? `${tr(words)}${detail ? ` — ${detail}` : ''}` : detail || code;
  }
  if (e instanceof TypeError) return t('errNetwork');
  return e instanceof Error ? e.message : t('errGeneric');
}

export function fmtTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false });
}

export function fmtNumber(n: number): string {
  return n.toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB');
}

/** A size in bytes as B, KB or MB. */
export const fmtBytes = (n: number): string => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KB` : `${fmtNumber(n)} B`);

setLang(lang);
