// Token issuers and signing keys (public keys only), and the portal domains' uploaded
// certificates: read for every admin who sees the node; issuers replaced, with If-Match, by
// those the admin API lets (a partner's own admin only when its OEM turned self-service on).
import * as api from './api.js';
import { el, fill, problemBox, notice } from './dom.js';

/// Whether the caller may replace the node's issuers; `me` is read again, since the OEM may have
/// turned self-service on or off since the sign-in.
function mayManageIssuers(node, me) {
  if (me.role === 'platform-admin' || me.role === 'oem-admin') return node.kind !== 'customer';
  return me.role === 'partner-admin' && me.managesOwnIssuers && me.node === node.id;
}

export async function issuersTab(node) {
  const [answer, me] = await Promise.all([api.call('GET', `/nodes/${encodeURIComponent(node.id)}/issuers`), api.call('GET', '/me')]);
  if (me.status !== 200) return problemBox(me.json || {});
  if (answer.status !== 200) return problemBox(answer.json || {});
  const issuers = answer.json.issuers || [];
  const table = el('table', { id: 'issuers' },
    el('tr', {}, ['issuer', 'audience', 'max lifetime', 'keys'].map((name) => el('th', {}, name))),
    issuers.map((issuer) => el('tr', {},
      el('td', {}, issuer.iss), el('td', {}, issuer.audience), el('td', {}, `${issuer.maxLifetimeSeconds} s`),
      el('td', {}, issuer.keys.map((key) => el('div', {}, `${key.kid} (${key.alg})`))))));
  const cards = [el('div', { class: 'card' }, el('h2', {}, 'Token issuers'),
    issuers.length ? table : el('p', { class: 'muted' }, 'No issuer is registered on this node.'))];
  if (!mayManageIssuers(node, me.json)) {
    cards.push(notice(node.kind === 'partner'
      ? 'Your OEM registers this partner\'s issuers: partner self-service is off.'
      : 'Issuers are not yours to change here.'));
    return el('div', {}, cards);
  }
  // The whole list, as the admin API reads and replaces it: rotating a key is adding the new
  // key, then removing the old one once the identity service signs with the new.
  const editor = el('textarea', { id: 'issuers-json', rows: 14, spellcheck: 'false', value: JSON.stringify({ issuers }, null, 2) });
  const result = el('div', { id: 'issuers-result' });
  const save = async (event) => {
    event.preventDefault();
    fill(result);
    let body;
    try { body = JSON.parse(editor.value); } catch (error) { fill(result, problemBox({ title: `Not JSON: ${error.message}` })); return; }
    const saved = await api.call('PUT', `/nodes/${encodeURIComponent(node.id)}/issuers`, { body, ifMatch: answer.etag });
    if (saved.status === 200) { window.dispatchEvent(new HashChangeEvent('hashchange')); return; }
    if (saved.status === 412) {
      fill(result, el('div', { class: 'problem', role: 'alert', id: 'conflict' }, 'The issuers changed since you opened them; nothing was saved. ',
        el('button', { type: 'button', id: 'reload', onclick: () => window.dispatchEvent(new HashChangeEvent('hashchange')) }, 'Reload the current version')));
      return;
    }
    const errors = ((saved.json && saved.json.errors) || []).map((error) => el('li', {}, `${error.field}: ${error.message}`));
    fill(result, problemBox(saved.json || {}), errors.length ? el('ul', { class: 'field-error' }, errors) : null);
  };
  cards.push(el('form', { class: 'card', id: 'issuers-form', onsubmit: save },
    el('h2', {}, 'Replace the list'),
    el('p', { class: 'muted' }, 'Public keys only (PEM). Every change is validated against the whole tree before it is stored.'),
    result, editor,
    el('div', { class: 'row' }, el('button', { class: 'primary', type: 'submit', id: 'save-issuers' }, 'Save issuers'))));
  return el('div', {}, cards);
}

export async function certificatesTab(node) {
  const answer = await api.call('GET', `/nodes/${encodeURIComponent(node.id)}/certificates`);
  if (answer.status !== 200) return problemBox(answer.json || {});
  const certificates = answer.json.certificates || [];
  return el('div', { class: 'card' }, el('h2', {}, 'Uploaded portal certificates'),
    certificates.length
      ? el('table', { id: 'certificates' },
        el('tr', {}, ['domain', 'names', 'issuer', 'expires', 'served', 'uploaded'].map((name) => el('th', {}, name))),
        certificates.map((certificate) => el('tr', {},
          el('td', {}, certificate.domain), el('td', {}, certificate.names.join(', ')), el('td', {}, certificate.issuer),
          el('td', {}, `${certificate.notAfter} (${certificate.expiresInDays} days)`), el('td', {}, certificate.served ? 'yes' : 'no'),
          el('td', {}, `${certificate.uploadedAt} by ${certificate.uploadedBy}`))))
      : el('p', { class: 'muted' }, 'No certificate uploaded for this node\'s portal domains.'),
    el('p', { class: 'muted' }, 'Upload or replace one with PUT /admin/v1/nodes/{id}/certificates/{domain} (see the admin API guide).'));
}
