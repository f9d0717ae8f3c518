// The dashboard (/dashboard) and Swagger UI (/docs) in a real browser: Debian's chromium driven by
// playwright-core, against the app listening on a real port (the same app and HTTP server
// src/server.ts runs) on this test file's database. Skipped where /usr/bin/chromium is missing.
import { existsSync, mkdirSync } from 'node:fs';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium, type Page, type Response } from 'playwright-core';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import type { Schemas } from '../../src/contract.js';
import { createHttpServer, drain, listen } from '../../src/http/server.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { trimAmount } from '../../src/dashboard/format.js';
import { createFeature, createUser } from '../helpers/factories.js';
import { captureLogs } from '../helpers/logs.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = 'test-artifacts';

const ctx = useTestApp();

/** The UTC date of `day` in the month n months before the current one. */
function monthsAgo(n: number, day = 5): string {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - n, day)).toISOString().slice(0, 10);
}

async function createPlan(tenant: TestTenant, name: string, amount: string): Promise<Schemas['Plan']> {
  const res = await tenant.api
    .post('/api/v1/plans')
    .send({ code: name.toLowerCase(), name, interval: 'month', price: { model: 'flat', amount } });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['Plan'];
}

/** A tenant whose last twelve months have new, expansion, churn and reactivation, on two plans. */
async function seedTenant() {
  const tenant = await ctx.newTenant('Dashboard Co');
  const basic = await createPlan(tenant, 'Basic', '30.00');
  const pro = await createPlan(tenant, 'Pro', '99.00');
  const sso = await createFeature(tenant, { name: 'sso' });
  const [ada, bob, cy, dee] = [
    await createUser(tenant, { name: 'Ada', region: 'DE' }),
    await createUser(tenant, { name: 'Bob', region: 'US-CA' }),
    await createUser(tenant, { name: 'Cy', region: 'DE' }),
    await createUser(tenant, { name: 'Dee', region: 'FR' }),
  ];
  // Posted directly: the factory's default plan_cost would contradict plan_id.
  const subscribe = async (user: Schemas['User'], fields: Record<string, string>) => {
    const res = await tenant.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', ...fields });
    expect(res.status, res.text).toBe(201);
    return res.body as Schemas['Subscription'];
  };
  const adaBasic = await subscribe(ada, { plan_id: basic.id, start_date: monthsAgo(10) });
  await subscribe(bob, { plan_id: pro.id, start_date: monthsAgo(8), end_date: monthsAgo(3, 20) });
  await subscribe(cy, { plan_cost: '1200.00', billing_interval: 'year', start_date: monthsAgo(6) });
  const cyPro = await subscribe(cy, { plan_id: pro.id, start_date: monthsAgo(2, 12) });
  await subscribe(dee, { plan_id: basic.id, start_date: monthsAgo(5), end_date: monthsAgo(4, 15) });
  await subscribe(dee, { plan_id: basic.id, start_date: monthsAgo(1, 8) });
  for (const sub of [adaBasic, cyPro]) {
    const res = await tenant.api.put(`/api/v1/subscriptions/${sub.id}/features/${sso.id}`);
    expect(res.status, res.text).toBe(201);
  }
  return { tenant, basic, pro, sso };
}

/**
 * A tenant whose customers' usage has a cost: Ada's usage pays for itself, Bob's costs more than
 * it bills. The period three months ago is invoiced; last month's usage is not (unbilled cost).
 */
async function seedUsageTenant() {
  const tenant = await ctx.newTenant('Margins Co');
  const post = async (path: string, body?: object, status = 201) => {
    const res = await (body ? tenant.api.post(path).send(body) : tenant.api.post(path));
    expect(res.status, res.text).toBe(status);
    return res.body as Record<string, unknown>;
  };
  await post('/api/v1/billable-metrics', {
    code: 'tokens',
    name: 'AI tokens',
    aggregation: 'sum',
    field: 'tokens',
    group_by: 'model',
  });
  const plan = await post('/api/v1/plans', {
    code: 'ai',
    name: 'AI',
    interval: 'month',
    price: { model: 'flat', amount: '20.00' },
    usage_charges: [
      { metric: 'tokens', dimension_value: 'advanced', model: 'per_unit', amount: '0.002' },
      { metric: 'tokens', dimension_value: 'cheap', model: 'per_unit', amount: '0.0002' },
    ],
  });
  const start = monthsAgo(3, 1);
  const at = (n: number, day: number) => `${monthsAgo(n, day)}T12:00:00Z`;
  let n = 0;
  for (const [name, events] of [
    [
      'Ada',
      [
        [3, 2000, 'advanced', '1.2000'],
        [3, 10000, 'cheap', '0.5000'],
        [1, 1000, 'advanced', '0.6000'],
      ],
    ],
    [
      'Bob',
      [
        [3, 3000, 'advanced', '9.0000'],
        [3, 5000, 'cheap', '0.2500'],
      ],
    ],
  ] as const) {
    const user = await createUser(tenant, { name });
    const sub = await post('/api/v1/subscriptions', {
      user_id: user.id,
      status: 'active',
      plan_id: plan.id,
      start_date: start,
    });
    // Started three months back in real time: no renewal bills the usage of its first months,
    // closed at creation (and refused). This tenant bills it by invoicing a past period by hand,
    // as a subscription made before that rule could: reopened here.
    await sql`update subscriptions set usage_invoiced_until = null where id = ${sub.id}::uuid`.execute(
      ctx.db,
    );
    await post(
      '/api/v1/usage-events/batch',
      {
        events: events.map(([ago, tokens, model, cost]) => ({
          event_id: `e-${n++}`,
          user_id: user.id,
          metric: 'tokens',
          timestamp: at(ago, 10),
          properties: { tokens, model },
          cost,
        })),
      },
      200,
    );
    // The invoice of the period two months ago bills the usage of three months ago.
    const invoice = await post(`/api/v1/subscriptions/${sub.id as string}/invoices`, {
      date: monthsAgo(2, 5),
    });
    await post(`/api/v1/invoices/${invoice.id as string}/finalize`, undefined, 200);
  }
  return tenant;
}

/** The usage and margin panel: each figure's exact value (data-value) and the text shown. */
async function readMarginPanel(page: Page) {
  const read = await page.evaluate(() => {
    const shown = (node: Element | null) => ({
      value: (node as HTMLElement | null)?.dataset.value ?? null,
      text: node?.textContent ?? null,
    });
    const one = (testid: string, root: ParentNode = document) =>
      shown(root.querySelector(`[data-testid="${testid}"]`));
    return {
      totals: {
        revenue: one('margin-revenue'),
        cost: one('margin-cost'),
        margin: one('margin-margin'),
        unbilled_cost: one('margin-unbilled'),
      },
      percent: one('margin-percent').text,
      rows: [...document.querySelectorAll('[data-testid="margin-row"]')].map((row) => ({
        metric: row.getAttribute('data-metric'),
        revenue: one('margin-row-revenue', row),
        cost: one('margin-row-cost', row),
        margin: one('margin-row-margin', row),
        percent: one('margin-row-percent', row).text,
        unbilled_cost: one('margin-row-unbilled', row),
      })),
      losers: [...document.querySelectorAll('[data-testid="loss-leader-row"]')].map((row) => ({
        name: row.querySelector('td')?.textContent,
        revenue: one('loss-revenue', row),
        cost: one('loss-cost', row),
        margin: one('loss-margin', row),
        percent: one('loss-percent', row).text,
      })),
      count: one('loss-leader-count').value,
    };
  });
  // Each figure reads as its exact value, with thousands separators and no zeros past the cents.
  const exact = (cell: { value: string | null; text: string | null }) => {
    expect(cell.text?.replaceAll(',', '')).toBe(trimAmount(cell.value!));
    return cell.value;
  };
  const figures = <T extends Record<string, { value: string | null; text: string | null }>>(cells: T) =>
    Object.fromEntries(Object.entries(cells).map(([k, v]) => [k, exact(v)]));
  return {
    totals: { ...figures(read.totals), percent: read.percent },
    rows: read.rows.map(({ metric, percent, ...cells }) => ({ metric, ...figures(cells), percent })),
    losers: read.losers.map(({ name, percent, ...cells }) => ({ name, ...figures(cells), percent })),
    count: read.count,
  };
}

/** The same panel, from the API's report. */
function expectedMarginPanel(report: Schemas['UsageMarginReport']) {
  const percent = (p: string | null) => (p === null ? '—' : `${p}%`);
  const { revenue, cost, margin, unbilled_cost } = report.totals;
  return {
    totals: { revenue, cost, margin, unbilled_cost, percent: percent(report.totals.margin_percent) },
    rows: report.rows.map((r) => {
      if (!('metric' in r) || 'dimension_value' in r) throw new Error('a metric row');
      return {
        metric: r.metric.code,
        revenue: r.revenue,
        cost: r.cost,
        margin: r.margin,
        unbilled_cost: r.unbilled_cost,
        percent: percent(r.margin_percent),
      };
    }),
    losers: report.loss_leaders.map((l) => ({
      name: l.user.name,
      revenue: l.revenue,
      cost: l.cost,
      margin: l.margin,
      percent: percent(l.margin_percent),
    })),
    count: String(report.loss_leader_count),
  };
}

/**
 * What the dashboard shows, read from its data-testid elements: each number's exact value (its
 * data-value, the string the API sent), and the text a person reads, checked here to be that
 * value with thousands separators.
 */
async function readDashboard(page: Page) {
  const read = await page.evaluate(() => {
    const shown = (selector: string, root: ParentNode = document) => {
      const node = root.querySelector<HTMLElement>(selector);
      return { value: node?.dataset.value || node?.textContent || null, text: node?.textContent ?? null };
    };
    const cell = (row: Element, name: string) => shown(`[data-testid="month-${name}"]`, row);
    return {
      from: document.querySelector<HTMLInputElement>('#from')?.value,
      to: document.querySelector<HTMLInputElement>('#to')?.value,
      kpis: {
        mrr: shown('[data-testid="mrr"]'),
        arr: shown('[data-testid="arr"]'),
        customers: shown('[data-testid="customers"]'),
        arpa: shown('[data-testid="arpa"]'),
      },
      months: [...document.querySelectorAll('[data-testid="month-row"]')].map((row) => ({
        month: { value: row.getAttribute('data-month'), text: row.getAttribute('data-month') },
        mrr: cell(row, 'mrr'),
        customers: cell(row, 'customers'),
        new: cell(row, 'new'),
        reactivation: cell(row, 'reactivation'),
        expansion: cell(row, 'expansion'),
        contraction: cell(row, 'contraction'),
        churn: cell(row, 'churn'),
        net_new: cell(row, 'net-new'),
      })),
    };
  });
  const values = <K extends string>(fields: Record<K, { value: string | null; text: string | null }>) => {
    for (const { value, text } of Object.values<{ value: string | null; text: string | null }>(fields)) {
      // For people: thousands separators, nothing else changed (the API sends two decimals).
      if (value !== null && value !== '—') expect(text?.replaceAll(',', '')).toBe(value);
    }
    return Object.fromEntries(
      Object.entries(fields).map(([k, v]) => [k, (v as { value: string }).value]),
    ) as Record<K, string | null>;
  };
  return {
    from: read.from,
    to: read.to,
    kpis: values(read.kpis),
    months: read.months.map((m) => values(m)),
  };
}

/** The same view, computed from an API answer: the strings exactly as the API sent them. */
function expectedView(metrics: Schemas['MrrMetrics']) {
  const last = metrics.months.at(-1)!;
  return {
    from: metrics.from,
    to: metrics.to,
    kpis: { mrr: last.mrr, arr: last.arr, customers: String(last.customers), arpa: last.arpa ?? '—' },
    months: metrics.months.map((m) => ({
      month: m.month,
      mrr: m.mrr,
      customers: String(m.customers),
      new: m.movements.new.amount,
      reactivation: m.movements.reactivation.amount,
      expansion: m.movements.expansion.amount,
      contraction: m.movements.contraction.amount,
      churn: m.movements.churn.amount,
      net_new: m.net_new_mrr,
    })),
  };
}

describe.skipIf(!existsSync(CHROMIUM))('in a browser', () => {
  const logs = captureLogs();
  let server: http.Server;
  let base: string;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = createHttpServer(createApp({ db: ctx.appDb, validateResponses: true, logger: logs.logger }));
    await listen(server, 0, '127.0.0.1');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    if (server) await drain(server, 1000);
    expect(logs.errors).toEqual([]);
  });

  /** A fresh page that records console errors, uncaught exceptions and CSP violations. */
  async function openPage() {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    // Chromium logs CSP violations to the console too; the event also catches report-only ones.
    await page.addInitScript(() =>
      document.addEventListener('securitypolicyviolation', (e) =>
        console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`),
      ),
    );
    return { page, problems };
  }

  /** Runs action, waits for the API answer it causes and for the dashboard to finish drawing. */
  async function reloads(page: Page, action: () => Promise<unknown>, isRequest: (url: URL) => boolean) {
    const [response] = await Promise.all([
      page.waitForResponse((r: Response) => isRequest(new URL(r.url()))),
      action(),
    ]);
    await page.waitForSelector('[data-testid="dashboard"][aria-busy="false"]');
    return response;
  }

  const isMrr = (url: URL) => url.pathname === '/api/v1/metrics/mrr';

  it('shows the API metrics, redraws on a filter, keeps the key in sessionStorage only', async () => {
    const { tenant, pro } = await seedTenant();
    const api = ctx.withKey(tenant.key);
    const all = (await api.get('/api/v1/metrics/mrr')).body as Schemas['MrrMetrics'];
    const onPro = (await api.get('/api/v1/metrics/mrr').query({ plan_id: pro.id }))
      .body as Schemas['MrrMetrics'];
    expect(onPro.months.at(-1)!.mrr).not.toBe(all.months.at(-1)!.mrr); // the filter must show

    const { page, problems } = await openPage();
    const landing = await page.goto(`${base}/dashboard`);
    expect(landing?.status()).toBe(200);
    expect(landing?.headers()['content-security-policy']).toContain("script-src 'self'");

    // A key the API does not know: its 401 problem is shown, and the key is not kept.
    await page.fill('#api-key', 'sk_unknown_key');
    await page.click('#key-form button[type="submit"]');
    const message = page.locator('[data-testid="message"]');
    await message.waitFor();
    expect(await message.textContent()).toMatch(/^Unauthorized: The API key is not valid/);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(problems.every((p) => p.includes('status of 401'))).toBe(true);
    problems.length = 0;

    await page.fill('#api-key', tenant.key);
    await reloads(page, () => page.click('#key-form button[type="submit"]'), isMrr);

    // The default range is the API's default: the last 12 months, the current one included.
    expect(await readDashboard(page)).toEqual(expectedView(all));
    expect(await page.locator('.chart canvas').count()).toBe(3);
    expect(await page.locator('#plan option').allTextContents()).toEqual(['All plans', 'Pro', 'Basic']);
    expect(await page.locator('#feature option').allTextContents()).toEqual(['All features', 'sso']);
    const top = (await api.get('/api/v1/analytics').query({ top: 10 })).body as Schemas['Analytics'];
    expect(await page.locator('[data-testid="top-customer-row"] td:first-child').allTextContents()).toEqual(
      top.top_users.map((u) => u.name),
    );

    const response = await reloads(
      page,
      () => page.selectOption('#plan', pro.id),
      (url) => isMrr(url) && url.searchParams.get('plan_id') === pro.id,
    );
    expect(response.status()).toBe(200);
    expect(await readDashboard(page)).toEqual(expectedView(onPro));

    // Filters combine; the region is typed (any case) and applied with Enter.
    const onProInDe = (await api.get('/api/v1/metrics/mrr').query({ plan_id: pro.id, region: 'DE' }))
      .body as Schemas['MrrMetrics'];
    await page.fill('#region', 'de');
    await reloads(
      page,
      () => page.press('#region', 'Enter'),
      (url) => isMrr(url) && url.searchParams.get('region') === 'DE' && url.searchParams.has('plan_id'),
    );
    expect(await readDashboard(page)).toEqual(expectedView(onProInDe));

    const storage = await page.evaluate(() => ({
      session: Object.values(sessionStorage),
      local: Object.keys(localStorage),
      cookie: document.cookie,
    }));
    expect(storage).toEqual({ session: [tenant.key], local: [], cookie: '' });
    expect(await page.context().cookies()).toEqual([]);
    await page.screenshot({ path: `${ARTIFACTS}/dashboard.png`, fullPage: true });
    expect(problems).toEqual([]);

    // A range the API refuses (`to` before `from`): its problem+json is shown, and the browser
    // logs nothing but the failed loads.
    const to = monthsAgo(12).slice(0, 7);
    const refused = await api.get('/api/v1/metrics/mrr').query({ from: all.from, to, plan_id: pro.id });
    expect(refused.status).toBe(400);
    const problem = refused.body as Schemas['Problem'];
    await reloads(page, () => page.fill('#to', to), isMrr);
    expect(await message.textContent()).toContain(`${problem.title}: ${problem.detail}`);
    expect(await message.isVisible()).toBe(true);
    expect(await page.locator('[data-testid="mrr"]').isVisible()).toBe(false); // no stale numbers
    // The usage margin report refuses it too (400, as every report's window), in the panel hidden
    // with the rest.
    expect(problems.every((p) => p.includes('status of 400'))).toBe(true);

    await page.click('#forget-key');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(await page.locator('#api-key').isVisible()).toBe(true);
    await page.context().close();
  });

  it('shows the usage margin report in its panel, and its own refusal of a range without hiding the rest', async () => {
    const tenant = await seedUsageTenant();
    const api = ctx.withKey(tenant.key);
    // The dashboard's default range: the last 12 months, the current one included.
    const range = { from: monthsAgo(11, 1), to: monthsAgo(-1, 1) };
    const report = (await api.get('/api/v1/reports/usage-margin').query(range))
      .body as Schemas['UsageMarginReport'];
    expect(report.loss_leader_count).toBe(1); // Bob
    expect(report.totals.unbilled_cost).toBe('0.6000'); // Ada's usage of last month

    const { page, problems } = await openPage();
    await page.goto(`${base}/dashboard`);
    await page.fill('#api-key', tenant.key);
    const isMargin = (url: URL) => url.pathname === '/api/v1/reports/usage-margin';
    const response = await reloads(page, () => page.click('#key-form button[type="submit"]'), isMargin);
    expect(new URL(response.url()).searchParams.toString()).toBe(new URLSearchParams(range).toString());
    expect(await readMarginPanel(page)).toEqual(expectedMarginPanel(report));
    await page
      .locator('[data-testid="usage-margin"]')
      .screenshot({ path: `${ARTIFACTS}/dashboard-margin.png` });
    expect(problems).toEqual([]);

    // Thirteen months: the MRR metrics still show, the panel shows the report's 400 problem.
    const from = monthsAgo(12, 1);
    const refused = await api.get('/api/v1/reports/usage-margin').query({ ...range, from });
    expect(refused.status).toBe(400);
    const problem = refused.body as Schemas['Problem'];
    await reloads(page, () => page.fill('#from', from.slice(0, 7)), isMargin);
    const panelMessage = page.locator('[data-testid="margin-message"]');
    expect(await panelMessage.textContent()).toContain(`${problem.title}: ${problem.detail}`);
    expect(await page.locator('[data-testid="margin-revenue"]').isVisible()).toBe(false);
    expect(await page.locator('[data-testid="mrr"]').isVisible()).toBe(true);
    expect(await page.locator('[data-testid="message"]').isVisible()).toBe(false);
    expect(problems.every((p) => p.includes('status of 400'))).toBe(true);
    await page.context().close();
  });

  it('serves Swagger UI at /docs, whose Try it out reaches the running server with the key', async () => {
    const user = await createUser(ctx);
    const { page, problems } = await openPage();
    await page.goto(`${base}/docs`);
    await page.waitForSelector('#operations-users-listUsers');

    await page.click('.auth-wrapper button.authorize');
    await page.fill('input[aria-label="auth-bearer-value"]', ctx.tenant.key);
    await page.click('.auth-btn-wrapper button.authorize');
    await page.click('.auth-btn-wrapper button.btn-done');

    await page.click('#operations-users-listUsers .opblock-summary-control');
    await page.click('#operations-users-listUsers .try-out__btn');
    // Swagger UI fills the email filter with the spec's example; list everyone instead.
    await page.fill('#operations-users-listUsers input[placeholder="email"]', '');
    const [response] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/users'),
      page.click('#operations-users-listUsers .execute'),
    ]);
    expect(response.status()).toBe(200);
    expect(response.request().headers()['authorization']).toBe(`Bearer ${ctx.tenant.key}`);
    expect(((await response.json()) as Schemas['UserList']).data.map((u) => u.id)).toContain(user.id);
    const status = page.locator(
      '#operations-users-listUsers .live-responses-table tbody .response-col_status',
    );
    await status.waitFor();
    expect((await status.textContent())?.trim()).toBe('200');
    // The operation with its live response, not the whole (very long) page.
    await page.locator('#operations-users-listUsers').screenshot({ path: `${ARTIFACTS}/docs.png` });
    expect(problems).toEqual([]);
    await page.context().close();
  });
});
