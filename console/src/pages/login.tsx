import { useState } from 'preact/hooks';
import { t } from '../i18n';
import { Err, onSubmit, useAction } from '../ui';

export function LoginPage({ onLogin, onLang }: { lang: string; onLang: () => void; onLogin: (u: string, p: string) => Promise<void> }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const act = useAction();
  return (
    <div class="login">
      <form class="card login-card" data-testid="login-form" onSubmit={onSubmit(() => act.run(() => onLogin(username.trim(), password)))}>
        <header>
          <h1>{t('brand')}</h1>
          <button type="button" class="lang" data-testid="lang" onClick={onLang}>
            {t('switchLang')}
          </button>
        </header>
        <h2>{t('loginTitle')}</h2>
        <p class="muted">{t('loginHint')}</p>
        <label class="field">
          <span>{t('username')}</span>
          <input name="username" autocomplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        </label>
        <label class="field">
          <span>{t('password')}</span>
          <input name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <Err error={act.error} />
        <button type="submit" class="primary" disabled={act.busy}>
          {t('login')}
        </button>
      </form>
    </div>
  );
}
