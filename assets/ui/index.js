// GET /: the dashboards (searched by title and tag in the browser), the
// alerts firing now, and the last week's deploys.
'use strict';

(function () {
  const R = window.rollupd;
  const { el } = R;
  const STATE_RANK = { critical: 5, error: 4, warning: 3, nodata: 2, pending: 1, ok: 0 };

  async function dashboards() {
    const ul = document.getElementById('dashboards');
    const search = document.getElementById('search');
    let all = [];
    let fileErrors = [];
    try {
      const j = await R.json('/api/dashboards?errors=1');
      all = j.dashboards;
      fileErrors = j.file_errors || [];
    } catch (e) {
      ul.replaceChildren(el('li', { class: 'error' }, e.message));
      return;
    }
    all.sort((a, b) => a.title.localeCompare(b.title));
    const items = all.map((d) =>
      el('li', { class: 'dashboard', dataset: { name: d.name } },
        el('a', { href: '/d/' + encodeURIComponent(d.name) }, d.title),
        el('span', { class: 'tags' }, (d.tags || []).map((t) =>
          el('button', { class: 'tag', type: 'button', onclick: () => { search.value = t; filter(); } }, t))),
        el('span', { class: 'meta' }, `${d.panels} panels`)));
    const hay = all.map((d) => [d.title, d.name, ...(d.tags || [])].join(' ').toLowerCase());
    function filter() {
      const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      let shown = 0;
      items.forEach((li, i) => {
        const ok = words.every((w) => hay[i].includes(w));
        li.hidden = !ok;
        shown += ok;
      });
      empty.hidden = shown > 0;
    }
    const empty = el('li', { class: 'empty', hidden: true }, 'No dashboard matches.');
    // A dashboard file that does not load says why, where it would be.
    const broken = fileErrors.map((msg) => el('li', { class: 'error file-error' }, msg));
    ul.replaceChildren(...broken, ...items, empty);
    if (!all.length) {
      empty.hidden = false;
      empty.textContent = 'No dashboards. Put TOML files in dashboards/ or [dashboards] paths.';
    }
    search.addEventListener('input', filter);
    search.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      const first = items.find((li) => !li.hidden);
      if (first) location.href = first.querySelector('a').href;
    });
    filter();
  }

  async function firing() {
    const ul = document.getElementById('firing');
    if (document.body.dataset.alerts !== 'on') {
      ul.replaceChildren(el('li', { class: 'empty' }, 'Alerting is not running on this server.'));
      return;
    }
    try {
      const j = await R.json('/api/alerts');
      const bad = j.rules
        .filter((r) => (STATE_RANK[r.state] || 0) >= 2)
        .sort((a, b) => STATE_RANK[b.state] - STATE_RANK[a.state] || a.name.localeCompare(b.name));
      const items = bad.map((r) => {
        const worst = (r.instances || []).filter((i) => i.state === r.state);
        const since = worst.length ? Math.min(...worst.map((i) => i.since)) : null;
        return el('li', { class: 'state-' + r.state, dataset: { rule: r.name } },
          el('span', { class: 'badge state-' + r.state }, r.state),
          el('a', { href: '/api/alerts/' + encodeURIComponent(r.name) }, r.name),
          el('span', { class: 'meta' },
            (worst.length > 1 ? `${worst.length} series · ` : '') + (since ? 'since ' + R.ago(since) : '')),
          worst[0] && worst[0].reason ? el('div', { class: 'reason' }, worst[0].reason) : null);
      });
      for (const e of j.file_errors || []) items.push(el('li', { class: 'state-error' }, e));
      if (!items.length) items.push(el('li', { class: 'empty all-ok' }, `All ${j.rules.length} rules ok.`));
      ul.replaceChildren(...items);
    } catch (e) {
      ul.replaceChildren(el('li', { class: 'error' }, e.message));
    }
  }

  async function deploys() {
    const ul = document.getElementById('deploys');
    try {
      const list = await R.json('/events/get_data?tags=deploy&from=-7d');
      list.sort((a, b) => b.when - a.when);
      const items = list.slice(0, 20).map((e) =>
        el('li', { dataset: { when: e.when } },
          el('time', { title: R.fmtTime(e.when, 'local', true) }, R.fmtTime(e.when, 'local').slice(5), el('br'), R.ago(e.when)),
          el('span', { class: 'what' }, e.what),
          e.data ? el('span', { class: 'data' }, e.data) : null,
          el('span', { class: 'tags' }, (e.tags || []).filter((t) => t !== 'deploy').join(' '))));
      if (!items.length) ul.replaceChildren(el('p', { class: 'empty' }, 'No deploys in the last 7 days.'));
      else ul.replaceChildren(...items);
    } catch (e) {
      ul.replaceChildren(el('p', { class: 'error' }, e.message));
    }
  }

  dashboards();
  firing();
  deploys();
  setInterval(() => { if (!document.hidden) { firing(); deploys(); } }, 30000);
})();
