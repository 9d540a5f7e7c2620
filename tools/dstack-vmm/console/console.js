// SPDX-License-Identifier: Apache-2.0
// The web console: plain JS over the daemon's JSON /prpc. Every value from the daemon goes into
// the page as text (textContent), never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
// A token comes from /?token= (then kept for this tab), or from the prompt a 401 opens.
const state = { page: 1, pageSize: Number(localStorage.getItem('pageSize') || 50), keyword: '', expanded: null,
                images: [], gpus: null, meta: null,
                token: new URLSearchParams(location.search).get('token') || sessionStorage.getItem('token') || '',
                devMode: localStorage.getItem('devMode') === 'true' };
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
});

// ---- small helpers ----------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
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
// The same rules, and the same words, as vmmctl's (client/env_crypto.cpp, deploy_spec.cpp).
function parseEnv(text) {
  const env = [];
  text.split('\n').forEach((line, i) => {
    line = line.trim();
    if (!line || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq < 0) throw new ApiError(`env file line ${i + 1}: expected KEY=VALUE`);
    const key = line.slice(0, eq).trim();
    if (!key) throw new ApiError(`env file line ${i + 1}: the key is empty`);
    env.push({ key, value: line.slice(eq + 1).trim() });
  });
  return env;
}
function splitSize(text) {
  const m = /^(\d+\.?\d*|\.\d+)([A-Za-z]*)$/.exec(text.trim());
  return m && m[1].length <= 32 ? { n: Number(m[1]), unit: m[2].toUpperCase() } : null;
}
function whole(what, text, value, unit) {
  if (value > 4294967295) throw new ApiError(`${what} '${text}': too large`);
  if (Math.floor(value) !== value) throw new ApiError(`${what} '${text}': is not a whole number of ${unit}`);
  return value;
}
function parseMemoryMb(text) {
  const s = splitSize(text);
  if (!s) throw new ApiError(`memory size '${text}': expected a number with an optional unit, like 512M, 2G or 1.5G`);
  const scale = { '': 1, M: 1, MB: 1, G: 1024, GB: 1024, T: 1048576, TB: 1048576 }[s.unit];
  if (scale === undefined) throw new ApiError(`memory size '${text}': unknown unit '${s.unit}' (use M, MB, G, GB, T or TB)`);
  return whole('memory size', text, s.n * scale, 'MB');
}
function parseDiskGb(text) {
  const s = splitSize(text);
  if (!s) throw new ApiError(`disk size '${text}': expected a number with an optional unit, like 20G or 1T`);
  const scale = { '': 1, G: 1, GB: 1, T: 1024, TB: 1024 }[s.unit];
  if (scale === undefined) throw new ApiError(`disk size '${text}': unknown unit '${s.unit}' (use G, GB, T or TB)`);
  return whole('disk size', text, s.n * scale, 'GB');
}
const formatMb = (mb) => (mb % 1024 === 0 ? `${mb / 1024}G` : `${mb}M`);
const versionAtLeast = (v, min) => {
  const a = String(v || '0').split('.').map(Number), b = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] || 0) !== b[i]) return (a[i] || 0) > b[i];
  return true;
};
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
const shortTime = (t) => t.split(' ').slice(0, 2).join(' ');
function uptimeOf(vm) {
  if (vm.status === 'running' && vm.uptime && vm.uptime !== 'never') return shortTime(vm.uptime);
  if (vm.exited_at && vm.exited_at !== 'never') return el('span', { class: 'mute' }, `stopped ${shortTime(vm.exited_at)} ago`);
  return '-';
}
function pendingNote(vm, what) {
  const p = vm.pending_changes || [];
  if (vm.status !== 'running' || !(what ? p.includes(what) : p.length)) return null;
  return el('div', { class: 'pending', title: `Changed since this VM started: ${p.join(', ')}` }, 'applies on restart');
}
function portLinks(vm) {
  const ports = (vm.configuration && vm.configuration.ports) || [];
  return [ports.map((p) => {
    const host = p.host_address === '0.0.0.0' || p.host_address === '' ? location.hostname : p.host_address;
    return p.protocol === 'tcp' ? el('a', { href: `http://${host}:${p.host_port}/`, target: '_blank', rel: 'noopener' }, `${p.host_port}→${p.vm_port}`, ' ')
                                : `${p.protocol} ${p.host_port}→${p.vm_port} `;
  }), pendingNote(vm, 'ports')];
}
// Dev mode (upstream's): no confirmation prompts, and Remove stops a running VM first.
const sure = (question) => state.devMode || confirm(question);
async function act(row, what, fn) {
  row.querySelector('.row-error').textContent = '';
  try { await fn(); refresh(); } catch (e) { row.querySelector('.row-error').textContent = `${what}: ${e.message}`; }
}
function vmRow(vm) {
  const tr = el('tr', { 'data-id': vm.id });
  const status = statusOf(vm);
  const running = vm.status === 'running';
  const actions = el('div', { class: 'actions' },
    el('button', { onclick: () => { state.expanded = state.expanded === vm.id ? null : vm.id; state.netInfo = null; state.netAsked = 0; refresh(); }, 'aria-expanded': state.expanded === vm.id }, 'Details'),
    el('button', { onclick: () => openLogs(vm) }, 'Logs'),
    !running && el('button', { onclick: () => act(tr, 'Start', () => rpc('StartVm', { id: vm.id })) }, 'Start'),
    running && el('button', { onclick: () => act(tr, 'Shutdown', () => rpc('ShutdownVm', { id: vm.id })) }, 'Shutdown'),
    running && el('button', { class: 'danger', onclick: () => sure(`Kill ${vm.name}? It stops at once, as if its power were cut: data not on disk is lost.`) && act(tr, 'Kill', () => rpc('StopVm', { id: vm.id })) }, 'Kill'),
    el('button', { onclick: () => openUpdate(vm) }, 'Update'),
    el('button', { onclick: () => cloneConfig(vm) }, 'Clone'),
    el('button', { class: 'danger', onclick: () => sure(`Remove ${vm.name} and its disk?`) && act(tr, 'Remove', async () => {
      if (state.devMode && running) await rpc('StopVm', { id: vm.id });
      await rpc('RemoveVm', { id: vm.id });
    }) }, 'Remove'));
  tr.append(el('td', {}, vm.name, vm.app_url ? el('div', {}, el('a', { href: vm.app_url, target: '_blank', rel: 'noopener' }, 'app')) : null),
            el('td', {}, el('span', { class: `badge ${status}` }, status), vm.degraded ? el('div', { class: 'pending', title: vm.degraded }, 'degraded') : null),
            el('td', { class: 'wide' }, uptimeOf(vm)),
            el('td', { class: 'wide' }, portLinks(vm)),
            el('td', { class: 'wide mute' }, vm.id),
            el('td', {}, actions, el('div', { class: 'error row-error', role: 'alert' })));
  return tr;
}
function composeOf(vm) {
  try { return JSON.parse((vm.configuration || {}).compose_file || '{}'); } catch { return {}; }
}
function launchText(l) {
  const when = new Date(l.time_ms).toISOString();
  const end = !l.exit ? 'running or stopped by the VMM' : l.exit.exit_code !== undefined ? `exited with ${l.exit.exit_code}` :
    l.exit.exit_signal !== undefined ? `killed by signal ${l.exit.exit_signal}` : 'ended';
  const panics = l.panic_count ? `, ${l.panic_count} kernel panic${l.panic_count > 1 ? 's' : ''}: ${(l.panics || []).map((p) => p.message).join('; ')}` : '';
  return `${when}  ${l.image} ${l.image_version}, CID ${l.cid}, compose ${String(l.compose_hash).slice(0, 16)}…: ${end}${panics}\n`;
}
function guestNetwork(info) {
  if (!info) return el('span', { class: 'mute' }, 'asking the guest…');
  if (info.error) return el('span', { class: 'mute' }, info.error);
  const rows = (info.interfaces || []).map((i) => `${i.name}: ${(i.addresses || []).map((a) => `${a.address}/${a.prefix}`).join(', ') || 'no address'}  RX ${i.rx_bytes} B (${i.rx_errors} errors)  TX ${i.tx_bytes} B (${i.tx_errors} errors)`);
  if ((info.gateways || []).length) rows.push(`gateways: ${info.gateways.map((g) => g.address).join(', ')}`);
  if ((info.dns_servers || []).length) rows.push(`DNS: ${info.dns_servers.join(', ')}`);
  return el('div', {}, el('pre', {}, rows.join('\n') || 'no interfaces'), info.wg_info ? el('pre', {}, info.wg_info) : null);
}
function details(vm, extra) {
  const c = vm.configuration || {};
  const app = composeOf(vm);
  const gpus = !c.gpus ? 'none' : c.gpus.attach_mode === 'all' ? 'All GPUs' : (c.gpus.gpus || []).map((g) => g.slot).join(', ') || 'none';
  const kp = app.key_provider || (app.kms_enabled ? 'kms' : app.local_key_provider_enabled ? 'local' : 'none');
  const on = (b) => (b === false ? 'off' : 'on');
  const pairs = [
    'VM ID', el('span', {}, vm.id, ' ', copyButton(vm.id)),
    'App ID', el('span', {}, vm.app_id, ' ', copyButton(vm.app_id)),
    'Instance ID', el('span', {}, vm.instance_id || '-', vm.instance_id ? copyButton(vm.instance_id) : ''),
    'Image', `${c.image || ''} (${vm.image_version})`, 'Resources', `${c.vcpu} vCPU, ${formatMb(c.memory)} memory, ${c.disk_size} GB disk`,
    'TEE', c.simulated_tee ? `simulated (${c.simulated_tee})` : c.no_tee ? 'disabled' : 'enabled', 'GPUs', gpus,
    'Features', `key provider ${kp}${app.key_provider_id ? ' ' + app.key_provider_id : ''}; gateway ${on(app.gateway_enabled || app.tproxy_enabled || false)}; public logs ${on(app.public_logs)}; public sysinfo ${on(app.public_sysinfo)}; public TCB info ${on(app.public_tcbinfo)}`,
    'Boot', vm.boot_progress + (vm.boot_error ? ` (error: ${vm.boot_error})` : ''),
    'Ports', el('span', {}, (c.ports || []).map((p) => `${p.protocol.toUpperCase()}: ${p.host_address === '127.0.0.1' ? 'Local' : p.host_address === '0.0.0.0' ? 'Public' : p.host_address} ${p.host_port} → ${p.vm_port}`).join('; ') || 'none', pendingNote(vm, 'ports')),
    'VMM network', (vm.interfaces || []).map((n) => `${n.mode}/${n.backend} ${n.netdev_id || ''} ${n.bridge_name || ''} ${n.mac}`).join('; ') || '-',
    'Guest network', vm.status === 'running' ? guestNetwork(extra.net) : el('span', { class: 'mute' }, 'the VM is not running')];
  if ((vm.pending_changes || []).length && vm.status === 'running') pairs.push('Pending', `${vm.pending_changes.join(', ')}: applies on restart`);
  if (vm.degraded) pairs.push('Degraded', vm.degraded);
  const kv = el('div', { class: 'kv' }, pairs.map((x) => (x instanceof Node ? x : el('span', {}, x))));
  const events = el('pre', {}, (vm.events || []).map((e) => `${new Date(e.timestamp).toISOString()}  ${e.event}: ${e.body}\n`).join('') || 'no events');
  const launches = el('pre', { class: 'launches' }, (extra.launches || []).slice(-5).reverse().map(launchText).join('') || 'no launch recorded');
  const logButtons = el('div', { class: 'actions' }, ['serial', 'stdout', 'stderr'].map((ch) =>
    el('button', { type: 'button', onclick: () => openLogs(vm, ch) }, `${ch[0].toUpperCase()}${ch.slice(1)} log`)));
  return el('td', { colspan: 6 }, kv, logButtons,
    el('h3', {}, 'App compose ', el('button', { type: 'button', onclick: () => download(`${vm.name}-app-compose.json`, c.compose_file || '') }, 'Download'), ' ', copyButton(c.compose_file || '')),
    el('pre', {}, c.compose_file || ''),
    c.user_config ? el('h3', {}, 'User config ', el('button', { type: 'button', onclick: () => download(`${vm.name}-user-config.txt`, c.user_config) }, 'Download')) : null,
    c.user_config ? el('pre', {}, c.user_config) : null,
    el('h3', {}, 'Launches (newest first)'), launches, el('h3', {}, 'Events'), events);
}
// The expanded VM's launch records and, while it runs, what its guest says of its network.
async function detailsExtra(vm) {
  const extra = { launches: [], net: state.netInfo };
  try { extra.launches = (await rpc('GetInfo', { id: vm.id })).launches || []; } catch { /* shown as none */ }
  // Asked at most every 10 s; the pane is drawn again when the guest answers.
  if (vm.status === 'running' && versionAtLeast(vm.image_version, '0.3.3') && !(Date.now() - (state.netAsked || 0) < 10000)) {
    state.netAsked = Date.now();
    rpc('NetworkInfo', { id: vm.id }, 'guest').then((n) => { state.netInfo = n; })
      .catch((e) => { state.netInfo = { error: `the guest agent did not answer: ${e.message}` }; })
      .finally(refreshSoon);
  }
  return extra;
}
// One refresh at a time; one asked for meanwhile runs once this one is done (it may follow an
// action whose result this one started too early to see).
let refreshing = false, refreshAgain = false;
async function refresh() {
  if (refreshing) { refreshAgain = true; return; }
  refreshing = true;
  refreshAgain = false;
  try {
    // Not brief: the table shows port links, which live in the configuration.
    const s = await rpc('Status', { brief: false, keyword: state.keyword, page: state.page, page_size: state.pageSize });
    const open = s.vms.find((vm) => vm.id === state.expanded);
    const extra = open ? await detailsExtra(open) : null;
    const body = $('vms');
    body.replaceChildren();
    for (const vm of s.vms) {
      body.append(vmRow(vm));
      if (vm === open) body.append(el('tr', { class: 'details' }, details(vm, extra)));
    }
    if (!s.vms.length) {
      body.append(el('tr', {}, el('td', { colspan: 6, class: 'mute empty' }, state.keyword ? `No VM matches “${state.keyword}”. Clear the search to see every VM.`
        : s.total ? 'This page is past the last VM: go back a page.' : 'No VMs yet. Deploy one with the Deploy button above.')));
    }
    $('total').textContent = `${s.total} VM${s.total === 1 ? '' : 's'}`;
    $('page').textContent = String(state.page);
    $('prev').disabled = state.page <= 1;
    $('next').disabled = state.page * state.pageSize >= s.total;
    state.portMapping = s.port_mapping_enabled;
    $('error').textContent = '';
  } catch (e) {
    $('error').textContent = `Could not load the VMs: ${e.message}. The daemon may be down; this page retries every few seconds.`;
  } finally {
    refreshing = false;
    if (refreshAgain) refresh();
  }
}

// ---- dialogs: deploy, update and clone ---------------------------------------------------------
function portEditor(box, port = { protocol: 'tcp', host_address: '127.0.0.1', host_port: '', vm_port: '' }) {
  const addr = ['127.0.0.1', '0.0.0.0'].includes(port.host_address) ? port.host_address : 'custom';
  const row = el('div', { class: 'port' },
    el('select', { 'aria-label': 'Protocol', class: 'p-proto' }, el('option', {}, 'tcp'), el('option', {}, 'udp')),
    el('select', { 'aria-label': 'Address', class: 'p-addr' }, el('option', { value: '127.0.0.1' }, 'Local'), el('option', { value: '0.0.0.0' }, 'Public'), el('option', { value: 'custom' }, 'Custom IP')),
    el('input', { 'aria-label': 'Custom address', class: 'p-ip', value: addr === 'custom' ? port.host_address : '', placeholder: 'IP address', hidden: addr !== 'custom' }),
    el('input', { type: 'number', 'aria-label': 'Host port', class: 'p-host', value: port.host_port, min: 1, max: 65535, placeholder: 'host port' }),
    el('input', { type: 'number', 'aria-label': 'VM port', class: 'p-vm', value: port.vm_port, min: 1, max: 65535, placeholder: 'VM port' }),
    el('button', { type: 'button', 'aria-label': 'Remove port', title: 'Remove this port', onclick: () => row.remove() }, '×'));
  row.querySelector('.p-proto').value = port.protocol;
  row.querySelector('.p-addr').value = addr;
  row.querySelector('.p-addr').addEventListener('change', (ev) => { row.querySelector('.p-ip').hidden = ev.target.value !== 'custom'; });
  box.append(row);
}
// vmmctl's port rules: ports 1-65535, an IP address.
const isIp = (a) => /^(\d{1,3})(\.\d{1,3}){3}$/.test(a) ? a.split('.').every((x) => Number(x) <= 255) : /^[0-9a-fA-F:]+$/.test(a) && a.includes(':');
function portsOf(box) {
  return Array.from(box.querySelectorAll('.port')).map((r, i) => {
    const a = r.querySelector('.p-addr').value;
    const p = { protocol: r.querySelector('.p-proto').value, host_address: a === 'custom' ? r.querySelector('.p-ip').value.trim() : a,
                host_port: Number(r.querySelector('.p-host').value), vm_port: Number(r.querySelector('.p-vm').value) };
    if (!isIp(p.host_address)) throw new ApiError(`port ${i + 1}: '${p.host_address}' is not an IP address`);
    for (const [what, v] of [['the host port', p.host_port], ['the VM port', p.vm_port]])
      if (!(Number.isInteger(v) && v >= 1 && v <= 65535)) throw new ApiError(`port ${i + 1}: ${what} must be a number from 1 to 65535`);
    return p;
  });
}
function netEditor(box, net = { mode: 'user', bridge_name: '' }) {
  const modes = (state.meta && state.meta.networking && state.meta.networking.supported_modes) || ['user'];
  const row = el('div', { class: 'net' },
    el('select', { 'aria-label': 'Network mode', class: 'n-mode' }, modes.map((m) => el('option', {}, m))),
    el('input', { 'aria-label': 'Bridge', class: 'n-bridge', value: net.bridge_name || '', placeholder: `bridge (default ${(state.meta && state.meta.networking && state.meta.networking.default_bridge) || 'the node\'s'})` }),
    el('button', { type: 'button', 'aria-label': 'Remove network', onclick: () => row.remove() }, '×'));
  row.querySelector('.n-mode').value = net.mode;
  box.append(row);
}
const netsOf = (box) => Array.from(box.querySelectorAll('.net')).map((r) => {
  const mode = r.querySelector('.n-mode').value, bridge = r.querySelector('.n-bridge').value.trim();
  return mode === 'bridge' && bridge ? { mode, bridge_name: bridge } : { mode };
});
function gpuChoices(box, allBox, chosen) {
  const g = state.gpus || { gpus: [] };
  box.replaceChildren(...g.gpus.map((x) => el('label', {}, el('input', { type: 'checkbox', value: x.slot, class: 'gpu', checked: chosen.includes(x.slot) }),
    ` ${x.slot} ${x.description}${x.is_free ? '' : ' (in use)'}`)));
  if (allBox) allBox.hidden = !g.allow_attach_all;
}
function gpusOf(box, all) {
  if (all.checked) return { attach_mode: 'all', gpus: [] };
  const slots = Array.from(box.querySelectorAll('.gpu:checked')).map((c) => ({ slot: c.value }));
  return { attach_mode: 'listed', gpus: slots };
}
// upstream's default pre-launch script: APP_LAUNCH_TOKEN must hash to the compose's launch_token_hash.
const kDefaultPreLaunch = `#!/bin/bash
echo "----------------------------------------------"
echo "Running Phala Cloud Pre-Launch Script v0.0.1"
echo "----------------------------------------------"
set -e
if [[ -n "$APP_LAUNCH_TOKEN" ]]; then
  LAUNCH_TOKEN_HASH=$(jq -j .launch_token_hash app-compose.json)
  if [[ "$LAUNCH_TOKEN_HASH" != "$(echo -n "$APP_LAUNCH_TOKEN" | sha256sum | cut -d' ' -f1)" ]]; then
    echo "Error: Incorrect APP_LAUNCH_TOKEN, please make sure set the correct APP_LAUNCH_TOKEN in env"
    reboot
    exit 1
  fi
fi
`;
function initEditor(text = '') {
  if ($('d-inits').children.length >= 5) throw new ApiError('at most 5 init scripts');
  const row = el('div', { class: 'net' }, el('textarea', { 'aria-label': 'Init script', class: 'init' }, text),
    el('button', { type: 'button', 'aria-label': 'Remove init script', onclick: () => row.remove() }, '×'));
  $('d-inits').append(row);
}
async function appComposeFromEditor() {
  const gateway = $('d-gateway').checked, kp = $('d-kp').value, kpId = $('d-kp-id').value.trim().replace(/^0x/, '');
  if (kpId && !/^([0-9a-fA-F]{2})*$/.test(kpId)) throw new ApiError(`key provider id '${kpId}': use hex digits (an even number, without 0x)`);
  const env = parseEnv($('d-env').value);
  const inits = Array.from(document.querySelectorAll('#d-inits .init')).map((t) => t.value).filter((t) => t.trim());
  const image = state.images.find((i) => i.name === $('d-image').value);
  if (inits.length > 1 && !versionAtLeast(image && image.version, '0.6.0')) throw new ApiError('more than one init script needs an image of 0.6.0 or later');
  const swapMb = parseMemoryMb($('d-swap').value || '0');
  const c = { manifest_version: versionAtLeast(image && image.version, '0.6.0') ? '3' : 2, name: $('d-name').value, runner: 'docker-compose',
    docker_compose_file: $('d-docker-compose').value, gateway_enabled: gateway, public_logs: $('d-public-logs').checked,
    public_sysinfo: $('d-public-sysinfo').checked, public_tcbinfo: $('d-public-tcbinfo').checked, key_provider_id: kpId,
    allowed_envs: env.map((e) => e.key), no_instance_id: !gateway, secure_time: false, key_provider: kp,
    kms_enabled: kp === 'kms', local_key_provider_enabled: kp === 'local' };
  if ($('d-storage-fs').value) c.storage_fs = $('d-storage-fs').value;
  if (inits.length) c.init_script = inits.length === 1 ? inits[0] : inits;
  if ($('d-prelaunch-on').checked) c.pre_launch_script = $('d-prelaunch').value;
  if (swapMb > 0) c.swap_size = swapMb * 1048576;
  if ($('d-evlog').value === '2') c.event_log_version = 2;
  const token = env.find((e) => e.key === 'APP_LAUNCH_TOKEN');
  if (token) c.launch_token_hash = await sha256hex(token.value);
  return JSON.stringify(c);
}
async function deployCompose() {
  const compose = $('d-compose-mode').value === 'paste' ? $('d-compose').value : await appComposeFromEditor();
  try { JSON.parse(compose); } catch (e) { throw new ApiError(`the app compose is not JSON: ${e.message}`); }
  return compose;
}
// The compose hash as the daemon computes it: sha256 of the exact bytes sent.
let hashTimer = null;
function showHash(target, text) {
  clearTimeout(hashTimer);
  hashTimer = setTimeout(async () => {
    try { $(target).textContent = '0x' + (await sha256hex(await text())); } catch (e) { $(target).textContent = `- (${e.message})`; }
  }, 150);
}
const deployHash = () => showHash('d-hash', deployCompose);
function resetDeploy() {
  $('deploy-form').reset();
  $('deploy-error').textContent = '';
  $('d-inits').replaceChildren();
  $('d-nets').replaceChildren();
  $('d-ports').replaceChildren();
  $('d-prelaunch').value = kDefaultPreLaunch;
  $('d-prelaunch').hidden = true;
  $('d-paste').hidden = true;
  $('d-editor').hidden = false;
}
function openDeploy(prefill) {
  resetDeploy();
  $('d-image').replaceChildren(...state.images.map((i) => el('option', { value: i.name }, `${i.name} (${i.version})`)));
  $('d-gpu-box').hidden = !(state.gpus && state.gpus.gpus.length);
  gpuChoices($('d-gpus'), $('d-gpu-all-box'), []);
  $('d-port-box').hidden = state.portMapping === false;
  $('deploy-title').textContent = prefill ? `Deploy a copy of ${prefill.name}` : 'Deploy a VM';
  if (prefill) fillDeploy(prefill);
  syncKeyProvider();
  deployHash();
  $('deploy').showModal();
  $('d-name').focus();
}
// Clone config: the deploy dialog filled from a VM (same app id, compose settings, resources,
// URLs, networks and flags; env, ports and GPUs left out, as upstream's console does).
async function cloneConfig(vm) {
  try {
    const { info } = await rpc('GetInfo', { id: vm.id });
    openDeploy(info);
  } catch (e) { $('error').textContent = `Clone: ${e.message}`; }
}
function fillDeploy(info) {
  const c = info.configuration, app = composeOf(info);
  $('d-name').value = `${info.name}-clone`;
  $('d-image').value = c.image;
  $('d-vcpu').value = c.vcpu;
  $('d-memory').value = formatMb(c.memory);
  $('d-disk').value = `${c.disk_size}G`;
  $('d-app-id').value = info.app_id;
  if (app.docker_compose_file !== undefined) {
    $('d-docker-compose').value = app.docker_compose_file;
    $('d-kp').value = app.key_provider || (app.kms_enabled ? 'kms' : app.local_key_provider_enabled ? 'local' : 'none');
    $('d-kp-id').value = app.key_provider_id || '';
    $('d-evlog').value = String(app.event_log_version || 1);
    $('d-gateway').checked = !!(app.gateway_enabled || app.tproxy_enabled);
    $('d-public-logs').checked = app.public_logs !== false;
    $('d-public-sysinfo').checked = app.public_sysinfo !== false;
    $('d-public-tcbinfo').checked = app.public_tcbinfo !== false;
    $('d-storage-fs').value = app.storage_fs || '';
    $('d-swap').value = app.swap_size ? formatMb(Math.round(app.swap_size / 1048576)) : '0';
    for (const s of [].concat(app.init_script || [])) initEditor(s);
    if (app.pre_launch_script !== undefined) { $('d-prelaunch-on').checked = true; $('d-prelaunch').hidden = false; $('d-prelaunch').value = app.pre_launch_script; }
  } else {
    $('d-compose-mode').value = 'paste';
    $('d-paste').hidden = false;
    $('d-editor').hidden = true;
    $('d-compose').value = c.compose_file;
  }
  $('d-kms-urls').value = (c.kms_urls || []).join('\n');
  $('d-gateway-urls').value = (c.gateway_urls || []).join('\n');
  $('d-no-tee').checked = !!c.no_tee;
  $('d-numa').checked = !!c.pin_numa;
  $('d-hugepages').checked = !!c.hugepages;
  $('d-stopped').checked = !!c.stopped;
  $('d-simulated').value = c.simulated_tee || '';
  for (const n of c.networks || []) netEditor($('d-nets'), n);
  $('d-user-config').value = c.user_config || '';
}
function syncKeyProvider() {
  const kp = $('d-kp').value;
  $('d-kp-id').disabled = !['kms', 'local'].includes(kp);
  $('d-env-box').hidden = kp !== 'kms' && $('d-compose-mode').value === 'editor';
}
$('d-compose-mode').addEventListener('change', () => { const paste = $('d-compose-mode').value === 'paste'; $('d-paste').hidden = !paste; $('d-editor').hidden = paste; syncKeyProvider(); deployHash(); });
$('d-compose-file').addEventListener('change', async () => { const f = $('d-compose-file').files[0]; if (f) { $('d-compose').value = await f.text(); deployHash(); } });
$('d-docker-compose-file').addEventListener('change', async () => { const f = $('d-docker-compose-file').files[0]; if (f) { $('d-docker-compose').value = await f.text(); deployHash(); } });
$('d-env-file').addEventListener('change', async () => { const f = $('d-env-file').files[0]; if (f) { $('d-env').value = await f.text(); deployHash(); } });
$('d-kp').addEventListener('change', syncKeyProvider);
$('d-prelaunch-on').addEventListener('change', () => { $('d-prelaunch').hidden = !$('d-prelaunch-on').checked; });
$('d-init-add').addEventListener('click', () => { try { initEditor(); } catch (e) { $('deploy-error').textContent = e.message; } });
$('d-net-add').addEventListener('click', () => netEditor($('d-nets')));
$('deploy-form').addEventListener('input', deployHash);
$('deploy-form').addEventListener('change', deployHash);
$('d-port-add').addEventListener('click', () => portEditor($('d-ports')));
$('deploy-cancel').addEventListener('click', () => $('deploy').close());
$('deploy-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('deploy-error').textContent = '';
  $('deploy-submit').disabled = true;
  try {
    if (!$('d-name').value.trim()) throw new ApiError('a name is needed');
    const compose = await deployCompose();
    const env = parseEnv($('d-env').value);
    const appIdField = $('d-app-id').value.trim().replace(/^0x/, '').toLowerCase();
    if (appIdField && !/^[0-9a-f]{40}$/.test(appIdField)) throw new ApiError(`app id '${appIdField}': 40 hex digits`);
    const appId = appIdField || (await sha256hex(compose)).slice(0, 40);
    if (env.length && $('d-env-box').hidden) throw new ApiError('an environment needs the KMS key provider (its key seals it)');
    const req = { name: $('d-name').value, image: $('d-image').value, compose_file: compose, vcpu: Math.max(1, Number($('d-vcpu').value)),
      memory: parseMemoryMb($('d-memory').value), disk_size: parseDiskGb($('d-disk').value),
      ports: $('d-port-box').hidden ? [] : portsOf($('d-ports')),
      kms_urls: lines($('d-kms-urls').value), gateway_urls: lines($('d-gateway-urls').value), stopped: $('d-stopped').checked,
      hugepages: $('d-hugepages').checked, pin_numa: $('d-numa').checked, no_tee: $('d-no-tee').checked,
      networks: netsOf($('d-nets')), user_config: $('d-user-config').value,
      gpus: null, encrypted_env: env.length ? await encryptEnv(env, appId) : '' };
    if (appIdField) req.app_id = appIdField;
    if ($('d-simulated').value) req.simulated_tee = $('d-simulated').value;
    const g = gpusOf($('d-gpus'), $('d-gpu-all'));
    if (g.attach_mode === 'all' || g.gpus.length) req.gpus = g;
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
async function updateCompose() {
  const text = $('u-compose').value;
  if (!$('u-reset').checked) return text;
  // Reset secrets: the compose's allowed_envs (and launch_token_hash) follow the new env.
  let c;
  try { c = JSON.parse(text); } catch (e) { throw new ApiError(`the app compose is not JSON: ${e.message}`); }
  const env = parseEnv($('u-env').value);
  c.allowed_envs = env.map((e) => e.key);
  const token = env.find((e) => e.key === 'APP_LAUNCH_TOKEN');
  if (token) c.launch_token_hash = await sha256hex(token.value);
  else delete c.launch_token_hash;
  return JSON.stringify(c);
}
const updateHash = () => showHash('u-hash', updateCompose);
function openUpdate(vm) {
  rpc('GetInfo', { id: vm.id }).then(({ info }) => {
    updating = info;
    const c = info.configuration;
    const stopped = ['stopped', 'exited'].includes(info.status);
    $('update-form').reset();
    $('u-name').textContent = info.name;
    $('u-hint').textContent = stopped ? 'Changes take effect at the next start.' : 'Resources and image change only while the VM is stopped; other changes take effect at its next start.';
    $('u-vcpu').value = c.vcpu;
    $('u-memory').value = formatMb(c.memory);
    $('u-disk').value = `${c.disk_size}G`;
    $('u-image').replaceChildren(...state.images.map((i) => el('option', { value: i.name }, `${i.name} (${i.version})`)));
    $('u-image').value = c.image;
    for (const id of ['u-vcpu', 'u-memory', 'u-disk', 'u-image']) $(id).disabled = !stopped;
    $('u-compose').value = c.compose_file;
    $('u-ports').replaceChildren();
    for (const p of c.ports) portEditor($('u-ports'), p);
    gpuChoices($('u-gpus'), null, c.gpus && c.gpus.attach_mode === 'listed' ? c.gpus.gpus.map((g) => g.slot) : []);
    $('u-gpu-all').checked = !!(c.gpus && c.gpus.attach_mode === 'all');
    $('u-gpu-box').hidden = true;
    $('u-nets').replaceChildren();
    for (const n of c.networks || []) netEditor($('u-nets'), n);
    $('u-net-box').hidden = true;
    $('update-error').textContent = '';
    updateHash();
    $('update').showModal();
  }).catch((e) => { $('error').textContent = `Update: ${e.message}`; });
}
$('u-gpu-on').addEventListener('change', () => { $('u-gpu-box').hidden = !$('u-gpu-on').checked; });
$('u-net-on').addEventListener('change', () => { $('u-net-box').hidden = !$('u-net-on').checked; });
$('u-net-add').addEventListener('click', () => netEditor($('u-nets')));
$('update-form').addEventListener('input', updateHash);
$('update-form').addEventListener('change', updateHash);
$('u-port-add').addEventListener('click', () => portEditor($('u-ports')));
$('update-cancel').addEventListener('click', () => $('update').close());
$('update-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const c = updating.configuration;
  $('update-error').textContent = '';
  try {
    const req = { id: updating.id, update_ports: true, ports: portsOf($('u-ports')) };
    if (!$('u-vcpu').disabled) {
      const wanted = { vcpu: Number($('u-vcpu').value), memory: parseMemoryMb($('u-memory').value), disk_size: parseDiskGb($('u-disk').value) };
      for (const [key, v] of Object.entries(wanted)) if (v !== c[key]) req[key] = v;
      if ($('u-image').value !== c.image) req.image = $('u-image').value;
    }
    const compose = await updateCompose();
    if (compose !== c.compose_file) req.compose_file = compose;
    const env = parseEnv($('u-env').value);
    if ($('u-reset').checked && !env.length) throw new ApiError('reset secrets needs the new environment');
    if (env.length) req.encrypted_env = await encryptEnv(env, updating.app_id);
    if ($('u-user-config').value) req.user_config = $('u-user-config').value;
    if ($('u-gpu-on').checked) req.gpus = gpusOf($('u-gpus'), $('u-gpu-all'));
    if ($('u-net-on').checked) { req.update_networking = true; req.networks = netsOf($('u-nets')); }
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
function openLogs(vm, channel = 'serial') {
  logVm = vm;
  $('l-channel').value = channel;
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
  const stopped = s.processes.filter((p) => p.status !== 'running');
  const clear = el('button', { disabled: !stopped.length, onclick: () => action(async () => { for (const p of stopped) await rpc('SvRemove', { id: p.id }); }, 'Clear stopped') },
    `Clear stopped (${stopped.length})`);
  return el('div', {}, el('div', { class: 'toolbar' }, clear), table(['Name', 'ID', 'Status', 'PID', ''], s.processes.map((p) => el('tr', {}, el('td', {}, p.name), el('td', { class: 'mute' }, p.id), el('td', {}, p.status), el('td', {}, p.pid ?? '-'),
    el('td', {}, p.status === 'running' ? el('button', { onclick: () => action(() => rpc('SvStop', { id: p.id }), 'Stop') }, 'Stop')
                                        : el('button', { onclick: () => action(() => rpc('SvRemove', { id: p.id }), 'Remove') }, 'Remove'))))));
}
// The System menu: a button and a menu of actions (arrows move, Escape closes).
async function systemAction(v) {
  if (v === 'reload') {
    try { const r = await rpc('ReloadVms'); $('error').textContent = ''; alert(`Reloaded: ${r.loaded} loaded, ${r.updated} updated, ${r.removed} removed`); refresh(); }
    catch (e) { $('error').textContent = `Reload: ${e.message}`; }
  } else if (v === 'images') openPanel('Images', imagesPanel);
  else if (v === 'gpus') openPanel('GPUs', gpusPanel);
  else if (v === 'processes') openPanel('Supervisor processes', processesPanel);
  else if (v === 'docs') window.open('/api-docs/docs', '_blank');
  else if (v === 'dev') {
    state.devMode = !state.devMode;
    localStorage.setItem('devMode', String(state.devMode));
    devLabel();
  }
}
function devLabel() {
  $('system-menu').querySelector('[data-act="dev"]').textContent = `Dev mode: ${state.devMode ? 'on (no prompts)' : 'off'}`;
}
devLabel();
const menuItems = () => Array.from($('system-menu').querySelectorAll('[role=menuitem]'));
function menuOpen(open, focusFirst) {
  $('system-menu').hidden = !open;
  $('system').setAttribute('aria-expanded', String(open));
  if (open && focusFirst) menuItems()[0].focus();
}
$('system').addEventListener('click', () => menuOpen($('system-menu').hidden, true));
$('system').addEventListener('keydown', (ev) => { if (ev.key === 'ArrowDown') { ev.preventDefault(); menuOpen(true, true); } });
$('system-menu').addEventListener('click', (ev) => {
  const item = ev.target.closest('[role=menuitem]');
  if (!item) return;
  menuOpen(false);
  $('system').focus();
  systemAction(item.dataset.act);
});
$('system-menu').addEventListener('keydown', (ev) => {
  const items = menuItems(), at = items.indexOf(document.activeElement);
  if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
    ev.preventDefault();
    items[(at + (ev.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length].focus();
  } else if (ev.key === 'Escape') {
    menuOpen(false);
    $('system').focus();
  } else if (ev.key === 'Tab') menuOpen(false);
});
document.addEventListener('click', (ev) => { if (!ev.target.closest('.menu')) menuOpen(false); });

// ---- toolbar, start-up, polite refresh ---------------------------------------------------------
$('deploy-open').addEventListener('click', () => openDeploy());
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
    state.meta = await rpc('GetMeta');
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
