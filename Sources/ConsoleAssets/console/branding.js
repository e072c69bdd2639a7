// The branding editor: every field, the ones an ancestor locked shown locked (and by which node,
// as `explain` tells), and a mock-up of the portal's login page that follows every keystroke.
import * as api from './api.js';
import { el, fill, notice } from './dom.js';
import { showWriteResult, dryRunBox } from './views.js';

export const FIELDS = [
  ['displayName', 'Display name', 'The product name your customers see'],
  ['logoUrl', 'Logo URL', 'https://…'],
  ['faviconUrl', 'Favicon URL', 'https://…'],
  ['primaryColor', 'Primary colour', '#rrggbb'],
  ['accentColor', 'Accent colour', '#rrggbb'],
  ['supportEmail', 'Support e-mail', 'support@example.com'],
  ['supportUrl', 'Support URL', 'https://…'],
  ['termsUrl', 'Terms URL', 'https://…'],
  ['privacyUrl', 'Privacy URL', 'https://…'],
];

const COLOR = /^#[0-9a-fA-F]{6}$/;
let savedNode = null;

/// What the ancestors say about one field: the node that locked it (nil: nobody above this
/// node) and the value this node inherits when it sets none.
function ancestry(explanation, ownPath) {
  const above = explanation.steps.filter((step) => step.node !== ownPath);
  const lock = above.find((step) => (step.declared || '').endsWith(' [locked]'));
  let inherited = null;
  for (const step of above) {
    const declared = (step.declared || '').replace(/ \[locked\]$/, '');
    if (declared && declared !== '(no value)') inherited = declared;
    if (lock && step === lock) break;
  }
  return { lockedBy: lock ? lock.node : null, inherited };
}

export async function brandingTab(node, etag, policy) {
  const explanations = await Promise.all(FIELDS.map(([field]) => api.explain(node.id, `branding.${field}`)));
  const own = node.branding || {};
  const ownLocks = new Set(own.locked || []);
  const inputs = {};
  const locks = {};
  const errors = { branding: el('div', { class: 'field-error' }) };
  const result = el('div', { id: 'branding-result' });
  const preview = previewPane();
  const fields = FIELDS.map(([field, label, placeholder], index) => {
    const explanation = explanations[index].status === 200 ? explanations[index].json : { steps: [] };
    const { lockedBy, inherited } = ancestry(explanation, policy.path);
    const input = el('input', {
      type: 'text', id: `branding-${field}`, name: field, value: own[field] || '', placeholder: inherited ? `${inherited} (inherited)` : placeholder,
      readOnly: Boolean(lockedBy), disabled: Boolean(lockedBy), 'data-locked-by': lockedBy || undefined,
    });
    input.dataset.inherited = inherited || '';
    inputs[field] = input;
    errors[`branding.${field}`] = el('div', { class: 'field-error', id: `error-branding-${field}` });
    let ownLock = null;
    if (node.kind !== 'customer' && !lockedBy) {
      locks[field] = el('input', { type: 'checkbox', id: `lock-${field}`, checked: ownLocks.has(field) });
      ownLock = el('label', { class: 'own-lock', for: `lock-${field}` }, locks[field], 'lock below');
    }
    return el('div', { class: 'field' },
      el('label', { for: `branding-${field}` }, label,
        lockedBy ? el('span', { class: 'lock', id: `locked-${field}` }, `locked by ${lockedBy}`) : null, ownLock),
      input, errors[`branding.${field}`]);
  });
  const update = () => preview.show(effectiveValues(inputs));
  for (const input of Object.values(inputs)) input.addEventListener('input', update);
  update();

  const send = async (dryRun) => {
    for (const box of Object.values(errors)) fill(box);
    fill(result);
    const branding = {};
    for (const [field, input] of Object.entries(inputs)) {
      if (input.disabled) continue;
      branding[field] = input.value.trim() || null;
    }
    const locked = Object.entries(locks).filter(([, box]) => box.checked).map(([field]) => field);
    branding.locked = locked.length ? locked : null;
    const answer = await api.patch(node.id, { branding }, etag, { dryRun });
    // A check stores nothing: its answer is shown where a save's would be, and the page stays.
    if (dryRun && answer.status === 200) { fill(result, dryRunBox(answer)); return; }
    if (answer.status === 200) savedNode = node.id;
    showWriteResult(answer, result, errors);
  };
  const save = (event) => { event.preventDefault(); send(false); };
  const saved = savedNode === node.id ? notice('Saved. Every gateway node serves the new branding within a second.', 'ok') : null;
  savedNode = null;
  // The outcome of a save is shown above the fields, where the user is looking; the saved
  // notice goes as soon as the next edit starts.
  if (saved) for (const input of Object.values(inputs)) input.addEventListener('input', () => saved.remove(), { once: true });
  return el('div', { class: 'split' },
    el('form', { class: 'card', id: 'branding-form', onsubmit: save },
      saved, result,
      fields, errors.branding,
      el('div', { class: 'row' },
        el('button', { type: 'button', id: 'check-branding', onclick: () => send(true) }, 'Check'),
        el('button', { class: 'primary', type: 'submit', id: 'save-branding' }, 'Save branding'))),
    el('div', {}, el('h2', {}, 'Preview: your customers\' sign-in page'), preview.element));
}

function effectiveValues(inputs) {
  const values = {};
  for (const [field, input] of Object.entries(inputs)) {
    values[field] = (input.disabled ? '' : input.value.trim()) || input.dataset.inherited || '';
  }
  return values;
}

/// The host of an https URL, or '' when it does not parse.
function hostOf(url) {
  try { return new URL(url).host; } catch { return ''; }
}

/// The login page mock-up. Colours are set through the CSS object model (which the
/// Content-Security-Policy allows, unlike inline styles), and only when they are colours.
function previewPane() {
  // The logo is named, not loaded: the console fetches nothing from another origin.
  const logo = el('span', { class: 'logo', id: 'preview-logo' });
  const name = el('span', { class: 'name', id: 'preview-name' });
  const heading = el('h3', { id: 'preview-heading' });
  const foot = el('div', { class: 'foot', id: 'preview-foot' });
  const element = el('div', { class: 'preview', id: 'preview' },
    el('div', { class: 'bar', id: 'preview-bar' }, logo, name),
    el('div', { class: 'login' }, heading,
      el('div', { class: 'input' }, 'E-mail'), el('div', { class: 'input' }, 'Password'),
      el('div', { class: 'go', id: 'preview-button' }, 'Sign in')),
    foot);
  const show = (values) => {
    name.textContent = values.displayName || 'Your portal';
    heading.textContent = `Sign in to ${values.displayName || 'your portal'}`;
    const logoHost = /^https:\/\//.test(values.logoUrl) ? hostOf(values.logoUrl) : '';
    logo.hidden = !logoHost;
    logo.textContent = logoHost ? `logo · ${logoHost}` : '';
    logo.title = logoHost ? values.logoUrl : '';
    element.style.setProperty('--brand-primary', COLOR.test(values.primaryColor) ? values.primaryColor : '#2450c8');
    element.style.setProperty('--brand-accent', COLOR.test(values.accentColor) ? values.accentColor : '#f2a900');
    element.dataset.primary = COLOR.test(values.primaryColor) ? values.primaryColor.toLowerCase() : '';
    fill(foot,
      values.supportEmail ? el('span', {}, `Help: ${values.supportEmail}`) : null,
      values.supportUrl ? el('span', {}, `Support: ${values.supportUrl}`) : null,
      values.termsUrl ? el('span', {}, `Terms: ${values.termsUrl}`) : null,
      values.privacyUrl ? el('span', {}, `Privacy: ${values.privacyUrl}`) : null);
  };
  return { element, show };
}
