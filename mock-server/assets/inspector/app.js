// proteus-mock inspector: a plain page over the mock's control plane
// (/__admin) and its REST API (/api). No build step, no library, no network
// beyond the mock itself.
//
// It samples instead of taking the firehose, so leaving it open does not slow
// a busy mock: the journal is polled every 0.5 s (500 entries at most; when
// the page falls behind it jumps to the newest entries and says how many it
// skipped), the stats every second, the connections every 2 s while their
// tab is shown. At most MAX_ROWS journal entries are kept in the page.
(() => {
  'use strict';

  const JOURNAL_MS = 500;
  const JOURNAL_LIMIT = 500;
  const STATS_MS = 1000;
  const CONNECTIONS_MS = 2000;
  const FAULTS_MS = 2000;
  const DELIVERIES_MS = 3000;
  const HIDDEN_MS = 2000; // journal period while the page is hidden
  const MAX_ROWS = 2000; // journal entries held (and in the DOM)
  const HISTORY = 120; // stats samples charted (one a second)
  const MAX_STREAMS = 200; // streams remembered
  const STREAMS_SHOWN = 40; // streams listed
  const STALE_MS = 15000; // a stream with no delta for this long is "stalled?"
  const MAX_CONN_ROWS = 500;
  const MAX_TEXT = 4000; // characters of a message shown before "… more"

  // ---------------------------------------------------------------- helpers

  const $ = (id) => document.getElementById(id);

  /** Creates an element: h('td', {className: 'num'}, 'text', child…). */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'className') el.className = v;
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k === 'text') el.textContent = v;
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k in el && typeof v !== 'string') el[k] = v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  const short = (id) => (typeof id === 'string' && id.length > 10 ? '…' + id.slice(-6) : String(id ?? ''));

  function fmtBytes(n) {
    if (n === null || n === undefined) return '–';
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
    if (n < 1024 * 1024 * 1024) return (n / 1024 / 1024).toFixed(1) + ' MiB';
    return (n / 1024 / 1024 / 1024).toFixed(2) + ' GiB';
  }

  function fmtNum(n) {
    if (typeof n !== 'number') return String(n);
    if (Number.isInteger(n)) return n.toLocaleString('en-US');
    return n.toLocaleString('en-US', { maximumFractionDigits: 2 });
  }

  function fmtAge(ms) {
    if (!(ms >= 0)) return '';
    const s = Math.floor(ms / 1000);
    if (s < 60) return s + 's';
    const m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + (s % 60) + 's';
    const hrs = Math.floor(m / 60);
    return hrs + 'h ' + (m % 60) + 'm';
  }

  function fmtTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso ?? '');
    const today = new Date();
    const time = d.toLocaleTimeString('en-GB', { hour12: false });
    if (d.toDateString() === today.toDateString()) return time;
    return d.toISOString().slice(0, 10) + ' ' + time;
  }

  function fmtTUs(us) {
    if (typeof us !== 'number') return '';
    return (us / 1e6).toFixed(3) + 's';
  }

  function truncate(text, max) {
    if (typeof text !== 'string') return '';
    if (text.length <= max) return text;
    return text.slice(0, max) + '… (' + fmtNum(text.length - max) + ' more characters)';
  }

  /** The tail of a growing text, so a long stream shows its newest words. */
  function tail(text, max) {
    if (typeof text !== 'string') return '';
    if (text.length <= max) return text;
    return '… ' + text.slice(text.length - max);
  }

  /** The content of a frame cut at 4 KiB: `"content":"…` decoded as far as it goes. */
  function contentFromPrefix(prefix) {
    const m = /"content"\s*:\s*"((?:[^"\\]|\\.)*)/.exec(prefix);
    if (!m) return null;
    let raw = m[1];
    for (let i = 0; i < 8; i++) {
      try {
        return JSON.parse('"' + raw + '"');
      } catch (_) {
        raw = raw.slice(0, -1); // a cut escape sequence
      }
    }
    return null;
  }

  function debounce(fn, ms) {
    let t = null;
    return (...args) => {
      clearTimeout(t);
      t = setTimeout(() => fn(...args), ms);
    };
  }

  // ------------------------------------------------------------------ API

  const TOKEN_KEY = 'proteus-inspector-admin-token';
  let adminToken = null;
  try {
    adminToken = sessionStorage.getItem(TOKEN_KEY);
  } catch (_) {
    adminToken = null;
  }

  class ApiFailure extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  // The page's own REST requests, so the journal can mark them.
  const ownRequests = [];

  /**
   * One request to the mock. Admin routes carry the admin token when one was
   * given; /api routes carry `token` (a user's). Resolves to the envelope.
   */
  async function call(method, path, opts = {}) {
    const headers = { Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store', credentials: 'same-origin' };
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    if (opts.token) headers.Authorization = 'Bearer ' + opts.token;
    else if (path.startsWith('/__admin') && adminToken) headers.Authorization = 'Bearer ' + adminToken;
    if (path.startsWith('/api')) {
      // Its journal entry will come after the newest entry known now.
      ownRequests.push({ method, path, at: Date.now(), afterSeq: Math.max(J.lastSeq, J.floor) });
      if (ownRequests.length > 300) ownRequests.splice(0, ownRequests.length - 300);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiFailure('the mock is unreachable (' + (e && e.message ? e.message : e) + ')', 0);
    }
    const text = await res.text();
    let body = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch (_) {
        body = null;
      }
    }
    if (!res.ok || (body && body.ok === false)) {
      const message = (body && body.error && body.error.message) || (res.status + ' ' + res.statusText + (text && !body ? ': ' + text.slice(0, 200) : ''));
      if ((res.status === 401 || res.status === 403) && path.startsWith('/__admin')) askForToken();
      throw new ApiFailure(message, res.status);
    }
    return body || {};
  }

  function askForToken() {
    const form = $('token-form');
    if (!form.hidden) return;
    form.hidden = false;
    $('admin-token').focus();
  }

  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    adminToken = $('admin-token').value.trim() || null;
    try {
      if (adminToken) sessionStorage.setItem(TOKEN_KEY, adminToken);
    } catch (_) {
      /* private mode: keep it in memory */
    }
    $('token-form').hidden = true;
    boot();
  });

  // ------------------------------------------------------- status / banner

  const health = new Map(); // poller → error message or null

  function setHealth(name, error) {
    health.set(name, error ? String(error.message || error) : null);
    const problems = [...health.entries()].filter(([, e]) => e);
    const banner = $('banner');
    if (problems.length) {
      const text = problems.map(([n, e]) => n + ': ' + e).join(' · ');
      if (banner.textContent !== text) banner.textContent = text;
      banner.hidden = false;
    } else if (!banner.hidden) {
      banner.hidden = true;
      banner.textContent = '';
    }
  }

  function updateLiveStatus() {
    const parts = [];
    const down = [...health.values()].some((e) => e);
    parts.push(down ? '○ trouble' : J.paused ? '❚❚ journal paused' : '● live');
    if (J.lastSeq) parts.push('seq ' + fmtNum(J.lastSeq));
    if (J.skipped) parts.push(fmtNum(J.skipped) + ' entries skipped');
    if (J.off) parts.push('journal off');
    const text = parts.join(' · ');
    const el = $('live-status');
    if (el.textContent !== text) el.textContent = text;
    el.classList.toggle('down', down);
  }

  // ----------------------------------------------------------------- world

  const world = {
    profile: null,
    users: [], // [{id, name, token}]
    names: new Map(), // entity id → name
    agents: [], // [{id, name}]
    chats: [], // [{id, title, readers: [user], …}]
    chatById: new Map(),
  };

  function nameOf(id) {
    if (!id) return '';
    return world.names.get(id) || short(id);
  }

  function chatLabel(id) {
    const c = world.chatById.get(id);
    if (c) return (c.title || c.key || 'untitled') + ' (' + short(id) + ')';
    return short(id);
  }

  // ----------------------------------------------------------------- tabs

  const tabs = [...document.querySelectorAll('[role="tab"]')];
  let activeTab = 'connections';
  const onShow = new Map(); // tab → function run when it is shown

  function showTab(name, focus) {
    const tab = tabs.find((t) => t.dataset.tab === name) || tabs[0];
    activeTab = tab.dataset.tab;
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute('aria-selected', on ? 'true' : 'false');
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute('aria-controls')).hidden = !on;
    }
    if (focus) tab.focus();
    if (location.hash !== '#' + activeTab) {
      try {
        window.history.replaceState(null, '', '#' + activeTab);
      } catch (_) {
        /* file:// or sandboxed: the hash is only a convenience */
      }
    }
    const fn = onShow.get(activeTab);
    if (fn) fn();
  }

  for (const t of tabs) {
    t.addEventListener('click', () => showTab(t.dataset.tab, false));
  }
  $('tablist').addEventListener('keydown', (ev) => {
    const i = tabs.indexOf(document.activeElement);
    if (i < 0) return;
    let j = null;
    if (ev.key === 'ArrowRight') j = (i + 1) % tabs.length;
    else if (ev.key === 'ArrowLeft') j = (i - 1 + tabs.length) % tabs.length;
    else if (ev.key === 'Home') j = 0;
    else if (ev.key === 'End') j = tabs.length - 1;
    if (j === null) return;
    ev.preventDefault();
    showTab(tabs[j].dataset.tab, true);
  });

  // --------------------------------------------------------------- pollers

  const pollers = new Map();

  /** Runs `fn` every `period()` ms while `when()` holds; `kick(name)` runs it now. */
  function poller(name, period, fn, when = () => true) {
    const p = { timer: null, running: false, again: false };
    async function tick() {
      clearTimeout(p.timer);
      p.timer = null;
      if (p.running) {
        p.again = true;
        return;
      }
      let delay = period();
      if (when()) {
        p.running = true;
        try {
          await fn();
          setHealth(name, null);
        } catch (e) {
          setHealth(name, e);
          delay = Math.max(delay, 3000);
        } finally {
          p.running = false;
        }
      }
      updateLiveStatus();
      if (p.again) {
        p.again = false;
        delay = 0;
      }
      p.timer = setTimeout(tick, delay);
    }
    p.tick = tick;
    pollers.set(name, p);
    tick();
  }

  function kick(name) {
    const p = pollers.get(name);
    if (p) p.tick();
  }

  // ----------------------------------------------------------- journal

  const J = {
    since: 0,
    lastSeq: 0,
    floor: 0, // the newest seq when the page opened
    started: false,
    skipped: 0,
    off: false,
    paused: false,
    held: [], // entries (and skip markers) for the view, at most MAX_ROWS
    pending: [], // arrived while paused
    pendingDropped: 0,
    selected: null,
    sidEntity: new Map(), // socket id → {id, name, type}
    knownChats: new Set(),
  };

  async function journalPage(since, limit) {
    const r = await call('GET', '/__admin/journal?since=' + since + '&limit=' + limit);
    return r.data || [];
  }

  /** A seq near the newest entry (found with a few one-entry queries), at least `from`. */
  async function findHead(from, precision = 64) {
    let lo = from;
    let step = 1024;
    let hi = null;
    for (let i = 0; i < 30 && hi === null; i++) {
      const d = await journalPage(lo + step, 1);
      if (d.length) {
        lo = d[0].seq;
        step *= 2;
      } else {
        hi = lo + step;
      }
    }
    while (hi !== null && hi - lo > precision) {
      const mid = Math.floor((lo + hi) / 2);
      const d = await journalPage(mid, 1);
      if (d.length) lo = d[0].seq;
      else hi = mid;
    }
    return lo;
  }

  /** Opens on the newest entries rather than the oldest of the ring. */
  async function startJournal() {
    const first = await journalPage(0, 1);
    J.started = true;
    if (first.length) {
      let head = await findHead(first[0].seq, 1);
      const last = await journalPage(head, 1);
      if (last.length) head = last[0].seq;
      J.floor = head;
      J.since = Math.max(first[0].seq - 1, head - Math.floor(JOURNAL_LIMIT / 2));
    }
  }

  async function pollJournal() {
    let data;
    try {
      if (!J.started) await startJournal();
      data = await journalPage(J.since, JOURNAL_LIMIT);
    } catch (e) {
      if (e.status === 409) {
        // --journal-size 0: nothing to sample.
        J.off = true;
        $('journal-summary').textContent = 'The journal is off (--journal-size 0): nothing to show.';
        return;
      }
      throw e;
    }
    J.off = false;
    const fresh = [];
    for (const e of data) {
      if (e.seq <= J.lastSeq) continue;
      if (J.lastSeq && e.seq > J.lastSeq + 1) fresh.push({ marker: true, count: e.seq - J.lastSeq - 1, why: 'the journal rolled past them (it is a ring) or a reset emptied it' });
      else if (!J.lastSeq && e.seq > 1) fresh.push({ marker: true, old: true, count: e.seq - 1, why: 'older than this page: not loaded, or gone from the ring' });
      J.lastSeq = e.seq;
      fresh.push(e);
    }
    if (data.length) J.since = data[data.length - 1].seq;
    if (data.length >= JOURNAL_LIMIT) {
      // Behind a busy mock: sample the newest entries instead of reading
      // every delta.
      const head = await findHead(J.since);
      const jump = Math.max(J.since, head - Math.floor(JOURNAL_LIMIT / 2));
      if (jump > J.since) {
        fresh.push({ marker: true, count: jump - J.since, why: 'sampled: the mock is busier than the page reads' });
        J.since = jump;
        J.lastSeq = jump;
      }
    }
    let skipAt = 0;
    fresh.forEach((m, i) => {
      if (!m.marker || m.old) return;
      J.skipped += m.count;
      const next = fresh.slice(i + 1).find((x) => !x.marker);
      skipAt = next ? next.seq : J.since + 1;
    });
    ingest(fresh);
    if (skipAt) {
      // Streams whose entries fell into a skipped range may have ended
      // there: say so instead of showing them streaming forever.
      for (const st of streams.values()) {
        if (st.state === 'streaming' && st.lastSeq < skipAt) {
          st.state = 'lost';
          dirtyStreams.add(st.id);
        }
      }
      renderStreams();
    }
  }

  function entityText(e) {
    const d = e.detail || {};
    const bits = [];
    const ent = d.entity;
    if (ent && typeof ent === 'object') bits.push(ent.id, ent.name, ent.type);
    else if (ent) bits.push(ent, nameOf(ent));
    for (const k of ['sid', 'socket']) {
      if (d[k] !== undefined) {
        bits.push(String(d[k]));
        const known = J.sidEntity.get(String(d[k]));
        if (known) bits.push(known.id, known.name);
      }
    }
    if (Array.isArray(d.sids)) {
      for (const s of d.sids) {
        bits.push(s);
        const known = J.sidEntity.get(s);
        if (known) bits.push(known.id, known.name);
      }
    }
    if (d.instanceId) bits.push(d.instanceId, nameOf(d.instanceId));
    const p = d.payload;
    if (p && typeof p === 'object') {
      const sender = p.senderId || (p.message && p.message.senderId);
      if (sender) bits.push(sender, nameOf(sender));
    }
    if (e.chatId) bits.push(e.chatId);
    return bits.filter(Boolean).join(' ').toLowerCase();
  }

  function markOwn(e) {
    if (e.kind !== 'rest' || !e.detail) return;
    const old = Date.now() - 60000;
    while (ownRequests.length && ownRequests[0].at < old) ownRequests.shift();
    const i = ownRequests.findIndex((r) => e.seq > r.afterSeq && r.method === e.detail.method && r.path === e.detail.path);
    if (i >= 0) {
      e.own = true;
      ownRequests.splice(i, 1);
    }
  }

  function ingest(list) {
    if (!list.length) return;
    let reloadChat = false;
    let unknownChat = false;
    for (const e of list) {
      if (e.marker) continue;
      markOwn(e);
      const d = e.detail || {};
      if (e.kind === 'connect') {
        const sid = d.sid !== undefined ? String(d.sid) : d.socket !== undefined ? 'phx-' + d.socket : null;
        if (sid && d.entity) {
          const ent = typeof d.entity === 'object' ? d.entity : { id: d.entity, name: nameOf(d.entity), type: d.type };
          J.sidEntity.set(sid, ent);
          if (d.socket !== undefined) J.sidEntity.set(String(d.socket), ent);
          if (J.sidEntity.size > 5000) {
            // Forget the oldest sockets (a Map iterates in insertion order).
            const it = J.sidEntity.keys();
            for (let k = 0; k < 1000; k++) J.sidEntity.delete(it.next().value);
          }
          if (ent.id && ent.name) world.names.set(ent.id, ent.name);
        }
      }
      if (e.chatId) {
        if (!J.knownChats.has(e.chatId)) {
          J.knownChats.add(e.chatId);
          addChatFilterOption(e.chatId);
        }
        if (!world.chatById.has(e.chatId) && (e.kind === 'out' || e.kind === 'in') && !(d.transport === 'phoenix')) unknownChat = true;
      }
      if (e.kind === 'out') {
        // The entry names its stream; the payload does too (a fallback for
        // entries recorded without the field).
        e._stream = e.streamId || (d.payload && typeof d.payload === 'object' && typeof d.payload.streamId === 'string' ? d.payload.streamId : null);
        if (e.event === 'message:delta' && e._stream) streamDelta(e);
        else if (e.event === 'message:done' && e._stream) streamDone(e);
        if (e.chatId && e.chatId === chatsView.selected && (e.event === 'message' || e.event === 'message:done')) reloadChat = true;
      }
    }
    if (reloadChat) scheduleMessages();
    if (unknownChat) scheduleChats();
    renderStreams();
    if (J.paused) {
      for (const e of list) J.pending.push(e);
      if (J.pending.length > MAX_ROWS) {
        const cut = J.pending.length - MAX_ROWS;
        J.pending.splice(0, cut);
        J.pendingDropped += cut;
      }
      $('journal-summary').textContent = fmtNum(J.pending.length + J.pendingDropped) + ' new while paused';
    } else {
      appendJournal(list);
    }
  }

  // Journal view -----------------------------------------------------------

  const jfilter = { kind: '', chat: '', entity: '', hideOwn: false };

  function matches(e) {
    if (e.marker) return !jfilter.entity && !jfilter.chat && !jfilter.kind;
    if (jfilter.kind) {
      if (jfilter.kind === 'phoenix') {
        if (!(e.detail && e.detail.transport === 'phoenix') && !(e.detail && typeof e.detail.path === 'string' && e.detail.path.startsWith('/api/v1'))) return false;
      } else if (jfilter.kind === 'no-delta') {
        if (e.event === 'message:delta') return false;
      } else if (e.kind !== jfilter.kind) return false;
    }
    if (jfilter.chat && e.chatId !== jfilter.chat) return false;
    if (jfilter.entity) {
      if (e._ent === undefined) e._ent = entityText(e);
      if (!e._ent.includes(jfilter.entity)) return false;
    }
    return true;
  }

  function summary(e) {
    const d = e.detail || {};
    switch (e.kind) {
      case 'rest':
        return (d.method || '') + ' ' + (d.path || '') + ' → ' + (d.status ?? '?') + (typeof d.durationUs === 'number' ? ' (' + (d.durationUs < 1000 ? d.durationUs + ' µs' : fmtNum(Math.round(d.durationUs / 100) / 10) + ' ms') + ')' : '');
      case 'connect': {
        const ent = d.entity && typeof d.entity === 'object' ? d.entity.name + ' (' + (d.entity.type || '') + ')' : d.entity ? nameOf(d.entity) + (d.type ? ' (' + d.type + ')' : '') : '';
        const who = d.sid || (d.socket !== undefined ? 'phx-' + d.socket : '');
        const refused = d.refused || d.error || d.reason;
        return [d.transport, who, ent, refused ? 'refused: ' + (typeof refused === 'string' ? refused : JSON.stringify(refused)) : ''].filter(Boolean).join(' · ');
      }
      case 'disconnect': {
        const who = d.sid || (d.socket !== undefined ? 'phx-' + d.socket : '');
        const known = J.sidEntity.get(String(d.sid ?? d.socket ?? ''));
        return [d.transport, who, known ? known.name : '', d.reason, d.code].filter((x) => x !== undefined && x !== '').join(' · ');
      }
      case 'in': {
        const who = d.sid || (d.socket !== undefined ? 'phx-' + d.socket : '');
        const known = J.sidEntity.get(String(d.sid ?? ''));
        return [who, known ? known.name : '', d.topic, d.ack ? 'ack: ' + (typeof d.ack === 'string' ? d.ack : JSON.stringify(d.ack)) : '', d.malformed ? 'malformed: ' + d.malformed : ''].filter(Boolean).join(' · ');
      }
      case 'out': {
        const bits = [];
        if (d.topic) bits.push(d.topic);
        if (e.streamId || e._stream) bits.push('stream ' + short(e.streamId || e._stream));
        if (e.delta) bits.push('delta #' + e.delta);
        bits.push((d.sockets ?? '?') + ' socket' + (d.sockets === 1 ? '' : 's'));
        const p = d.payload;
        if (p && typeof p === 'object' && typeof p.content === 'string' && e.event !== 'message:delta') bits.push('“' + truncate(p.content, 80) + '”');
        if (p && typeof p === 'object' && typeof p.contentDelta === 'string' && e.event === 'message:delta') bits.push('+“' + truncate(p.contentDelta, 60) + '”');
        if (d.payloadPrefix) bits.push('payload over 4 KiB');
        return bits.join(' · ');
      }
      case 'webhook':
        return [d.url, d.attempt ? 'attempt ' + d.attempt : '', d.status ? 'status ' + d.status : '', d.error, typeof d.latencyMs === 'number' ? d.latencyMs + ' ms' : ''].filter(Boolean).join(' · ');
      default:
        return JSON.stringify(d).slice(0, 160);
    }
  }

  function journalRow(e) {
    if (e.marker) {
      return h('div', { role: 'listitem', className: 'jmarker' }, '… ' + fmtNum(e.count) + ' entries skipped (' + e.why + ') …');
    }
    const proto = e.detail && e.detail.transport === 'phoenix' ? ' phoenix' : '';
    const btn = h(
      'button',
      {
        type: 'button',
        className: 'jrow kind-' + e.kind + proto + (e.own ? ' own' : '') + (J.selected === e ? ' selected' : ''),
        dataset: { seq: String(e.seq) },
        title: 'Show entry ' + e.seq,
        tabIndex: -1,
      },
      h('span', { className: 'j-seq' }, String(e.seq)),
      h('span', { className: 'j-time' }, fmtTUs(e.tUs)),
      h('span', { className: 'j-kind' }, e.kind + (proto ? ' ⟨phx⟩' : '')),
      h('span', { className: 'j-event' }, e.event || ''),
      h('span', { className: 'j-chat' }, e.chatId ? chatLabel(e.chatId) : ''),
      h('span', { className: 'j-summary' }, (e.own ? '[inspector] ' : '') + summary(e)),
    );
    btn._entry = e;
    return h('div', { role: 'listitem' }, btn);
  }

  function atBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  }

  function appendJournal(list) {
    for (const e of list) J.held.push(e);
    if (J.held.length > MAX_ROWS) J.held.splice(0, J.held.length - MAX_ROWS);
    if (activeTab !== 'journal') {
      // Rows are built when the tab is shown: no DOM work for a hidden list.
      J.stale = true;
      $('badge-journal').textContent = J.lastSeq ? fmtNum(J.lastSeq) : '';
      return;
    }
    const box = $('journal-list');
    const stick = atBottom(box);
    const frag = document.createDocumentFragment();
    let n = 0;
    for (const e of list) {
      if (jfilter.hideOwn && e.own) continue;
      if (!matches(e)) continue;
      frag.append(journalRow(e));
      n++;
    }
    if (n) box.append(frag);
    trimJournalDom();
    if (stick && n) box.scrollTop = box.scrollHeight;
    journalSummary();
  }

  function trimJournalDom() {
    const box = $('journal-list');
    let extra = box.childElementCount - MAX_ROWS;
    while (extra-- > 0) box.removeChild(box.firstElementChild);
    // One row in the tab order (roving tabindex); arrows move between rows.
    if (!J.current || !J.current.isConnected) {
      J.current = box.querySelector('.jrow.selected') || (box.lastElementChild && box.lastElementChild.querySelector('.jrow'));
      if (J.current) J.current.tabIndex = 0;
    }
  }

  function moveCurrent(btn) {
    if (J.current && J.current !== btn) J.current.tabIndex = -1;
    J.current = btn;
    btn.tabIndex = 0;
  }

  function renderJournal() {
    J.stale = false;
    const box = $('journal-list');
    clear(box);
    const frag = document.createDocumentFragment();
    for (const e of J.held) {
      if (jfilter.hideOwn && e.own) continue;
      if (matches(e)) frag.append(journalRow(e));
    }
    box.append(frag);
    trimJournalDom();
    box.scrollTop = box.scrollHeight;
    journalSummary();
  }

  function journalSummary() {
    if (J.paused) return;
    const shown = $('journal-list').querySelectorAll('.jrow').length;
    const held = J.held.filter((e) => !e.marker).length;
    $('journal-summary').textContent = shown + ' shown of ' + held + ' held' + (J.skipped ? ' · ' + fmtNum(J.skipped) + ' skipped' : '');
    $('badge-journal').textContent = J.lastSeq ? fmtNum(J.lastSeq) : '';
  }

  function selectEntry(btn) {
    const prev = $('journal-list').querySelector('.jrow.selected');
    if (prev) prev.classList.remove('selected');
    btn.classList.add('selected');
    moveCurrent(btn);
    J.selected = btn._entry;
    const copy = {};
    for (const [k, v] of Object.entries(btn._entry)) if (!k.startsWith('_') && k !== 'own') copy[k] = v;
    $('journal-detail').textContent = JSON.stringify(copy, null, 2);
  }

  $('journal-list').addEventListener('click', (ev) => {
    const btn = ev.target.closest('.jrow');
    if (btn) selectEntry(btn);
  });
  $('journal-list').addEventListener('keydown', (ev) => {
    const btn = ev.target.closest('.jrow');
    if (!btn) return;
    const keys = ['ArrowDown', 'ArrowUp', 'Home', 'End', 'PageDown', 'PageUp'];
    if (keys.includes(ev.key)) {
      ev.preventDefault();
      const box = $('journal-list');
      let item = btn.parentElement;
      const step = ev.key === 'PageDown' || ev.key === 'PageUp' ? 20 : 1;
      const down = ev.key === 'ArrowDown' || ev.key === 'PageDown' || ev.key === 'End';
      if (ev.key === 'Home') item = box.firstElementChild;
      else if (ev.key === 'End') item = box.lastElementChild;
      else {
        for (let k = 0; k < step; k++) {
          let next = item;
          do {
            next = down ? next.nextElementSibling : next.previousElementSibling;
          } while (next && !next.querySelector('.jrow'));
          if (!next) break;
          item = next;
        }
      }
      while (item && !item.querySelector('.jrow')) item = down ? item.previousElementSibling : item.nextElementSibling;
      if (item) {
        const next = item.querySelector('.jrow');
        next.focus();
        selectEntry(next);
      }
    }
  });

  function addChatFilterOption(id) {
    const sel = $('jf-chat');
    if (sel.options.length > 500) return; // a seeded world: type the id in the entity box instead
    if ([...sel.options].some((o) => o.value === id)) return;
    sel.append(h('option', { value: id }, chatLabel(id)));
  }

  $('jf-kind').addEventListener('change', (ev) => {
    jfilter.kind = ev.target.value;
    renderJournal();
  });
  $('jf-chat').addEventListener('change', (ev) => {
    jfilter.chat = ev.target.value;
    renderJournal();
  });
  $('jf-entity').addEventListener(
    'input',
    debounce((ev) => {
      jfilter.entity = ev.target.value.trim().toLowerCase();
      renderJournal();
    }, 200),
  );
  $('journal-pause').addEventListener('click', () => {
    J.paused = !J.paused;
    const b = $('journal-pause');
    b.setAttribute('aria-pressed', J.paused ? 'true' : 'false');
    b.textContent = J.paused ? 'Resume' : 'Pause';
    if (!J.paused) {
      const list = J.pending;
      const dropped = J.pendingDropped;
      J.pending = [];
      J.pendingDropped = 0;
      if (dropped) list.unshift({ marker: true, count: dropped, why: 'more arrived while paused than the page holds' });
      appendJournal(list);
    } else {
      $('journal-summary').textContent = 'paused';
    }
    updateLiveStatus();
  });
  $('journal-clear').addEventListener('click', () => {
    J.held = [];
    J.selected = null;
    J.current = null;
    renderJournal();
    $('journal-detail').textContent = 'Select an entry (click, or Enter on a focused row).';
  });

  // ---------------------------------------------------------------- streams

  const streams = new Map(); // streamId → stream
  const dirtyStreams = new Set();

  function stream(e) {
    let s = streams.get(e._stream);
    if (!s) {
      s = { id: e._stream, chatId: e.chatId, seen: 0, lastDelta: 0, content: '', cut: false, state: 'streaming', messageId: null, senderId: null, firstAt: Date.now(), lastAt: Date.now(), order: e.seq, lastSeq: e.seq };
      streams.set(e._stream, s);
      if (streams.size > MAX_STREAMS) {
        const oldest = [...streams.values()].sort((a, b) => a.order - b.order).find((x) => x.state !== 'streaming') || [...streams.values()][0];
        streams.delete(oldest.id);
      }
    }
    return s;
  }

  function readPayload(s, e) {
    const d = e.detail || {};
    const p = d.payload;
    if (p && typeof p === 'object') {
      if (typeof p.content === 'string') {
        s.content = p.content;
        s.cut = false;
      }
      s.messageId = p.messageId || (p.message && p.message.id) || (e.event === 'message:done' ? p.id : null) || s.messageId;
      s.senderId = (p.message && p.message.senderId) || p.senderId || s.senderId;
    } else if (typeof d.payloadPrefix === 'string') {
      const text = contentFromPrefix(d.payloadPrefix);
      if (text !== null) {
        s.content = text;
        s.cut = true;
      }
    }
  }

  function streamDelta(e) {
    const s = stream(e);
    s.seen += 1;
    if (typeof e.delta === 'number') s.lastDelta = Math.max(s.lastDelta, e.delta);
    else s.lastDelta = Math.max(s.lastDelta, s.seen);
    readPayload(s, e);
    if (s.state === 'lost') s.state = 'streaming';
    s.lastAt = Date.now();
    s.lastSeq = e.seq;
    dirtyStreams.add(s.id);
  }

  function streamDone(e) {
    const s = stream(e);
    s.state = 'done';
    readPayload(s, e);
    s.lastAt = Date.now();
    s.lastSeq = e.seq;
    dirtyStreams.add(s.id);
  }

  function streamState(s) {
    if (s.state === 'streaming' && Date.now() - s.lastAt > STALE_MS) return 'stalled';
    return s.state;
  }

  function streamLabel(s) {
    const st = streamState(s);
    const what =
      st === 'streaming'
        ? 'streaming…'
        : st === 'stalled'
          ? 'no delta for ' + fmtAge(Date.now() - s.lastAt) + ' (stalled, or its end was skipped)'
          : st === 'lost'
            ? 'the page skipped entries of this stream: it may have ended meanwhile'
            : 'done';
    let t = fmtNum(s.lastDelta) + ' delta' + (s.lastDelta === 1 ? '' : 's');
    if (s.seen !== s.lastDelta) t += ' (' + fmtNum(s.seen) + ' sampled)';
    return t + ' · ' + what;
  }

  function fillStream(el, s) {
    const st = streamState(s);
    el.dataset.streamId = s.id;
    el.dataset.deltas = String(s.lastDelta);
    el.dataset.seen = String(s.seen);
    el.dataset.state = st;
    el.dataset.chars = String(s.content.length);
    el.className = 'stream state-' + st;
    const head = el.querySelector('.stream-head') || el.appendChild(h('div', { className: 'stream-head' }));
    const body = el.querySelector('.stream-text') || el.appendChild(h('div', { className: 'stream-text' }));
    clear(head);
    head.append(
      h('code', { className: 'stream-id', title: s.id }, s.id),
      ' ',
      h('span', { className: 'stream-count' }, streamLabel(s)),
    );
    const meta = [chatLabel(s.chatId)];
    if (s.senderId) meta.push('from ' + nameOf(s.senderId));
    head.append(h('div', { className: 'muted small' }, meta.join(' · ')));
    const text = s.content ? tail(s.content, 600) + (s.cut ? ' [frame over 4 KiB: text cut]' : '') : '(no text in the journal for this stream yet)';
    if (body.textContent !== text) body.textContent = text;
  }

  function renderStreams() {
    const list = $('streams');
    const all = [...streams.values()].sort((a, b) => b.order - a.order).slice(0, STREAMS_SHOWN);
    const keep = new Set(all.map((s) => s.id));
    for (const li of [...list.children]) if (!keep.has(li.dataset.streamId)) li.remove();
    let prev = null;
    for (const s of all) {
      let li = list.querySelector('li[data-stream-id="' + CSS.escape(s.id) + '"]');
      if (!li) {
        li = h('li', {});
        fillStream(li, s);
        if (prev) prev.after(li);
        else list.prepend(li);
      } else if (dirtyStreams.has(s.id) || s.state === 'streaming') {
        fillStream(li, s);
      }
      prev = li;
    }
    const live = all.filter((s) => streamState(s) === 'streaming').length;
    $('streams-summary').textContent = live ? live + ' streaming' : '';
    $('badge-chats').textContent = live ? live + ' ⟳' : '';
    if (chatsView.selected) renderLiveBubbles();
    dirtyStreams.clear();
  }

  // ----------------------------------------------------------------- chats

  const chatsView = {
    selected: null,
    messages: [],
    participants: [],
    loading: false,
    stick: true, // the conversation follows its newest message
    lastChats: 0,
    lastMessages: 0,
    note: '',
  };

  async function loadNames() {
    for (const u of world.users) world.names.set(u.id, u.name);
    const p = world.profile || {};
    const t = p.thenvoi || {};
    for (const list of [t.users || [], t.agents || [], Object.values(t.scripted || {})]) for (const x of list) if (x && x.id) world.names.set(x.id, x.name);
    const agents = new Map();
    for (const u of world.users) {
      try {
        const r = await call('GET', '/api/agents', { token: u.token });
        for (const a of r.data || []) {
          agents.set(a.id, a);
          world.names.set(a.id, a.name);
        }
      } catch (_) {
        /* a user who sees no agent, or a REST fault: names stay ids */
      }
    }
    world.agents = [...agents.values()];
    const sel = $('fault-agent');
    for (const a of world.agents) {
      if (![...sel.options].some((o) => o.value === a.id)) sel.append(h('option', { value: a.id }, a.name + ' (' + short(a.id) + ')'));
    }
  }

  async function loadChats() {
    chatsView.lastChats = Date.now();
    const byId = new Map();
    const problems = [];
    for (const u of world.users) {
      try {
        const r = await call('GET', '/api/chats', { token: u.token });
        for (const c of r.data || []) {
          const have = byId.get(c.id);
          if (have) have.readers.push(u);
          else byId.set(c.id, Object.assign({}, c, { readers: [u] }));
        }
      } catch (e) {
        problems.push(u.name + ': ' + e.message);
      }
    }
    world.chats = [...byId.values()];
    world.chatById = byId;
    renderChatList(problems);
    const fsel = $('fault-chat');
    for (const c of world.chats.slice(0, 500)) {
      if (![...fsel.options].some((o) => o.value === c.id)) fsel.append(h('option', { value: c.id }, (c.title || c.key || 'untitled') + ' (' + short(c.id) + ')'));
    }
    for (const o of $('jf-chat').options) if (o.value) o.textContent = chatLabel(o.value);
    for (const id of streams.keys()) dirtyStreams.add(id); // chat titles known now
    renderStreams();
    if (!chatsView.selected && world.chats.length) {
      const welcome = world.chats.find((c) => /welcome/i.test(c.title || '')) || world.chats[world.chats.length - 1];
      selectChat(welcome.id, false);
    }
  }

  const scheduleChats = debounce(() => {
    if (Date.now() - chatsView.lastChats < 5000) {
      setTimeout(scheduleChats, 5000 - (Date.now() - chatsView.lastChats));
      return;
    }
    loadChats().catch((e) => setHealth('chats', e));
  }, 500);

  let chatFilter = '';
  let chatProblems = [];
  const MAX_CHATS_SHOWN = 300;

  function renderChatList(problems) {
    if (problems) chatProblems = problems;
    const ul = $('chat-list');
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('.chat-item');
    const focusedId = focused ? focused.dataset.chatId : null;
    clear(ul);
    const matching = chatFilter ? world.chats.filter((c) => (c.id + ' ' + (c.title || '') + ' ' + (c.key || '')).toLowerCase().includes(chatFilter)) : world.chats;
    const shown = matching.slice(0, MAX_CHATS_SHOWN);
    const sel = world.chatById.get(chatsView.selected);
    if (sel && !shown.includes(sel) && matching.includes(sel)) shown.unshift(sel);
    for (const c of shown) {
      const btn = h(
        'button',
        { type: 'button', className: 'chat-item' + (c.id === chatsView.selected ? ' selected' : ''), dataset: { chatId: c.id }, 'aria-pressed': c.id === chatsView.selected ? 'true' : 'false' },
        h('span', { className: 'chat-title' }, c.title || c.key || 'untitled'),
        h('span', { className: 'muted small' }, c.id),
        h('span', { className: 'muted small' }, 'readable by ' + c.readers.map((u) => u.name).join(', ')),
      );
      ul.append(h('li', {}, btn));
    }
    if (!world.chats.length) ul.append(h('li', { className: 'empty' }, 'No chat visible to the world\'s users.'));
    else if (matching.length > shown.length) ul.append(h('li', { className: 'muted small' }, (matching.length - shown.length) + ' more: filter to find them'));
    if (chatProblems.length) ul.append(h('li', { className: 'error small' }, chatProblems.join(' · ')));
    if (focusedId) {
      const again = ul.querySelector('.chat-item[data-chat-id="' + CSS.escape(focusedId) + '"]');
      if (again) again.focus();
    }
  }

  $('chat-filter').addEventListener(
    'input',
    debounce((ev) => {
      chatFilter = ev.target.value.trim().toLowerCase();
      renderChatList();
    }, 150),
  );

  $('chat-list').addEventListener('click', (ev) => {
    const btn = ev.target.closest('.chat-item');
    if (btn) selectChat(btn.dataset.chatId, true);
  });
  $('chats-refresh').addEventListener('click', () => {
    loadChats()
      .then(() => loadMessages())
      .catch((e) => setHealth('chats', e));
  });

  function selectChat(id, userAction) {
    chatsView.selected = id;
    for (const b of document.querySelectorAll('.chat-item')) {
      const on = b.dataset.chatId === id;
      b.classList.toggle('selected', on);
      b.setAttribute('aria-pressed', on ? 'true' : 'false');
    }
    const c = world.chatById.get(id);
    $('conv-title').textContent = c ? c.title || c.key || 'untitled chat' : 'Chat ' + id;
    chatsView.messages = [];
    chatsView.participants = [];
    renderConversation();
    fillComposerUsers();
    loadMessages().catch((e) => setHealth('chats', e));
    if (userAction) $('composer-text').focus();
  }

  const scheduleMessages = debounce(() => {
    const wait = 1200 - (Date.now() - chatsView.lastMessages);
    if (wait > 0) {
      setTimeout(scheduleMessages, wait);
      return;
    }
    loadMessages().catch((e) => setHealth('chats', e));
  }, 300);

  async function loadMessages() {
    const id = chatsView.selected;
    const c = world.chatById.get(id);
    if (!c || !c.readers.length) return;
    chatsView.lastMessages = Date.now();
    const token = c.readers[0].token;
    const base = '/api/chats/' + encodeURIComponent(id) + '/messages';
    const first = await call('GET', base + '?@limit=1&@page=1', { token });
    const total = first.meta && typeof first.meta.total === 'number' ? first.meta.total : null;
    let msgs = [];
    let note = '';
    if (total === null) {
      const r = await call('GET', base + '?@limit=100&@page=1', { token });
      msgs = r.data || [];
      note = 'no meta in the answer: the first ' + msgs.length + ' messages';
    } else if (total > 0) {
      const lastPage = Math.ceil(total / 50);
      const r = await call('GET', base + '?@limit=50&@page=' + lastPage, { token });
      msgs = r.data || [];
      if (lastPage > 1) {
        const prev = await call('GET', base + '?@limit=50&@page=' + (lastPage - 1), { token });
        msgs = (prev.data || []).concat(msgs);
      }
      note = total + ' messages' + (total > msgs.length ? ' (the last ' + msgs.length + ' shown)' : '');
    } else {
      note = 'no messages yet';
    }
    let parts = chatsView.participants;
    try {
      const pr = await call('GET', '/api/chats/' + encodeURIComponent(id) + '/participants', { token });
      parts = pr.data || [];
    } catch (_) {
      /* keep the last list */
    }
    if (chatsView.selected !== id) return; // another chat was picked meanwhile
    chatsView.messages = msgs;
    chatsView.participants = parts;
    chatsView.note = note;
    renderConversation();
  }

  $('conversation').addEventListener('scroll', () => {
    const conv = $('conversation');
    if (conv.clientHeight) chatsView.stick = atBottom(conv);
  });

  function renderConversation() {
    const conv = $('conversation');
    clear(conv);
    $('conv-meta').textContent = chatsView.note || '';
    const parts = $('participants');
    clear(parts);
    if (chatsView.participants.length) {
      parts.append(h('span', { className: 'muted small' }, 'Participants: '));
      for (const p of chatsView.participants) {
        parts.append(h('span', { className: 'pill ' + String(p.type || '').toLowerCase(), title: p.id + ' (' + p.type + ')' }, nameOf(p.id) + ' · ' + String(p.type || '').toLowerCase()));
      }
    }
    const frag = document.createDocumentFragment();
    const userIds = new Set(world.users.map((u) => u.id));
    for (const m of chatsView.messages) {
      const mine = userIds.has(m.senderId);
      const li = h(
        'li',
        { className: 'msg ' + (mine ? 'from-user' : 'from-agent'), dataset: { messageId: m.id || '' } },
        h(
          'div',
          { className: 'msg-head' },
          h('strong', {}, m.senderId ? nameOf(m.senderId) : 'system'),
          ' ',
          h('span', { className: 'muted small' }, fmtTime(m.createdAt)),
          m.type && m.type !== 'TEXT' ? h('span', { className: 'pill' }, m.type) : null,
          m.streamId ? h('span', { className: 'pill stream-pill', title: 'streamed as ' + m.streamId }, 'stream ' + short(m.streamId)) : null,
        ),
        h('div', { className: 'msg-text' }, truncate(typeof m.content === 'string' ? m.content : JSON.stringify(m.content), MAX_TEXT)),
      );
      frag.append(li);
    }
    conv.append(frag);
    conv.append(h('li', { className: 'live-bubbles', id: 'live-bubbles' }));
    renderLiveBubbles();
    if (chatsView.stick) conv.scrollTop = conv.scrollHeight;
  }

  /** Streams of the selected chat still going (or done but not yet in the history). */
  function renderLiveBubbles() {
    const box = $('live-bubbles');
    if (!box) return;
    const stored = new Set(chatsView.messages.map((m) => m.id));
    const mine = [...streams.values()]
      .filter((s) => s.chatId === chatsView.selected && s.state !== 'lost' && !(s.messageId && stored.has(s.messageId)) && Date.now() - s.lastAt < 120000)
      .sort((a, b) => a.order - b.order)
      .slice(-3);
    const conv = $('conversation');
    const keep = new Set(mine.map((s) => s.id));
    for (const el of [...box.children]) if (!keep.has(el.dataset.streamId)) el.remove();
    for (const s of mine) {
      let el = box.querySelector('[data-stream-id="' + CSS.escape(s.id) + '"]');
      if (!el) {
        el = h('div', {});
        box.append(el);
      }
      fillStream(el, s);
      el.classList.add('bubble');
    }
    if (chatsView.stick) conv.scrollTop = conv.scrollHeight;
  }

  // Composer ---------------------------------------------------------------

  function fillComposerUsers() {
    const sel = $('composer-user');
    const before = sel.value;
    clear(sel);
    const c = world.chatById.get(chatsView.selected);
    const readers = new Set(c ? c.readers.map((u) => u.id) : []);
    for (const u of world.users) {
      sel.append(h('option', { value: u.id }, u.name + (readers.has(u.id) ? '' : ' (not in this chat)')));
    }
    const preferred = world.users.find((u) => u.id === before && readers.has(u.id)) || world.users.find((u) => readers.has(u.id));
    if (preferred) sel.value = preferred.id;
  }

  async function sendComposer() {
    const text = $('composer-text').value;
    const user = world.users.find((u) => u.id === $('composer-user').value);
    const status = $('composer-status');
    if (!chatsView.selected) {
      status.textContent = 'Pick a chat first.';
      return;
    }
    if (!text.trim()) {
      status.textContent = 'Write something first.';
      return;
    }
    if (!user) {
      status.textContent = 'Pick a user.';
      return;
    }
    const body = { chatId: chatsView.selected, content: text };
    if ($('composer-stream').checked) body.streamResponse = true;
    $('composer-send').disabled = true;
    status.textContent = 'sending…';
    try {
      const r = await call('POST', '/api/messages', { token: user.token, body });
      const id = r.data && (r.data.id || (r.data.message && r.data.message.id));
      status.textContent = 'Sent as ' + user.name + (id ? ' (' + id + ')' : '') + '.';
      $('composer-text').value = '';
      scheduleMessages();
    } catch (e) {
      status.textContent = 'Not sent: ' + e.message;
    } finally {
      $('composer-send').disabled = false;
    }
  }

  $('composer').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sendComposer();
  });
  $('composer-text').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      sendComposer();
    }
  });

  // ----------------------------------------------------------- connections

  let connFilter = '';

  async function pollConnections() {
    const r = await call('GET', '/__admin/connections');
    renderConnections(r.data || []);
  }

  function connText(c) {
    const ent = c.entity || {};
    return [c.id, c.protocol, c.transport, ent.id, ent.name, ent.type, ...(c.rooms || []), ...(c.rooms || []).map(chatLabel)].filter(Boolean).join(' ').toLowerCase();
  }

  function renderConnections(list) {
    for (const c of list) {
      if (c.entity && c.entity.id) {
        J.sidEntity.set(c.id, c.entity);
        if (c.entity.name) world.names.set(c.entity.id, c.entity.name);
      }
    }
    const shown = (connFilter ? list.filter((c) => connText(c).includes(connFilter)) : list).slice(0, MAX_CONN_ROWS);
    const body = $('conn-body');
    const rows = new Map([...body.children].map((tr) => [tr.dataset.sid, tr]));
    const keep = new Set(shown.map((c) => c.id));
    for (const [id, tr] of rows) {
      if (!keep.has(id)) {
        if (tr.contains(document.activeElement)) $('conn-filter').focus();
        tr.remove();
      }
    }
    let prev = null;
    for (const c of shown) {
      let tr = rows.get(c.id);
      if (!tr || !tr.isConnected) {
        tr = h('tr', { dataset: { sid: c.id } });
        for (let i = 0; i < 7; i++) tr.append(h('td'));
        const btn = h('button', { type: 'button', className: 'small danger disconnect', dataset: { sid: c.id }, 'aria-label': 'Disconnect socket ' + c.id }, 'Disconnect');
        tr.append(h('td', {}, btn));
        if (prev) prev.after(tr);
        else body.prepend(tr);
      } else if (prev && prev.nextElementSibling !== tr) {
        prev.after(tr);
      } else if (!prev && body.firstElementChild !== tr) {
        body.prepend(tr);
      }
      fillConnRow(tr, c);
      prev = tr;
    }
    $('conn-empty').hidden = list.length > 0;
    const sio = list.filter((c) => c.protocol === 'socket.io').length;
    $('conn-summary').textContent = list.length + ' socket' + (list.length === 1 ? '' : 's') + ' (' + sio + ' socket.io, ' + (list.length - sio) + ' Phoenix)' + (shown.length < list.length ? ' · ' + shown.length + ' shown' : '');
    $('badge-connections').textContent = String(list.length);
  }

  function setCell(td, text, cls) {
    if (td.textContent !== text) td.textContent = text;
    if (cls !== undefined && td.className !== cls) td.className = cls;
  }

  function fillConnRow(tr, c) {
    const td = tr.children;
    const ent = c.entity;
    tr.dataset.protocol = c.protocol;
    setCell(td[0], c.id, 'mono');
    setCell(td[1], c.protocol);
    setCell(td[2], c.transport);
    setCell(td[3], ent ? (ent.name || '') + ' · ' + (ent.type ? ent.type.toLowerCase() + ' · ' : '') + ent.id : 'not authenticated');
    setCell(td[4], (c.rooms || []).length ? c.rooms.map((r) => (world.chatById.has(r) ? chatLabel(r) : r)).join(', ') : '—');
    const since = Date.parse(c.connectedAt);
    setCell(td[5], fmtTime(c.connectedAt) + (Number.isNaN(since) ? '' : ' (' + fmtAge(Date.now() - since) + ')'));
    setCell(td[6], c.bytesUnsent === null || c.bytesUnsent === undefined ? '–' : fmtBytes(c.bytesUnsent), 'num' + (c.bytesUnsent > 65536 ? ' warn' : ''));
  }

  $('conn-body').addEventListener('click', async (ev) => {
    const btn = ev.target.closest('button.disconnect');
    if (!btn) return;
    const id = btn.dataset.sid;
    btn.disabled = true;
    btn.textContent = 'Disconnecting…';
    try {
      await call('DELETE', '/__admin/connections/' + encodeURIComponent(id));
      const tr = btn.closest('tr');
      $('conn-filter').focus();
      if (tr) tr.remove();
      $('conn-summary').textContent = 'Disconnected ' + id + '.';
    } catch (e) {
      btn.disabled = false;
      btn.textContent = 'Disconnect';
      $('conn-summary').textContent = 'Could not disconnect ' + id + ': ' + e.message;
    }
    kick('connections');
  });
  $('conn-filter').addEventListener(
    'input',
    debounce((ev) => {
      connFilter = ev.target.value.trim().toLowerCase();
      kick('connections');
    }, 200),
  );

  // ----------------------------------------------------------------- faults

  let catalogue = [];

  async function loadCatalogue() {
    try {
      const r = await call('GET', '/__admin/faults/catalogue');
      catalogue = (r.data || []).map((x) => ({ name: x.name, usage: x.usage || x.name + (x.args ? ':' + x.args : ''), description: x.description || '' }));
    } catch (_) {
      // Older mocks: the profile carries the catalogue too.
      catalogue = ((world.profile && world.profile.faults) || []).map((x) => ({ name: String(x.fault).split(':')[0], usage: x.fault, description: x.effect }));
    }
    const dl = $('fault-names');
    clear(dl);
    for (const f of catalogue) dl.append(h('option', { value: f.usage }, f.description));
    renderCatalogue();
  }

  let catalogueFilter = '';
  function renderCatalogue() {
    const body = $('catalogue-body');
    clear(body);
    const frag = document.createDocumentFragment();
    let n = 0;
    for (const f of catalogue) {
      if (catalogueFilter && !(f.usage + ' ' + f.description).toLowerCase().includes(catalogueFilter)) continue;
      n++;
      frag.append(
        h(
          'tr',
          { dataset: { fault: f.name } },
          h('td', {}, h('code', {}, f.usage)),
          h('td', {}, f.description),
          h('td', {}, h('button', { type: 'button', className: 'small use-fault', dataset: { usage: f.usage, name: f.name }, 'aria-label': 'Use ' + f.usage }, 'Use')),
        ),
      );
    }
    body.append(frag);
    $('catalogue-count').textContent = n + ' of ' + catalogue.length;
  }

  $('catalogue-filter').addEventListener('input', (ev) => {
    catalogueFilter = ev.target.value.trim().toLowerCase();
    renderCatalogue();
  });
  $('catalogue-body').addEventListener('click', (ev) => {
    const btn = ev.target.closest('button.use-fault');
    if (!btn) return;
    const usage = btn.dataset.usage;
    const input = $('fault-spec');
    const colon = usage.indexOf(':');
    input.value = colon >= 0 ? usage.slice(0, colon + 1) : usage;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
    $('fault-status').textContent = colon >= 0 ? 'Fill in the arguments: ' + usage : '';
  });

  async function pollFaults() {
    const r = await call('GET', '/__admin/faults');
    renderFaults(r.data || []);
  }

  function scopeText(scope) {
    if (!scope || (typeof scope === 'object' && !Object.keys(scope).length)) return 'global';
    if (typeof scope === 'string') return scope;
    const bits = [];
    if (scope.chatId) bits.push('chat ' + chatLabel(scope.chatId));
    if (scope.agentId) bits.push('agent ' + nameOf(scope.agentId));
    for (const [k, v] of Object.entries(scope)) if (k !== 'chatId' && k !== 'agentId') bits.push(k + ' ' + v);
    return bits.join(', ') || 'global';
  }

  function renderFaults(list) {
    const body = $('faults-body');
    const focusedId = document.activeElement && document.activeElement.closest && document.activeElement.closest('#faults-body tr') ? document.activeElement.closest('tr').dataset.faultId : null;
    clear(body);
    for (const f of list) {
      const tr = h(
        'tr',
        { dataset: { faultId: String(f.id), faultSpec: f.spec || f.name || '', applied: String(f.applied ?? 0) } },
        h('td', { className: 'num' }, String(f.id)),
        h('td', {}, h('code', {}, f.spec || f.name || JSON.stringify(f))),
        h('td', {}, scopeText(f.scope)),
        h('td', { className: 'num applied' }, String(f.applied ?? 0)),
        h('td', {}, h('button', { type: 'button', className: 'small danger remove-fault', dataset: { faultId: String(f.id) }, 'aria-label': 'Remove fault ' + f.id + ' ' + (f.spec || '') }, 'Remove')),
      );
      body.append(tr);
    }
    if (focusedId) {
      const b = body.querySelector('button[data-fault-id="' + CSS.escape(focusedId) + '"]');
      if (b) b.focus();
    }
    $('faults-empty').hidden = list.length > 0;
    $('badge-faults').textContent = list.length ? String(list.length) : '';
    $('badge-faults').classList.toggle('hot', list.length > 0);
  }

  $('faults-body').addEventListener('click', async (ev) => {
    const btn = ev.target.closest('button.remove-fault');
    if (!btn) return;
    btn.disabled = true;
    try {
      await call('DELETE', '/__admin/faults/' + encodeURIComponent(btn.dataset.faultId));
      $('fault-status').textContent = 'Removed fault ' + btn.dataset.faultId + '.';
      $('fault-spec').focus();
    } catch (e) {
      $('fault-status').textContent = 'Could not remove: ' + e.message;
      btn.disabled = false;
    }
    kick('faults');
  });

  $('fault-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const spec = $('fault-spec').value.trim();
    if (!spec) return;
    const body = { fault: spec };
    if ($('fault-chat').value) body.chatId = $('fault-chat').value;
    if ($('fault-agent').value) body.agentId = $('fault-agent').value;
    $('fault-add').disabled = true;
    try {
      const r = await call('POST', '/__admin/faults', { body });
      const f = r.data || {};
      $('fault-status').textContent = 'Added fault ' + (f.id ?? '') + ': ' + (f.spec || spec) + ' (' + scopeText(f.scope) + ').';
      $('fault-spec').value = '';
    } catch (e) {
      $('fault-status').textContent = 'Refused: ' + e.message;
    } finally {
      $('fault-add').disabled = false;
    }
    kick('faults');
  });

  $('faults-clear').addEventListener('click', async () => {
    if (!window.confirm('Remove every active fault?')) return;
    try {
      await call('DELETE', '/__admin/faults');
      $('fault-status').textContent = 'All faults removed.';
    } catch (e) {
      $('fault-status').textContent = 'Could not remove them: ' + e.message;
    }
    kick('faults');
  });

  $('reset-world').addEventListener('click', async () => {
    if (!window.confirm('Reset the world? Every socket is disconnected, replies in flight stop, chats and faults go back to the loaded world.')) return;
    const status = $('reset-status');
    status.textContent = 'resetting…';
    try {
      await call('POST', '/__admin/reset');
      status.textContent = 'Reset at ' + new Date().toLocaleTimeString('en-GB', { hour12: false }) + '.';
      streams.clear();
      renderStreams();
      chatsView.selected = null;
      await loadChats();
    } catch (e) {
      status.textContent = 'Reset failed: ' + e.message;
    }
    kick('faults');
    kick('connections');
  });

  // ---------------------------------------------------------------- plugins

  let pluginsLoaded = 0;

  async function loadPlugins() {
    pluginsLoaded = Date.now();
    const status = $('plugins-status');
    status.textContent = 'loading…';
    const plugins = new Map();
    const instances = new Map();
    for (const u of world.users) {
      try {
        const r = await call('GET', '/api/plugins', { token: u.token });
        for (const p of r.data || []) plugins.set(p.id, p);
      } catch (_) {
        /* this user may not list plugins */
      }
    }
    const integrations = new Set();
    for (const a of world.agents) {
      for (const id of a.appIntegrationIds || []) integrations.add(id);
      const reader = world.users[0];
      if (!reader) continue;
      try {
        const r = await call('GET', '/api/agents/' + encodeURIComponent(a.id) + '/event-handlers', { token: reader.token });
        for (const i of r.data || []) instances.set(i.id, i);
      } catch (_) {
        /* not an org member: skip */
      }
    }
    for (const id of integrations) {
      const reader = world.users[0];
      try {
        const r = await call('GET', '/api/app-integrations/' + encodeURIComponent(id) + '/apps', { token: reader.token });
        for (const i of r.data || []) instances.set(i.id, i);
      } catch (_) {
        /* skip */
      }
    }
    for (const p of plugins.values()) world.names.set(p.id, p.name);
    for (const i of instances.values()) world.names.set(i.id, i.name);
    $('deliveries-body').dataset.sig = ''; // names known now: draw the deliveries again
    kick('deliveries');
    const pb = $('plugins-body');
    clear(pb);
    for (const p of plugins.values()) {
      pb.append(
        h(
          'tr',
          { dataset: { pluginId: p.id } },
          h('td', {}, h('strong', {}, p.name || ''), h('div', { className: 'muted small mono' }, p.id)),
          h('td', {}, p.type || ''),
          h('td', { className: 'mono small' }, p.webhookUrl || ''),
          h('td', { className: 'small' }, (p.events || []).join(', ')),
          h('td', { className: 'small' }, (p.scopes || []).join(', ')),
        ),
      );
    }
    if (!plugins.size) pb.append(h('tr', {}, h('td', { colSpan: 5, className: 'empty' }, 'No plugin registered (visible to the world\'s users).')));
    const ib = $('instances-body');
    clear(ib);
    for (const i of instances.values()) {
      ib.append(
        h(
          'tr',
          { dataset: { instanceId: i.id } },
          h('td', {}, h('strong', {}, i.name || ''), h('div', { className: 'muted small mono' }, i.id)),
          h('td', {}, nameOf(i.pluginId)),
          h('td', {}, (i.entityType || '').toLowerCase() + ' ' + nameOf(i.entityId || i.agentId || i.appIntegrationId)),
          h('td', {}, i.eventDispatchMode || ''),
          h('td', { className: 'small' }, (i.events || []).join(', ')),
        ),
      );
    }
    if (!instances.size) ib.append(h('tr', {}, h('td', { colSpan: 5, className: 'empty' }, 'No plugin instance installed.')));
    status.textContent = plugins.size + ' plugin' + (plugins.size === 1 ? '' : 's') + ', ' + instances.size + ' instance' + (instances.size === 1 ? '' : 's');
    $('badge-plugins').textContent = instances.size ? String(instances.size) : '';
  }

  $('plugins-refresh').addEventListener('click', () => {
    loadPlugins().catch((e) => setHealth('plugins', e));
    kick('deliveries');
  });

  let deliveries = [];
  async function pollDeliveries() {
    const r = await call('GET', '/__admin/deliveries');
    deliveries = r.data || [];
    const body = $('deliveries-body');
    const shown = deliveries.slice(-300).reverse();
    const sig = shown.map((d) => d.seq).join(',');
    if (body.dataset.sig === sig) return;
    body.dataset.sig = sig;
    clear(body);
    for (const d of shown) {
      const result = d.ok ? 'ok ' + (d.status ?? '') : d.error ? d.error : 'status ' + (d.status ?? '?');
      body.append(
        h(
          'tr',
          { className: d.ok ? '' : 'failed', dataset: { seq: String(d.seq) } },
          h('td', { className: 'num' }, String(d.seq)),
          h('td', { className: 'small', title: d.url || '' }, d.event || ''),
          h('td', { title: d.instanceId || '' }, d.instanceId ? nameOf(d.instanceId) : ''),
          h('td', {}, d.chatId ? chatLabel(d.chatId) : ''),
          h('td', {}, d.mode || ''),
          h('td', { className: 'num' }, String(d.attempt ?? '')),
          h('td', { className: d.ok ? 'ok' : 'error', title: result }, result.length > 48 ? result.slice(0, 47) + '…' : result),
          h('td', { className: 'num' }, (d.latencyMs ?? '') + ' ms'),
          h('td', {}, h('button', { type: 'button', className: 'small show-delivery', dataset: { seq: String(d.seq) }, 'aria-label': 'Show delivery ' + d.seq }, 'Bodies')),
        ),
      );
    }
    const failed = deliveries.filter((d) => !d.ok).length;
    const retried = deliveries.filter((d) => d.attempt > 1).length;
    $('deliveries-summary').textContent = deliveries.length + ' attempts · ' + failed + ' failed · ' + retried + ' retries' + (deliveries.length > shown.length ? ' · newest ' + shown.length + ' shown' : '');
  }

  $('deliveries-body').addEventListener('click', (ev) => {
    const btn = ev.target.closest('button.show-delivery');
    if (!btn) return;
    const d = deliveries.find((x) => String(x.seq) === btn.dataset.seq);
    if (!d) return;
    const pretty = (s) => {
      try {
        return JSON.stringify(JSON.parse(s), null, 2);
      } catch (_) {
        return s;
      }
    };
    const head = Object.assign({}, d);
    delete head.request;
    delete head.response;
    $('delivery-detail').textContent = JSON.stringify(head, null, 2) + '\n\n— request —\n' + pretty(d.request || '') + '\n\n— response —\n' + pretty(d.response || '');
  });

  // ------------------------------------------------------------------ stats

  const samples = []; // [{t, dps, conns}]

  async function pollStats() {
    const r = await call('GET', '/__admin/stats');
    const s = r.data || {};
    const conns = (s.sockets || 0) + ((s.thenvoi && s.thenvoi.sockets) || 0);
    samples.push({ t: Date.now(), dps: s.deltasPerSecond || 0, conns });
    if (samples.length > HISTORY) samples.splice(0, samples.length - HISTORY);
    if (activeTab !== 'connections' || !$('badge-connections').textContent) $('badge-connections').textContent = String(conns);
    if (activeTab === 'stats') {
      drawCharts();
      renderCounters(s);
    }
  }

  function flatten(obj, prefix, out) {
    for (const [k, v] of Object.entries(obj || {})) {
      const key = prefix ? prefix + '.' + k : k;
      if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, key, out);
      else out.push([key, v]);
    }
    return out;
  }

  function renderCounters(s) {
    const dl = $('counters');
    const rows = flatten(s, '', []);
    if (dl.childElementCount !== rows.length * 2) {
      clear(dl);
      for (const [k] of rows) {
        dl.append(h('dt', {}, k), h('dd', { dataset: { key: k } }));
      }
    }
    const dds = dl.querySelectorAll('dd');
    rows.forEach(([k, v], i) => {
      const text = /bytes$/i.test(k) && typeof v === 'number' ? fmtBytes(v) : v === null ? '–' : typeof v === 'number' ? fmtNum(v) : String(v);
      if (dds[i] && dds[i].textContent !== text) dds[i].textContent = text;
    });
  }

  function niceMax(v) {
    if (v <= 1) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function drawChart(canvas, key, color) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(200, canvas.clientWidth || 560);
    const hgt = Math.max(100, canvas.clientHeight || 170);
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(hgt * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(hgt * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    const left = 48;
    const right = 10;
    const top = 10;
    const bottom = 22;
    const pw = w - left - right;
    const ph = hgt - top - bottom;
    const values = samples.map((x) => x[key]);
    const max = niceMax(Math.max(1, ...values));
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#5b6472';
    ctx.strokeStyle = '#e3e7ee';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const y = top + ph - (ph * i) / 4;
      ctx.beginPath();
      ctx.moveTo(left, Math.round(y) + 0.5);
      ctx.lineTo(left + pw, Math.round(y) + 0.5);
      ctx.stroke();
      ctx.fillText(fmtNum((max * i) / 4), left - 6, y);
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const [sec, label] of [
      [120, '−2 min'],
      [60, '−1 min'],
      [0, 'now'],
    ]) {
      ctx.fillText(label, left + pw - (pw * sec) / 120, top + ph + 5);
    }
    if (!samples.length) return;
    const now = samples[samples.length - 1].t;
    const xOf = (t) => left + pw - (pw * Math.min(120000, now - t)) / 120000;
    const yOf = (v) => top + ph - (ph * v) / max;
    ctx.beginPath();
    samples.forEach((pt, i) => {
      const x = xOf(pt.t);
      const y = yOf(pt[key]);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.stroke();
    ctx.lineTo(xOf(now), top + ph);
    ctx.lineTo(xOf(samples[0].t), top + ph);
    ctx.closePath();
    ctx.globalAlpha = 0.12;
    ctx.fillStyle = color;
    ctx.fill();
    ctx.globalAlpha = 1;
  }

  function drawCharts() {
    drawChart($('chart-dps'), 'dps', '#2f6fdb');
    drawChart($('chart-conns'), 'conns', '#1f9d6b');
    const last = samples[samples.length - 1];
    $('now-dps').textContent = last ? fmtNum(last.dps) + '/s' : '';
    $('now-conns').textContent = last ? fmtNum(last.conns) : '';
  }

  window.addEventListener('resize', debounce(() => {
    if (activeTab === 'stats') drawCharts();
  }, 150));

  // Profile with copy buttons ---------------------------------------------

  async function copyText(text, btn) {
    let done = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        done = true;
      }
    } catch (_) {
      done = false;
    }
    if (!done) {
      const ta = h('textarea', { className: 'clip', readOnly: true });
      ta.value = text;
      document.body.append(ta);
      ta.select();
      try {
        done = document.execCommand('copy');
      } catch (_) {
        done = false;
      }
      ta.remove();
      btn.focus();
    }
    const was = btn.dataset.label || btn.textContent;
    btn.dataset.label = was;
    btn.textContent = done ? 'Copied' : 'Copy failed';
    setTimeout(() => {
      btn.textContent = was;
    }, 1500);
  }

  function profileRow(label, value) {
    return h(
      'tr',
      {},
      h('th', { scope: 'row' }, label),
      h('td', { className: 'mono small breakable' }, value),
      h('td', {}, h('button', { type: 'button', className: 'small copy', dataset: { copy: value }, 'aria-label': 'Copy ' + label }, 'Copy')),
    );
  }

  function renderProfile() {
    const p = world.profile || {};
    const box = $('profile');
    clear(box);
    const t = h('table', { className: 'grid profile-table' });
    const tb = h('tbody');
    if (p.baseUrl) tb.append(profileRow('Base URL', p.baseUrl));
    for (const u of p.users || []) {
      tb.append(profileRow(u.name + ' · id', u.id));
      tb.append(profileRow(u.name + ' · token', u.token));
    }
    if (p.revokedToken) tb.append(profileRow('Revoked token', p.revokedToken));
    for (const [k, v] of Object.entries(p.agents || {})) tb.append(profileRow('Agent ' + k, v));
    const th = p.thenvoi || {};
    for (const u of th.users || []) tb.append(profileRow('Thenvoi ' + u.name + ' · API key', u.apiKey || u.api_key || ''));
    for (const a of th.agents || []) tb.append(profileRow('Thenvoi ' + a.name + ' · API key', a.apiKey || a.api_key || ''));
    for (const [k, a] of Object.entries(th.scripted || {})) tb.append(profileRow('Thenvoi ' + a.name + ' (' + k + ') · API key', a.apiKey || ''));
    for (const r of th.rooms || []) tb.append(profileRow('Thenvoi room ' + (r.title || ''), r.id));
    t.append(tb);
    box.append(t);
  }

  $('profile').addEventListener('click', (ev) => {
    const btn = ev.target.closest('button.copy');
    if (btn) copyText(btn.dataset.copy, btn);
  });

  // ------------------------------------------------------------------ boot

  let booted = false;

  async function boot() {
    try {
      const r = await call('GET', '/__admin/profile');
      world.profile = r.data || {};
      setHealth('profile', null);
    } catch (e) {
      setHealth('profile', e);
      updateLiveStatus();
      if (e.status !== 401 && e.status !== 403) setTimeout(boot, 3000);
      return;
    }
    const p = world.profile;
    world.users = (p.users || []).filter((u) => u && u.token).map((u) => ({ id: u.id, name: u.name || u.id, token: u.token }));
    $('server-info').textContent = (p.server || 'mock') + ' ' + (p.version || '') + ' · ' + (p.baseUrl || location.origin);
    renderProfile();
    if (booted) return;
    booted = true;
    try {
      await startJournal();
    } catch (_) {
      /* the journal poller retries (and reports) */
    }
    await loadNames();
    await loadCatalogue();
    loadChats().catch((e) => setHealth('chats', e));

    const visible = () => document.visibilityState !== 'hidden';
    poller('journal', () => (visible() ? JOURNAL_MS : HIDDEN_MS), pollJournal);
    poller('stats', () => STATS_MS, pollStats);
    poller('connections', () => CONNECTIONS_MS, pollConnections, () => visible() && activeTab === 'connections');
    poller('faults', () => (activeTab === 'faults' ? FAULTS_MS : 10000), pollFaults, visible);
    poller('deliveries', () => DELIVERIES_MS, pollDeliveries, () => visible() && activeTab === 'plugins');
    // Streams that stop getting deltas turn "stalled?" without a new entry.
    setInterval(() => {
      if ([...streams.values()].some((s) => s.state === 'streaming')) renderStreams();
    }, 2000);
  }

  onShow.set('connections', () => kick('connections'));
  onShow.set('faults', () => kick('faults'));
  onShow.set('plugins', () => {
    if (booted && Date.now() - pluginsLoaded > 10000) loadPlugins().catch((e) => setHealth('plugins', e));
    kick('deliveries');
  });
  onShow.set('chats', () => {
    const conv = $('conversation');
    if (chatsView.stick) conv.scrollTop = conv.scrollHeight;
  });
  onShow.set('stats', () => {
    drawCharts();
    kick('stats');
  });
  onShow.set('journal', () => {
    if (J.stale) renderJournal();
    const box = $('journal-list');
    box.scrollTop = box.scrollHeight;
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') {
      kick('journal');
      kick('connections');
    }
  });

  const initial = location.hash.replace('#', '');
  showTab(tabs.some((t) => t.dataset.tab === initial) ? initial : 'connections', false);
  boot();
})();
