// SPDX-License-Identifier: Apache-2.0
// The web console: plain JS over the daemon's JSON /prpc. Every value from the daemon goes into
// the page as text (textContent), never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
// A token comes from /?token= (then kept for this tab), or from the prompt a 401 opens.
const state = { page: 1, pageSize: Number(localStorage.getItem('pageSize') || 50), keyword: '', expanded: null,
                images: [], gpus: null, meta: null,
                token: new URLSearchParams(location.search).get('token') || sessionStorage.getItem('token') || '' };
if (state.token) sessionStorage.setItem('token', state.token);

// ---- the API ----------------------------------------------------------------------------------
class ApiError extends Error {}
async function rpc(method, body, mount = 'prpc') {
  const headers = { 'Content-Type': 'application/json' };
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const r = await fetch(`/${mount}/${method}?json`, { method: 'POST', headers, body: JSON.stringify(body || {}), credentials: 'same-origin' });
  if (r.status === 401) { askToken(); throw new ApiError('the daemon wants a token'); }
  const text = await r.text();
  let j = null;
  try { j = text ? JSON.parse(text) : null; } catch { throw new ApiError(text || r.statusText); }
  if (!r.ok) throw new ApiError((j && j.error) || r.statusText);
  return j;
}
function askToken() {
  if (!$('tokenbox').open) $('tokenbox').showModal();
}
$('token-form').addEventListener('submit', () => {
  state.token = $('token').value.trim();
  sessionStorage.setItem('token', state.token);
  start();
follow();
});

// ---- small helpers ----------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}
const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
const unhex = (s) => new Uint8Array((s.replace(/^0x/, '').match(/../g) || []).map((h) => parseInt(h, 16)));
async function sha256hex(text) { return hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))); }
const stripAnsi = (s) => s.replace(/\x1b\[[0-9;?]*[ -\/]*[@-~]/g, '').replace(/\x1b[@-_]/g, '');
function download(name, text) {
  const a = el('a', { href: URL.createObjectURL(new Blob([text], { type: 'application/json' })), download: name });
  a.click();
  URL.revokeObjectURL(a.href);
}
function copyButton(text) {
  return el('button', { type: 'button', 'aria-label': 'Copy', onclick: () => navigator.clipboard && navigator.clipboard.writeText(text) }, 'Copy');
}
function parseEnv(text) {
  const env = [];
  text.split('\n').forEach((line, i) => {
    line = line.trim();
    if (!line || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new ApiError(`environment line ${i + 1}: expected KEY=VALUE`);
    env.push({ key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
  });
  return env;
}
const lines = (text) => text.split('\n').map((s) => s.trim()).filter(Boolean);

// The env sealed as spec §10 says: X25519 with an ephemeral key, the shared secret used as the
// AES-256-GCM key, eph_pk | nonce | ciphertext+tag. Nothing leaves the browser in the clear.
async function encryptEnv(env, appId) {
  const key = await rpc('GetAppEnvEncryptPubKey', { app_id: appId });
  const peer = await crypto.subtle.importKey('raw', unhex(key.public_key), { name: 'X25519' }, false, []);
  const eph = await crypto.subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']);
  const secret = await crypto.subtle.deriveBits({ name: 'X25519', public: peer }, eph.privateKey, 256);
  const aes = await crypto.subtle.importKey('raw', secret, 'AES-GCM', false, ['encrypt']);
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const plain = new TextEncoder().encode(JSON.stringify({ env }));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce }, aes, plain));
  const pub = new Uint8Array(await crypto.subtle.exportKey('raw', eph.publicKey));
  const out = new Uint8Array(pub.length + nonce.length + sealed.length);
  out.set(pub, 0); out.set(nonce, pub.length); out.set(sealed, pub.length + nonce.length);
  return hex(out);
}

// ---- the VM table -----------------------------------------------------------------------------
function statusOf(vm) {
  if (vm.status !== 'running') return vm.status;
  if (vm.shutdown_progress && vm.shutdown_progress !== 'N/A') return 'stopping';
  if (vm.boot_progress && !['done', 'running', 'N/A', ''].includes(vm.boot_progress)) return 'booting';
  return 'running';
}
function portLinks(vm) {
  const ports = (vm.configuration && vm.configuration.ports) || [];
  return ports.map((p) => {
    const host = p.host_address === '0.0.0.0' || p.host_address === '' ? location.hostname : p.host_address;
    return p.protocol === 'tcp' ? el('a', { href: `http://${host}:${p.host_port}/`, target: '_blank', rel: 'noopener' }, `${p.host_port}→${p.vm_port}`, ' ')
                                : `${p.protocol} ${p.host_port}→${p.vm_port} `;
  });
}
async function act(row, what, fn) {
  row.querySelector('.row-error').textContent = '';
  try { await fn(); refresh(); } catch (e) { row.querySelector('.row-error').textContent = `${what}: ${e.message}`; }
}
function vmRow(vm) {
  const tr = el('tr', { 'data-id': vm.id });
  const status = statusOf(vm);
  const running = vm.status === 'running';
  const actions = el('div', { class: 'actions' },
    el('button', { onclick: () => { state.expanded = state.expanded === vm.id ? null : vm.id; refresh(); }, 'aria-expanded': state.expanded === vm.id }, 'Details'),
    el('button', { onclick: () => openLogs(vm) }, 'Logs'),
    !running && el('button', { onclick: () => act(tr, 'Start', () => rpc('StartVm', { id: vm.id })) }, 'Start'),
    running && el('button', { onclick: () => act(tr, 'Shutdown', () => rpc('ShutdownVm', { id: vm.id })) }, 'Shutdown'),
    running && el('button', { class: 'danger', onclick: () => confirm(`Kill ${vm.name}? It stops at once, as if its power were cut: data not on disk is lost.`) && act(tr, 'Kill', () => rpc('StopVm', { id: vm.id })) }, 'Kill'),
    el('button', { onclick: () => openUpdate(vm) }, 'Update'),
    el('button', { class: 'danger', onclick: () => confirm(`Remove ${vm.name} and its disk?`) && act(tr, 'Remove', () => rpc('RemoveVm', { id: vm.id })) }, 'Remove'));
  tr.append(el('td', {}, vm.name, vm.app_url ? el('div', {}, el('a', { href: vm.app_url, target: '_blank', rel: 'noopener' }, 'app')) : null),
            el('td', {}, el('span', { class: `badge ${status}` }, status)),
            el('td', { class: 'wide' }, vm.uptime === 'never' ? '-' : vm.uptime.split(' ').slice(0, 2).join(' ')),
            el('td', { class: 'wide' }, portLinks(vm)),
            el('td', { class: 'wide mute' }, vm.id),
            el('td', {}, actions, el('div', { class: 'error row-error', role: 'alert' })));
  return tr;
}
function details(vm) {
  const c = vm.configuration || {};
  const gpus = !c.gpus ? 'none' : c.gpus.attach_mode === 'all' ? 'All GPUs' : (c.gpus.gpus || []).map((g) => g.slot).join(', ') || 'none';
  // Pairs of label and value, each its own grid cell.
  const pairs = [
    'VM ID', el('span', {}, vm.id, ' ', copyButton(vm.id)),
    'App ID', el('span', {}, vm.app_id, ' ', copyButton(vm.app_id)),
    'Instance ID', el('span', {}, vm.instance_id || '-', vm.instance_id ? copyButton(vm.instance_id) : ''),
    'Image', `${c.image || ''} (${vm.image_version})`, 'Resources', `${c.vcpu} vCPU, ${c.memory} MB, ${c.disk_size} GB`,
    'TEE', c.no_tee ? 'disabled' : 'enabled', 'GPUs', gpus,
    'Boot', vm.boot_progress + (vm.boot_error ? ` (error: ${vm.boot_error})` : ''),
    'Ports', (c.ports || []).map((p) => `${p.protocol.toUpperCase()}: ${p.host_address === '127.0.0.1' ? 'Local' : p.host_address === '0.0.0.0' ? 'Public' : p.host_address} ${p.host_port} → ${p.vm_port}`).join('; ') || 'none',
    'Networks', (vm.interfaces || []).map((n) => `${n.mode}/${n.backend} ${n.netdev_id || ''} ${n.bridge_name || ''} ${n.mac}`).join('; ') || '-'];
  const kv = el('div', { class: 'kv' }, pairs.map((x) => (x instanceof Node ? x : el('span', {}, x))));
  const events = el('pre', {}, (vm.events || []).map((e) => `${new Date(e.timestamp).toISOString()}  ${e.event}: ${e.body}\n`).join('') || 'no events');
  return el('td', { colspan: 6 }, kv,
    el('h3', {}, 'App compose ', el('button', { type: 'button', onclick: () => download(`${vm.name}-app-compose.json`, c.compose_file || '') }, 'Download'), ' ', copyButton(c.compose_file || '')),
    el('pre', {}, c.compose_file || ''), el('h3', {}, 'Events'), events);
}
let refreshing = false;
async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    // Not brief: the table shows port links, which live in the configuration.
    const s = await rpc('Status', { brief: false, keyword: state.keyword, page: state.page, page_size: state.pageSize });
    const body = $('vms');
    body.replaceChildren();
    for (const vm of s.vms) {
      body.append(vmRow(vm));
      if (state.expanded === vm.id) body.append(el('tr', { class: 'details' }, details(vm)));
    }
    if (!s.vms.length) body.append(el('tr', {}, el('td', { colspan: 6, class: 'mute' }, state.keyword ? 'no VM matches' : 'no VMs yet: Deploy one')));
    $('total').textContent = `${s.total} VM${s.total === 1 ? '' : 's'}`;
    $('page').textContent = String(state.page);
    state.portMapping = s.port_mapping_enabled;
    $('error').textContent = '';
  } catch (e) {
    $('error').textContent = `Could not load the VMs: ${e.message}`;
  } finally {
    refreshing = false;
  }
}

// ---- dialogs: deploy and update ---------------------------------------------------------------
function portEditor(box, port = { protocol: 'tcp', host_address: '127.0.0.1', host_port: '', vm_port: '' }) {
  const addr = ['127.0.0.1', '0.0.0.0'].includes(port.host_address) ? port.host_address : 'custom';
  const row = el('div', { class: 'port' },
    el('select', { 'aria-label': 'Protocol', class: 'p-proto' }, el('option', {}, 'tcp'), el('option', {}, 'udp')),
    el('select', { 'aria-label': 'Address', class: 'p-addr' }, el('option', { value: '127.0.0.1' }, 'Local'), el('option', { value: '0.0.0.0' }, 'Public'), el('option', { value: 'custom' }, 'Custom IP')),
    el('input', { 'aria-label': 'Custom address', class: 'p-ip', value: addr === 'custom' ? port.host_address : '', placeholder: 'IP' }),
    el('input', { type: 'number', 'aria-label': 'Host port', class: 'p-host', value: port.host_port, min: 1, max: 65535, placeholder: 'host port' }),
    el('input', { type: 'number', 'aria-label': 'VM port', class: 'p-vm', value: port.vm_port, min: 1, max: 65535, placeholder: 'VM port' }),
    el('button', { type: 'button', 'aria-label': 'Remove port', onclick: () => row.remove() }, '×'));
  row.querySelector('.p-proto').value = port.protocol;
  row.querySelector('.p-addr').value = addr;
  box.append(row);
}
function portsOf(box) {
  return Array.from(box.querySelectorAll('.port')).map((r, i) => {
    const a = r.querySelector('.p-addr').value;
    const p = { protocol: r.querySelector('.p-proto').value, host_address: a === 'custom' ? r.querySelector('.p-ip').value.trim() : a,
                host_port: Number(r.querySelector('.p-host').value), vm_port: Number(r.querySelector('.p-vm').value) };
    if (!(p.host_port >= 1 && p.host_port <= 65535 && p.vm_port >= 1 && p.vm_port <= 65535)) throw new ApiError(`port ${i + 1}: ports go from 1 to 65535`);
    return p;
  });
}
function appComposeFromEditor() {
  const kms = $('d-kms').checked, gateway = $('d-gateway').checked;
  const env = parseEnv($('d-env').value);
  return JSON.stringify({ manifest_version: 2, name: $('d-name').value, runner: 'docker-compose', docker_compose_file: $('d-docker-compose').value,
    kms_enabled: kms, gateway_enabled: gateway, local_key_provider_enabled: false, key_provider_id: '', public_logs: $('d-public-logs').checked,
    public_sysinfo: true, allowed_envs: env.map((e) => e.key), no_instance_id: !gateway, secure_time: false });
}
async function openDeploy() {
  $('deploy-error').textContent = '';
  $('d-image').replaceChildren(...state.images.map((i) => el('option', { value: i.name }, `${i.name} (${i.version})`)));
  $('d-gpu-box').hidden = !(state.gpus && state.gpus.gpus.length);
  if (state.gpus) $('d-gpus').replaceChildren(...state.gpus.gpus.map((g) => el('label', {}, el('input', { type: 'checkbox', value: g.slot, class: 'gpu' }), ` ${g.slot} ${g.description}${g.is_free ? '' : ' (in use)'}`)));
  $('d-ports').replaceChildren();
  $('deploy').showModal();
  $('d-name').focus();
}
$('d-compose-mode').addEventListener('change', () => { const paste = $('d-compose-mode').value === 'paste'; $('d-paste').hidden = !paste; $('d-editor').hidden = paste; });
$('d-compose-file').addEventListener('change', async () => { const f = $('d-compose-file').files[0]; if (f) $('d-compose').value = await f.text(); });
$('d-port-add').addEventListener('click', () => portEditor($('d-ports')));
$('deploy-cancel').addEventListener('click', () => $('deploy').close());
$('deploy-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('deploy-error').textContent = '';
  $('deploy-submit').disabled = true;
  try {
    const compose = $('d-compose-mode').value === 'paste' ? $('d-compose').value : appComposeFromEditor();
    try { JSON.parse(compose); } catch (e) { throw new ApiError(`the app compose is not JSON: ${e.message}`); }
    const env = parseEnv($('d-env').value);
    const appId = (await sha256hex(compose)).slice(0, 40);
    const slots = Array.from(document.querySelectorAll('#d-gpus .gpu:checked')).map((c) => ({ slot: c.value }));
    const req = { name: $('d-name').value, image: $('d-image').value, compose_file: compose, vcpu: Math.max(1, Number($('d-vcpu').value)),
      memory: Number($('d-memory').value), disk_size: Number($('d-disk').value), ports: portsOf($('d-ports')),
      kms_urls: lines($('d-kms-urls').value), gateway_urls: lines($('d-gateway-urls').value), stopped: $('d-stopped').checked,
      gpus: slots.length ? { attach_mode: 'listed', gpus: slots } : null,
      encrypted_env: env.length ? await encryptEnv(env, appId) : '' };
    await rpc('CreateVm', req);
    $('deploy').close();
    refresh();
  } catch (e) {
    $('deploy-error').textContent = `Deploy failed: ${e.message}`;
  } finally {
    $('deploy-submit').disabled = false;
  }
});

let updating = null;
function openUpdate(vm) {
  rpc('GetInfo', { id: vm.id }).then(({ info }) => {
    updating = info;
    const c = info.configuration;
    const stopped = ['stopped', 'exited'].includes(info.status);
    $('u-name').textContent = info.name;
    $('u-hint').textContent = stopped ? 'Changes take effect at the next start.' : 'Resources change only while the VM is stopped; other changes take effect at its next start.';
    for (const [id, v] of [['u-vcpu', c.vcpu], ['u-memory', c.memory], ['u-disk', c.disk_size]]) { $(id).value = v; $(id).disabled = !stopped; }
    $('u-compose').value = c.compose_file;
    $('u-ports').replaceChildren();
    for (const p of c.ports) portEditor($('u-ports'), p);
    $('u-env').value = '';
    $('update-error').textContent = '';
    $('update').showModal();
  }).catch((e) => { $('error').textContent = `Update: ${e.message}`; });
}
$('u-port-add').addEventListener('click', () => portEditor($('u-ports')));
$('update-cancel').addEventListener('click', () => $('update').close());
$('update-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const c = updating.configuration;
  $('update-error').textContent = '';
  try {
    const req = { id: updating.id, update_ports: true, ports: portsOf($('u-ports')) };
    if (!$('u-vcpu').disabled) {
      for (const [id, key] of [['u-vcpu', 'vcpu'], ['u-memory', 'memory'], ['u-disk', 'disk_size']])
        if (Number($(id).value) !== c[key]) req[key] = Number($(id).value);
    }
    if ($('u-compose').value !== c.compose_file) req.compose_file = $('u-compose').value;
    const env = parseEnv($('u-env').value);
    if (env.length) req.encrypted_env = await encryptEnv(env, updating.app_id);
    await rpc('UpdateVm', req);
    $('update').close();
    refresh();
  } catch (e) {
    $('update-error').textContent = `Update failed: ${e.message}`;
  }
});

// ---- logs -------------------------------------------------------------------------------------
let logAbort = null;
async function streamLogs(vm) {
  if (logAbort) logAbort.abort();
  logAbort = new AbortController();
  const pre = $('l-text');
  pre.textContent = '';
  const q = new URLSearchParams({ id: vm.id, follow: $('l-follow').checked, ansi: false, lines: 200, ch: $('l-channel').value });
  const headers = state.token ? { Authorization: 'Bearer ' + state.token } : {};
  try {
    const r = await fetch('/logs?' + q, { headers, signal: logAbort.signal, credentials: 'same-origin' });
    if (!r.ok) { pre.textContent = `(${r.status}) ${await r.text()}`; return; }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(stripAnsi(dec.decode(value, { stream: true })));
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }
  } catch (e) {
    if (e.name !== 'AbortError') pre.append(`\n[log stream ended: ${e.message}]`);
  }
}
let logVm = null;
function openLogs(vm) {
  logVm = vm;
  $('l-name').textContent = vm.name;
  $('logview').showModal();
  streamLogs(vm);
}
$('l-channel').addEventListener('change', () => streamLogs(logVm));
$('l-follow').addEventListener('change', () => streamLogs(logVm));
$('l-close').addEventListener('click', () => $('logview').close());
$('logview').addEventListener('close', () => logAbort && logAbort.abort());

// ---- system menu: images, GPUs, processes ----------------------------------------------------
let panelTimer = null;
function openPanel(title, render) {
  $('p-title').textContent = title;
  const draw = async () => {
    try { $('p-body').replaceChildren(await render()); $('p-error').textContent = ''; } catch (e) { $('p-error').textContent = e.message; }
  };
  draw();
  clearInterval(panelTimer);
  panelTimer = setInterval(() => { if (!document.hidden) draw(); }, 3000);
  if (!$('panel').open) $('panel').showModal();
}
$('panel').addEventListener('close', () => clearInterval(panelTimer));
$('p-close').addEventListener('click', () => $('panel').close());
const table = (head, rows) => el('table', {}, el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))), el('tbody', {}, rows));
async function imagesPanel() {
  const local = await rpc('ListImages'), reg = await rpc('ListRegistryImages');
  const action = async (fn, what) => { try { await fn(); } catch (e) { $('p-error').textContent = `${what}: ${e.message}`; } };
  const localRows = local.images.map((i) => el('tr', {}, el('td', {}, i.name), el('td', {}, i.version),
    el('td', {}, el('button', { class: 'danger', onclick: () => confirm(`Delete image ${i.name}?`) && action(() => rpc('DeleteImage', { id: i.name }), 'Delete') }, 'Delete'))));
  const regRows = reg.images.map((i) => {
    const pct = i.progress && i.progress.bytes_total ? ` ${Math.floor((100 * i.progress.bytes_done) / i.progress.bytes_total)}%` : '';
    const st = i.pulling ? `Pulling…${pct}` : i.error ? `Failed: ${i.error}` : i.local ? 'Local' : 'Remote';
    return el('tr', {}, el('td', {}, i.tag), el('td', {}, st),
      el('td', {}, !i.pulling && !i.local && el('button', { onclick: () => action(() => rpc('PullRegistryImage', { tag: i.tag }), 'Pull') }, i.error ? 'Retry' : 'Pull')));
  });
  return el('div', {}, el('h3', {}, 'Local'), table(['Name', 'Version', ''], localRows), el('h3', {}, 'Registry'),
    reg.images.length ? table(['Tag', 'Status', ''], regRows) : el('p', { class: 'mute' }, 'No registry configured. Set [image] registry in vmm.toml.'));
}
async function gpusPanel() {
  const g = await rpc('ListGpus');
  if (!g.gpus.length) return el('p', { class: 'mute' }, 'No GPUs are offered to VMs on this host.');
  return table(['Slot', 'Product', 'Description', 'Free'], g.gpus.map((x) => el('tr', {}, el('td', {}, x.slot), el('td', {}, x.product_id), el('td', {}, x.description), el('td', {}, x.is_free ? 'yes' : 'in use'))));
}
async function processesPanel() {
  const s = await rpc('SvList');
  const action = async (fn, what) => { try { await fn(); } catch (e) { $('p-error').textContent = `${what}: ${e.message}`; } };
  return table(['Name', 'ID', 'Status', 'PID', ''], s.processes.map((p) => el('tr', {}, el('td', {}, p.name), el('td', { class: 'mute' }, p.id), el('td', {}, p.status), el('td', {}, p.pid ?? '-'),
    el('td', {}, p.status === 'running' ? el('button', { onclick: () => action(() => rpc('SvStop', { id: p.id }), 'Stop') }, 'Stop')
                                        : el('button', { onclick: () => action(() => rpc('SvRemove', { id: p.id }), 'Remove') }, 'Remove')))));
}
$('system').addEventListener('change', async () => {
  const v = $('system').value;
  $('system').value = '';
  if (v === 'reload') {
    try { const r = await rpc('ReloadVms'); $('error').textContent = ''; alert(`Reloaded: ${r.loaded} loaded, ${r.updated} updated, ${r.removed} removed`); refresh(); }
    catch (e) { $('error').textContent = `Reload: ${e.message}`; }
  } else if (v === 'images') openPanel('Images', imagesPanel);
  else if (v === 'gpus') openPanel('GPUs', gpusPanel);
  else if (v === 'processes') openPanel('Supervisor processes', processesPanel);
  else if (v === 'docs') window.open('/api-docs/docs', '_blank');
});

// ---- toolbar, start-up, polite refresh ---------------------------------------------------------
$('deploy-open').addEventListener('click', openDeploy);
let searchTimer = null;
$('search').addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(() => { state.keyword = $('search').value; state.page = 1; refresh(); }, 250); });
$('prev').addEventListener('click', () => { if (state.page > 1) { state.page--; refresh(); } });
$('next').addEventListener('click', () => { state.page++; refresh(); });
$('page-size').value = String(state.pageSize);
$('page-size').addEventListener('change', () => { state.pageSize = Number($('page-size').value); localStorage.setItem('pageSize', state.pageSize); state.page = 1; refresh(); });
async function start() {
  try {
    const v = await rpc('Version');
    $('version').textContent = `v${v.version} (${v.rev.slice(0, 14)})`;
    state.images = (await rpc('ListImages')).images;
    state.gpus = await rpc('ListGpus');
  } catch (e) {
    $('error').textContent = `Could not reach the daemon: ${e.message}`;
  }
  refresh();
}
// Live: the table is redrawn when /events says something happened (a fetch stream, so the
// token goes in a header). While that stream is down, or where the browser cannot read one,
// a poll every 3 s instead, paused while the tab is hidden.
let live = false, lastSeq = '0', soon = null;
function refreshSoon() { clearTimeout(soon); soon = setTimeout(refresh, 100); }
async function follow() {
  const headers = {};
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  try {
    const r = await fetch(`/events?since=${lastSeq}`, { headers });
    if (!r.ok || !r.body || !r.body.getReader) throw new Error(`HTTP ${r.status}`);
    live = true;
    const reader = r.body.getReader(), decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      for (let at; (at = buf.indexOf('\n\n')) >= 0;) {
        const block = buf.slice(0, at);
        buf = buf.slice(at + 2);
        const id = /^id: (\d+)$/m.exec(block);
        if (id) lastSeq = id[1];  // kept as text: seq numbers are past 2^32
        if (/^data:/m.test(block)) refreshSoon();
      }
    }
  } catch (e) { /* the poll below takes over */ }
  live = false;
  setTimeout(follow, 5000);
}
setInterval(() => { if (!document.hidden && !live) refresh(); }, 3000);
document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
start();
follow();
