// The console's entry point: sign-in, who is signed in, and the route in the URL fragment
// (#/node/<id>/<tab>). Changing the fragment never reloads the page, so the token kept in
// memory survives navigation; a reload signs out.
import * as api from './api.js';
import { el, fill, problemBox } from './dom.js';
import { nodePage } from './views.js';

const app = document.getElementById('app');
const who = document.getElementById('who');
let renderCount = 0;

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter((part) => part !== '').map(decodeURIComponent);
  if (parts[0] === 'node' && parts[1]) return { id: parts[1], tab: parts[2] || 'overview' };
  return null;
}

function showWho() {
  const principal = api.signedIn();
  if (!principal) return fill(who);
  fill(who,
    el('span', { id: 'who-subject' }, principal.subject),
    el('span', { class: 'role', id: 'who-role' }, principal.role),
    el('span', { id: 'who-node' }, principal.path || 'the whole platform'),
    el('button', { id: 'sign-out', onclick: () => { api.signOut(); location.hash = ''; render(); } }, 'Sign out'));
}

function signInPage() {
  const token = el('textarea', { id: 'token', placeholder: 'eyJhbGciOi…', autocomplete: 'off', spellcheck: 'false' });
  const result = el('div', { id: 'sign-in-result' });
  const submit = async (event) => {
    event.preventDefault();
    const answer = await api.signIn(token.value);
    if (answer.status !== 200) {
      fill(result, problemBox(answer.json || { title: 'The token was refused.' }, 'Paste an admin token minted for this gateway.'));
      return;
    }
    token.value = '';
    render();
  };
  return el('form', { class: 'card signin', id: 'sign-in', onsubmit: submit },
    el('h1', {}, 'Sign in'),
    el('p', { class: 'muted' },
      'Paste your admin token. It is kept in this page\'s memory only and sent in the Authorization header; ',
      'reloading the page signs you out.'),
    el('div', { class: 'field' }, el('label', { for: 'token' }, 'Admin token'), token),
    el('p', { class: 'muted' }, 'In the demo: erp-gateway token mint --issuer https://admin.platform.example --kid admin-1 ',
      '--key deploy/examples/keys/admin-1.private.pem --audience erp-admin --tenant-claim role --subject you@example.com ',
      '--tenant partner-admin --claim node=northwind-it'),
    el('div', { class: 'row' }, el('button', { class: 'primary', type: 'submit', id: 'sign-in-button' }, 'Sign in')),
    result);
}

export async function render() {
  const count = ++renderCount;
  showWho();
  const principal = api.signedIn();
  if (!principal) {
    fill(app, signInPage());
    document.body.dataset.screen = 'sign-in';
    document.body.dataset.ready = String(count);
    return;
  }
  const target = route();
  if (!target) {
    // Where to start: the caller's own node, or the platform's first OEM.
    if (principal.node) { location.hash = `#/node/${encodeURIComponent(principal.node)}`; return; }
    const roots = await api.call('GET', '/nodes');
    const first = roots.json && roots.json.nodes && roots.json.nodes[0];
    if (first) { location.hash = `#/node/${encodeURIComponent(first.id)}`; return; }
    fill(app, el('p', {}, 'No nodes yet.'));
    return;
  }
  document.body.dataset.ready = '';
  const page = await nodePage(target.id, target.tab, () => count === renderCount);
  if (count !== renderCount) return;  // a newer route is being shown
  fill(app, page);
  document.body.dataset.screen = `${target.tab}`;
  document.body.dataset.ready = String(count);
}

window.addEventListener('hashchange', () => render());
render();
