// Signing in: the page trades an API key (from the printed `#key=` link or
// the sign-in field) for an HttpOnly cookie, then forgets it. The cookie
// authenticates every later fetch, WebSocket and EventSource of this page;
// no key is ever in a URL the server sees.

const $ = (id) => document.getElementById(id);

/** The key handed over in the fragment (#key=…), removed from the address bar at once. */
function takeKeyFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const key = params.get('key');
  if (key === null) return undefined;
  params.delete('key');
  const rest = params.toString();
  history.replaceState(null, '', rest ? `#${rest}` : location.pathname + location.search);
  return key;
}

async function exchange(key) {
  const response = await fetch('/api/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key }),
  });
  if (response.status === 204) return { ok: true };
  const body = await response.json().catch(() => ({}));
  return { ok: false, message: response.status === 401 ? 'That key was not accepted.' : (body.error?.message ?? `HTTP ${response.status}`) };
}

/** Who the cookie says we are: `{auth:'keys', name}` or `{auth:'none'}`; undefined when signed out. */
async function whoAmI() {
  const response = await fetch('/api/auth/me', { headers: { accept: 'application/json' } });
  if (response.status === 401) return undefined;
  if (!response.ok) throw new Error(`sign-in check: HTTP ${response.status}`);
  return response.json();
}

/** Shows the sign-in form until a key is accepted; resolves with who we are then. */
function prompt(reason) {
  const overlay = $('sign-in');
  const input = $('key');
  const error = $('sign-in-error');
  if (reason) $('sign-in-reason').textContent = reason;
  error.textContent = '';
  overlay.hidden = false;
  input.focus();
  return new Promise((resolve) => {
    const form = $('sign-in-form');
    const submit = async (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      const result = await exchange(key).catch((failure) => ({ ok: false, message: failure.message }));
      if (!result.ok) {
        error.textContent = result.message;
        return;
      }
      input.value = '';
      const me = await whoAmI();
      if (!me) {
        error.textContent = 'Signed in, but the browser did not keep the cookie (are cookies blocked?).';
        return;
      }
      form.removeEventListener('submit', submit);
      overlay.hidden = true;
      resolve(me);
    };
    form.addEventListener('submit', submit);
  });
}

/**
 * Signs in: from the link's key, else the cookie of an earlier visit, else
 * the form. Resolves with `{auth, name?}` once signed in.
 */
export async function signIn() {
  const offered = takeKeyFromFragment();
  if (offered !== undefined) {
    const result = await exchange(offered);
    if (!result.ok) return prompt(`The key in that link was not accepted: ${result.message}`);
  }
  return (await whoAmI()) ?? prompt();
}

/** The key stopped working (revoked, or the cookie expired): ask again. */
export function signInAgain() {
  return prompt('Your key is no longer accepted (it may have been revoked). Sign in with another one.');
}

export async function signOut() {
  await fetch('/api/auth/logout', { method: 'POST' });
}
