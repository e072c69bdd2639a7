// One node's page: its place in the tree, its tabs, and what each tab shows. Every read and
// change is an admin API call with the signed-in token; what the API refuses is shown as refused.
import * as api from './api.js';
import { el, fill, problemBox, notice } from './dom.js';
import { brandingTab } from './branding.js';
import { trafficTab } from './charts.js';
import { issuersTab, certificatesTab } from './keys.js';
import { supportTab } from './support.js';

const PAGE_SIZE = 50;
const link = (id, tab) => `#/node/${encodeURIComponent(id)}${tab && tab !== 'overview' ? `/${tab}` : ''}`;

export async function nodePage(id, tab, current) {
  const [stored, effective] = await Promise.all([api.node(id), api.effective(id)]);
  if (stored.status !== 200 || effective.status !== 200) return refused(id, stored.status !== 200 ? stored : effective);
  const node = stored.json;
  const policy = effective.json;
  const tabs = [['overview', 'Overview'], ['branding', 'Branding']];
  if (node.kind === 'oem') tabs.push(['children', 'Partners']);
  if (node.kind === 'partner') tabs.push(['children', 'Customers']);
  if (node.kind !== 'customer') tabs.push(['traffic', 'Traffic'], ['issuers', 'Issuers'], ['certificates', 'Certificates']);
  // A customer with portal domains of its own serves them with its own certificates too.
  else if ((node.portalDomains || []).length) tabs.push(['certificates', 'Certificates']);
  // Support engineers are granted one customer at a time: the grants live on the customer.
  if (node.kind === 'customer') tabs.push(['support', 'Support access']);
  tabs.push(['audit', 'Audit']);
  if (!tabs.some(([name]) => name === tab)) tab = 'overview';

  let body;
  if (tab === 'branding') body = await brandingTab(node, stored.etag, policy);
  else if (tab === 'children') body = await childrenTab(node, stored.etag);
  else if (tab === 'traffic') body = await trafficTab(node);
  else if (tab === 'audit') body = await auditTab(node);
  else if (tab === 'issuers') body = await issuersTab(node);
  else if (tab === 'certificates') body = await certificatesTab(node);
  else if (tab === 'support') body = await supportTab(node);
  else body = await overviewTab(node, stored.etag, policy);
  if (!current()) return el('div');

  return el('div', { id: 'node-page', 'data-node': node.id },
    crumbs(policy.path),
    el('div', { class: 'row' },
      el('h1', { id: 'node-title', class: 'grow' }, policy.branding.displayName || node.id),
      statusBadge(policy.status)),
    el('div', { class: 'muted' }, `${node.kind} ${node.id}`, policy.suspendedBy && policy.suspendedBy !== node.id ? ` — suspended with ${policy.suspendedBy}` : ''),
    el('nav', { class: 'tabs' }, tabs.map(([name, label]) =>
      el('a', { href: link(node.id, name), class: name === tab ? 'current' : '', id: `tab-${name}` }, label))),
    body);
}

/// The answer to an id the caller may not see (or that does not exist: the API answers both
/// alike, and so does the console).
function refused(id, answer) {
  const principal = api.signedIn();
  return el('div', { id: 'refused', class: 'card' },
    el('h1', {}, 'Not available'),
    problemBox(answer.json || {}, answer.status === 404 ? `There is no node “${id}” in your part of the tree.` : null),
    principal.node ? el('p', {}, el('a', { href: link(principal.node) }, 'Back to your node')) : null);
}

/// The node's path: ancestors above the caller's own node are named but not links (they are
/// not the caller's to open).
function crumbs(path) {
  const principal = api.signedIn();
  const mine = principal.path ? principal.path.split('/').length : 1;
  const segments = path.split('/');
  return el('div', { class: 'crumbs', id: 'crumbs' }, segments.map((segment, index) => [
    index > 0 ? ' / ' : '',
    index + 1 >= mine ? el('a', { href: link(segment) }, segment) : el('span', {}, segment),
  ]));
}

function statusBadge(status) {
  return el('span', { class: `status ${status === 'suspended' ? 'suspended' : ''}`, 'data-status': status || 'active' }, status || 'active');
}

function chips(list) {
  return list && list.length ? el('span', { class: 'chips' }, list.map((item) => el('span', {}, item))) : el('span', { class: 'muted' }, 'none');
}

/// An "explain" button that shows, under it, which node decided the value.
function explainButton(nodeID, attribute) {
  const panel = el('div');
  const button = el('button', {
    class: 'explain-button', 'data-attribute': attribute, onclick: async () => {
      if (panel.firstChild) { fill(panel); return; }
      const answer = await api.explain(nodeID, attribute);
      if (answer.status !== 200) { fill(panel, problemBox(answer.json || {})); return; }
      const explanation = answer.json;
      fill(panel, el('div', { class: 'explain' },
        el('div', {}, el('strong', {}, explanation.value), ' — ', explanation.summary,
          explanation.decidedBy ? ` Decided by ${explanation.decidedBy}.` : ''),
        el('table', {}, el('tr', {}, el('th', {}, 'node'), el('th', {}, 'declares'), el('th', {}, 'effective')),
          explanation.steps.map((step) => el('tr', {}, el('td', {}, step.node), el('td', {}, step.declared ?? '—'), el('td', {}, step.effective))))));
    },
  }, 'explain');
  return [button, panel];
}

async function overviewTab(node, etag, policy) {
  const limits = policy.limits.map((level) =>
    `${level.node}: ${Object.entries(level.limits).map(([name, value]) => `${name} ${value}`).join(', ')}`);
  const rows = [
    ['Status', 'status', policy.status],
    ['Features', 'features', chips(policy.features)],
    ['Package', 'package', policy.package || '—'],
    ['Add-ons', null, chips(policy.addOns)],
    ['Limits', 'limits', limits.length ? limits.join('; ') : 'none'],
    ['Cell', 'placement', policy.cell || '—'],
    ['Residency', 'residency', chips(policy.residency)],
    ['Portal domains', null, chips(policy.portalDomains)],
    ['Browser origins', 'origins', chips(policy.origins)],
  ];
  const table = el('table', { id: 'effective' },
    rows.map(([label, attribute, value]) => el('tr', {},
      el('th', {}, label), el('td', {}, value, attribute ? explainButton(node.id, attribute) : null))));
  const perFeature = el('div', { class: 'card' }, el('h2', {}, 'Why each feature'),
    policy.features.map((feature) => el('div', {}, el('span', {}, feature, ' '), explainButton(node.id, `feature.${feature}`))));
  const principal = api.signedIn();
  const editable = node.kind === 'customer' && principal.node !== node.id;
  return el('div', {},
    el('div', { class: 'card' }, el('h2', {}, 'Effective policy'), table),
    editable ? entitlementsCard(node, etag) : null,
    node.kind === 'customer' ? revocationCard(node) : null,
    policy.features.length ? perFeature : null);
}

/// Revoking a customer's tokens: all those issued until now (a confirm step first), or one by
/// its `jti`, which the admin API leaves to platform admins (a jti names no tenant).
function revocationCard(node) {
  const result = el('div', { id: 'revocation-result' });
  const all = el('button', { type: 'button', class: 'danger', id: 'revoke-all' }, 'Revoke all tokens');
  const revoke = async (body) => {
    fill(result);
    const answer = await api.call('POST', `/nodes/${encodeURIComponent(node.id)}/revocations`, { body });
    if (answer.status === 202) {
      fill(result, notice(body.allTokens
        ? `Every token issued for ${node.id} until now is refused by every gateway node within a second. Tokens issued from now on are not affected.`
        : `The token ${body.jti} is refused by every gateway node within a second.`, 'ok'));
      return true;
    }
    const errors = ((answer.json && answer.json.errors) || []).map((error) => `${error.field}: ${error.message}`);
    fill(result, problemBox(answer.json || {}, errors.length ? errors.join('; ') : null));
    return false;
  };
  all.addEventListener('click', async () => {
    if (!all.dataset.armed) {
      all.dataset.armed = 'yes';
      all.textContent = `Confirm: revoke every token of ${node.id}`;
      return;
    }
    delete all.dataset.armed;
    all.textContent = 'Revoke all tokens';
    await revoke({ allTokens: true });
  });
  const card = el('div', { class: 'card', id: 'revocations' },
    el('h2', {}, 'Revoke tokens'),
    el('p', { class: 'muted' }, 'For a leaked token or a departing integration: the customer\'s identity service must then issue new tokens.'),
    el('div', { class: 'row' }, all), result);
  if (api.signedIn().role !== 'platform-admin') return card;
  const jti = el('input', { type: 'text', id: 'revoke-jti', placeholder: 'the token\'s jti' });
  const expires = el('input', { type: 'text', id: 'revoke-expires', placeholder: 'its exp: unix seconds or 2027-01-01T00:00:00Z' });
  const one = async (event) => {
    event.preventDefault();
    const text = expires.value.trim();
    const expiresAt = /^\d+$/.test(text) ? Number(text) : Math.floor(Date.parse(text) / 1000);
    if (await revoke({ jti: jti.value.trim(), expiresAt: Number.isFinite(expiresAt) ? expiresAt : 0 })) { jti.value = ''; expires.value = ''; }
  };
  card.append(el('form', { id: 'revoke-one', onsubmit: one },
    el('h2', {}, 'Revoke one token'),
    el('div', { class: 'row' },
      el('div', { class: 'field grow' }, el('label', { for: 'revoke-jti' }, 'Token id (jti)'), jti),
      el('div', { class: 'field grow' }, el('label', { for: 'revoke-expires' }, 'Expires at'), expires)),
    el('button', { class: 'danger', type: 'submit', id: 'revoke-one-button' }, 'Revoke this token')));
  return card;
}

/// A dry run's answer: what the change would do, stored nowhere.
export function dryRunBox(answer) {
  // A change of an object (the whole `branding`) is shown as the fields in it that differ.
  const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);
  const changes = ((answer.json && answer.json.changes) || []).flatMap((change) => {
    if (!isObject(change.before) && !isObject(change.after)) return [change];
    const before = isObject(change.before) ? change.before : {};
    const after = isObject(change.after) ? change.after : {};
    return [...new Set([...Object.keys(before), ...Object.keys(after)])]
      .filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]))
      .map((key) => ({ field: `${change.field}.${key}`, before: before[key], after: after[key] }));
  });
  const shown = (value) => (value === undefined || value === null ? '—' : typeof value === 'string' ? value : JSON.stringify(value));
  return el('div', { class: 'notice dry-run', id: 'dry-run', role: 'status' },
    el('strong', {}, changes.length ? 'The check passed. Saving would change: ' : 'The check passed. Saving would change nothing.'),
    changes.length ? el('ul', {}, changes.map((change) => el('li', { 'data-field': change.field },
      el('code', {}, change.field), `: ${shown(change.before)} → ${shown(change.after)}`))) : null,
    el('div', { class: 'muted' }, 'Nothing was stored.'));
}

/// A customer's package and add-ons, changed with If-Match.
function entitlementsCard(node, etag) {
  const packageInput = el('input', { type: 'text', id: 'package', value: node.package || '' });
  const addOnsInput = el('input', { type: 'text', id: 'add-ons', value: (node.addOns || []).join(', ') });
  const errors = { package: el('div', { class: 'field-error', id: 'error-package' }), addOns: el('div', { class: 'field-error', id: 'error-addOns' }) };
  const result = el('div', { id: 'entitlements-result' });
  const save = async (event) => {
    event.preventDefault();
    fill(errors.package); fill(errors.addOns); fill(result);
    const addOns = addOnsInput.value.split(',').map((item) => item.trim()).filter((item) => item);
    const answer = await api.patch(node.id, { package: packageInput.value.trim() || null, addOns }, etag);
    showWriteResult(answer, result, errors);
  };
  return el('form', { class: 'card', id: 'entitlements', onsubmit: save },
    el('h2', {}, 'Package and add-ons'),
    el('div', { class: 'field' }, el('label', { for: 'package' }, 'Package'), packageInput, errors.package),
    el('div', { class: 'field' }, el('label', { for: 'add-ons' }, 'Add-ons (comma-separated features)'), addOnsInput, errors.addOns),
    el('button', { class: 'primary', type: 'submit' }, 'Save'), result);
}

/// A write's answer: saved (and the page shown again), a conflict with a reload, or each
/// validation error next to its field (`errors` maps a field's first segment to its box).
export function showWriteResult(answer, result, errors) {
  if (answer.status >= 200 && answer.status < 300) {
    window.dispatchEvent(new HashChangeEvent('hashchange'));
    return true;
  }
  if (answer.status === 412) {
    fill(result, el('div', { class: 'problem', role: 'alert', id: 'conflict' },
      el('strong', {}, 'Someone changed this node since you opened it. '), 'Nothing was saved. ',
      el('button', { id: 'reload', type: 'button', onclick: () => window.dispatchEvent(new HashChangeEvent('hashchange')) }, 'Reload the current version')));
    return false;
  }
  const unplaced = [];
  for (const error of (answer.json && answer.json.errors) || []) {
    const key = error.field.split('.').slice(0, 2).join('.');
    const box = errors[key] || errors[error.field.split('.')[0]];
    if (box) box.append(el('div', { class: 'field-problem' }, error.message));
    else unplaced.push(`${error.field}: ${error.message}`);
  }
  fill(result, problemBox(answer.json || {}, unplaced.length ? unplaced.join('; ') : null));
  return false;
}

/// The list's search and page, kept while the same node's list is shown again (after a row's
/// change), so that acting on a customer does not lose the user's place.
const listMemory = { node: null, query: '', page: 0 };

async function childrenTab(node, etag) {
  const answer = await api.children(node.id);
  if (answer.status !== 200) return problemBox(answer.json || {});
  // By id: a stable order, whatever order the store keeps them in.
  const all = answer.json.children.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (listMemory.node !== node.id) Object.assign(listMemory, { node: node.id, query: '', page: 0 });
  const search = el('input', { type: 'search', id: 'search', placeholder: `Search ${all.length} by id or name`, value: listMemory.query });
  const list = el('div', { id: 'children' });
  let page = listMemory.page;
  const show = () => {
    const query = search.value.trim().toLowerCase();
    const matching = query ? all.filter((child) => child.id.includes(query) || ((child.branding && child.branding.displayName) || '').toLowerCase().includes(query)) : all;
    const pages = Math.max(1, Math.ceil(matching.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    Object.assign(listMemory, { query: search.value, page });
    const shown = matching.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    fill(list,
      el('table', {}, el('tr', {}, el('th', {}, 'id'), el('th', {}, 'name'), el('th', {}, 'package'), el('th', {}, 'status'), el('th', {}, '')),
        shown.map((child) => childRow(child))),
      el('div', { class: 'pager' },
        el('button', { id: 'previous-page', disabled: page === 0, onclick: () => { page -= 1; show(); } }, 'Previous'),
        el('span', { id: 'page-info' }, `${matching.length ? page * PAGE_SIZE + 1 : 0}–${page * PAGE_SIZE + shown.length} of ${matching.length}`),
        el('button', { id: 'next-page', disabled: page >= pages - 1, onclick: () => { page += 1; show(); } }, 'Next')));
  };
  search.addEventListener('input', () => { page = 0; show(); });
  show();
  return el('div', {},
    el('div', { class: 'card' }, el('div', { class: 'row' }, el('div', { class: 'grow' }, search))),
    el('div', { class: 'card' }, list),
    createCard(node, etag));
}

function childRow(child) {
  const result = el('span', { class: 'row-result' });
  const suspended = child.status === 'suspended';
  const act = async (change) => {
    // The row's ETag is read just before the change: the list itself carries none.
    const current = await api.node(child.id);
    if (current.status !== 200) { fill(result, problemBox(current.json || {})); return; }
    const answer = change === 'delete'
      ? await api.call('DELETE', `/nodes/${encodeURIComponent(child.id)}`, { ifMatch: current.etag })
      : await api.patch(child.id, { status: change }, current.etag);
    if (answer.status >= 200 && answer.status < 300) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else fill(result, problemBox(answer.json || {}));
  };
  const remove = el('button', { class: 'danger delete' }, 'Delete');
  remove.addEventListener('click', () => {
    if (remove.dataset.armed) { act('delete'); return; }
    remove.dataset.armed = 'yes';
    remove.textContent = 'Confirm delete';
  });
  return el('tr', { 'data-id': child.id },
    el('td', {}, el('a', { href: link(child.id) }, child.id)),
    el('td', {}, (child.branding && child.branding.displayName) || ''),
    el('td', {}, child.package || ''),
    el('td', {}, statusBadge(child.status)),
    el('td', {}, el('div', { class: 'row' },
      el('button', { class: suspended ? 'resume' : 'suspend', onclick: () => act(suspended ? 'active' : 'suspended') }, suspended ? 'Resume' : 'Suspend'),
      remove, result)));
}

/// A new child: a customer under a partner, a partner under an OEM.
function createCard(node, etag) {
  const kind = node.kind === 'oem' ? 'partner' : 'customer';
  const id = el('input', { type: 'text', id: 'new-id', placeholder: 'lowercase-id' });
  const packageInput = el('input', { type: 'text', id: 'new-package', list: 'known-packages' });
  const known = el('datalist', { id: 'known-packages' }, Object.keys(node.packages || {}).map((name) => el('option', { value: name })));
  const errors = { id: el('div', { class: 'field-error' }), package: el('div', { class: 'field-error' }) };
  const result = el('div', { id: 'create-result' });
  const send = async (dryRun) => {
    fill(errors.id); fill(errors.package); fill(result);
    const body = { id: id.value.trim() };
    if (kind === 'customer' && packageInput.value.trim()) body.package = packageInput.value.trim();
    const answer = await api.call('POST', `/nodes/${encodeURIComponent(node.id)}/children${dryRun ? '?dryRun=true' : ''}`, { body, ifMatch: etag });
    if (dryRun && answer.status >= 200 && answer.status < 300) { fill(result, dryRunBox(answer)); return; }
    showWriteResult(answer, result, errors);
  };
  const submit = (event) => { event.preventDefault(); send(false); };
  return el('form', { class: 'card', id: 'create', onsubmit: submit },
    el('h2', {}, `New ${kind}`),
    el('div', { class: 'row' },
      el('div', { class: 'field grow' }, el('label', { for: 'new-id' }, 'Id'), id, errors.id),
      kind === 'customer' ? el('div', { class: 'field grow' }, el('label', { for: 'new-package' }, 'Package'), packageInput, known, errors.package) : null),
    el('div', { class: 'row' },
      el('button', { type: 'button', id: 'check-create', onclick: () => send(true) }, 'Check'),
      el('button', { class: 'primary', type: 'submit' }, `Create ${kind}`)), result);
}

async function auditTab(node) {
  const answer = await api.call('GET', `/nodes/${encodeURIComponent(node.id)}/audit?limit=500`);
  if (answer.status !== 200) return problemBox(answer.json || {});
  const records = answer.json.entries || [];
  const text = el('input', { type: 'search', id: 'audit-filter', placeholder: 'Filter by actor, node or field' });
  const action = el('select', { id: 'audit-action' }, el('option', { value: '' }, 'every action'),
    [...new Set(records.map((record) => record.action))].map((name) => el('option', { value: name }, name)));
  const table = el('div', { id: 'audit' });
  const show = () => {
    const query = text.value.trim().toLowerCase();
    const shown = records.filter((record) => (!action.value || record.action === action.value)
      && (!query || [record.actor, record.node, ...(record.changes || []).map((change) => change.field)].some((value) => String(value || '').toLowerCase().includes(query))));
    fill(table, el('table', {}, el('tr', {}, ['time', 'actor', 'role', 'node', 'action', 'fields'].map((name) => el('th', {}, name))),
      shown.map((record) => el('tr', {},
        el('td', {}, new Date(record.time * 1000).toISOString().replace('.000Z', 'Z')),
        el('td', {}, record.actor), el('td', {}, record.role), el('td', {}, record.node), el('td', {}, record.action),
        el('td', {}, ((record.changes || []).map((change) => change.field)).join(', '))))),
      shown.length ? null : notice('No audit records match.'));
  };
  text.addEventListener('input', show);
  action.addEventListener('change', show);
  show();
  return el('div', { class: 'card' }, el('div', { class: 'row' }, el('div', { class: 'grow' }, text), action), table);
}
