// GET /explore?target=...&from=...: one target (or a panel's few),
// editable, graphed with the dashboard's machinery (a one-panel model),
// with function names completed from /functions.
'use strict';

(function () {
  const R = window.rollupd;
  const { el } = R;

  let functions = null; // [{name, group, description}]
  async function loadFunctions() {
    if (!functions) {
      try {
        const j = await R.json('/functions');
        functions = Object.values(j).map((f) => ({ name: f.name, group: f.group || '', description: f.description || '' }))
          .sort((a, b) => a.name.localeCompare(b.name));
      } catch (_) {
        functions = [];
      }
    }
    return functions;
  }

  // The word being typed just before the caret, if it could be a function.
  function wordAt(text, caret) {
    const m = /[A-Za-z][A-Za-z0-9]*$/.exec(text.slice(0, caret));
    if (!m) return null;
    // A path segment (after a dot) is a metric name, not a function.
    if (m.index > 0 && text[m.index - 1] === '.') return null;
    return { start: m.index, word: m[0] };
  }

  function completer(input) {
    const list = el('ul', { class: 'suggest', hidden: true, role: 'listbox' });
    input.after(list);
    let items = [];
    let on = 0;
    let at = null;
    const hide = () => {
      list.hidden = true;
      items = [];
    };
    const pick = (f) => {
      const v = input.value;
      const caret = input.selectionStart;
      const next = v.slice(0, at.start) + f.name + '(' + v.slice(caret);
      input.value = next;
      const pos = at.start + f.name.length + 1;
      input.setSelectionRange(pos, pos);
      hide();
      input.focus();
    };
    const show = async () => {
      at = wordAt(input.value, input.selectionStart);
      if (!at || at.word.length < 2) return hide();
      const all = await loadFunctions();
      const w = at.word.toLowerCase();
      items = all.filter((f) => f.name.toLowerCase().startsWith(w))
        .concat(all.filter((f) => !f.name.toLowerCase().startsWith(w) && f.name.toLowerCase().includes(w)))
        .slice(0, 12);
      if (!items.length || (items.length === 1 && items[0].name === at.word)) return hide();
      on = 0;
      list.replaceChildren(...items.map((f, i) => el('li', {
        class: i === on ? 'on' : null, title: f.description, role: 'option',
        onmousedown: (e) => { e.preventDefault(); pick(f); },
      }, f.name, el('span', { class: 'group' }, f.group))));
      list.style.top = input.offsetTop + input.offsetHeight + 'px';
      list.style.left = input.offsetLeft + 'px';
      list.hidden = false;
    };
    const mark = () => [...list.children].forEach((li, i) => li.classList.toggle('on', i === on));
    input.addEventListener('input', show);
    input.addEventListener('blur', () => setTimeout(hide, 100));
    input.addEventListener('keydown', (e) => {
      if (list.hidden || !items.length) return;
      if (e.key === 'ArrowDown') { on = (on + 1) % items.length; mark(); e.preventDefault(); }
      else if (e.key === 'ArrowUp') { on = (on + items.length - 1) % items.length; mark(); e.preventDefault(); }
      else if (e.key === 'Tab' || (e.key === 'Enter' && !e.ctrlKey && !e.metaKey)) { pick(items[on]); e.preventDefault(); e.stopImmediatePropagation(); }
      else if (e.key === 'Escape') hide();
    });
  }

  function main() {
    const q = new URLSearchParams(location.search);
    const targets = q.getAll('target').filter((t) => t.trim());
    const root = document.getElementById('explore');
    document.getElementById('crumb').replaceChildren(el('span', { class: 'title' }, 'Explore'));
    const inputs = (targets.length ? targets : ['']).map((t) =>
      el('textarea', { class: 'target', rows: 2, spellcheck: 'false', placeholder: 'a render target, e.g. sumSeries(stats.web.*.requests)' }, t));
    inputs[0].id = 'target';
    const apply = () => {
      const next = new URLSearchParams(location.search);
      next.delete('target');
      for (const i of inputs) if (i.value.trim()) next.append('target', i.value.trim());
      location.search = next.toString();
    };
    const editor = el('div', { class: 'explore-editor' },
      inputs,
      el('div', { class: 'row' },
        el('button', { type: 'button', class: 'primary', id: 'run', onclick: apply }, 'Graph'),
        el('span', { class: 'help' }, 'Ctrl+Enter graphs. Function names complete as you type (Tab or Enter).')));
    for (const i of inputs) {
      i.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
          e.preventDefault();
          apply();
        }
      });
      completer(i);
    }
    const grid = el('div', { class: 'explore-graph' });
    root.replaceChildren(editor, grid);
    const unit = q.get('unit') || 'short';
    const model = {
      name: 'explore',
      title: 'Explore',
      from: '-6h',
      until: 'now',
      refresh: 0,
      variables: [],
      rows: [{ title: '', panels: [{ title: targets.join(' · ') || 'Type a target', kind: 'graph', targets,
        unit, y_min: null, y_max: null, log_scale: false, stack: false, bands: [], alert: null,
        events: 'deploy', markdown: null, width: 12 }] }],
    };
    R.startDashboard(model, { container: grid, keep: () => targets.map((t) => ['target', t]).concat(unit !== 'short' ? [['unit', unit]] : []) });
  }

  if (document.body.dataset.page === 'explore') main();
})();
