// A customer's support access: the grants support engineers asked for on it, decided here by
// the customer's admins (and those above), and the sessions recorded under them — who from
// support did what, when, under which ticket. The engineers themselves ask and fetch their
// tokens through the admin API; the console never shows or asks for a support token.
import * as api from './api.js';
import { el, fill, problemBox, notice } from './dom.js';

const grantsPath = (node) => `/nodes/${encodeURIComponent(node.id)}/support-grants`;
const seconds = (time) => new Date(time * 1000).toISOString().replace('.000Z', 'Z');
const milliseconds = (time) => new Date(time).toISOString().replace(/\.\d{3}Z$/, 'Z');
const isProblem = (answer, slug) => Boolean(answer.json && typeof answer.json.type === 'string' && answer.json.type.endsWith(`:${slug}`));

function duration(total) {
  if (total % 3600 === 0) return `${total / 3600} h`;
  if (total % 60 === 0) return `${total / 60} min`;
  return `${total} s`;
}

function scopeText(scope) {
  if (scope === 'read-only') return 'read-only';
  return `routes: ${((scope && scope.routes) || []).join(', ')}`;
}

/// A refusal of the admin API with its field errors (who may approve, the grant's status now).
function refusal(answer) {
  const errors = ((answer.json && answer.json.errors) || []).map((error) => `${error.field}: ${error.message}`);
  return problemBox(answer.json || {}, errors.length ? errors.join('; ') : null);
}

function decisionText(grant) {
  const parts = [];
  if (grant.decision) parts.push(`${grant.state === 'refused' ? 'refused' : 'approved'} by ${grant.decision.actor} (${grant.decision.role}) at ${seconds(grant.decision.time)}`);
  if (grant.revocation) parts.push(`revoked by ${grant.revocation.actor} (${grant.revocation.role}) at ${seconds(grant.revocation.time)}`);
  return parts.join('; ');
}

function grantRow(node, grant, result) {
  const act = async (action, button) => {
    fill(result);
    button.disabled = true;
    const answer = await api.call('POST', `${grantsPath(node)}/${encodeURIComponent(grant.id)}/${action}`);
    if (answer.status === 200) { window.dispatchEvent(new HashChangeEvent('hashchange')); return; }
    button.disabled = false;
    // A grant whose status changed since the page was read (409): say so, and offer the list as it is now.
    fill(result, refusal(answer), answer.status === 409
      ? el('button', { type: 'button', id: 'reload', onclick: () => window.dispatchEvent(new HashChangeEvent('hashchange')) }, 'Reload the grants')
      : null);
  };
  const button = (action, label, kind) => {
    const made = el('button', { type: 'button', class: `${kind} grant-${action}`, 'data-grant': grant.id }, label);
    made.addEventListener('click', () => act(action, made));
    return made;
  };
  // Revoking ends the engineer's access on every node at once: one confirm step first.
  const revoke = el('button', { type: 'button', class: 'danger grant-revoke', 'data-grant': grant.id }, 'Revoke');
  revoke.addEventListener('click', () => {
    if (!revoke.dataset.armed) {
      revoke.dataset.armed = 'yes';
      revoke.textContent = `Confirm: end ${grant.requester}'s access now`;
      return;
    }
    act('revoke', revoke);
  });
  const actions = grant.status === 'requested'
    ? [button('approve', 'Approve', 'primary'), button('refuse', 'Refuse', 'danger')]
    : grant.status === 'approved' ? [revoke] : [];
  const expiry = grant.expiresAt ? `until ${seconds(grant.expiresAt)}` : 'from its approval';
  return el('tr', { 'data-grant': grant.id, 'data-status': grant.status },
    el('td', {}, seconds(grant.requestedAt)),
    el('td', {}, grant.requester, grant.requesterOem ? el('div', { class: 'muted' }, `for ${grant.requesterOem}`) : null),
    el('td', {}, el('div', { class: 'ticket' }, grant.ticket), el('div', {}, grant.reason)),
    el('td', {}, scopeText(grant.scope)),
    el('td', {}, duration(grant.duration), el('div', { class: 'muted' }, expiry)),
    el('td', {}, el('span', { class: `grant-status ${grant.status}` }, grant.status),
      grant.breakGlass ? el('span', { class: 'break-glass', title: 'Break-glass: approved by a platform admin only' }, 'break-glass') : null,
      el('div', { class: 'muted' }, decisionText(grant))),
    el('td', {}, el('div', { class: 'row' }, actions)));
}

/// The tab: the grants, then the recorded sessions (up to 500, newest first).
export async function supportTab(node) {
  const [grants, sessions] = await Promise.all([
    api.call('GET', grantsPath(node)),
    api.call('GET', `/nodes/${encodeURIComponent(node.id)}/support-sessions?limit=500`),
  ]);
  if (isProblem(grants, 'support-access-disabled')) {
    return el('div', { class: 'card' }, el('h2', {}, 'Support access'),
      el('div', { class: 'problem', role: 'alert', id: 'support-disabled' },
        el('strong', {}, 'Support access is turned off on this gateway. '),
        'Its operator has not configured supportAccess in the settings, so no support engineer can ask for access to this customer.'));
  }
  if (grants.status !== 200) return refusal(grants);
  const result = el('div', { id: 'support-result' });
  const list = grants.json.grants || [];
  const grantsCard = el('div', { class: 'card' }, el('h2', {}, 'Support grants'),
    el('p', { class: 'muted' }, 'A support engineer works on this customer\'s data only under a grant approved here, for the time and scope it names. ',
      'Revoking ends it on every gateway node at once.'),
    result,
    list.length
      ? el('table', { id: 'support-grants' },
        el('tr', {}, ['asked', 'engineer', 'ticket and reason', 'scope', 'duration', 'status', ''].map((name) => el('th', {}, name))),
        list.map((grant) => grantRow(node, grant, result)))
      : el('p', { class: 'muted', id: 'no-grants' }, 'No support engineer has asked for access to this customer.'));

  let sessionsCard;
  if (sessions.status !== 200) {
    sessionsCard = el('div', { class: 'card' }, el('h2', {}, 'Support sessions'), refusal(sessions));
  } else {
    const records = sessions.json.sessions || [];
    sessionsCard = el('div', { class: 'card' }, el('h2', {}, 'Support sessions'),
      el('p', { class: 'muted' }, 'Every request a support engineer made under a grant, newest first.'),
      records.length
        ? el('table', { id: 'support-sessions' },
          el('tr', {}, ['time', 'engineer', 'ticket', 'grant', 'request', 'status', 'request id'].map((name) => el('th', {}, name))),
          records.map((session) => el('tr', { 'data-request': session.requestId },
            el('td', {}, milliseconds(session.time)),
            el('td', {}, session.engineer),
            el('td', { class: 'ticket' }, session.ticket),
            el('td', {}, el('code', {}, session.grant)),
            el('td', {}, el('code', {}, `${session.method} ${session.path}`)),
            el('td', {}, session.status === null || session.status === undefined ? '—' : String(session.status),
              session.problem ? el('div', { class: 'muted' }, session.problem) : null),
            el('td', {}, el('code', {}, session.requestId)))))
        : notice('No request has been made under a support grant on this customer.'));
  }
  return el('div', {}, grantsCard, sessionsCard);
}
