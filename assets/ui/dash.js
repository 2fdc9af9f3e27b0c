// GET /d/<name>: a dashboard drawn in the browser. The model comes from
// /api/dashboards/<name>; the data from /render?format=json, the targets
// of many panels batched into few POSTs (each series says which target it
// came from: `targetIndex`), only for panels on screen. uPlot draws; the
// legend, deploy lines, bands, alert strip and "what changed" are ours.
//
// The URL holds the state (from, until, tz, refresh, changed, var-<name>),
// so a link can be shared and back/forward work. /explore reuses all of
// this with a one-panel model (R.startDashboard).
'use strict';

(function () {
  const R = window.rollupd;
  const { el } = R;

  const PALETTE = ['#73bf69', '#f2cc0c', '#5794f2', '#ff9830', '#f2495c', '#b877d9', '#37872d',
    '#8ab8ff', '#fade2a', '#ff7383', '#96d98d', '#ca95e5', '#ffb357', '#c0d8ff', '#e0b400'];
  const STATE_RANK = { ok: 0, pending: 1, nodata: 2, warning: 3, error: 4, critical: 5 };
  const STATE_COLOR = { ok: '#37872d', pending: '#e0b400', nodata: '#6e7076', warning: '#ff9830',
    error: '#b877d9', critical: '#f2495c' };
  const PRESETS = ['-15min', '-1h', '-6h', '-24h', '-7d'];
  const REFRESH = [0, 10, 30, 60, 300, 900];
  const CHANGED = [5, 10, 15, 30, 60];
  const PLOT_HEIGHT = 220;
  // "What changed" rows per deploy: the largest changes are what the
  // on-call engineer needs; 10 series x 3 deploys x 12 panels of rows
  // cost a tenth of a big dashboard's first draw.
  const CHANGED_ROWS = 8;
  // Series of a batch: many small panels' targets go together, but not so
  // many that one slow target holds every panel (two cores serve them).
  const MAX_BATCH_TARGETS = 60;
  // Panels per request: the server evaluates a request's targets one
  // after another, so a screenful split in a few requests uses its cores
  // and the first panels draw while the rest are still coming. On
  // dashboards/big-style pages (12 panels of 10 series, 24 h) one request
  // drew everything at ~1.5 s, four at ~0.9 s (debug build, 2 cores).
  const MAX_BATCH_PANELS = 4;

  // ---- state in the URL ------------------------------------------------

  function readState(model) {
    const q = new URLSearchParams(location.search);
    const vars = {};
    for (const v of model.variables || []) {
      const got = q.getAll('var-' + v.name);
      vars[v.name] = got.length ? got : null; // null: the default
    }
    return {
      from: q.get('from') || model.from || '-6h',
      until: q.get('until') || model.until || 'now',
      tz: q.get('tz') === 'utc' ? 'utc' : 'local',
      refresh: q.has('refresh') ? +q.get('refresh') || 0 : model.refresh || 0,
      changed: +q.get('changed') || 10,
      vars,
    };
  }

  function stateQuery(st, model, keep) {
    const q = new URLSearchParams();
    for (const [k, v] of keep || []) q.append(k, v);
    q.set('from', st.from);
    q.set('until', st.until);
    if (st.tz === 'utc') q.set('tz', 'utc');
    if (st.refresh !== (model.refresh || 0)) q.set('refresh', String(st.refresh));
    if (st.changed !== 10) q.set('changed', String(st.changed));
    for (const [name, vals] of Object.entries(st.vars)) {
      for (const v of vals || []) q.append('var-' + name, v);
    }
    return q.toString();
  }

  const isRelative = (s) => !/^\d{9,11}$/.test(String(s)) && /^(now|[+-])/.test(String(s).trim());

  // ---- the page --------------------------------------------------------

  // model: what /api/dashboards/<name> gives. opts.container: where the
  // rows go; opts.keep: URL params that are not ours (explore's target);
  // opts.edit: show the Edit button.
  R.startDashboard = function startDashboard(model, opts) {
    const page = new Dashboard(model, opts);
    R.page = page;
    page.start();
    return page;
  };

  class Dashboard {
    constructor(model, opts) {
      this.model = model;
      this.opts = opts;
      this.st = readState(model);
      this.panels = new Map();
      this.pending = new Set();
      this.flushTimer = null;
      this.eventsCache = new Map();
      this.alertsCache = null;
      this.varOptions = {};
      this.sync = window.uPlot ? uPlot.sync('rollupd') : null;
      this.initialVisible = null;
      this.refreshTimer = null;
    }

    async start() {
      this.toolbar();
      await this.variables();
      this.build();
      this.setRefresh();
      window.addEventListener('popstate', () => {
        this.st = readState(this.model);
        this.syncControls();
        this.setRefresh();
        this.rebuild(); // the variables may differ: targets first
      });
      new ResizeObserver(() => this.resize()).observe(this.opts.container);
    }

    // ---- toolbar: range, tz, refresh, what-changed window, edit -------

    toolbar() {
      const bar = document.getElementById('toolbar');
      const range = el('select', { id: 'range', title: 'Time range' },
        PRESETS.map((p) => el('option', { value: p }, 'Last ' + p.slice(1).replace('min', ' min'))),
        el('option', { value: 'custom' }, 'Custom'));
      const from = el('input', { id: 'from', size: 17, title: 'From: -6h, 2026-12-07 05:30, unix seconds' });
      const until = el('input', { id: 'until', size: 17, title: 'Until: now, -1h, 2026-12-07 06:30, unix seconds' });
      const tz = el('select', { id: 'tz', title: 'Time zone' },
        el('option', { value: 'local' }, 'Local'), el('option', { value: 'utc' }, 'UTC'));
      const refresh = el('select', { id: 'refresh', title: 'Auto-refresh' });
      const changed = el('select', { id: 'changed', title: '"What changed": minutes before and after each deploy' },
        CHANGED.map((n) => el('option', { value: n }, `±${n} min`)));
      this.ctl = { range, from, until, tz, refresh, changed };
      range.addEventListener('change', () => {
        if (range.value === 'custom') {
          from.focus();
          return;
        }
        this.setRange(range.value, 'now');
      });
      const custom = () => {
        const f = R.parseTime(from.value, this.st.tz);
        const u = R.parseTime(until.value, this.st.tz);
        const bad = [[from, f], [until, u]].filter(([, v]) => v == null);
        for (const [i] of [[from], [until]]) i.classList.toggle('bad', bad.some(([b]) => b === i));
        if (bad.length) return;
        // Graphite's own forms stay as typed (a link keeps "-2h");
        // dates become unix seconds.
        const keep = (s, v) => (isRelative(s) || /^\d{9,11}$/.test(s.trim()) ? s.trim() : String(v));
        this.setRange(keep(from.value || 'now', f), keep(until.value || 'now', u));
      };
      for (const i of [from, until]) {
        i.addEventListener('change', custom);
        i.addEventListener('keydown', (e) => e.key === 'Enter' && custom());
      }
      tz.addEventListener('change', () => {
        this.st.tz = tz.value;
        this.push();
        this.syncControls();
        this.redrawAll();
      });
      refresh.addEventListener('change', () => {
        this.st.refresh = +refresh.value;
        this.push();
        this.setRefresh();
      });
      changed.addEventListener('change', () => {
        this.st.changed = +changed.value;
        this.push();
        this.redrawAll();
      });
      const items = [range, from, el('span', { class: 'sep' }, '→'), until, tz, refresh, changed];
      if (this.opts.edit) items.push(el('button', { id: 'edit', type: 'button', onclick: () => this.editDialog() }, 'Edit'));
      bar.replaceChildren(...items);
      this.syncControls();
    }

    syncControls() {
      const { range, from, until, tz, refresh, changed } = this.ctl;
      const preset = PRESETS.includes(this.st.from) && this.st.until === 'now';
      range.value = preset ? this.st.from : 'custom';
      const show = (s) => (/^\d{9,11}$/.test(s) ? R.fmtTime(+s, this.st.tz) : s);
      from.value = show(this.st.from);
      until.value = show(this.st.until);
      from.classList.remove('bad');
      until.classList.remove('bad');
      tz.value = this.st.tz;
      const opts = [...new Set([...REFRESH, this.model.refresh || 0, this.st.refresh])].sort((a, b) => a - b);
      refresh.replaceChildren(...opts.map((s) =>
        el('option', { value: s }, s === 0 ? 'Refresh off' : 'Every ' + (s < 60 ? s + 's' : s / 60 + 'm'))));
      refresh.value = String(this.st.refresh);
      if (![...changed.options].some((o) => +o.value === this.st.changed)) {
        changed.append(el('option', { value: this.st.changed }, `±${this.st.changed} min`));
      }
      changed.value = String(this.st.changed);
      for (const [name, sel] of Object.entries(this.varSelects || {})) this.selectVar(sel, name);
    }

    push() {
      const q = stateQuery(this.st, this.model, this.opts.keep && this.opts.keep());
      if ('?' + q !== location.search) history.pushState(null, '', '?' + q);
    }

    setRange(from, until) {
      this.st.from = String(from);
      this.st.until = String(until);
      this.push();
      this.syncControls();
      this.reload();
    }

    setRefresh() {
      clearInterval(this.refreshTimer);
      if (this.st.refresh > 0) {
        this.refreshTimer = setInterval(() => {
          if (document.hidden) return;
          if (!isRelative(this.st.from) && !isRelative(this.st.until)) return;
          this.reload();
        }, this.st.refresh * 1000);
      }
    }

    // The window every panel of one load shares, in unix seconds.
    window() {
      const now = Date.now() / 1000;
      let from = R.parseTime(this.st.from, this.st.tz, now);
      let until = R.parseTime(this.st.until, this.st.tz, now);
      if (from == null) from = now - 6 * 3600;
      if (until == null) until = now;
      if (from > until) [from, until] = [until, from];
      if (until - from < 10) until = from + 10;
      return { from: Math.floor(from), until: Math.ceil(until) };
    }

    // ---- template variables -------------------------------------------

    async variables() {
      const vars = this.model.variables || [];
      this.varSelects = {};
      if (!vars.length) return;
      const bar = el('div', { class: 'vars' });
      this.varErrors = el('span', { class: 'error' });
      this.opts.container.before(bar);
      for (const v of vars) {
        const sel = el('select', { dataset: { var: v.name }, multiple: !!v.multi });
        this.varSelects[v.name] = sel;
        await this.fillOptions(v);
        sel.addEventListener('change', async () => {
          let vals = [...sel.selectedOptions].map((o) => o.value);
          // All with others: if All was on, the others were just picked
          // (All goes); else All was (the others go).
          if (vals.length > 1 && vals.includes('All')) {
            vals = this.varValues(v.name).includes('All') ? vals.filter((x) => x !== 'All') : ['All'];
            this.selectVar(sel, v.name, vals);
          }
          this.st.vars[v.name] = vals;
          // Later variables whose query names this one list other values.
          const later = vars.slice(vars.indexOf(v) + 1).filter((w) => new RegExp('\\$\\{?' + v.name + '\\b').test(w.query));
          for (const w of later) await this.fillOptions(w);
          this.push();
          this.rebuild();
        });
        bar.append(el('label', {}, el('span', {}, '$' + v.name), sel));
      }
      bar.append(this.varErrors);
    }

    // A variable's options from /metrics/find (its query with the
    // variables before it substituted); a chosen value no longer there is
    // dropped.
    async fillOptions(v) {
      const sel = this.varSelects[v.name];
      let opts = [];
      try {
        const nodes = await R.json('/metrics/find?query=' + encodeURIComponent(this.substitute(v.query)));
        opts = [...new Set(nodes.map((n) => n.text))].sort();
      } catch (e) {
        this.varErrors.textContent = `$${v.name}: ${e.message}`;
      }
      this.varOptions[v.name] = opts;
      const chosen = this.st.vars[v.name];
      if (chosen) {
        const kept = chosen.filter((x) => x === 'All' || opts.includes(x));
        this.st.vars[v.name] = kept.length ? kept : null;
      }
      sel.replaceChildren(
        v.include_all ? el('option', { value: 'All' }, 'All') : null,
        ...opts.map((o) => el('option', { value: o }, o)));
      if (v.multi) sel.size = Math.min(4, opts.length + (v.include_all ? 1 : 0)) || 1;
      this.selectVar(sel, v.name);
    }

    varValues(name) {
      const v = (this.model.variables || []).find((x) => x.name === name);
      let vals = this.st.vars[name];
      if (!vals || !vals.length) {
        if (v && v.default) vals = [v.default];
        else if (v && v.include_all) vals = ['All'];
        else vals = (this.varOptions[name] || []).slice(0, 1);
      }
      return vals;
    }

    selectVar(sel, name, vals) {
      vals = vals || this.varValues(name);
      for (const o of sel.options) o.selected = vals.includes(o.value);
    }

    // `$name` / `${name}` → the value, `{a,b}` for several, `*` for All.
    // A variable whose query found nothing at all drops the path segment it
    // stands for (`a.b.$host` → `a.b`): the shipped rollupd dashboard's
    // `$host` is `[statsd] global_suffix`, which a single daemon usually
    // leaves unset, and its series then have no host segment.
    substitute(target) {
      return target.replace(/(\.?)\$\{(\w+)\}|(\.?)\$(\w+)/g, (m, d1, a, d2, b) => {
        const name = a || b;
        const dot = d1 || d2 || '';
        if (!(this.model.variables || []).some((v) => v.name === name)) return m;
        const found = this.varOptions[name];
        if (dot && found && found.length === 0) return '';
        const vals = this.varValues(name);
        if (!vals.length || vals.includes('All')) return dot + '*';
        return dot + (vals.length === 1 ? vals[0] : '{' + vals.join(',') + '}');
      });
    }

    // ---- panels -------------------------------------------------------

    build() {
      const c = this.opts.container;
      c.replaceChildren();
      this.io = new IntersectionObserver((entries) => this.seen(entries), { rootMargin: '100px' });
      (this.model.rows || []).forEach((row, ri) => {
        const grid = el('div', { class: 'grid' });
        if (row.title) c.append(el('h2', { class: 'row-title' }, row.title));
        c.append(grid);
        row.panels.forEach((spec, pi) => {
          const p = new Panel(this, `${ri}.${pi}`, spec);
          this.panels.set(p.id, p);
          grid.append(p.el);
          this.io.observe(p.el);
        });
      });
      // The first load need not wait for the observer's first report
      // (which comes after a frame is painted): what is on screen now is
      // known from the layout.
      const h = window.innerHeight + 100;
      for (const p of this.panels.values()) {
        const r = p.el.getBoundingClientRect();
        if (r.bottom >= -100 && r.top <= h) {
          p.visible = true;
          this.want(p);
        }
      }
      this.initialVisible = new Set([...this.panels.values()].filter((p) => p.visible));
      if (!this.initialVisible.size) R.timing.allVisibleDrawn = performance.now();
    }

    // Variables changed: the targets change, so every panel loads again.
    rebuild() {
      for (const p of this.panels.values()) p.retarget();
      this.reload();
    }

    seen(entries) {
      for (const e of entries) {
        const p = this.panels.get(e.target.dataset.panel);
        if (!p) continue;
        p.visible = e.isIntersecting;
        if (p.visible && p.stale) this.want(p);
      }
    }

    // Everything is out of date: visible panels load now, the others when
    // they come on screen.
    reload() {
      this.eventsCache.clear();
      this.alertsCache = null;
      for (const p of this.panels.values()) {
        p.stale = true;
        if (p.visible) this.want(p);
      }
    }

    redrawAll() {
      for (const p of this.panels.values()) if (p.data) p.draw();
    }

    resize() {
      // Every width first (one layout), then every change.
      for (const p of this.panels.values()) p.measure();
      for (const p of this.panels.values()) p.resize();
    }

    // The axis and grid colours of the theme, read once: reading styles
    // in each panel's draw forced a style pass per panel.
    colors() {
      if (!this.themeColors) {
        const cs = getComputedStyle(document.body);
        this.themeColors = { axis: cs.getPropertyValue('--axis').trim() || '#9aa3ad', grid: cs.getPropertyValue('--grid').trim() || '#2a2f36' };
      }
      return this.themeColors;
    }

    want(p) {
      this.pending.add(p);
      if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), 0);
    }

    drawn(p) {
      if (R.timing.firstPaint == null) R.timing.firstPaint = performance.now();
      const init = this.initialVisible;
      if (init && R.timing.allVisibleDrawn == null && [...init].every((x) => x.el.dataset.state && (x.kind === 'text' || x.fetches > 0))) {
        R.timing.allVisibleDrawn = performance.now();
      }
    }

    async flush() {
      this.flushTimer = null;
      const list = [...this.pending].filter((p) => p.visible && p.stale);
      this.pending.clear();
      if (!list.length) return;
      const win = this.window();
      // Read every width before anything is drawn: a read after a write
      // forces a layout, and 12 of them cost more than the drawing did.
      for (const p of list) {
        p.stale = false;
        p.measure();
      }
      const simple = list.filter((p) => !p.needsRender());
      const data = list.filter((p) => p.needsRender());
      for (const p of simple) p.load(win);
      // Similar widths share a call (the largest width's maxDataPoints).
      data.sort((a, b) => b.width() - a.width());
      const groups = [];
      for (const p of data) {
        // A panel whose targets failed on their own goes alone, so it
        // does not fail (and refetch) everyone else's batch each time.
        if (p.solo) {
          groups.push({ width: p.width(), targets: p.targets.length, panels: [p], solo: true });
          continue;
        }
        const g = groups.find((g) => !g.solo && p.width() >= g.width * 0.7 && g.targets + p.targets.length <= MAX_BATCH_TARGETS && g.panels.length < MAX_BATCH_PANELS);
        if (g) {
          g.panels.push(p);
          g.targets += p.targets.length;
        } else {
          groups.push({ width: p.width(), targets: p.targets.length, panels: [p] });
        }
      }
      await Promise.all(groups.map((g) => this.fetchGroup(g, win)));
    }

    async fetchGroup(g, win, alone) {
      const gen = new Map(g.panels.map((p) => [p, ++p.gen]));
      const body = new URLSearchParams();
      const owner = [];
      for (const p of g.panels) {
        p.targets.forEach((t) => {
          body.append('target', t);
          owner.push(p);
        });
      }
      body.set('from', String(win.from));
      body.set('until', String(win.until));
      body.set('format', 'json');
      body.set('maxDataPoints', String(Math.max(10, Math.round(g.width))));

      const events = Promise.all(g.panels.map((p) => this.events(p.spec.events, win)));
      let series;
      try {
        R.renders++;
        // targetIndex in the URL (not the form): the server gzips the
        // page's renders by it.
        const r = await R.fetch('/render?targetIndex=1', { method: 'POST', body });
        series = await r.json();
      } catch (e) {
        // One bad target fails the whole request: ask again panel by
        // panel so the error lands on the panel that has it.
        if (!alone && g.panels.length > 1) {
          await Promise.all(g.panels.map((p) =>
            this.fetchGroup({ width: p.width(), targets: p.targets.length, panels: [p] }, win, true)));
        } else {
          for (const p of g.panels) {
            if (e.status >= 400 && e.status < 500) p.solo = true;
            if (p.gen === gen.get(p)) p.fail(e.message);
          }
        }
        return;
      }
      const byPanel = new Map(g.panels.map((p) => [p, []]));
      for (const s of series) {
        const p = owner[s.targetIndex];
        if (p) byPanel.get(p).push(s);
      }
      let evs = [];
      try {
        evs = await events;
      } catch (e) {
        evs = g.panels.map(() => ({ error: e.message, list: [] }));
      }
      g.panels.forEach((p, i) => {
        if (p.gen !== gen.get(p)) return; // a newer load is under way
        if (g.panels.length === 1) p.solo = false;
        p.fetches++;
        p.el.dataset.fetches = String(p.fetches);
        p.take(byPanel.get(p), win, evs[i]);
      });
    }

    // Events of a tag expression over the window, one request per
    // expression and window.
    events(tags, win) {
      if (!tags) return Promise.resolve({ list: [] });
      const key = `${tags}|${win.from}|${win.until}`;
      if (!this.eventsCache.has(key)) {
        const q = new URLSearchParams({ tags, from: String(win.from), until: String(win.until) });
        this.eventsCache.set(key, R.json('/events/get_data?' + q)
          .then((list) => ({ list }))
          .catch((e) => ({ list: [], error: e.message })));
      }
      return this.eventsCache.get(key);
    }

    alerts() {
      if (document.body.dataset.alerts !== 'on') return Promise.resolve(null);
      if (!this.alertsCache) this.alertsCache = R.json('/api/alerts').catch((e) => ({ error: e.message, rules: [] }));
      return this.alertsCache;
    }

    // ---- edit ---------------------------------------------------------

    async editDialog() {
      const name = this.model.name;
      const text = el('textarea', { id: 'spec', spellcheck: 'false', rows: 28, cols: 90 });
      const err = el('div', { class: 'error', role: 'alert' });
      const save = el('button', { type: 'button', class: 'primary', id: 'save' }, 'Save');
      const close = el('button', { type: 'button' }, 'Close');
      const dlg = el('dialog', { class: 'edit-dialog' },
        el('h2', {}, 'Edit ', el('code', {}, name)),
        el('p', { class: 'hint' }, 'The dashboard as JSON (the TOML file\'s fields). Saving needs the API token.'),
        text, err, el('div', { class: 'buttons' }, close, save));
      document.body.append(dlg);
      close.addEventListener('click', () => dlg.close());
      dlg.addEventListener('close', () => dlg.remove());
      dlg.showModal();
      try {
        const spec = await R.json(`/api/dashboards/${encodeURIComponent(name)}/spec`);
        text.value = JSON.stringify(spec, null, 2);
      } catch (e) {
        err.textContent = 'Cannot read the spec: ' + e.message;
      }
      save.addEventListener('click', async () => {
        err.textContent = '';
        try {
          JSON.parse(text.value);
        } catch (e) {
          err.textContent = 'Not JSON: ' + e.message;
          return;
        }
        save.disabled = true;
        try {
          await R.fetch(`/api/dashboards/${encodeURIComponent(name)}`, {
            method: 'PUT',
            headers: { 'Content-Type': 'application/json' },
            body: text.value,
            tokenWhy: 'Saving a dashboard needs the API token ([server] api_token).',
          });
          dlg.close();
          location.reload();
        } catch (e) {
          err.textContent = e.message;
        } finally {
          save.disabled = false;
        }
      });
    }
  }

  // ---- one panel ------------------------------------------------------

  class Panel {
    constructor(dash, id, spec) {
      this.dash = dash;
      this.id = id;
      this.spec = spec;
      this.kind = spec.kind || 'graph';
      this.stale = true;
      this.visible = false;
      this.fetches = 0;
      this.gen = 0;
      this.u = null;
      this.hidden = new Set();
      this.retarget();
      const w = Math.max(1, Math.min(12, spec.width || 6));
      this.titleEl = el('h3', { title: spec.title || '' }, spec.title || '');
      this.links = el('span', { class: 'links' });
      this.body = el('div', { class: 'body body-' + this.kind });
      this.errorEl = el('div', { class: 'panel-error', hidden: true });
      this.strip = spec.alert && this.kind === 'graph'
        ? el('div', { class: 'alert-strip', dataset: { rule: spec.alert }, title: 'Alert ' + spec.alert })
        : null;
      this.legend = el('div', { class: 'legend' });
      this.changed = el('div', { class: 'changed-wrap' });
      this.el = el('section', { class: 'panel', style: `grid-column: span ${w}`,
        dataset: { panel: id, kind: this.kind, fetches: '0' } },
      el('header', {}, this.titleEl, this.links), this.errorEl, this.body, this.strip,
      this.kind === 'graph' ? this.legend : null, this.kind === 'graph' ? this.changed : null);
      if (this.kind === 'text') {
        this.body.innerHTML = R.markdown(spec.markdown || ''); // R.markdown escapes all user text
        this.el.dataset.state = 'drawn';
      }
      this.setLinks();
    }

    retarget() {
      this.targets = (this.spec.targets || []).map((t) => this.dash.substitute(t));
      if (this.links) this.setLinks();
    }

    needsRender() {
      return ['graph', 'stat', 'table'].includes(this.kind) && this.targets.length > 0;
    }

    measure() {
      this.w = this.body.clientWidth;
    }

    // The plot's width in CSS pixels: what maxDataPoints asks for.
    width() {
      if (this.w == null) this.measure();
      return Math.max(50, this.w - (this.kind === 'graph' ? 60 : 0));
    }

    // PNG with the same window and overlays, and the Explore view.
    setLinks() {
      if (!this.needsRender()) {
        this.links.replaceChildren();
        return;
      }
      const st = this.dash.st;
      const q = new URLSearchParams();
      for (const t of this.targets) q.append('target', t);
      for (const b of this.spec.bands || []) {
        const label = b.color === 'red' ? 'crit' : b.color === 'orange' ? 'warn' : 'threshold';
        for (const v of [b.from, b.to]) {
          if (v != null) q.append('target', `threshold(${v},'${label}','${String(b.color).replace(/'/g, '')}')`);
        }
      }
      if (this.spec.events) {
        const tags = this.spec.events.split(/[\s,]+/).filter(Boolean).map((t) => `'${t.replace(/'/g, '')}'`);
        q.append('target', `drawAsInfinite(events(${tags.join(',')}))`);
      }
      q.set('from', st.from);
      q.set('until', st.until);
      if (st.tz === 'utc') q.set('tz', 'UTC');
      q.set('format', 'png');
      q.set('width', '900');
      q.set('height', '400');
      if (this.spec.title) q.set('title', this.spec.title);
      if (this.spec.y_min != null) q.set('yMin', this.spec.y_min);
      if (this.spec.y_max != null) q.set('yMax', this.spec.y_max);
      if (this.spec.log_scale) q.set('logBase', '10');
      if (this.spec.stack) q.set('areaMode', 'stacked');
      const ex = new URLSearchParams();
      for (const t of this.targets) ex.append('target', t);
      ex.set('from', st.from);
      ex.set('until', st.until);
      if (st.tz === 'utc') ex.set('tz', 'utc');
      if (this.spec.unit && this.spec.unit !== 'short') ex.set('unit', this.spec.unit);
      this.links.replaceChildren(
        el('a', { class: 'png-link', href: '/render?' + q, target: '_blank', title: 'PNG of this panel, for chat' }, 'PNG'),
        el('a', { class: 'explore-link', href: '/explore?' + ex, title: 'Explore these targets' }, 'Explore'));
    }

    // Non-render panels: alerts list, text.
    async load() {
      if (this.kind === 'text') return;
      if (this.kind === 'alerts') {
        const a = await this.dash.alerts();
        this.fetches++;
        this.el.dataset.fetches = String(this.fetches);
        this.drawAlerts(a);
        return;
      }
      // A data panel without targets: drawn empty.
      this.fetches++;
      this.el.dataset.fetches = String(this.fetches);
      this.take([], this.dash.window(), { list: [] });
    }

    fail(msg) {
      this.fetches++;
      this.el.dataset.fetches = String(this.fetches);
      this.el.dataset.state = 'error';
      this.errorEl.hidden = false;
      this.errorEl.textContent = msg;
      this.dash.drawn(this);
    }

    take(series, win, events) {
      this.errorEl.hidden = true;
      this.win = win;
      this.events = (events.list || []).filter((e) => e.when >= win.from && e.when <= win.until);
      this.data = toColumns(series);
      this.setLinks();
      this.draw();
      if (this.strip) this.loadStrip(win);
    }

    draw() {
      if (!this.data) return;
      try {
        if (this.kind === 'graph') this.drawGraph();
        else if (this.kind === 'stat') this.drawStat();
        else if (this.kind === 'table') this.drawTable();
        this.el.dataset.series = String(this.data.names.length);
        this.el.dataset.points = String(this.data.xs.length);
        this.el.dataset.state = 'drawn';
      } catch (e) {
        this.el.dataset.state = 'error';
        this.errorEl.hidden = false;
        this.errorEl.textContent = 'Cannot draw: ' + e.message;
      }
      this.dash.drawn(this);
    }

    resize() {
      if (this.u) {
        const w = this.plotWidth();
        if (Math.abs(w - this.u.width) > 2) {
          this.u.setSize({ width: w, height: PLOT_HEIGHT });
        }
      }
    }

    plotWidth() {
      if (this.w == null) this.measure();
      return Math.max(100, this.w);
    }

    // The plot area in CSS pixels within uPlot's root, from uPlot's own
    // numbers (no layout read).
    plotArea() {
      const r = uPlot.pxRatio || 1;
      return { left: this.u.bbox.left / r, width: this.u.bbox.width / r };
    }

    // ---- graph --------------------------------------------------------

    drawGraph() {
      const d = this.data;
      const spec = this.spec;
      const unit = spec.unit || 'short';
      const drawn = spec.stack ? stacked(d.ys) : d.ys.map((y) => y.map(finiteOrNull));
      const colors = d.names.map((_, i) => PALETTE[i % PALETTE.length]);
      const same = this.u && this.u.series.length === d.names.length + 1 &&
        d.names.every((n, i) => this.u.series[i + 1].label === n) && this.uStack === !!spec.stack;
      const cols = [d.xs, ...drawn];
      if (same) {
        this.u.setData(cols);
      } else {
        if (this.u) this.u.destroy();
        this.u = new uPlot(this.graphOpts(d, colors, unit), cols, this.body);
        this.uStack = !!spec.stack;
        this.overlay = el('div', { class: 'deploy-layer' });
        this.u.over.append(this.overlay);
        this.buildLegend(d, colors, unit);
        for (let i = 0; i < d.names.length; i++) {
          if (this.hidden.has(d.names[i])) this.u.setSeries(i + 1, { show: false });
        }
      }
      this.legendValues(null);
      this.placeDeploys();
      this.drawChanged();
      if (this.strip) this.placeStrip();
      if (!d.names.length) {
        this.body.dataset.empty = 'No data in this range';
      } else delete this.body.dataset.empty;
    }

    graphOpts(d, colors, unit) {
      const spec = this.spec;
      const self = this;
      const tz = this.dash.st.tz;
      const { axis: axisColor, grid: gridColor } = this.dash.colors();
      const series = [{}];
      d.names.forEach((n, i) => {
        const s = {
          label: n,
          stroke: colors[i],
          width: 1.5,
          // A point with no neighbour draws no line: a series that has one
          // (a daemon just started, a metric sent once) shows its points.
          points: { show: hasIsolated(d.ys[i]), size: 5 },
          spanGaps: false,
          value: (u, v, si, idx) => R.fmt(idx == null ? null : self.data.ys[si - 1][idx], unit),
        };
        if (spec.stack) {
          if (i === 0) s.fill = colors[i] + '55';
        }
        series.push(s);
      });
      const bands = spec.stack ? d.names.slice(1).map((_, i) => ({ series: [i + 2, i + 1], fill: colors[i + 1] + '55' })) : [];
      return {
        width: this.plotWidth(),
        height: PLOT_HEIGHT,
        tzDate: tz === 'utc' ? (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC') : undefined,
        legend: { show: false },
        cursor: {
          sync: { key: this.dash.sync ? this.dash.sync.key : 'rollupd', setSeries: false },
          drag: { x: true, y: false, setScale: false },
          points: { size: 6 },
        },
        select: { show: true },
        scales: {
          x: { time: true, range: () => [self.win.from, self.win.until] },
          y: spec.log_scale
            ? { distr: 3, log: 10, range: (u, min, max) => logRange(min, max, spec) }
            : { range: (u, min, max) => linRange(min, max, spec, self.spec.bands) },
        },
        axes: [
          { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor },
            space: 70, values: (u, splits) => timeTicks(splits, tz) },
          { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor },
            space: 30,
            values: (u, splits) => splits.map((v) => R.fmt(v, unit)),
            // Wide enough for the longest label ("1.25 req/s"): ~7 px a
            // character at the axis font, plus the ticks.
            size: (u, values) => Math.max(40, 16 + 7 * Math.max(0, ...(values || []).map((v) => String(v).length))) },
        ],
        series,
        bands,
        hooks: {
          drawClear: [(u) => drawBands(u, self.spec.bands || [])],
          setCursor: [(u) => self.legendValues(u.cursor.idx)],
          setSelect: [(u) => {
            if (u.select.width < 4) return;
            const a = u.posToVal(u.select.left, 'x');
            const b = u.posToVal(u.select.left + u.select.width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            self.dash.setRange(String(Math.floor(a)), String(Math.ceil(b)));
          }],
          setSize: [() => { self.placeDeploys(); if (self.strip) self.placeStrip(); }],
          setScale: [(u, key) => key === 'x' && self.placeDeploys()],
        },
      };
    }

    buildLegend(d, colors, unit) {
      this.legendRows = d.names.map((n, i) => {
        const value = el('span', { class: 'value' });
        const row = el('div', { class: 'legend-row', dataset: { series: n }, title: 'Click to hide or show' },
          el('span', { class: 'swatch', style: `background:${colors[i]}` }),
          el('span', { class: 'name' }, n), value);
        row.classList.toggle('off', this.hidden.has(n));
        row.addEventListener('click', () => {
          const show = !this.u.series[i + 1].show;
          this.u.setSeries(i + 1, { show });
          row.classList.toggle('off', !show);
          if (show) this.hidden.delete(n);
          else this.hidden.add(n);
        });
        return { row, value };
      });
      this.legend.replaceChildren(...this.legendRows.map((r) => r.row));
      this.unit = unit;
    }

    // Values at the cursor, or the last value when the cursor is away.
    legendValues(idx) {
      if (!this.legendRows) return;
      const d = this.data;
      this.legendRows.forEach((r, i) => {
        const ys = d.ys[i];
        let v;
        if (idx != null && idx >= 0) v = ys[idx];
        else {
          v = null;
          for (let k = ys.length - 1; k >= 0; k--) if (ys[k] != null && isFinite(ys[k])) { v = ys[k]; break; }
        }
        r.value.textContent = R.fmt(v, this.spec.unit);
      });
      this.legend.classList.toggle('live', idx != null && idx >= 0);
    }

    placeDeploys() {
      if (!this.u || !this.overlay) return;
      const u = this.u;
      const tz = this.dash.st.tz;
      const w = this.plotArea().width;
      this.overlay.replaceChildren(...(this.events || []).map((e) => {
        const x = u.valToPos(e.when, 'x');
        // The tip exists only while its line is hovered: one .deploy-tip
        // in the panel at a time, and none to lay out otherwise.
        const tip = () => el('div', { class: 'deploy-tip' + (x > w * 0.6 ? ' left' : '') },
          el('div', { class: 'what' }, e.what),
          e.data ? el('div', { class: 'data' }, e.data) : null,
          el('div', { class: 'when' }, R.fmtTime(e.when, tz, true) + ' · ' + (e.tags || []).join(' ')));
        const line = el('div', { class: 'deploy', dataset: { when: e.when }, style: `left:${x}px`,
          // uPlot starts a drag only on its own overlay: a drag that
          // starts on a deploy line zooms too.
          onmousedown: (ev) => u.over.dispatchEvent(new MouseEvent('mousedown', ev)),
          onmouseenter: () => line.append(tip()),
          onmouseleave: () => line.replaceChildren() });
        return line;
      }));
    }

    // "What changed": for each deploy in view, each series' mean over N
    // minutes before ([t-N, t)) and after ([t, t+N)), from the data drawn.
    drawChanged() {
      const n = this.dash.st.changed * 60;
      const d = this.data;
      const evs = (this.events || []).slice().sort((a, b) => b.when - a.when);
      if (!evs.length || !d.names.length) {
        this.changed.replaceChildren();
        return;
      }
      const mean = (ys, a, b) => {
        let s = 0;
        let c = 0;
        for (let i = 0; i < d.xs.length; i++) {
          const t = d.xs[i];
          const v = ys[i];
          if (t >= a && t < b && v != null && isFinite(v)) {
            s += v;
            c++;
          }
        }
        return c ? s / c : null;
      };
      const rows = [];
      let biggest = 0;
      for (const e of evs) {
        const list = d.names.map((name, i) => {
          const before = mean(d.ys[i], e.when - n, e.when);
          const after = mean(d.ys[i], e.when, e.when + n);
          let change = null;
          if (before != null && after != null) {
            change = before === 0 ? (after === 0 ? 0 : null) : ((after - before) / Math.abs(before)) * 100;
          }
          return { name, before, after, change };
        }).filter((r) => r.before != null || r.after != null); // no data either side: nothing to say
        list.sort((a, b) => Math.abs(b.change ?? -1) - Math.abs(a.change ?? -1));
        for (const r of list) if (r.change != null) biggest = Math.max(biggest, Math.abs(r.change));
        // The largest changes; the rest (smaller by the sort) are counted.
        const rest = list.length - CHANGED_ROWS;
        list.slice(0, CHANGED_ROWS).forEach((r, k) => {
          // Under 1% is noise: no colour. From 20%, bold.
          const a = Math.abs(r.change ?? 0);
          const cls = a < 1 ? '' : (r.change > 0 ? 'up' : 'down') + (a >= 20 ? ' big' : '');
          rows.push(el('tr', { dataset: { series: r.name, when: e.when } },
            el('td', { class: 'deploy-cell' }, k === 0 ? el('span', { title: e.data || '' }, e.what) : ''),
            el('td', { class: 'series' }, r.name),
            el('td', { class: 'before', title: R.fmt(r.before, this.spec.unit) }, numText(r.before)),
            el('td', { class: 'after', title: R.fmt(r.after, this.spec.unit) }, numText(r.after)),
            el('td', { class: 'change ' + cls }, r.change == null ? '–' : (r.change > 0 ? '+' : '') + r.change.toFixed(1) + '%')));
        });
        if (rest > 0) {
          rows.push(el('tr', { class: 'more' }, el('td'), el('td', { colspan: 4 }, `${rest} more series, smaller changes`)));
        }
      }
      const mins = this.dash.st.changed;
      // Open when a deploy moved something by 5% or more; folded (one
      // line) when nothing did, so quiet deploys do not crowd the graphs.
      // A fold the user opened or closed stays so across refreshes.
      const open = this.changedOpen ?? biggest >= 5;
      const details = el('details', { open });
      this.changed.replaceChildren(details);
      details.append(
        el('summary', { onclick: () => { this.changedOpen = !details.open; } },
          `What changed: ${evs.length} deploy${evs.length > 1 ? 's' : ''} in view, mean ${mins} min before and after` +
          (biggest >= 5 ? '' : ' (nothing moved 5% or more)')),
        el('table', { class: 'changed' },
          el('thead', {}, el('tr', {}, ['Deploy', 'Series', 'Before', 'After', 'Change'].map((h) => el('th', {}, h)))),
          el('tbody', {}, rows)));
    }

    // ---- alert strip ----------------------------------------------------

    async loadStrip(win) {
      const name = this.spec.alert;
      const all = await this.dash.alerts();
      if (!all) {
        this.stripSegments = [{ from: win.from, until: win.until, state: 'nodata', note: 'alerting is not running' }];
        this.placeStrip();
        return;
      }
      const rule = (all.rules || []).find((r) => r.name === name);
      if (!rule) {
        this.stripSegments = [{ from: win.from, until: win.until, state: 'nodata', note: `no rule named ${name}` }];
        this.placeStrip();
        return;
      }
      try {
        const q = new URLSearchParams({ from: String(win.from), until: String(win.until) });
        const [hist, detail] = await Promise.all([
          R.json(`/api/alerts/${encodeURIComponent(name)}/history?${q}`),
          R.json(`/api/alerts/${encodeURIComponent(name)}`),
        ]);
        this.stripSegments = stateSegments(hist.transitions || [], detail.rule, win);
      } catch (e) {
        this.stripSegments = [{ from: win.from, until: win.until, state: 'error', note: e.message }];
      }
      this.placeStrip();
    }

    placeStrip() {
      if (!this.u || !this.strip || !this.stripSegments) return;
      const u = this.u;
      const { left, width: w } = this.plotArea();
      this.strip.style.marginLeft = left + 'px';
      this.strip.style.width = w + 'px';
      const tz = this.dash.st.tz;
      this.strip.replaceChildren(...this.stripSegments.map((s) => {
        const a = Math.max(0, u.valToPos(s.from, 'x'));
        const b = Math.min(w, u.valToPos(s.until, 'x'));
        return el('span', { class: 'seg state-' + s.state, dataset: { state: s.state },
          style: `left:${a}px;width:${Math.max(1, b - a)}px`,
          title: `${this.spec.alert}: ${s.state}${s.note ? ' (' + s.note + ')' : ''}\n${R.fmtTime(s.from, tz)} → ${R.fmtTime(s.until, tz)}` });
      }));
      const now = this.stripSegments[this.stripSegments.length - 1];
      this.strip.dataset.state = now ? now.state : '';
    }

    // ---- stat, table, alerts ------------------------------------------

    drawStat() {
      const d = this.data;
      const unit = this.spec.unit;
      const shown = d.names.slice(0, 4);
      if (!shown.length) {
        this.body.replaceChildren(el('div', { class: 'stat-value nodata' }, 'No data'));
        return;
      }
      this.body.replaceChildren(...shown.map((n, i) => {
        const v = last(d.ys[i]);
        const color = bandColor(v, this.spec.bands || []);
        return el('div', { class: 'stat' + (shown.length > 1 ? ' several' : '') },
          el('div', { class: 'stat-value', style: color ? `color:${color}` : null, dataset: { value: v == null ? '' : v } }, R.fmt(v, unit)),
          shown.length > 1 ? el('div', { class: 'stat-name' }, n) : null);
      }));
    }

    drawTable() {
      const d = this.data;
      const unit = this.spec.unit;
      const rows = d.names.map((n, i) => {
        const vals = d.ys[i].filter((v) => v != null && isFinite(v));
        const sum = vals.reduce((a, b) => a + b, 0);
        const cells = [last(d.ys[i]), vals.length ? Math.min(...vals) : null,
          vals.length ? Math.max(...vals) : null, vals.length ? sum / vals.length : null];
        const color = bandColor(cells[0], this.spec.bands || []);
        return el('tr', { dataset: { series: n } }, el('td', { class: 'series' }, n),
          cells.map((v, k) => el('td', { class: ['last', 'min', 'max', 'avg'][k], style: k === 0 && color ? `color:${color}` : null }, R.fmt(v, unit))));
      });
      this.body.replaceChildren(el('table', { class: 'series-table' },
        el('thead', {}, el('tr', {}, ['Series', 'Last', 'Min', 'Max', 'Avg'].map((h) => el('th', {}, h)))),
        el('tbody', {}, rows)));
    }

    drawAlerts(a) {
      if (!a) {
        this.body.replaceChildren(el('p', { class: 'empty' }, 'Alerting is not running on this server.'));
      } else if (a.error) {
        this.body.replaceChildren(el('p', { class: 'error' }, a.error));
      } else {
        const rules = a.rules.slice().sort((x, y) => STATE_RANK[y.state] - STATE_RANK[x.state] || x.name.localeCompare(y.name));
        this.body.replaceChildren(rules.length
          ? el('ul', { class: 'alert-list' }, rules.map((r) =>
            el('li', { dataset: { rule: r.name, state: r.state } },
              el('span', { class: 'badge state-' + r.state }, r.state),
              el('a', { href: '/api/alerts/' + encodeURIComponent(r.name) }, r.name),
              el('span', { class: 'meta' }, r.thresholds || ''))))
          : el('p', { class: 'empty' }, 'No alert rules.'));
      }
      this.el.dataset.series = a && a.rules ? String(a.rules.length) : '0';
      this.el.dataset.state = 'drawn';
      this.dash.drawn(this);
    }
  }

  // ---- data helpers ---------------------------------------------------

  // Render JSON → one time axis and a column per series (null for gaps).
  // Series of one target share their timestamps; others are merged.
  function toColumns(series) {
    const names = series.map((s) => s.target);
    if (!series.length) return { xs: [], ys: [], names };
    const first = series[0].datapoints;
    const aligned = series.every((s) => s.datapoints.length === first.length &&
      (!first.length || (s.datapoints[0][1] === first[0][1] && s.datapoints[first.length - 1][1] === first[first.length - 1][1])));
    let xs;
    if (aligned) xs = first.map((p) => p[1]);
    else xs = [...new Set(series.flatMap((s) => s.datapoints.map((p) => p[1])))].sort((a, b) => a - b);
    const ys = series.map((s) => {
      if (aligned) return s.datapoints.map((p) => p[0]);
      const m = new Map(s.datapoints.map((p) => [p[1], p[0]]));
      return xs.map((t) => (m.has(t) ? m.get(t) : null));
    });
    return { xs, ys, names };
  }

  // Time-axis labels, 24-hour: `HH:MM`, with the date where the day
  // changes (and on the first tick) when the span is over a day.
  function timeTicks(splits, tz) {
    if (!splits.length) return [];
    const span = splits[splits.length - 1] - splits[0];
    let lastDay = null;
    return splits.map((t) => {
      const s = R.fmtTime(t, tz).replace(' UTC', '');
      const [day, hm] = s.split(' ');
      const md = day.slice(5);
      if (span >= 3 * 86400) return hm === '00:00' ? md : md + ' ' + hm;
      const show = span > 18 * 3600 && day !== lastDay;
      lastDay = day;
      return show ? md + ' ' + hm : hm;
    });
  }

  const finiteOrNull = (v) => (v != null && isFinite(v) ? v : null);

  function stacked(ys) {
    const acc = ys.length ? ys[0].map(() => 0) : [];
    return ys.map((y) => y.map((v, i) => {
      if (v != null && isFinite(v)) acc[i] += v;
      return v == null ? null : acc[i];
    }));
  }

  function last(ys) {
    for (let k = ys.length - 1; k >= 0; k--) if (ys[k] != null && isFinite(ys[k])) return ys[k];
    return null;
  }

  function numText(v) {
    if (v == null) return '–';
    const a = Math.abs(v);
    return a >= 1e6 || (a > 0 && a < 1e-3) ? v.toExponential(4) : String(+v.toFixed(a >= 100 ? 2 : 4));
  }

  // The colour of the last band the value is in (bands go warn then crit).
  function bandColor(v, bands) {
    if (v == null) return null;
    let c = null;
    for (const b of bands) {
      if ((b.from == null || v >= b.from) && (b.to == null || v <= b.to)) c = b.color;
    }
    if (c) return cssColor(c);
    return bands.length ? STATE_COLOR.ok : null;
  }

  const NAMED = { red: STATE_COLOR.critical, orange: STATE_COLOR.warning, green: '#73bf69', yellow: '#fade2a' };
  const cssColor = (c) => NAMED[c] || c;

  function linRange(min, max, spec, bands) {
    if (min == null || max == null) [min, max] = [0, 1];
    if (min === max) [min, max] = [min - 1, max + 1];
    let [a, b] = uPlot.rangeNum(min, max, 0.1, true);
    if (min >= 0 && a < 0) a = 0;
    return [spec.y_min ?? a, spec.y_max ?? b];
  }

  // Whether `ys` has a value with no value on either side.
  function hasIsolated(ys) {
    const at = (i) => i >= 0 && i < ys.length && Number.isFinite(ys[i]);
    for (let i = 0; i < ys.length; i++) {
      if (at(i) && !at(i - 1) && !at(i + 1)) return true;
    }
    return false;
  }

  function logRange(min, max, spec) {
    if (min == null || min <= 0) min = 1;
    if (max == null || max <= min) max = min * 10;
    const [a, b] = uPlot.rangeLog(min, max, 10, true);
    return [spec.y_min > 0 ? spec.y_min : a, spec.y_max ?? b];
  }

  function drawBands(u, bands) {
    if (!bands.length) return;
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const [ymin, ymax] = [u.scales.y.min, u.scales.y.max];
    if (ymin == null || ymax == null) return;
    ctx.save();
    for (const b of bands) {
      const lo = b.from == null ? ymin : Math.max(ymin, b.from);
      const hi = b.to == null ? ymax : Math.min(ymax, b.to);
      if (hi <= lo) continue;
      const y0 = u.valToPos(hi, 'y', true);
      const y1 = u.valToPos(lo, 'y', true);
      ctx.fillStyle = cssColor(b.color);
      ctx.globalAlpha = 0.13;
      ctx.fillRect(left, Math.max(top, y0), width, Math.min(top + height, y1) - Math.max(top, y0));
      ctx.globalAlpha = 0.7;
      ctx.lineWidth = 1;
      ctx.strokeStyle = cssColor(b.color);
      ctx.setLineDash([4, 4]);
      for (const edge of [b.from, b.to]) {
        if (edge == null || edge < ymin || edge > ymax) continue;
        const y = Math.round(u.valToPos(edge, 'y', true)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(left, y);
        ctx.lineTo(left + width, y);
        ctx.stroke();
      }
    }
    ctx.restore();
  }

  // A rule's worst state over the window, as segments: each series' state
  // at the window's start is the `from` of its first transition in the
  // window (or its state now, without one), then follows its transitions.
  function stateSegments(transitions, rule, win) {
    const ts = transitions.slice().sort((a, b) => a.at - b.at);
    const state = new Map();
    for (const t of ts) if (!state.has(t.series)) state.set(t.series, t.from);
    for (const i of (rule && rule.instances) || []) if (!state.has(i.series)) state.set(i.series, i.state);
    const worst = () => {
      let w = 'ok';
      for (const s of state.values()) if ((STATE_RANK[s] ?? 0) > STATE_RANK[w]) w = s;
      return w;
    };
    const segs = [];
    let at = win.from;
    let cur = state.size ? worst() : (rule && rule.state) || 'ok';
    for (const t of ts) {
      if (t.at < win.from || t.at > win.until) continue;
      state.set(t.series, t.to);
      const next = worst();
      if (next !== cur) {
        if (t.at > at) segs.push({ from: at, until: t.at, state: cur });
        at = t.at;
        cur = next;
      }
    }
    segs.push({ from: at, until: win.until, state: cur });
    return segs;
  }
  R.stateSegments = stateSegments;

  // ---- the test's hooks -----------------------------------------------

  R.xOf = (panelId, secs) => {
    const p = R.page && R.page.panels.get(panelId);
    if (!p || !p.u) return null;
    return p.u.over.getBoundingClientRect().left + p.u.valToPos(secs, 'x');
  };
  R.plotBox = (panelId) => {
    const p = R.page && R.page.panels.get(panelId);
    if (!p || !p.u) return null;
    const r = p.u.over.getBoundingClientRect();
    return { left: r.left, top: r.top, width: r.width, height: r.height };
  };

  // ---- GET /d/<name> ----------------------------------------------------

  async function main() {
    const name = document.body.dataset.name;
    const c = document.getElementById('dash');
    let model;
    try {
      model = await R.json('/api/dashboards/' + encodeURIComponent(name));
    } catch (e) {
      c.replaceChildren(el('section', { class: 'missing' },
        el('h1', {}, e.status === 404 ? `No dashboard named “${name}”` : e.message),
        el('p', {}, el('a', { href: '/' }, 'All dashboards'))));
      return;
    }
    document.title = model.title;
    document.getElementById('crumb').replaceChildren(el('span', { class: 'title' }, model.title),
      el('span', { class: 'tags' }, (model.tags || []).map((t) => el('span', { class: 'tag' }, t))));
    R.startDashboard(model, { container: c, edit: true });
  }

  if (document.body.dataset.page === 'dash') main();
})();
