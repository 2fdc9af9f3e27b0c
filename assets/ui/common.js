// Shared by rollupd's pages: API calls (with the read token when the
// server wants one), HTML escaping, units, times, a small Markdown
// renderer. Plain JS, no build step; everything hangs off window.rollupd.
'use strict';

(function () {
  const R = (window.rollupd = window.rollupd || {});
  R.renders = 0;
  R.timing = { firstPaint: null, allVisibleDrawn: null };

  const TOKEN_KEY = 'rollupd.token';

  // ---- DOM -------------------------------------------------------------

  // el('div', {class: 'x', dataset: {a: 1}, onclick: f}, child, 'text')
  // Text children become text nodes: user text is never parsed as HTML.
  R.el = function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c == null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  };

  R.esc = function esc(s) {
    return String(s)
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&#39;');
  };

  // ---- API -------------------------------------------------------------

  R.token = () => localStorage.getItem(TOKEN_KEY) || '';
  R.setToken = (t) => (t ? localStorage.setItem(TOKEN_KEY, t) : localStorage.removeItem(TOKEN_KEY));

  // One token dialog at a time; every caller waiting on it gets its answer.
  let asking = null;
  R.askToken = function askToken(why) {
    if (asking) return asking;
    asking = new Promise((resolve) => {
      const input = R.el('input', { id: 'token', type: 'password', autocomplete: 'off', size: 40 });
      const dlg = R.el(
        'dialog',
        { class: 'token-dialog' },
        R.el('form', { method: 'dialog' },
          R.el('h2', {}, 'Token needed'),
          R.el('p', {}, why || 'This server needs a token to read. It is kept in this browser (localStorage).'),
          input,
          R.el('div', { class: 'buttons' },
            R.el('button', { value: 'cancel', type: 'submit' }, 'Cancel'),
            R.el('button', { value: 'ok', type: 'submit', class: 'primary' }, 'Use token'))));
      document.body.append(dlg);
      dlg.addEventListener('close', () => {
        const t = dlg.returnValue === 'ok' ? input.value.trim() : '';
        if (t) R.setToken(t);
        dlg.remove();
        asking = null;
        resolve(t);
      });
      dlg.showModal();
      input.focus();
    });
    return asking;
  };

  class HttpError extends Error {
    constructor(status, text) {
      super(text || `HTTP ${status}`);
      this.status = status;
    }
  }
  R.HttpError = HttpError;

  // fetch() with the stored token as Bearer; a 401 asks for a token once
  // and tries again. Returns the Response; non-2xx becomes an HttpError
  // carrying the server's own message.
  R.fetch = async function rfetch(url, opts = {}) {
    if (document.body.dataset.auth === 'token' && !R.token()) await R.askToken();
    for (let attempt = 0; ; attempt++) {
      const headers = Object.assign({}, opts.headers || {});
      const t = R.token();
      if (t) headers.Authorization = 'Bearer ' + t;
      const r = await fetch(url, Object.assign({}, opts, { headers }));
      if (r.status === 401 && attempt === 0) {
        const t2 = await R.askToken(opts.tokenWhy);
        if (t2) continue;
      }
      if (!r.ok) {
        let text = (await r.text()).trim();
        try {
          const j = JSON.parse(text);
          text = j.error || j.message || text;
        } catch (_) { /* plain text */ }
        throw new HttpError(r.status, `${r.status}: ${text || r.statusText || 'no reason given'}`);
      }
      return r;
    }
  };
  R.json = async (url, opts) => (await R.fetch(url, opts)).json();

  // ---- units -----------------------------------------------------------

  function num(v, digits = 3) {
    if (v == null || !isFinite(v)) return String(v);
    const a = Math.abs(v);
    if (a === 0) return '0';
    if (a >= 1000) return v.toFixed(0);
    const s = v.toPrecision(digits);
    return s.includes('e') ? String(+s) : s.includes('.') ? s.replace(/\.?0+$/, '') : s;
  }
  R.num = num;

  function scaled(v, steps, base, suffix) {
    let i = 0;
    let x = v;
    while (Math.abs(x) >= base && i < steps.length - 1) {
      x /= base;
      i++;
    }
    return num(x) + steps[i] + suffix;
  }

  // A value in a panel's unit: on axes, in legends, in tables.
  R.fmt = function fmt(v, unit) {
    if (v == null || Number.isNaN(v)) return '–';
    if (!isFinite(v)) return v > 0 ? '∞' : '-∞';
    switch (unit) {
      case 'ms':
        if (Math.abs(v) < 1000) return num(v) + ' ms';
        return R.fmt(v / 1000, 's');
      case 's': {
        const a = Math.abs(v);
        if (a !== 0 && a < 1) return num(v * 1000) + ' ms';
        if (a < 60) return num(v) + ' s';
        if (a < 3600) return num(v / 60) + ' min';
        if (a < 86400) return num(v / 3600) + ' h';
        return num(v / 86400) + ' d';
      }
      case 'bytes':
        return scaled(v, [' B', ' KiB', ' MiB', ' GiB', ' TiB', ' PiB'], 1024, '');
      case 'percent':
        return num(v) + '%';
      case 'reqps':
        return scaled(v, ['', 'K', 'M', 'G', 'T'], 1000, ' req/s');
      default:
        return scaled(v, ['', 'K', 'M', 'G', 'T', 'P'], 1000, '');
    }
  };

  // ---- times -----------------------------------------------------------

  const UNIT_SECS = { s: 1, sec: 1, second: 1, seconds: 1, min: 60, minute: 60, minutes: 60,
    h: 3600, hour: 3600, hours: 3600, d: 86400, day: 86400, days: 86400, w: 604800, week: 604800,
    weeks: 604800, mon: 2592000, month: 2592000, months: 2592000, y: 31536000, year: 31536000,
    years: 31536000 };

  // A graphite time (`-6h`, `now`, `now-1d`, unix seconds) or a date
  // (`2026-12-07 05:30`, ISO) read in `tz` ('utc' or local) → unix
  // seconds, or null when it is none of these.
  R.parseTime = function parseTime(s, tz, now) {
    s = String(s == null ? '' : s).trim();
    now = now == null ? Date.now() / 1000 : now;
    if (s === '' || s === 'now') return Math.floor(now);
    if (/^\d{9,11}$/.test(s)) return +s;
    const rel = /^(?:now)?\s*([+-])\s*(\d+)\s*([a-z]+)$/i.exec(s);
    if (rel) {
      const u = UNIT_SECS[rel[3].toLowerCase()];
      if (!u) return null;
      return Math.floor(now + (rel[1] === '-' ? -1 : 1) * +rel[2] * u);
    }
    const d = /^(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d))?)?$/.exec(s);
    if (d) {
      const p = d.slice(1).map((x) => (x == null ? 0 : +x));
      const ms = tz === 'utc'
        ? Date.UTC(p[0], p[1] - 1, p[2], p[3], p[4], p[5])
        : new Date(p[0], p[1] - 1, p[2], p[3], p[4], p[5]).getTime();
      return Math.floor(ms / 1000);
    }
    const t = Date.parse(s);
    return Number.isNaN(t) ? null : Math.floor(t / 1000);
  };

  const pad = (n) => String(n).padStart(2, '0');
  // `2026-12-07 05:30:00` in tz (the form parseTime reads back).
  R.fmtTime = function fmtTime(secs, tz, withSecs) {
    const d = new Date(secs * 1000);
    const utc = tz === 'utc';
    const y = utc ? d.getUTCFullYear() : d.getFullYear();
    const mo = utc ? d.getUTCMonth() + 1 : d.getMonth() + 1;
    const da = utc ? d.getUTCDate() : d.getDate();
    const h = utc ? d.getUTCHours() : d.getHours();
    const mi = utc ? d.getUTCMinutes() : d.getMinutes();
    const se = utc ? d.getUTCSeconds() : d.getSeconds();
    return `${y}-${pad(mo)}-${pad(da)} ${pad(h)}:${pad(mi)}` + (withSecs ? `:${pad(se)}` : '') + (utc ? ' UTC' : '');
  };

  R.ago = function ago(secs) {
    const d = Math.max(0, Date.now() / 1000 - secs);
    if (d < 90) return Math.round(d) + 's ago';
    if (d < 5400) return Math.round(d / 60) + 'm ago';
    if (d < 129600) return Math.round(d / 3600) + 'h ago';
    return Math.round(d / 86400) + 'd ago';
  };

  // ---- Markdown --------------------------------------------------------
  // A small, safe subset: headings, paragraphs, lists, code blocks,
  // inline code, links (http, https, relative only), emphasis. Every piece
  // of user text is escaped before any markup is added around it.

  function inline(text) {
    const codes = [];
    let s = text.replace(/`([^`]+)`/g, (_, c) => {
      codes.push('<code>' + R.esc(c) + '</code>');
      return '\u0000' + (codes.length - 1) + '\u0000';
    });
    const links = [];
    s = s.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_, label, href) => {
      const safe = /^(https?:\/\/|\/|#|\.\.?\/)/i.test(href) ? href : null;
      links.push(safe
        ? '<a href="' + R.esc(safe) + '">' + emph(R.esc(label)) + '</a>'
        : emph(R.esc(label)));
      return '\u0001' + (links.length - 1) + '\u0001';
    });
    s = emph(R.esc(s));
    s = s.replace(/\u0001(\d+)\u0001/g, (_, i) => links[+i]);
    return s.replace(/\u0000(\d+)\u0000/g, (_, i) => codes[+i]);
  }
  function emph(escaped) {
    return escaped
      .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
      .replace(/__([^_]+)__/g, '<strong>$1</strong>')
      .replace(/\*([^*]+)\*/g, '<em>$1</em>')
      .replace(/(^|\W)_([^_]+)_(?=\W|$)/g, '$1<em>$2</em>');
  }

  R.markdown = function markdown(src) {
    const lines = String(src || '').replace(/\r\n?/g, '\n').split('\n');
    const out = [];
    let para = [];
    let list = null; // {tag, items}
    const flushPara = () => {
      if (para.length) out.push('<p>' + inline(para.join(' ')) + '</p>');
      para = [];
    };
    const flushList = () => {
      if (list) out.push(`<${list.tag}>` + list.items.map((i) => '<li>' + inline(i) + '</li>').join('') + `</${list.tag}>`);
      list = null;
    };
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (/^```/.test(line)) {
        flushPara();
        flushList();
        const code = [];
        for (i++; i < lines.length && !/^```/.test(lines[i]); i++) code.push(lines[i]);
        out.push('<pre><code>' + R.esc(code.join('\n')) + '</code></pre>');
        continue;
      }
      const h = /^(#{1,6})\s+(.*)$/.exec(line);
      const ul = /^\s*[-*+]\s+(.*)$/.exec(line);
      const ol = /^\s*\d+[.)]\s+(.*)$/.exec(line);
      if (h) {
        flushPara();
        flushList();
        const n = Math.min(6, h[1].length + 2); // h3.. inside a panel
        out.push(`<h${n}>` + inline(h[2]) + `</h${n}>`);
      } else if (ul || ol) {
        flushPara();
        const tag = ul ? 'ul' : 'ol';
        if (list && list.tag !== tag) flushList();
        if (!list) list = { tag, items: [] };
        list.items.push((ul || ol)[1]);
      } else if (line.trim() === '') {
        flushPara();
        flushList();
      } else if (list && /^\s{2,}\S/.test(line)) {
        list.items[list.items.length - 1] += ' ' + line.trim();
      } else {
        flushList();
        para.push(line.trim());
      }
    }
    flushPara();
    flushList();
    return out.join('\n');
  };

  // ---- theme: dark unless light was picked here -----------------------
  const THEME_KEY = 'rollupd.theme';
  document.documentElement.dataset.theme = localStorage.getItem(THEME_KEY) === 'light' ? 'light' : 'dark';
  const top = document.querySelector('header.top');
  if (top) {
    top.append(R.el('button', {
      id: 'theme', type: 'button', class: 'theme', title: 'Dark or light (redraws the page)',
      onclick: () => {
        localStorage.setItem(THEME_KEY, document.documentElement.dataset.theme === 'light' ? 'dark' : 'light');
        location.reload();
      },
    }, document.documentElement.dataset.theme === 'light' ? '☾' : '☀'));
  }
})();
