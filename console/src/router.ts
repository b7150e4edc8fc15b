/** A tiny history router under /console/ (the server answers index.html for every path below it). */
import { useEffect, useState } from 'preact/hooks';

export const BASE = '/console';

const listeners = new Set<() => void>();
const current = () => location.pathname.replace(/^\/console\/?/, '').replace(/\/+$/, '');

export function navigate(to: string, replace = false): void {
  const url = `${BASE}/${to.replace(/^\/+/, '')}`;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  listeners.forEach((f) => f());
}

addEventListener('popstate', () => listeners.forEach((f) => f()));

/** The path below /console, without slashes at either end ('' for the start page). */
export function usePath(): string {
  const [path, setPath] = useState(current());
  useEffect(() => {
    const f = () => setPath(current());
    listeners.add(f);
    return () => void listeners.delete(f);
  }, []);
  return path;
}

export function href(to: string): string {
  return `${BASE}/${to.replace(/^\/+/, '')}`;
}

/** onClick for <a href={href(x)}>: navigates in place unless a modifier key asks for a new tab. */
export function go(to: string) {
  return (e: MouseEvent) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(to);
  };
}
