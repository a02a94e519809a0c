// scanlab demo page: renders /api/state, re-fetched on every server-sent "update" event.
// Everything from the server is set as text (never as HTML): record fields come from users.
'use strict';

const $ = (id) => document.getElementById(id);
let busy = false;
// Per party: show only records with something readable (kept across re-renders).
const onlyReadable = new Map();

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function setStatus(text, failed) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('failed', !!failed);
}

function setBusy(b) {
  busy = b;
  document.body.classList.toggle('busy', b);
  for (const b2 of document.querySelectorAll('button')) b2.disabled = b;
  document.body.setAttribute('aria-busy', b ? 'true' : 'false');
}

async function post(path, body) {
  if (busy) return;
  setBusy(true);
  setStatus('working…');
  try {
    const r = await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const j = await r.json().catch(() => ({ ok: false, error: r.statusText }));
    setBusy(false);
    await refresh();
    // The server's answer to this request is what the status line says, whatever the
    // snapshot's last status was.
    setStatus(j.ok ? j.status : 'failed: ' + j.error, !j.ok);
  } catch (e) {
    setBusy(false);
    setStatus('failed: ' + e, true);
  }
}

function fileBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).split(',')[1] || '');
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

for (const user of ['alice', 'bob']) {
  $('form-' + user).addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { from: user };
    const text = $('text-' + user).value;
    if (text.trim()) body.text = text;
    const file = $('file-' + user).files[0];
    if (file) body.upload = await fileBase64(file);
    else if ($('image-' + user).value) body.item = $('image-' + user).value;
    $('text-' + user).value = '';
    $('file-' + user).value = '';
    await post('/api/send', body);
  });
}
$('deploy').addEventListener('click', () => post('/api/scheme', { name: $('scheme').value }));
for (const a of ['poison', 'evade', 'lies', 'rogue-enclave']) {
  $('attack-' + a).addEventListener('click', () => post('/api/attack', { attack: a }));
}

function options(select, items, value) {
  const key = JSON.stringify(items);
  if (select.dataset.key !== key) {
    select.replaceChildren(...items.map(([v, label]) => el('option', { value: v, text: label })));
    select.dataset.key = key;
  }
  if (value !== undefined) select.value = value;
}

function message(m) {
  const li = el('li', { class: m.dir + (m.failed ? ' failed' : ''), 'data-dir': m.dir });
  li.append(el('span', { class: 'who', text: m.dir === 'sent' ? 'to ' + m.peer : 'from ' + m.peer }));
  if (m.text) li.append(el('p', { class: 'text', text: m.text }));
  if (m.image) li.append(el('img', { src: m.image, alt: 'photo ' + (m.dir === 'sent' ? 'sent' : 'received') }));
  li.append(el('span', { class: 'note', text: m.note }));
  return li;
}

function finding(f) {
  const d = el('div', { class: 'finding what-' + f.what, 'data-what': f.what });
  if (f.image) d.append(el('img', { src: f.image, alt: f.what + ': ' + f.text }));
  d.append(el('span', { text: f.text }));
  return d;
}

function partyPane(p) {
  const id = 'party-' + p.name.replace(/[^a-z0-9]+/gi, '-');
  const sec = el('section', { class: 'party', id, 'data-party': p.name, 'aria-labelledby': id + '-h' });
  sec.append(el('h3', { id: id + '-h', text: p.name }));
  sec.append(el('p', { class: 'reading', text: 'Read from: ' + p.reading }));
  sec.append(el('p', { class: 'counts', text: `${p.total} records; ${p.readable} with something readable` }));
  if (p.named.length) {
    const box = el('div', { class: 'named', role: 'note' });
    box.append(el('h4', { text: 'Accounts it can name as holding a listed image' }));
    const ul = el('ul');
    for (const n of p.named) ul.append(el('li', { 'data-entry': n.entry, text: `${n.entry}: ${n.accounts.join(', ') || '(no account named)'}` }));
    box.append(ul);
    sec.append(box);
  }
  if (p.reviews.length) {
    sec.append(el('h4', { text: 'Review queue (human reviewers see these)' }));
    const ul = el('ul', { class: 'reviews' });
    for (const [what, f] of p.reviews) {
      const li = el('li', {}, el('span', { text: what }));
      li.append(finding(f));
      ul.append(li);
    }
    sec.append(ul);
  }
  const only = el('input', { type: 'checkbox', id: id + '-only', class: 'only' });
  const table = el('table', { class: 'records' });
  const apply = () => table.classList.toggle('only-readable', only.checked);
  only.checked = !!onlyReadable.get(p.name);
  apply();
  only.addEventListener('change', () => { onlyReadable.set(p.name, only.checked); apply(); });
  sec.append(el('p', { class: 'filter' }, only, el('label', { for: id + '-only', text: ' show only records with something readable' })));
  table.append(el('caption', { class: 'sr-only', text: 'Records of the ' + p.name }));
  table.append(el('thead', {}, el('tr', {},
    ...['#', 'kind', 'account', 'exchange', 'bytes', 'what the analyst reads'].map((h) => el('th', { scope: 'col', text: h })))));
  const tb = el('tbody');
  for (const r of p.records) {
    const tr = el('tr', { 'data-what': r.finding.what });
    tr.append(el('td', { text: String(r.seq) }), el('td', { text: r.kind }), el('td', { text: r.who || '—' }),
      el('td', { class: 'endpoint', text: r.endpoint }), el('td', { class: 'num', text: r.len.toLocaleString('en') }));
    const td = el('td');
    td.append(finding(r.finding));
    tr.append(td);
    tb.append(tr);
  }
  table.append(tb);
  sec.append(table);
  return sec;
}

function render(s) {
  if (s.error) {
    setStatus('failed: ' + s.error, true);
    return;
  }
  options($('scheme'), s.schemes.map(([code, name]) => [name, code + ' ' + name]), busy ? undefined : s.scheme[1]);
  $('scheme-name').textContent = s.scheme[0] + ' ' + s.scheme[1];
  $('explanation').textContent = s.explanation;
  $('list').textContent = s.list.join('; ');
  const gallery = [['', '(no photo)'], ...s.gallery.map(([id, label, role]) => [id, label + ' [' + role + ']'])];
  for (const u of ['alice', 'bob']) {
    const sel = $('image-' + u);
    const keep = sel.value;
    options(sel, gallery);
    if (keep && s.gallery.some(([id]) => id === keep)) sel.value = keep;
    $('messages-' + u).replaceChildren(...(s.users[u] || []).map(message));
  }
  $('matrix-source').textContent = s.matrix_source;
  $('matrix').tBodies[0].replaceChildren(...(s.matrix || []).map(([c, v]) =>
    el('tr', {}, el('th', { scope: 'row', text: c }), el('td', { text: v }))));
  $('attack-rogue-enclave').hidden = !s.has_enclave;
  $('keys').replaceChildren(...s.keys.map((k) => {
    const b = el('button', { type: 'button', 'data-holder': k.holder,
      text: k.stolen ? `The ${k.holder}'s key is stolen` : `Steal the ${k.holder}'s key` });
    b.disabled = k.stolen || busy;
    b.addEventListener('click', () => post('/api/attack', { attack: 'steal', holder: k.holder }));
    return b;
  }));
  $('attack-results').replaceChildren(...s.attacks.map((a) => {
    const d = el('div', { class: 'attack' }, el('h3', { text: a.title }));
    const ul = el('ul');
    for (const [what, ok, by] of a.rows) {
      ul.append(el('li', { class: ok ? 'succeeded' : 'stopped',
        text: `${what}: ${ok ? a.outcome[0] : a.outcome[1]}${by ? ' (caught by ' + by + ')' : ''}` }));
    }
    d.append(ul);
    return d;
  }));
  $('parties').replaceChildren(...s.parties.map(partyPane));
  if (!busy) setStatus(s.status, s.status.startsWith('failed'));
  document.body.dataset.version = String(s.version);
}

async function refresh() {
  const r = await fetch('/api/state');
  render(await r.json());
}

const events = new EventSource('/api/events');
events.addEventListener('update', () => { refresh(); });
refresh();
