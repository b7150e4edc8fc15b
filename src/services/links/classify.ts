/**
 * What a scan request says about its client: device and OS class from the User-Agent, bot or
 * link-preview fetchers, referrer host, and an address prefix. Pure functions.
 */
import { isIP } from 'node:net';

export type Device = 'mobile' | 'tablet' | 'desktop' | 'bot' | 'other';
export type Os = 'ios' | 'android' | 'windows' | 'macos' | 'linux' | 'chromeos' | 'other';

/**
 * Automated clients: search crawlers, link-preview fetchers of chat apps and social networks,
 * headless browsers, and command-line tools / HTTP libraries. A person scanning a code uses a
 * phone's browser or camera app, so curl, wget and library clients count as bots, and so does an
 * empty User-Agent. In-app browsers (WeChat MicroMessenger, WhatsApp's own browser is not a
 * fetcher) count as people; WhatsApp/Telegram/Slack preview fetchers identify themselves.
 */
const BOT_RE =
  /bot\b|bot\/|crawl|spider|slurp|facebookexternalhit|facebookcatalog|meta-externalagent|whatsapp\/|telegrambot|twitterbot|slackbot|slack-imgproxy|discordbot|linkedinbot|embedly|skypeuripreview|applebot|yandex|baiduspider|bytespider|petalbot|sogou|bingpreview|google-inspectiontool|googleother|headlesschrome|phantomjs|lighthouse|pingdom|uptimerobot|curl\/|wget\/|python-requests|python-urllib|aiohttp|go-http-client|okhttp|java\/|libwww|httpclient|axios\/|node-fetch|undici|postmanruntime|insomnia/i;

export function isBot(ua: string | undefined): boolean {
  return !ua || !ua.trim() || BOT_RE.test(ua);
}

export function classifyUa(ua: string | undefined): { device: Device; os: Os; bot: boolean } {
  const s = ua ?? '';
  const bot = isBot(s);
  let os: Os = 'other';
  if (/iPhone|iPad|iPod/i.test(s)) os = 'ios';
  else if (/Android/i.test(s)) os = 'android';
  else if (/CrOS/.test(s)) os = 'chromeos';
  else if (/Windows/i.test(s)) os = 'windows';
  else if (/Macintosh|Mac OS X/i.test(s)) os = 'macos';
  else if (/Linux|X11/i.test(s)) os = 'linux';
  let device: Device;
  if (bot) device = 'bot';
  else if (/iPad|Tablet/i.test(s) || (os === 'android' && !/Mobile/i.test(s))) device = 'tablet';
  else if (/Mobi|iPhone|iPod|Android|HarmonyOS|MicroMessenger/i.test(s)) device = 'mobile';
  else if (os === 'windows' || os === 'macos' || os === 'linux' || os === 'chromeos') device = 'desktop';
  else device = 'other';
  return { device, os, bot };
}

export function referrerHost(ref: string | undefined): string | null {
  if (!ref) return null;
  try {
    const u = new URL(ref);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    return u.hostname.toLowerCase().slice(0, 255) || null;
  } catch {
    return null;
  }
}

/** The /24 (IPv4) or /48 (IPv6) network of an address; IPv4-mapped IPv6 counts as IPv4. */
export function ipPrefix(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const a = mapped ? mapped[1] : ip;
  const fam = isIP(a);
  if (fam === 4) return a.split('.').slice(0, 3).join('.') + '.0/24';
  if (fam === 6) {
    const [head, tail] = a.split('::');
    const h = head ? head.split(':') : [];
    const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
    const full = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
    return full.slice(0, 3).map((x) => (parseInt(x, 16) || 0).toString(16)).join(':') + '::/48';
  }
  return 'unknown';
}
