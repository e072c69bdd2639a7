// The admin API, called with the bearer token the user pasted. The token lives only in this
// module's memory: never in web storage or a cookie, so reloading the page
// signs out, and no other page can send it (a cross-site request carries no Authorization).

let token = null;
let principal = null;

export const signedIn = () => principal;

export async function signIn(pasted) {
  token = pasted.trim().replace(/^Bearer\s+/i, '');
  const answer = await call('GET', '/me');
  if (answer.status !== 200) {
    token = null;
    principal = null;
    return answer;
  }
  principal = answer.json;
  return answer;
}

export function signOut() {
  token = null;
  principal = null;
}

/// `{ status, etag, json }` for one admin API request; `json` is the problem on a refusal.
export async function call(method, path, { body, ifMatch } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (ifMatch) headers['If-Match'] = ifMatch;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(`/admin/v1${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit',
    });
  } catch (error) {
    return { status: 0, etag: null, json: { title: `The gateway cannot be reached: ${error.message}` } };
  }
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = { title: text }; }
  return { status: response.status, etag: response.headers.get('etag'), json };
}

export const node = (id) => call('GET', `/nodes/${encodeURIComponent(id)}`);
export const effective = (id) => call('GET', `/nodes/${encodeURIComponent(id)}/effective`);
export const children = (id) => call('GET', `/nodes/${encodeURIComponent(id)}/children`);
export const explain = (id, attribute) => call('GET', `/nodes/${encodeURIComponent(id)}/explain?attribute=${encodeURIComponent(attribute)}`);
export const patch = (id, body, etag, { dryRun = false } = {}) =>
  call('PATCH', `/nodes/${encodeURIComponent(id)}${dryRun ? '?dryRun=true' : ''}`, { body, ifMatch: etag });
