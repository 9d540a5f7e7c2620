// SPDX-License-Identifier: Apache-2.0
// The API reference, drawn from the daemon's own OpenAPI document: each method with its request
// and response schemas, and a form that calls it. Served by the daemon itself (no CDN), and
// like the console every value goes into the page as text.
'use strict';

const token = new URLSearchParams(location.search).get('token') || sessionStorage.getItem('token') || '';
const auth = token ? { Authorization: 'Bearer ' + token } : {};

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

// A schema as a JSON-like sketch: field names with their types, nested messages expanded once.
function sketch(schema, doc, depth = 0, seen = new Set()) {
  if (!schema) return 'null';
  if (schema.$ref) {
    const name = schema.$ref.split('/').pop();
    if (seen.has(name) || depth > 4) return name;
    return sketch(doc.components.schemas[name], doc, depth, new Set([...seen, name]));
  }
  const pad = '  '.repeat(depth + 1), end = '  '.repeat(depth);
  if (schema.type === 'object' && schema.properties) {
    const fields = Object.entries(schema.properties).map(([k, v]) => `${pad}"${k}": ${sketch(v, doc, depth + 1, seen)}`);
    return fields.length ? `{\n${fields.join(',\n')}\n${end}}` : '{}';
  }
  if (schema.type === 'array') return `[${sketch(schema.items, doc, depth, seen)}]`;
  const t = Array.isArray(schema.type) ? schema.type.join('|') : schema.type || 'any';
  return schema.format ? `${t} (${schema.format})` : t;
}

function method(path, op, doc) {
  const post = op.post || {};
  const req = post.requestBody && post.requestBody.content['application/json'].schema;
  const res = post.responses && post.responses['200'] && post.responses['200'].content['application/json'].schema;
  const input = el('textarea', { 'aria-label': `${path} request body` });
  input.value = '{}';
  const output = el('pre', {}, '');
  const call = async () => {
    output.textContent = '…';
    try {
      const r = await fetch(path + '?json', { method: 'POST', headers: { 'Content-Type': 'application/json', ...auth }, body: input.value });
      output.textContent = `${r.status} ${r.statusText}\n${await r.text()}`;
    } catch (e) {
      output.textContent = String(e);
    }
  };
  return el('details', {}, el('summary', {}, path, post.summary ? el('span', { class: 'muted' }, ' ', post.summary) : null),
    el('div', { class: 'body' },
      el('div', { class: 'muted' }, 'Request'), el('pre', {}, sketch(req, doc)),
      el('div', { class: 'muted' }, 'Response'), el('pre', {}, sketch(res, doc)),
      input, el('button', { type: 'button', onclick: call }, 'Call'), output));
}

fetch('/api-docs/openapi.json', { headers: auth })
  .then((r) => r.json())
  .then((doc) => {
    const box = document.getElementById('methods');
    box.replaceChildren(...Object.entries(doc.paths).map(([path, op]) => method(path, op, doc)));
  })
  .catch((e) => { document.getElementById('methods').textContent = 'Cannot load the API document: ' + e; });
