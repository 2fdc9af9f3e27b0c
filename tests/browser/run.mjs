// Drives Debian's Chromium through playwright-core against a running rollupd
// and prints what it saw as one JSON object on stdout; tests/browser.rs
// feeds the daemon known data and asserts on that object. Run by hand:
//
//   node tests/browser/run.mjs '{"base":"http://127.0.0.1:8080","out":"/tmp/shots",...}'
//
// The plan (argv[2], JSON): base, out (screenshot dir), dash (name of the
// dashboard with known data), panel (its graph panel id), deploy (the
// deploy's unix time), hover (a unix time to hover), variable {name, value},
// search (index search text), toggle (a series to hide from the legend),
// explore (a target for the explore page), big (the large dashboard's name,
// or null).
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';

const require = createRequire(import.meta.url);
const playwright = require(process.env.ROLLUPD_PLAYWRIGHT || 'playwright-core');
const plan = JSON.parse(process.argv[2]);
mkdirSync(plan.out, { recursive: true });

const result = { console: [], steps: {} };
const browser = await playwright.chromium.launch({
  executablePath: process.env.ROLLUPD_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});

// Every console error and uncaught exception on any page is a failure the
// test reports.
function watch(page) {
  page.on('console', (m) => {
    if (m.type() === 'error') result.console.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => result.console.push(`${page.url()}: uncaught ${e.message}`));
}

// One step: its observations, or the error that stopped it, so a broken
// step does not hide the others.
async function step(name, f) {
  try {
    result.steps[name] = await f();
  } catch (e) {
    result.steps[name] = { error: String(e && e.stack || e) };
  }
}

const panelSel = (id) => `section.panel[data-panel="${id}"]`;
const attr = (page, id, a) => page.getAttribute(panelSel(id), a);
async function waitFetches(page, id, above) {
  await page.waitForFunction(
    ([sel, n]) => {
      const el = document.querySelector(sel);
      return el && Number(el.dataset.fetches) > n && el.dataset.state === 'drawn';
    },
    [panelSel(id), above],
    { timeout: 15000 },
  );
}
async function panelInfo(page, id) {
  return page.$eval(panelSel(id), (el) => ({
    kind: el.dataset.kind,
    state: el.dataset.state,
    series: Number(el.dataset.series),
    points: Number(el.dataset.points),
    fetches: Number(el.dataset.fetches),
  }));
}

const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });

await step('index', async () => {
  const page = await ctx.newPage();
  watch(page);
  await page.goto(`${plan.base}/`, { waitUntil: 'networkidle' });
  await page.waitForSelector('li.dashboard');
  const names = await page.$$eval('li.dashboard', (els) => els.map((e) => e.dataset.name));
  const fileErrors = await page.$$eval('#dashboards li.file-error', (els) => els.map((e) => e.textContent));
  await page.screenshot({ path: `${plan.out}/index.png`, fullPage: true });
  await page.fill('input#search', plan.search);
  await page.waitForTimeout(300);
  const shown = await page.$$eval('li.dashboard', (els) =>
    els.filter((e) => e.offsetParent !== null).map((e) => e.dataset.name));
  const firing = await page.$$eval('#firing li[data-rule]', (els) => els.map((e) => e.dataset.rule));
  const deploys = await page.$$eval('#deploys li', (els) => els.map((e) => e.textContent));
  await page.close();
  return { names, fileErrors, shown, firing, deploys };
});

const page = await ctx.newPage();
watch(page);
const id = plan.panel;

await step('load', async () => {
  await page.goto(`${plan.base}/d/${plan.dash}?from=-1h`, { waitUntil: 'load' });
  await page.waitForSelector(`${panelSel(id)}[data-state="drawn"]`, { timeout: 15000 });
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${plan.out}/dashboard.png`, fullPage: true });
  const panels = await page.$$eval('section.panel', (els) => els.map((el) => ({
    id: el.dataset.panel, kind: el.dataset.kind, state: el.dataset.state,
  })));
  return { panels, graph: await panelInfo(page, id), url: page.url() };
});

await step('text', async () => {
  return page.$eval('section.panel[data-kind="text"]', (el) => ({
    scripts: el.querySelectorAll('script').length,
    heading: (el.querySelector('.body h1, .body h2, .body h3, .body h4, .body h5, .body h6') || {}).textContent || null,
    code: (el.querySelector('code') || {}).textContent || null,
    text: el.textContent,
  }));
});

await step('deploy', async () => {
  const sel = `${panelSel(id)} .deploy[data-when="${plan.deploy}"]`;
  const line = await page.waitForSelector(sel, { timeout: 5000 });
  const box = await line.boundingBox();
  const expected = await page.evaluate(([p, t]) => window.rollupd.xOf(p, t), [id, plan.deploy]);
  await line.hover();
  const tip = await page.waitForSelector(`${panelSel(id)} .deploy-tip`, { state: 'visible', timeout: 3000 });
  return { x: box.x + box.width / 2, expected, tip: await tip.textContent() };
});

await step('hover', async () => {
  const box = await page.evaluate((p) => window.rollupd.plotBox(p), id);
  const x = await page.evaluate(([p, t]) => window.rollupd.xOf(p, t), [id, plan.hover]);
  await page.mouse.move(x, box.top + box.height / 2);
  await page.waitForTimeout(200);
  const values = await page.$$eval(`${panelSel(id)} .legend [data-series]`, (els) =>
    Object.fromEntries(els.map((e) => [e.dataset.series, (e.querySelector('.value') || {}).textContent])));
  // The crosshair is shared: another graph panel shows values for the same time.
  const others = await page.$$eval('section.panel[data-kind="graph"] .legend [data-series] .value', (els) =>
    els.map((e) => e.textContent));
  await page.screenshot({ path: `${plan.out}/hover.png` });
  return { values, others };
});

await step('changed', async () => {
  return page.$$eval(`${panelSel(id)} table.changed tr[data-series]`, (rows) => rows.map((r) => ({
    series: r.dataset.series,
    when: Number(r.dataset.when),
    before: r.querySelector('td.before').textContent,
    after: r.querySelector('td.after').textContent,
    change: r.querySelector('td.change').textContent,
  })));
});

await step('links', async () => {
  const png = await page.getAttribute(`${panelSel(id)} a.png-link`, 'href');
  const explore = await page.getAttribute(`${panelSel(id)} a.explore-link`, 'href');
  const res = await page.request.get(new URL(png, plan.base).toString());
  return {
    png, explore, status: res.status(), type: res.headers()['content-type'],
    bytes: (await res.body()).length,
  };
});

await step('legendToggle', async () => {
  const before = await page.evaluate(() => window.rollupd.renders);
  const name = plan.toggle;
  await page.click(`${panelSel(id)} .legend [data-series="${name}"]`);
  await page.waitForTimeout(200);
  const hidden = await page.$eval(`${panelSel(id)} .legend [data-series="${name}"]`,
    (e) => e.classList.contains('off') || e.getAttribute('aria-pressed') === 'false' || e.dataset.hidden === 'true');
  await page.click(`${panelSel(id)} .legend [data-series="${name}"]`);
  const after = await page.evaluate(() => window.rollupd.renders);
  return { hidden, refetched: after !== before };
});

await step('zoom', async () => {
  const before = await panelInfo(page, id);
  const url = page.url();
  const box = await page.evaluate((p) => window.rollupd.plotBox(p), id);
  const y = box.top + box.height / 2;
  await page.mouse.move(box.left + box.width * 0.25, y);
  await page.mouse.down();
  await page.mouse.move(box.left + box.width * 0.4, y, { steps: 5 });
  await page.mouse.move(box.left + box.width * 0.5, y, { steps: 5 });
  await page.mouse.up();
  await waitFetches(page, id, before.fetches);
  const after = await panelInfo(page, id);
  return { before, after, urlBefore: url, urlAfter: page.url() };
});

await step('back', async () => {
  await page.goBack();
  await page.waitForTimeout(500);
  await page.waitForSelector(`${panelSel(id)}[data-state="drawn"]`, { timeout: 15000 });
  return { url: page.url(), graph: await panelInfo(page, id) };
});

await step('range', async () => {
  const before = await panelInfo(page, id);
  await page.selectOption('select#range', '-6h');
  await waitFetches(page, id, before.fetches);
  return { before, after: await panelInfo(page, id), url: page.url() };
});

await step('variable', async () => {
  const before = await panelInfo(page, id);
  await page.selectOption(`select[data-var="${plan.variable.name}"]`, plan.variable.value);
  await waitFetches(page, id, before.fetches);
  await page.waitForTimeout(200);
  await page.screenshot({ path: `${plan.out}/variable.png`, fullPage: true });
  return { before, after: await panelInfo(page, id), url: page.url() };
});

await step('shared', async () => {
  // The URL holds the state: a new page opened on it shows the same.
  const other = await ctx.newPage();
  watch(other);
  await other.goto(page.url(), { waitUntil: 'load' });
  await other.waitForSelector(`${panelSel(id)}[data-state="drawn"]`, { timeout: 15000 });
  const info = await panelInfo(other, id);
  const range = await other.$eval('select#range', (e) => e.value);
  const variable = await other.$eval(`select[data-var="${plan.variable.name}"]`,
    (e) => Array.from(e.selectedOptions).map((o) => o.value));
  await other.close();
  return { info, range, variable };
});

await step('explore', async () => {
  const p = await ctx.newPage();
  watch(p);
  await p.goto(`${plan.base}/explore?target=${encodeURIComponent(plan.explore)}&from=-1h`, { waitUntil: 'load' });
  await p.waitForSelector('section.panel[data-state="drawn"]', { timeout: 15000 });
  const info = await p.$eval('section.panel', (el) => ({ series: Number(el.dataset.series), points: Number(el.dataset.points) }));
  await p.screenshot({ path: `${plan.out}/explore.png` });
  await p.close();
  return info;
});

await step('own', async () => {
  // The shipped dashboard of the daemon's own series.
  // Tall enough that every panel is on screen, so every panel draws.
  const tall = await browser.newContext({ viewport: { width: 1400, height: 3400 } });
  const p = await tall.newPage();
  watch(p);
  await p.goto(`${plan.base}/d/rollupd?from=-15min`, { waitUntil: 'load' });
  await p.waitForFunction(() => {
    const els = Array.from(document.querySelectorAll('section.panel'));
    return els.length > 0 && els.every((e) => e.dataset.state === 'drawn' || e.dataset.state === 'error');
  }, null, { timeout: 20000 });
  await p.screenshot({ path: `${plan.out}/rollupd.png`, fullPage: true });
  const panels = await p.$$eval('section.panel', (els) => els.map((e) => ({
    id: e.dataset.panel, title: (e.querySelector('header') || {}).textContent,
    state: e.dataset.state || null, series: Number(e.dataset.series || 0),
    error: (e.querySelector('.panel-error') || {}).textContent || null,
  })));
  await tall.close();
  return { panels };
});

await page.close();

if (plan.big) {
  await step('big', async () => {
    // A cold load: a new context has an empty cache.
    const cold = await browser.newContext({ viewport: { width: 1600, height: 4000 } });
    const p = await cold.newPage();
    watch(p);
    await p.goto(`${plan.base}/d/${plan.big}?from=-24h`, { waitUntil: 'load' });
    await p.waitForFunction(() => {
      const els = document.querySelectorAll('section.panel');
      return els.length > 0 && Array.from(els).every((e) => e.dataset.state === 'drawn')
        && window.rollupd && window.rollupd.timing && window.rollupd.timing.allVisibleDrawn;
    }, null, { timeout: 30000 });
    const m = await p.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const res = performance.getEntriesByType('resource');
      const bytes = res.reduce((n, r) => n + r.transferSize, nav.transferSize);
      const decoded = res.reduce((n, r) => n + r.decodedBodySize, nav.decodedBodySize);
      return {
        timing: window.rollupd.timing,
        renders: window.rollupd.renders,
        bytes, decoded,
        requests: res.length + 1,
        panels: Array.from(document.querySelectorAll('section.panel')).map((e) => ({
          state: e.dataset.state, series: Number(e.dataset.series), points: Number(e.dataset.points),
        })),
      };
    });
    await p.screenshot({ path: `${plan.out}/big.png` });
    await cold.close();
    return m;
  });
}

await browser.close();
process.stdout.write(JSON.stringify(result));
