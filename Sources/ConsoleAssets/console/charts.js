// Traffic as pictures: requests per minute with their 4xx and 5xx, and today's usage per
// customer, drawn as inline SVG by this module (no chart library: the console loads nothing
// from anywhere but the gateway).
import * as api from './api.js';
import { el, problemBox } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  for (const child of children.flat()) if (child) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

/// Stacked bars: each minute's requests, and within them the 4xx and 5xx answers.
export function minutesChart(perMinute) {
  const width = 1140, height = 260, left = 44, bottom = 24, top = 10;
  const peak = Math.max(1, ...perMinute.map((minute) => minute.requests));
  const step = (width - left) / Math.max(1, perMinute.length);
  const y = (value) => top + (height - top - bottom) * (1 - value / peak);
  const bars = perMinute.map((minute, index) => {
    const x = left + index * step + 1;
    const w = Math.max(1, step - 2);
    const server = minute.status5xx, client = minute.status4xx;
    return svg('g', {},
      svg('rect', { class: 'requests', x, y: y(minute.requests), width: w, height: y(0) - y(minute.requests) }),
      svg('rect', { class: 'client', x, y: y(client + server), width: w, height: y(0) - y(client) }),
      svg('rect', { class: 'server', x, y: y(server), width: w, height: y(0) - y(server) }),
      svg('title', {}, `${minute.minute}: ${minute.requests} requests, ${client} 4xx, ${server} 5xx`));
  });
  const first = perMinute[0], last = perMinute[perMinute.length - 1];
  return svg('svg', { class: 'chart', id: 'minutes-chart', viewBox: `0 0 ${width} ${height}`, role: 'img' },
    svg('text', { x: 0, y: top + 8 }, String(peak)), svg('text', { x: 0, y: y(0) }, '0'),
    svg('line', { x1: left, x2: width, y1: y(0), y2: y(0), stroke: '#d8dce4' }),
    bars,
    first ? svg('text', { x: left, y: height - 6 }, first.minute.slice(11, 16)) : null,
    last ? svg('text', { x: width - 40, y: height - 6 }, last.minute.slice(11, 16)) : null);
}

/// One horizontal bar per customer: requests admitted, refused by a quota, and 5xx errors.
export function customersChart(items) {
  const rowHeight = 22, width = 1140, label = 220;
  const peak = Math.max(1, ...items.map((item) => item.requests + item.refused));
  const scale = (value) => (width - label - 240) * value / peak;
  return svg('svg', { class: 'chart', id: 'customers-chart', viewBox: `0 0 ${width} ${Math.max(1, items.length) * rowHeight + 4}`, role: 'img' },
    items.map((item, index) => {
      const y = index * rowHeight + 2;
      const name = item.customer.split('/').pop();
      return svg('g', {},
        svg('text', { x: 0, y: y + 14 }, name),
        svg('rect', { class: 'requests', x: label, y, width: scale(item.requests), height: rowHeight - 6 }),
        svg('rect', { class: 'client', x: label + scale(item.requests), y, width: scale(item.refused), height: rowHeight - 6 }),
        svg('text', { x: label + scale(item.requests + item.refused) + 6, y: y + 14 }, `${item.requests} / ${item.refused} refused / ${item.errors} errors`),
        svg('title', {}, `${item.customer}: ${item.requests} requests, ${item.refused} refused, ${item.errors} errors`));
    }));
}

export async function trafficTab(node) {
  const answer = await api.call('GET', `/nodes/${encodeURIComponent(node.id)}/health?minutes=60&limit=1000`);
  if (answer.status !== 200) return problemBox(answer.json || {});
  const health = answer.json;
  const legend = el('div', { class: 'legend' },
    el('span', {}, el('i', { class: 'requests' }), 'requests'), el('span', {}, el('i', { class: 'client' }), '4xx (429 included)'),
    el('span', {}, el('i', { class: 'server' }), '5xx'));
  const total = health.total || { requests: 0, status4xx: 0, status5xx: 0 };
  // Customers with traffic are drawn; a page of quiet ones would be a column of empty bars.
  const busy = health.customers.items.filter((item) => item.requests + item.refused + item.errors > 0);
  const quiet = health.customers.items.length - busy.length;
  return el('div', {},
    el('div', { class: 'card' },
      el('div', { class: 'row' }, el('h2', { class: 'grow' }, 'The last hour, per minute (every gateway node)'),
        el('button', { id: 'refresh-traffic', onclick: () => window.dispatchEvent(new HashChangeEvent('hashchange')) }, 'Refresh')),
      el('p', { class: 'muted', id: 'traffic-total' }, `${total.requests} requests, ${total.status4xx} 4xx, ${total.status5xx} 5xx`),
      legend, health.perMinute ? minutesChart(health.perMinute) : el('p', { class: 'muted' }, 'No per-minute figures for this node.')),
    el('div', { class: 'card' }, el('h2', {}, `Today per customer (${health.customers.day})`),
      el('div', { class: 'legend' }, el('span', {}, el('i', { class: 'requests' }), 'admitted'), el('span', {}, el('i', { class: 'client' }), 'refused by a quota')),
      busy.length ? customersChart(busy) : null,
      el('p', { class: 'muted' }, busy.length ? `${quiet} more without traffic today.` : 'No customer has traffic today.',
        health.customers.next ? ' Only the first 1,000 customers by id are read here.' : '')));
}
