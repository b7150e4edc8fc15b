/** A QR image served by the API, previewed and downloadable as PNG or SVG. */
import { download, REST } from '../api';
import { t, tr } from '../i18n';
import { Err, useAction } from '../ui';

const L = { qr: ['二维码', 'QR code'] } as const;

/** path: an endpoint answering a QR image for ?format=png|svg (e.g. /links/<code>/qr). */
export function QrPreview({ path, name }: { path: string; name: string }) {
  const act = useAction();
  return (
    <div class="qr-box" data-testid="qr">
      <img class="qr" src={`${REST}${path}?format=png&scale=6`} alt={tr(L.qr)} />
      <div class="form-actions" style={{ flexDirection: 'column', alignItems: 'flex-start' }}>
        <button type="button" data-testid="qr-png" onClick={() => act.run(() => download('GET', path, `${name}.png`, undefined, { format: 'png', scale: 10 }))}>
          {t('download')} PNG
        </button>
        <button type="button" data-testid="qr-svg" onClick={() => act.run(() => download('GET', path, `${name}.svg`, undefined, { format: 'svg' }))}>
          {t('download')} SVG
        </button>
        <Err error={act.error} />
      </div>
    </div>
  );
}
