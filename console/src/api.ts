/** The console speaks only the native REST API (/rest/v1), with the session cookie set at login. */
export const REST = '/rest/v1';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

async function fail(res: Response): Promise<never> {
  let body: { code?: string; detail?: string; field?: string } = {};
  try {
    body = await res.json();
  } catch {
    /* not JSON */
  }
  const err = new ApiError(res.status, body.code ?? `HTTP_${res.status}`, body.detail ?? res.statusText, body.field);
  // Only a lost session logs out; other 401s (a wrong pay password) are the form's errors.
  if (res.status === 401 && err.code === 'NOT_LOGGED_IN') onUnauthorized?.(err);
  throw err;
}

/** Called when a request answers 401 (session gone): the app goes back to the login page. */
let onUnauthorized: ((e: ApiError) => void) | undefined;
export const setUnauthorizedHandler = (f: (e: ApiError) => void) => {
  onUnauthorized = f;
};

type Query = Record<string, string | number | boolean | undefined | null>;

export function qs(q: Query = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export async function api<T = any>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: { accept: 'application/json, application/problem+json' } };
  if (body instanceof FormData) init.body = body;
  else if (body instanceof Blob) {
    // a file sent as-is with its own type (a photo to restore)
    init.body = body;
    (init.headers as Record<string, string>)['content-type'] = body.type || 'application/octet-stream';
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const res = await fetch(REST + path + qs(query), init);
  if (!res.ok) return fail(res);
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? res.json() : res.text()) as Promise<T>;
}

export const get = <T = any>(path: string, query?: Query) => api<T>('GET', path, undefined, query);
export const post = <T = any>(path: string, body?: unknown, query?: Query) => api<T>('POST', path, body ?? {}, query);
export const patch = <T = any>(path: string, body: unknown) => api<T>('PATCH', path, body);
export const put = <T = any>(path: string, body: unknown) => api<T>('PUT', path, body);
export const del = <T = any>(path: string, query?: Query) => api<T>('DELETE', path, undefined, query);

/**
 * Fetches a binary answer (PNG, SVG, PDF, XLSX) and hands it to the browser as a download. The body
 * may be JSON, FormData, or a Blob/File sent as-is with its own type (a PDF to stamp).
 */
export async function downloadWith(method: string, path: string, filename: string, body?: unknown, query?: Query): Promise<{ blob: Blob; headers: Headers }> {
  const init: RequestInit = { method, credentials: 'same-origin' };
  if (body instanceof FormData) init.body = body;
  else if (body instanceof Blob) {
    init.body = body;
    init.headers = { 'content-type': body.type || 'application/octet-stream' };
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'content-type': 'application/json' };
  }
  const res = await fetch(REST + path + qs(query), init);
  if (!res.ok) return fail(res);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return { blob, headers: res.headers };
}

export async function download(method: string, path: string, filename: string, body?: unknown, query?: Query): Promise<Blob> {
  return (await downloadWith(method, path, filename, body, query)).blob;
}

/** The OpenAPI document: the console shows a service's area only when its endpoints exist. */
export interface ApiDoc {
  paths: Record<string, Record<string, any>>;
}
let docPromise: Promise<ApiDoc> | undefined;
export const apiDoc = (): Promise<ApiDoc> => (docPromise ??= get<ApiDoc>('/openapi.json').catch((e) => ((docPromise = undefined), Promise.reject(e))));

export function hasPath(doc: ApiDoc | undefined, path: string, method = 'get'): boolean {
  return !!doc?.paths?.[REST + path]?.[method];
}

/** The services an app can be enabled for, read from the apps schema of the OpenAPI document. */
export function servicesFromDoc(doc: ApiDoc | undefined): string[] {
  const schema = doc?.paths?.[REST + '/apps']?.post?.requestBody?.content?.['application/json']?.schema;
  const items = schema?.properties?.services?.items;
  const list: unknown[] = (items?.anyOf ?? items?.oneOf ?? []).map((x: any) => x.const ?? x.enum?.[0]);
  const names = list.filter((x): x is string => typeof x === 'string' && x !== '*');
  return names.length ? names : ['native'];
}
