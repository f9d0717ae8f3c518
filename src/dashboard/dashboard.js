// The metrics dashboard: an API key kept in sessionStorage, a range and filters, then the API's
// numbers as text, tables and uPlot charts. Money arrives as decimal strings and is shown with
// thousands separators (format.js, exact: string arithmetic), the value as sent in its title and
// data-value; only the charts convert it to numbers.
import { firstDayAfter, formatCount, formatMoney, monthsBefore, pageCurrency, trimAmount } from './format.js';
import uPlot from './vendor/uPlot.esm.js';

const CURRENCY = pageCurrency(location.search);

const API = new URL('../api/v1/', location.href);
// sessionStorage: the key lives as long as this tab, never in localStorage or a cookie.
const KEY_STORAGE = 'subscriptions-api-key';
const CHART_HEIGHT = 280;
const COLORS = {
  mrr: '#2f6fdf',
  arr: '#8e5bd9',
  new: '#2e9d5b',
  reactivation: '#7cc48f',
  expansion: '#1b6f3f',
  contraction: '#f0a35e',
  churn: '#d64545',
  net: '#1c2330',
  nrr: '#2f6fdf',
  nrr12: '#8e5bd9',
};

const $ = (id) => document.getElementById(id);
const ui = {
  message: $('message'),
  keySection: $('key-section'),
  keyForm: $('key-form'),
  keyInput: $('api-key'),
  dashboard: $('dashboard'),
  filters: $('filters'),
  results: $('results'),
  from: $('from'),
  to: $('to'),
  plan: $('plan'),
  feature: $('feature'),
  region: $('region'),
  session: $('session'),
  keyLabel: $('key-label'),
  forget: $('forget-key'),
  kpiMonth: $('kpi-month'),
  months: $('months-body'),
  top: $('top-body'),
  marginMessage: $('margin-message'),
  marginResults: $('margin-results'),
  marginRows: $('margin-body'),
  lossCount: $('loss-count'),
  lossRows: $('loss-body'),
};

/** An API answer that was not 2xx, with its problem+json body when there is one. */
class ApiError extends Error {
  constructor(status, problem) {
    const title = problem?.title ?? `HTTP ${status}`;
    super(problem?.detail ? `${title}: ${problem.detail}` : title);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path, params = {}, signal = undefined) {
  const url = new URL(path, API);
  for (const [name, value] of Object.entries(params)) if (value) url.searchParams.set(name, value);
  const key = sessionStorage.getItem(KEY_STORAGE) ?? '';
  const res = await fetch(url, { headers: { Authorization: `Bearer ${key}` }, signal });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

/** Every page of a list operation. */
async function listAll(path) {
  const items = [];
  let cursor;
  do {
    const page = await api(path, { limit: '100', cursor });
    items.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

// ---- messages and elements

function showError(error, target = ui.message) {
  target.replaceChildren();
  target.append(error.message);
  // Validation problems name each offending input.
  const details = error.problem?.errors ?? [];
  if (details.length > 0) {
    const list = document.createElement('ul');
    for (const e of details) list.append(el('li', {}, `${e.field ?? e.location}: ${e.message}`));
    target.append(list);
  }
  target.hidden = false;
}

function clearError() {
  ui.message.hidden = true;
  ui.message.replaceChildren();
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** A rate such as "0.0525" as "5.25%", exactly (string arithmetic, no float rounding). */
function percent(rate) {
  if (rate == null) return '—';
  const [whole, fraction = ''] = rate.split('.');
  const hundredths = BigInt(whole + fraction.padEnd(4, '0').slice(0, 4)); // units of 0.01 %
  return `${hundredths / 100n}.${String(hundredths % 100n).padStart(2, '0')}%`;
}

/** A money cell: formatted for people, the decimal string as sent on hover; marked when negative. */
function moneyCell(testid, amount) {
  return el(
    'td',
    {
      'data-testid': testid,
      'data-value': amount,
      title: amount,
      class: amount.startsWith('-') ? 'negative' : '',
    },
    formatMoney(amount, CURRENCY),
  );
}

/** An amount with up to four decimals (usage costs): no zeros past the cents, nothing rounded. */
const amount = (value) => formatMoney(trimAmount(value), CURRENCY);

/** A usage margin cell: the amount for people, the exact string in title and data-value. */
function amountCell(testid, value) {
  return el(
    'td',
    {
      'data-testid': testid,
      'data-value': value,
      title: value,
      class: value.startsWith('-') ? 'negative' : '',
    },
    amount(value),
  );
}

/** A percentage as sent ("37.50"), or a dash when there is none (no revenue). */
const marginPercent = (value) => (value == null ? '—' : `${value}%`);

/** A count cell: with thousands separators, the exact count on hover. */
function countCell(testid, count) {
  return el(
    'td',
    { 'data-testid': testid, 'data-value': String(count), title: String(count) },
    formatCount(count),
  );
}

// ---- the key

function showKeyForm() {
  ui.dashboard.hidden = true;
  ui.session.hidden = true;
  ui.keySection.hidden = false;
  ui.keyInput.focus();
}

async function connect() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (!key) return showKeyForm();
  ui.keySection.hidden = true;
  ui.dashboard.hidden = false;
  ui.session.hidden = false;
  // Keys read sk_<prefix>_<secret>: the prefix says which key is in use without revealing it.
  ui.keyLabel.textContent = `Key ${key.split('_').slice(0, 2).join('_')}_…`;
  try {
    await loadFilterOptions();
  } catch (error) {
    return fail(error);
  }
  await loadMetrics();
}

function forgetKey() {
  inFlight?.abort();
  sessionStorage.removeItem(KEY_STORAGE);
  destroyCharts();
  clearError();
  showKeyForm();
}

function fail(error) {
  showError(error);
  // A key that is unknown, expired or revoked is of no further use: ask for another.
  if (error instanceof ApiError && error.status === 401) {
    sessionStorage.removeItem(KEY_STORAGE);
    showKeyForm();
  }
}

// ---- filters

const currentMonth = () => new Date().toISOString().slice(0, 7); // the API's months are UTC

function setDefaultRange() {
  const to = currentMonth();
  ui.to.value = to;
  ui.to.max = to;
  ui.from.value = monthsBefore(to, 11); // 12 months including the current one
  ui.from.max = to;
}

function fillSelect(select, items, allLabel) {
  const chosen = select.value;
  select.replaceChildren(
    el('option', { value: '' }, allLabel),
    ...items.map((item) => el('option', { value: item.id }, item.name)),
  );
  // Keep the choice when it still exists.
  if (items.some((item) => item.id === chosen)) select.value = chosen;
}

async function loadFilterOptions() {
  const [plans, features] = await Promise.all([listAll('plans'), listAll('features')]);
  fillSelect(ui.plan, plans, 'All plans');
  fillSelect(ui.feature, features, 'All features');
}

/**
 * The usage margin report's range for the months chosen: from the first day of `from` to the first
 * day of the month after `to` (its `to` is exclusive).
 */
function marginRange() {
  const [year, month] = ui.to.value.split('-').map(Number);
  if (!year || !month) return { from: ui.from.value, to: '' }; // the API says what is missing
  return { from: `${ui.from.value}-01`, to: firstDayAfter(ui.to.value) };
}

function filterParams() {
  return {
    from: ui.from.value,
    to: ui.to.value,
    plan_id: ui.plan.value,
    feature_id: ui.feature.value,
    region: ui.region.value.trim().toUpperCase(),
  };
}

// ---- metrics

let inFlight; // the AbortController of the latest load: a newer one cancels it

async function loadMetrics() {
  inFlight?.abort();
  const controller = (inFlight = new AbortController());
  const params = filterParams();
  ui.dashboard.setAttribute('aria-busy', 'true');
  try {
    // The margin report fails on its own (a range over 366 days, say): its panel says so, and the
    // rest of the dashboard still shows.
    const margin = api('reports/usage-margin', marginRange(), controller.signal).then(
      (report) => ({ report }),
      (error) => ({ error }),
    );
    const [mrr, churn, analytics, usage] = await Promise.all([
      api('metrics/mrr', params, controller.signal),
      api('metrics/churn', params, controller.signal),
      api('analytics', { top: '10' }, controller.signal),
      margin,
    ]);
    clearError();
    ui.results.hidden = false;
    render(mrr.months, churn.months, analytics.top_users);
    renderMargin(usage);
  } catch (error) {
    if (controller.signal.aborted) return; // superseded by a newer load
    ui.results.hidden = true;
    fail(error);
  } finally {
    if (inFlight === controller) ui.dashboard.setAttribute('aria-busy', 'false');
  }
}

function render(months, churnMonths, topUsers) {
  const churnByMonth = new Map(churnMonths.map((m) => [m.month, m]));
  renderKpis(months.at(-1));
  renderMonthTable(months, churnByMonth);
  renderTopUsers(topUsers);
  renderCharts(months, churnByMonth);
}

function renderKpis(last) {
  ui.kpiMonth.textContent = last ? `${last.month}${last.complete ? '' : ' (month to date)'}` : '—';
  for (const [testid, value, format] of [
    ['mrr', last?.mrr, (v) => formatMoney(v, CURRENCY)],
    ['arr', last?.arr, (v) => formatMoney(v, CURRENCY)],
    ['customers', last?.customers, formatCount],
    ['arpa', last?.arpa, (v) => formatMoney(v, CURRENCY)],
  ]) {
    const node = document.querySelector(`[data-testid="${testid}"]`);
    node.textContent = value == null ? '—' : format(value);
    node.title = value == null ? '' : String(value);
    node.dataset.value = value == null ? '' : String(value);
  }
}

const MOVEMENTS = ['new', 'reactivation', 'expansion', 'contraction', 'churn'];

function renderMonthTable(months, churnByMonth) {
  ui.months.replaceChildren(
    ...months.map((m) => {
      const c = churnByMonth.get(m.month);
      return el(
        'tr',
        { 'data-testid': 'month-row', 'data-month': m.month },
        el('td', { 'data-testid': 'month-month' }, m.month),
        moneyCell('month-mrr', m.mrr),
        countCell('month-customers', m.customers),
        ...MOVEMENTS.map((kind) => moneyCell(`month-${kind}`, m.movements[kind].amount)),
        moneyCell('month-net-new', m.net_new_mrr),
        el('td', { 'data-testid': 'month-churn-rate' }, percent(c?.customer_churn_rate)),
        el('td', { 'data-testid': 'month-nrr' }, percent(c?.net_revenue_retention)),
        el('td', { 'data-testid': 'month-nrr-12m' }, percent(c?.trailing_12m_net_revenue_retention)),
      );
    }),
  );
}

function renderTopUsers(users) {
  const rows = users.map((u) =>
    el(
      'tr',
      { 'data-testid': 'top-customer-row' },
      el('td', { class: 'text' }, u.name),
      el('td', { class: 'text' }, u.email),
      moneyCell('top-total-value', u.total_value),
      countCell('top-subscriptions', u.subscription_count),
    ),
  );
  if (rows.length === 0)
    rows.push(el('tr', {}, el('td', { colspan: '4', class: 'empty' }, 'No customers yet')));
  ui.top.replaceChildren(...rows);
}

function renderMargin({ report, error }) {
  if (error) {
    ui.marginResults.hidden = true;
    return showError(error, ui.marginMessage);
  }
  ui.marginMessage.hidden = true;
  ui.marginResults.hidden = false;
  const { totals } = report;
  for (const [testid, value] of [
    ['margin-revenue', totals.revenue],
    ['margin-cost', totals.cost],
    ['margin-margin', totals.margin],
    ['margin-unbilled', totals.unbilled_cost],
  ]) {
    const node = document.querySelector(`[data-testid="${testid}"]`);
    node.textContent = amount(value);
    node.title = value;
    node.dataset.value = value;
  }
  const percentNode = document.querySelector('[data-testid="margin-percent"]');
  percentNode.textContent = marginPercent(totals.margin_percent);
  percentNode.dataset.value = totals.margin_percent ?? '';

  const rows = report.rows.map((r) =>
    el(
      'tr',
      { 'data-testid': 'margin-row', 'data-metric': r.metric.code },
      el('td', { class: 'text', title: r.metric.code }, r.metric.name),
      amountCell('margin-row-revenue', r.revenue),
      amountCell('margin-row-cost', r.cost),
      amountCell('margin-row-margin', r.margin),
      el('td', { 'data-testid': 'margin-row-percent' }, marginPercent(r.margin_percent)),
      amountCell('margin-row-unbilled', r.unbilled_cost),
    ),
  );
  if (rows.length === 0)
    rows.push(el('tr', {}, el('td', { colspan: '6', class: 'empty' }, 'No usage in this range')));
  ui.marginRows.replaceChildren(...rows);

  const count = report.loss_leader_count;
  ui.lossCount.dataset.value = String(count);
  ui.lossCount.textContent =
    count === 0
      ? 'No customer cost more than they paid.'
      : `${formatCount(count)} ${count === 1 ? 'customer' : 'customers'} cost more than they paid` +
        (count > report.loss_leaders.length ? `; the ${report.loss_leaders.length} largest losses:` : ':');
  ui.lossRows.replaceChildren(
    ...report.loss_leaders.map((l) =>
      el(
        'tr',
        { 'data-testid': 'loss-leader-row' },
        el('td', { class: 'text' }, l.user.name),
        el('td', { class: 'text' }, l.user.email),
        amountCell('loss-revenue', l.revenue),
        amountCell('loss-cost', l.cost),
        amountCell('loss-margin', l.margin),
        el('td', { 'data-testid': 'loss-percent' }, marginPercent(l.margin_percent)),
      ),
    ),
  );
}

// ---- charts (x is the month's index; the axis labels it with the month)

const charts = new Map(); // container id → uPlot

function destroyCharts() {
  for (const chart of charts.values()) chart.destroy();
  charts.clear();
}

const chartMoney = new Intl.NumberFormat(
  'en-US',
  CURRENCY ? { style: 'currency', currency: CURRENCY } : { maximumFractionDigits: 2 },
);
const money = (value) => (value == null ? '—' : chartMoney.format(value));
const compact = (value) => value.toLocaleString('en', { notation: 'compact', maximumFractionDigits: 1 });
const pct = (value) => (value == null ? '—' : `${value.toFixed(2)}%`);

const MONTH_NAMES = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** An x axis with a tick per month, or every few months when they would not fit. */
function monthAxis(labels) {
  const tick = (i, first) => {
    const [year, month] = labels[i].split('-');
    const name = MONTH_NAMES[Number(month) - 1];
    return first || month === '01' ? `${name}\n${year}` : name;
  };
  return {
    splits: (u) => {
      const fit = Math.max(1, Math.floor((u.width - 120) / 40)); // ~40 px per label, minus the y axes
      const step = Math.ceil(labels.length / fit);
      return labels.map((_, i) => i).filter((i) => i % step === 0);
    },
    values: (_u, splits) => splits.map((i, n) => tick(i, n === 0)),
    grid: { show: false },
  };
}

function baseOptions(labels, series, axes, scales = {}) {
  return {
    height: CHART_HEIGHT,
    scales: { x: { time: false, range: () => [-0.5, labels.length - 0.5] }, ...scales },
    series: [{ label: 'Month', value: (_u, i) => (i == null ? '—' : (labels[i] ?? '—')) }, ...series],
    axes: [monthAxis(labels), ...axes],
  };
}

function drawChart(id, options, data) {
  charts.get(id)?.destroy();
  const container = $(id);
  container.replaceChildren();
  charts.set(id, new uPlot({ ...options, width: container.clientWidth }, data, container));
}

function renderCharts(months, churnByMonth) {
  const labels = months.map((m) => m.month);
  const xs = labels.map((_, i) => i);
  const line = (label, color, scale, format) => ({
    label,
    stroke: color,
    width: 2,
    scale,
    value: (_u, v) => format(v),
  });
  const axis = (scale, label, side, format) => ({
    scale,
    label,
    side,
    grid: { show: side === 3 },
    values: (_u, ticks) => ticks.map(format),
  });

  // ARR is 12 × MRR: its axis is the MRR axis times 12, so the two lines coincide and either
  // axis reads the same point. Revenue axes start at 0.
  const mrr = months.map((m) => Number(m.mrr));
  const top = Math.max(...mrr, 1) * 1.1;
  drawChart(
    'chart-revenue',
    baseOptions(
      labels,
      [line('MRR', COLORS.mrr, 'mrr', money), { ...line('ARR', COLORS.arr, 'arr', money), dash: [6, 4] }],
      [axis('mrr', 'MRR', 3, compact), axis('arr', 'ARR', 1, compact)],
      { mrr: { range: () => [0, top] }, arr: { range: () => [0, top * 12] } },
    ),
    [xs, mrr, months.map((m) => Number(m.arr))],
  );

  // uPlot has no stacking: each bar is drawn from 0 to a running total, the largest first, so the
  // later (smaller) ones cover it and each kind shows as its own segment. The legend shows the
  // month's own amount, as sent.
  const stack = [
    ['expansion', 'Expansion', ['new', 'reactivation', 'expansion']],
    ['reactivation', 'Reactivation', ['new', 'reactivation']],
    ['new', 'New', ['new']],
    ['churn', 'Churn', ['contraction', 'churn']],
    ['contraction', 'Contraction', ['contraction']],
  ];
  const bars = uPlot.paths.bars({ size: [0.6, 48] });
  drawChart(
    'chart-movements',
    baseOptions(
      labels,
      [
        ...stack.map(([kind, label]) => ({
          label,
          fill: COLORS[kind],
          stroke: COLORS[kind],
          paths: bars,
          points: { show: false },
          value: (_u, _v, _s, i) => (i == null ? '—' : (months[i]?.movements[kind].amount ?? '—')),
        })),
        { ...line('Net new', COLORS.net, 'y', money), width: 1.5, points: { show: true, size: 5 } },
      ],
      [axis('y', 'MRR change', 3, compact)],
    ),
    [
      xs,
      ...stack.map(([, , kinds]) =>
        // null, not 0: no zero-height bar drawn over the axis
        months.map((m) => kinds.reduce((sum, kind) => sum + Number(m.movements[kind].amount), 0) || null),
      ),
      months.map((m) => Number(m.net_new_mrr)),
    ],
  );

  // Rates arrive as fractions ("0.0525"); the chart shows percentages, with gaps where null.
  const rate = (field) =>
    labels.map((month) => {
      const value = churnByMonth.get(month)?.[field];
      return value == null ? null : Number(value) * 100;
    });
  const percentTick = (t) => `${t}%`;
  drawChart(
    'chart-retention',
    baseOptions(
      labels,
      [
        line('Customer churn rate', COLORS.churn, 'churn', pct),
        line('NRR', COLORS.nrr, 'nrr', pct),
        { ...line('NRR (trailing 12 months)', COLORS.nrr12, 'nrr', pct), dash: [6, 4] },
      ],
      [axis('churn', 'Churn rate', 3, percentTick), axis('nrr', 'NRR', 1, percentTick)],
      // Without churn the rate is flat at 0: still give its axis some height.
      { churn: { range: (_u, _min, max) => [0, Math.max(5, Math.ceil((max ?? 0) * 1.2))] } },
    ),
    [
      xs,
      rate('customer_churn_rate'),
      rate('net_revenue_retention'),
      rate('trailing_12m_net_revenue_retention'),
    ],
  );
}

// Charts follow their containers' width.
let resizeFrame = 0;
window.addEventListener('resize', () => {
  cancelAnimationFrame(resizeFrame);
  resizeFrame = requestAnimationFrame(() => {
    for (const [id, chart] of charts) chart.setSize({ width: $(id).clientWidth, height: CHART_HEIGHT });
  });
});

// ---- wiring

ui.keyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const key = ui.keyInput.value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORAGE, key);
  ui.keyInput.value = ''; // the key stays in storage only, not in the page
  clearError();
  void connect();
});
ui.forget.addEventListener('click', forgetKey);
ui.filters.addEventListener('change', () => void loadMetrics());
ui.filters.addEventListener('submit', (event) => {
  event.preventDefault(); // Enter in the region field: reload rather than navigate
  void loadMetrics();
});

setDefaultRange();
void connect();
