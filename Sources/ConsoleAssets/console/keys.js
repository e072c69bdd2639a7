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

/// Days before expiry from which a certificate is shown as due for renewal.
const EXPIRY_WARNING_DAYS = 14;
const certificatePath = (node, domain) => `/nodes/${encodeURIComponent(node.id)}/certificates/${encodeURIComponent(domain)}`;

function expiryCell(certificate) {
  const days = certificate.expiresInDays;
  const state = days < 0 ? 'expired' : days <= EXPIRY_WARNING_DAYS ? 'expiring' : '';
  const words = days < 0 ? `expired ${-days} days ago` : `${days} days left`;
  return el('td', { class: `expiry ${state}`, 'data-days': days }, `${certificate.notAfter} (${words})`);
}

/// The node's uploaded certificates, with each one's expiry, and the form that uploads, replaces
/// (with the If-Match of the version listed) or checks one. The chain and key are read in the
/// page (pasted, or read from the chosen files by a FileReader) and sent only to the admin API.
export async function certificatesTab(node) {
  const answer = await api.call('GET', `/nodes/${encodeURIComponent(node.id)}/certificates`);
  if (answer.status !== 200) return problemBox(answer.json || {});
  const certificates = answer.json.certificates || [];
  // The list carries no ETags: each certificate's own read does, as of the page being opened,
  // so that a replacement or deletion is refused (412) if someone changed it meanwhile.
  const reads = await Promise.all(certificates.map((certificate) => api.call('GET', certificatePath(node, certificate.domain))));
  const etags = new Map(certificates.map((certificate, index) => [certificate.domain, reads[index].status === 200 ? reads[index].etag : null]));
  const domains = node.portalDomains || [];
  const result = el('div', { id: 'certificate-result' });

  const removeButton = (certificate) => {
    const remove = el('button', { type: 'button', class: 'danger delete-certificate', 'data-domain': certificate.domain }, 'Delete');
    remove.addEventListener('click', async () => {
      if (!remove.dataset.armed) {
        remove.dataset.armed = 'yes';
        remove.textContent = `Confirm: stop serving ${certificate.domain}`;
        return;
      }
      const deleted = await api.call('DELETE', certificatePath(node, certificate.domain), { ifMatch: etags.get(certificate.domain) || undefined });
      if (deleted.status === 204) { window.dispatchEvent(new HashChangeEvent('hashchange')); return; }
      fill(result, deleted.status === 412 ? conflict() : problemBox(deleted.json || {}));
    });
    return remove;
  };
  const list = el('div', { class: 'card' }, el('h2', {}, 'Uploaded portal certificates'),
    certificates.length
      ? el('table', { id: 'certificates' },
        el('tr', {}, ['domain', 'names', 'issuer', 'expires', 'served', 'uploaded', ''].map((name) => el('th', {}, name))),
        certificates.map((certificate) => el('tr', { 'data-domain': certificate.domain },
          el('td', {}, certificate.domain), el('td', {}, certificate.names.join(', ')), el('td', {}, certificate.issuer),
          expiryCell(certificate), el('td', {}, certificate.served ? 'yes' : 'no'),
          el('td', {}, `${certificate.uploadedAt} by ${certificate.uploadedBy}`),
          el('td', {}, removeButton(certificate)))))
      : el('p', { class: 'muted' }, 'No certificate uploaded for this node\'s portal domains.'));
  if (!domains.length) {
    return el('div', {}, list, notice('This node has no portal domain of its own to upload a certificate for.'));
  }

  const domain = el('select', { id: 'certificate-domain' }, domains.map((name) =>
    el('option', { value: name }, etags.has(name) ? `${name} (replace the uploaded one)` : name)));
  const chain = el('textarea', { id: 'certificate-chain', rows: 6, spellcheck: 'false', placeholder: '-----BEGIN CERTIFICATE-----  (the leaf first, then each issuer)' });
  const key = el('textarea', { id: 'certificate-key', rows: 4, spellcheck: 'false', autocomplete: 'off', placeholder: '-----BEGIN PRIVATE KEY-----' });
  const readInto = (target) => el('input', {
    type: 'file', accept: '.pem,.crt,.key,text/plain', onchange: (event) => {
      const file = event.target.files[0];
      if (!file) return;
      const reader = new FileReader();
      reader.addEventListener('load', () => { target.value = reader.result; target.dispatchEvent(new Event('input')); });
      reader.readAsText(file);
    },
  });
  const chainFile = readInto(chain);
  chainFile.id = 'certificate-chain-file';
  const keyFile = readInto(key);
  keyFile.id = 'certificate-key-file';
  const errors = {
    domain: el('div', { class: 'field-error', id: 'error-domain' }),
    certificate: el('div', { class: 'field-error', id: 'error-certificate' }),
    key: el('div', { class: 'field-error', id: 'error-key' }),
  };
  const send = async (dryRun) => {
    for (const box of Object.values(errors)) fill(box);
    fill(result);
    const etag = etags.get(domain.value);
    const sent = await api.call('PUT', `${certificatePath(node, domain.value)}${dryRun ? '?dryRun=true' : ''}`,
      { body: { certificate: chain.value, key: key.value }, ifMatch: etag || undefined });
    if (sent.status === 200 || sent.status === 201) {
      if (dryRun) {
        const would = (sent.json && sent.json.node) || {};
        fill(result, el('div', { class: 'notice ok', id: 'certificate-check', role: 'status' },
          `The certificate would be accepted for ${would.domain}: ${(would.names || []).join(', ')}, issued by ${would.issuer}, `,
          `valid until ${would.notAfter} (${would.expiresInDays} days). Nothing was stored.`));
        return;
      }
      window.dispatchEvent(new HashChangeEvent('hashchange'));
      return;
    }
    if (sent.status === 412) { fill(result, conflict()); return; }
    if (sent.status === 409) {
      fill(result, el('div', { class: 'problem', role: 'alert', id: 'uploads-disabled' },
        el('strong', {}, 'Certificate uploads are turned off on this gateway. '),
        'Its operator has not configured a key-encryption key (certificateUploads in the settings), so no private key can be stored. Nothing was uploaded.'));
      return;
    }
    const unplaced = [];
    for (const error of (sent.json && sent.json.errors) || []) {
      const box = errors[error.field];
      if (box) box.append(el('div', { class: 'field-problem' }, error.message));
      else unplaced.push(`${error.field}: ${error.message}`);
    }
    fill(result, problemBox(sent.json || {}, unplaced.length ? unplaced.join('; ') : null));
  };
  const form = el('form', { class: 'card', id: 'certificate-form', onsubmit: (event) => { event.preventDefault(); send(false); } },
    el('h2', {}, 'Upload or replace a certificate'),
    el('p', { class: 'muted' }, 'Paste the PEM files or choose them: they are read in this page and sent only to this gateway\'s admin API. ',
      'The private key is sealed by the gateway and never shown again.'),
    result,
    el('div', { class: 'field' }, el('label', { for: 'certificate-domain' }, 'Portal domain'), domain, errors.domain),
    el('div', { class: 'field' }, el('label', { for: 'certificate-chain' }, 'Certificate chain (PEM)'), chainFile, chain, errors.certificate),
    el('div', { class: 'field' }, el('label', { for: 'certificate-key' }, 'Private key (PEM, unencrypted)'), keyFile, key, errors.key),
    el('div', { class: 'row' },
      el('button', { type: 'button', id: 'check-certificate', onclick: () => send(true) }, 'Check'),
      el('button', { class: 'primary', type: 'submit', id: 'upload-certificate' }, 'Upload')));
  return el('div', {}, list, form);
}

function conflict() {
  return el('div', { class: 'problem', role: 'alert', id: 'conflict' }, 'The certificate changed since you opened this page; nothing was changed. ',
    el('button', { type: 'button', id: 'reload', onclick: () => window.dispatchEvent(new HashChangeEvent('hashchange')) }, 'Reload the current version'));
}
