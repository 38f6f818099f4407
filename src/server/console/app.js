/*
 * penstock status page. Plain script, no dependencies: it calls the server's
 * REST API (docs/api.md) with the bearer token the user typed, kept in this
 * tab's sessionStorage only and sent in the Authorization header, never in a
 * URL. Views: #/ (every job) and #/job/NAME (one job). Refreshes itself.
 */
'use strict';
(function () {
  const TOKEN_KEY = 'penstock.token';
  const POLL_MS = 2000;
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem(TOKEN_KEY);
  let timer = null;
  let busy = false;
  let view = null;       // {kind: 'jobs'} | {kind: 'job', name, ...state}

  /* ---- formatting ------------------------------------------------------ */

  const num = (n) => (n === null || n === undefined) ? '?' : Number(n).toLocaleString('en-US');
  function bytes(n) {
    if (n === null || n === undefined) return '?';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = Number(n), u = 0;
    while (Math.abs(v) >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return (u === 0 ? String(v) : v.toFixed(1)) + ' ' + units[u];
  }
  function secs(s) {
    if (s === null || s === undefined) return '?';
    s = Number(s);
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min';
  }
  function rate(r) {
    if (r === null || r === undefined) return '?';
    return Number(r) >= 100 ? num(Math.round(r)) : Number(r).toFixed(1);
  }
  function when(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }
  function stateClass(state) {
    switch (state) {
      case 'running': case 'ready_to_complete': case 'completed': case 'ready': return 'ok';
      case 'checking': case 'starting': case 'draining': case 'stopping': case 'completing': return 'run';
      case 'failed': case 'check_failed': return 'warn';
      case 'failed_permanently': return 'bad';
      default: return '';
    }
  }
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }
  /* Every [data-field=name] in the job view shows text; data-value keeps
   * the raw figure for scripts (and the tests). */
  function set(name, text, raw) {
    for (const e of document.querySelectorAll('#job [data-field="' + name + '"]')) {
      e.textContent = text;
      e.dataset.value = raw === undefined || raw === null ? '' : String(raw);
    }
  }

  /* ---- the API --------------------------------------------------------- */

  class ApiError extends Error {
    constructor(status, data) {
      super((data && data.error && data.error.message) || ('HTTP ' + status));
      this.status = status;
      this.data = data;
    }
  }
  async function api(method, path, body) {
    const opts = {method, cache: 'no-store',
                  headers: {'Authorization': 'Bearer ' + token, 'X-Penstock-Actor': 'console'}};
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(path, opts);
    } catch (e) {
      connection('error', 'server unreachable');
      throw e;
    }
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401) {
      signOut('The server refused the token; enter it again.');
      throw new ApiError(401, data);
    }
    connection('ok', 'connected');
    if (r.status >= 300) throw new ApiError(r.status, data);
    return data;
  }
  function connection(state, text) {
    $('conn').dataset.state = state;
    $('conn').textContent = text;
  }

  /* ---- sign in / out ------------------------------------------------------ */

  function signOut(message) {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    stop();
    show('login');
    $('signout').hidden = true;
    $('login-error').textContent = message || '';
    connection('idle', 'not connected');
  }
  async function signIn(ev) {
    ev.preventDefault();
    const typed = $('token').value.trim();
    $('login-error').textContent = '';
    if (!typed) return;
    token = typed;
    try {
      const h = await api('GET', '/healthz');
      sessionStorage.setItem(TOKEN_KEY, token);
      $('token').value = '';
      footer(h);
      route();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401))
        $('login-error').textContent = 'Cannot reach the server: ' + e.message;
      else
        $('login-error').textContent = 'The server refused this token.';
      token = null;
    }
  }
  function footer(h) {
    if (h) $('footer').textContent = 'penstock ' + h.version + ' · ' + h.jobs + ' job' +
      (h.jobs === 1 ? '' : 's') + ' · up ' + secs(h.uptime_seconds);
  }

  /* ---- views ------------------------------------------------------------ */

  function show(id) {
    for (const s of ['login', 'jobs', 'job']) $(s).hidden = s !== id;
  }
  function stop() {
    if (timer) clearTimeout(timer);
    timer = null;
  }
  function schedule(ms) {
    stop();
    timer = setTimeout(poll, ms);
  }
  async function poll() {
    if (!token || busy) { schedule(POLL_MS); return; }
    busy = true;
    try {
      if (view.kind === 'jobs') await refreshJobs();
      else await refreshJob(false);
    } catch (e) {
      if (!(e instanceof ApiError)) connection('error', 'server unreachable');
    } finally {
      busy = false;
    }
    if (token) schedule(POLL_MS);
  }
  function route() {
    if (!token) { signOut(''); return; }
    $('signout').hidden = false;
    const m = location.hash.match(/^#\/job\/(.+)$/);
    view = m ? {kind: 'job', name: decodeURIComponent(m[1]), eventSeq: 0, events: [],
                historySince: 0, samples: [], ticks: 0, job: null}
             : {kind: 'jobs'};
    show(view.kind);
    if (view.kind === 'job') {
      $('events').textContent = '';
      $('action-log').textContent = '';
    }
    stop();
    poll();
  }

  /* ---- every job -------------------------------------------------------- */

  async function refreshJobs() {
    const data = await api('GET', '/v1/jobs');
    const body = $('jobs-body');
    body.textContent = '';
    $('jobs-empty').hidden = data.jobs.length > 0;
    $('jobs-table').hidden = data.jobs.length === 0;
    for (const j of data.jobs) {
      const lag = j.lag || {};
      body.append(el('tr', {'data-job': j.name},
        el('td', {'data-label': 'job'}, el('a', {href: '#/job/' + encodeURIComponent(j.name), text: j.name})),
        el('td', {'data-label': 'type', text: j.type}),
        el('td', {'data-label': 'state'}, el('span', {class: 'badge ' + stateClass(j.state), text: j.state})),
        el('td', {'data-label': 'phase', text: j.phase || '–'}),
        el('td', {'data-label': 'health', text: j.health}),
        el('td', {class: 'num', 'data-label': 'lag', text: secs(lag.seconds)}),
        el('td', {class: 'num', 'data-label': 'behind', text: bytes(lag.bytes)}),
        el('td', {class: 'num', 'data-label': 'changes/s', text: rate(j.rates && j.rates.changes_per_sec)})));
    }
    $('jobs-updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  }

  /* ---- one job ----------------------------------------------------------- */

  async function refreshJob(force) {
    const v = view;
    const id = encodeURIComponent(v.name);
    const job = await api('GET', '/v1/jobs/' + id);
    if (view !== v) return;
    v.job = job;
    renderJob(job);
    const ev = await api('GET', '/v1/jobs/' + id + '/events?after=' + v.eventSeq + '&limit=1000');
    if (view !== v) return;
    addEvents(ev.events);
    if (force || v.ticks % 3 === 0) {
      const h = await api('GET', '/v1/jobs/' + id + '/history?since=' + v.historySince);
      if (view !== v) return;
      addSamples(h.samples);
    }
    v.ticks++;
  }

  function renderJob(j) {
    document.title = j.name + ' · penstock';
    $('job-name').textContent = j.name;
    const st = $('job-state');
    st.textContent = j.state;
    st.className = 'badge ' + stateClass(j.state);
    st.dataset.value = j.state;
    $('job-meta').textContent = j.type + ' · ' + j.id;
    const pos = j.positions || {};
    set('phase', j.phase || '–', j.phase);
    set('health', j.health, j.health);
    set('cdc_state', j.cdc_state || '–', j.cdc_state);
    for (const k of ['read', 'applied', 'acknowledged', 'source_end'])
      set('pos-' + k, pos[k] || '–', pos[k]);
    const lag = j.lag || {};
    set('lag-seconds', secs(lag.seconds), lag.seconds);
    set('lag-bytes', bytes(lag.bytes), lag.bytes);
    const rates = j.rates || {}, counters = j.counters || {};
    set('changes-per-sec', rate(rates.changes_per_sec), rates.changes_per_sec);
    set('rows-per-sec', rate(rates.rows_per_sec), rates.rows_per_sec);
    set('changes-applied', num(counters.changes_applied), counters.changes_applied);
    set('txns-applied', num(counters.txns_applied), counters.txns_applied);
    const b = j.apply_batches;
    set('batch-latency', b && b.count ? (1000 * b.seconds_sum / b.count).toFixed(1) + ' ms on average, ' +
        num(b.count) + ' batches' : '–', b && b.count ? b.seconds_sum / b.count : null);
    renderRetention(j);
    renderAlert(j);
    renderActions(j);
    renderTables(j.tables || []);
    renderChanges(j.table_changes || []);
    renderRetries(j);
    renderChecks(j.checks);
    renderCompare(j.last_compare);
  }

  function renderRetention(j) {
    const r = j.retention || {};
    const kept = r.retained_bytes !== undefined && r.retained_bytes !== null ? r.retained_bytes : j.retained_bytes;
    set('retained', bytes(kept), kept);
    set('retention-limit', r.limit_bytes !== null && r.limit_bytes !== undefined ? bytes(r.limit_bytes)
        : (r.status ? 'no limit' : '?'), r.limit_bytes);
    set('retention-status', r.status || '?', r.status);
    set('retention-safe', r.safe_bytes !== null && r.safe_bytes !== undefined ? bytes(r.safe_bytes)
        : (r.status ? 'no limit' : '?'), r.safe_bytes);
    set('log-reader', j.log_reader || '?', j.log_reader);
    const fill = $('retention-fill');
    let share = 0, cls = 'unknown';
    if (kept !== null && kept !== undefined && r.limit_bytes) {
      share = Math.min(1, kept / r.limit_bytes);
      cls = share > 0.8 ? 'bad' : share > 0.5 ? 'warn' : '';
    }
    if (r.status === 'unreserved' || r.status === 'lost') cls = 'bad';
    fill.style.width = (share * 100).toFixed(1) + '%';
    fill.className = 'fill ' + cls;
  }

  function renderAlert(j) {
    const e = j.last_error;
    const box = $('job-alert');
    let title = null, message = e ? e.message : '', hint = e ? e.hint : '';
    if (j.state === 'failed') {
      title = 'Failed — penstock retries by itself' +
        (j.next_retry_at ? ' (next try ' + when(j.next_retry_at) + ')' : '');
    } else if (j.state === 'failed_permanently') {
      title = 'Failed permanently — it needs you';
    } else if (j.state === 'check_failed') {
      title = 'Blocking prechecks failed';
      if (!e) {
        message = 'See the failed prechecks below, each with its fix.';
        hint = 'fix what they name, then check or start the job again';
      }
    } else if (j.health && j.health !== 'ok') {
      title = 'Health ' + j.health;
    }
    box.hidden = !title;
    if (!title) return;
    box.className = 'alert' + (j.state === 'failed' || j.state === 'running' ? ' warn' : '');
    $('job-alert-title').textContent = title;
    set('error-message', message || '', message);
    set('error-hint', hint || '', hint);
  }

  const ACTION_ORDER = ['start', 'check', 'pause', 'resume', 'complete', 'recover', 'stop', 'delete'];
  const CONFIRM = {
    stop: 'Stop the job? Its slot and publication are dropped; only a fresh start (a new initial load) remains.',
    delete: 'Delete the job? Slot, publication and checkpoint are dropped; target data stays.',
    complete: 'Complete the migration? Stop the application\'s writes to the source first.',
  };
  function renderActions(j) {
    const allowed = (j.allowed_actions || []).filter((a) => a !== 'modify');
    const want = ACTION_ORDER.filter((a) => allowed.includes(a)).concat(['compare']);
    const box = $('actions');
    const have = Array.from(box.children).map((b) => b.dataset.action);
    if (have.join() !== want.join()) {
      box.textContent = '';
      for (const a of want) {
        const btn = el('button', {type: 'button', text: a, 'data-action': a,
          class: a === 'stop' || a === 'delete' ? 'danger' : a === 'compare' ? 'secondary' : ''});
        btn.addEventListener('click', () => act(a, btn));
        box.append(btn);
      }
    }
    $('recover-opts').hidden = !allowed.includes('recover');
  }

  function logAction(text, failed) {
    const li = el('li', {class: failed ? 'failed' : '', text: new Date().toLocaleTimeString() + '  ' + text});
    const log = $('action-log');
    log.prepend(li);
    while (log.children.length > 8) log.lastChild.remove();
  }

  async function act(action, btn) {
    const v = view;
    if (CONFIRM[action] && !window.confirm(CONFIRM[action])) return;
    let body = {reason: 'from the status page'};
    if (action === 'recover') {
      const strategy = $('recover-strategy').value;
      if (strategy !== 'retry' && !window.confirm('recover ' + strategy + ' skips or reloads data; go on?')) return;
      body = {strategy, reason: 'from the status page'};
    } else if (action === 'compare') {
      body = {};
      logAction('compare: running…', false);
    }
    btn.disabled = true;
    const path = '/v1/jobs/' + encodeURIComponent(v.name) + (action === 'delete' ? '' : '/' + action);
    try {
      const r = await api(action === 'delete' ? 'DELETE' : 'POST', path, action === 'delete' ? undefined : body);
      if (action === 'delete') {
        logAction('delete: ' + (r.removed || 'done'), false);
        location.hash = '#/';
        return;
      }
      if (action === 'compare') {
        const c = r.compare || {};
        logAction('compare (' + c.mode + '): ' + (c.equal ? 'the target equals the source'
          : c.consistent ? 'differences found and repaired' : 'DIFFERENT — see GET /v1/jobs/{id}/compares'), !c.consistent);
      } else {
        logAction(action + ': accepted; the job is ' + r.state, false);
      }
    } catch (e) {
      let text = action + ': ' + e.message;
      if (e.data && e.data.error && e.data.error.allowed_actions)
        text += ' (allowed now: ' + e.data.error.allowed_actions.join(', ') + ')';
      logAction(text, true);
    } finally {
      btn.disabled = false;
    }
    if (view === v) {
      try { await refreshJob(true); } catch (e) { /* the next poll tells */ }
    }
  }

  function progressBar(t) {
    let share = null;
    if (t.finished) share = 1;
    else if (t.rows_estimated > 0) share = Math.min(1, t.rows_copied / t.rows_estimated);
    else if (t.units_total) share = t.units_done / t.units_total;
    const fill = el('div', {class: 'fill' + (share === null ? ' unknown' : '')});
    fill.style.width = ((share === null ? 1 : share) * 100).toFixed(1) + '%';
    return el('div', {class: 'bar'}, fill);
  }
  function renderTables(tables) {
    $('tables-card').hidden = tables.length === 0;
    $('tables-empty').hidden = tables.length > 0;
    $('tables-table').hidden = tables.length === 0;
    const body = $('tables-body');
    body.textContent = '';
    for (const t of tables) {
      const name = t.schema + '.' + t.name;
      const done = t.finished || (t.units_total && t.units_done >= t.units_total);
      body.append(el('tr', {'data-table': name},
        el('td', {text: name}),
        el('td', {}, progressBar(t), el('span', {class: 'muted small',
          text: num(t.units_done) + '/' + num(t.units_total) + ' units' + (t.finished ? ', keys built' : '') +
                (t.insert_only ? ' · insert-only: updates and deletes not captured' : '')})),
        el('td', {class: 'num', 'data-value': String(t.rows_copied),
          text: num(t.rows_copied) + ' / ' + (t.rows_estimated >= 0 ? '~' + num(t.rows_estimated) : '?')}),
        el('td', {class: 'num', text: rate(t.rows_per_sec)}),
        el('td', {class: 'num', text: done ? 'done' : t.eta_seconds === null || t.eta_seconds === undefined ? '?' : secs(t.eta_seconds)})));
    }
  }
  function renderChanges(rows) {
    $('changes-empty').hidden = rows.length > 0;
    $('changes-table').hidden = rows.length === 0;
    const body = $('changes-body');
    body.textContent = '';
    const total = (r) => r.insert + r.update + r.delete + r.truncate;
    for (const r of rows.slice().sort((a, b) => total(b) - total(a)).slice(0, 25)) {
      const name = r.name ? r.schema + '.' + r.name : '(other tables)';
      body.append(el('tr', {'data-table': name}, el('td', {text: name}),
        ...['insert', 'update', 'delete', 'truncate'].map((k) =>
          el('td', {class: 'num', title: bytes(r[k + '_bytes']), text: num(r[k])}))));
    }
  }
  function renderRetries(j) {
    const r = j.retry || {};
    set('attempts', num(j.attempts), j.attempts);
    set('next-retry', j.next_retry_at ? when(j.next_retry_at) : '–', j.next_retry_at);
    set('retry-policy', secs((r.initial_backoff_ms || 0) / 1000) + ' doubling to ' +
        secs((r.max_backoff_ms || 0) / 1000) + ', ' + (r.max_attempts ? r.max_attempts + ' retries' : 'forever'));
    const errs = Object.entries(j.errors || {});
    set('errors', errs.length ? errs.map(([k, n]) => k + ' ' + n).join(', ') : 'none since the server started');
    const e = j.last_error;
    $('last-error').hidden = !e;
    if (e) {
      const code = e.engine_code_kind && e[e.engine_code_kind.toLowerCase()]
        ? ' (' + e.engine_code_kind + ' ' + e[e.engine_code_kind.toLowerCase()] + ')' : '';
      set('last-error', e.message + code + ' — ' + e.code + ', class ' + e.class + ', ' + when(e.at), e.message);
      set('last-error-hint', e.hint || '', e.hint);
    }
  }
  function renderChecks(c) {
    const list = $('checks-list');
    list.textContent = '';
    if (!c) { set('checks-summary', 'not run yet'); return; }
    const failed = (c.items || []).filter((i) => i.result === 'failed');
    set('checks-summary', c.passed ? 'passed' + (failed.length ? ' (' + failed.length + ' warning' + (failed.length > 1 ? 's' : '') + ')' : '')
        : 'FAILED: ' + failed.filter((i) => i.level === 'error').length + ' blocking', c.passed);
    const item = (i) => {
      const mark = i.result === 'passed' ? '✓' : i.result === 'skipped' ? '–' : (i.level === 'error' ? '✗' : '!');
      return el('li', {'data-check': i.id, 'data-result': i.result},
        el('strong', {text: mark + ' ' + i.id}), ' ', el('span', {class: 'muted', text: i.message}),
        i.result === 'failed' && i.fix ? el('code', {class: 'fix', text: 'fix: ' + i.fix}) : null);
    };
    // what failed first, with its fix; the rest folded away
    for (const i of failed) list.append(item(i));
    const rest = (c.items || []).filter((i) => i.result !== 'failed');
    if (rest.length) {
      const open = $('checks-list').dataset.open === 'true';
      const more = el('details', {open}, el('summary', {text: rest.length + ' passed or skipped'}),
                      el('ul', {class: 'checks'}, ...rest.map(item)));
      more.addEventListener('toggle', () => { $('checks-list').dataset.open = String(more.open); });
      list.append(el('li', {class: 'more'}, more));
    }
  }
  function renderCompare(c) {
    if (!c) { set('compare', 'none yet (the compare button runs one)'); return; }
    const bad = (c.tables || []).filter((t) => !t.equal);
    set('compare', c.mode + ' compare, ' + when(c.at) + ': ' + (c.consistent ? 'consistent' : 'DIFFERENT') +
        (bad.length ? ' — ' + bad.map((t) => t.table + ' (' + t.missing_in_target + ' missing, ' +
          t.extra_in_target + ' extra, ' + t.different + ' different)').join('; ') : ''), c.consistent);
  }

  function addEvents(list) {
    const v = view;
    for (const e of list) {
      v.eventSeq = Math.max(v.eventSeq, e.seq);
      v.events.push(e);
    }
    if (!list.length && $('events').children.length) return;
    v.events = v.events.slice(-200);
    const box = $('events');
    box.textContent = '';
    for (const e of v.events.slice().reverse()) {
      let what;
      if (e.kind === 'transition') what = e.from ? e.from + ' → ' + e.to : e.to;
      else if (e.kind === 'gap') what = 'gap ' + e.from + ' → ' + e.to;
      else what = e.kind;
      box.append(el('li', {'data-seq': String(e.seq), 'data-kind': e.kind},
        el('span', {class: 'when', text: when(e.at)}),
        el('strong', {text: what}), ' ', el('span', {class: 'muted', text: '(' + e.actor + ') '}),
        el('span', {text: e.reason || ''})));
    }
  }

  function addSamples(list) {
    const v = view;
    for (const s of list) {
      v.historySince = Math.max(v.historySince, s.at_ms);
      v.samples.push(s);
    }
    const cutoff = Date.now() - 3600 * 1000;
    v.samples = v.samples.filter((s) => s.at_ms >= cutoff);
    // the hour, or what there is of it (at least 5 minutes)
    const now = Date.now();
    const from = Math.max(cutoff, Math.min(v.samples.length ? v.samples[0].at_ms : now, now - 300 * 1000));
    const span = Math.round((now - from) / 60000);
    for (const id of ['lag-chart-span', 'rate-chart-span'])
      $(id).textContent = span >= 59 ? 'last hour' : 'last ' + span + ' min';
    chart($('lag-chart'), v.samples, 'lag_seconds', 90, $('lag-chart-max'), secs, from, now);
    chart($('rate-chart'), v.samples, 'changes_per_sec', 60, $('rate-chart-max'), (x) => rate(x) + '/s', from, now);
  }

  /* A line from `from` to `now`; a null figure breaks it (history.h note 3). */
  function chart(svg, samples, key, height, label, fmt, from, now) {
    const NS = 'http://www.w3.org/2000/svg';
    const W = 320;
    let max = 0;
    for (const s of samples) if (s[key] !== null && s[key] > max) max = s[key];
    label.textContent = 'max ' + fmt(max);
    svg.dataset.points = String(samples.filter((s) => s[key] !== null).length);
    const top = max > 0 ? max * 1.15 : 1;
    svg.textContent = '';
    let seg = [];
    const flush = () => {
      if (seg.length > 1) {
        const line = document.createElementNS(NS, 'polyline');
        line.setAttribute('class', 'line');
        line.setAttribute('points', seg.map((p) => p.join(',')).join(' '));
        const area = document.createElementNS(NS, 'polygon');
        area.setAttribute('class', 'area');
        area.setAttribute('points', seg[0][0] + ',' + height + ' ' + seg.map((p) => p.join(',')).join(' ') +
                          ' ' + seg[seg.length - 1][0] + ',' + height);
        svg.append(area, line);
      } else if (seg.length === 1) {
        const dot = document.createElementNS(NS, 'circle');
        dot.setAttribute('cx', seg[0][0]);
        dot.setAttribute('cy', seg[0][1]);
        dot.setAttribute('r', 1.5);
        dot.setAttribute('class', 'line');
        svg.append(dot);
      }
      seg = [];
    };
    for (const s of samples) {
      if (s[key] === null || s[key] === undefined) { flush(); continue; }
      const x = ((s.at_ms - from) / (now - from)) * W;
      const y = height - (s[key] / top) * (height - 4) - 2;
      seg.push([x.toFixed(1), y.toFixed(1)]);
    }
    flush();
  }

  /* ---- start ------------------------------------------------------------- */

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', signIn);
    $('signout').addEventListener('click', () => signOut('Signed out: the token is forgotten.'));
    window.addEventListener('hashchange', route);
    if (token) {
      api('GET', '/healthz').then(footer).catch(() => {});
      route();
    } else {
      signOut('');
    }
  });
})();
