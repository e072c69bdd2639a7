// Building the page without HTML parsing: every value becomes a text node or an attribute set
// through the DOM, so a brand name like <img src=x onerror=alert(1)> is shown as the text it is.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value);
    } else if (name === 'value' || name === 'checked' || name === 'disabled' || name === 'readOnly') {
      node[name] = value;
    } else if (name === 'class') {
      node.className = value;
    } else {
      node.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/// Replaces everything inside `node` with `children`.
export function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/// A refusal or failure of the admin API, as the user should read it.
export function problemBox(problem, extra) {
  return el('div', { class: 'problem', role: 'alert' },
    el('strong', {}, problem.title || 'The request failed.'),
    problem.status ? ` (${problem.status})` : '',
    extra ? el('div', {}, extra) : null);
}

export function notice(text, kind = 'info') {
  return el('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}
