// The dashboard page: reads /api/summary (the findings log, summarised by the server) every 5 s and renders it.
// Data is written with textContent only: nothing from the log is ever interpreted as HTML.
'use strict';
(function () {
  const CLASSES = [
    ['attack', '#d92d20'],
    ['vulnerability', '#f79009'],
    ['policy', '#7a5af8'],
    ['step-up', '#1570ef'],
    ['anomaly', '#12b76a'],
  ];
  let chart;

  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }

  function fill(id, rows, columns) {
    const body = document.querySelector(`#${id} tbody`);
    body.replaceChildren();
    if (rows.length === 0) {
      const tr = el('tr');
      const td = el('td', 'none yet', 'empty');
      td.colSpan = columns.length;
      tr.append(td);
      body.append(tr);
      return;
    }
    for (const row of rows) {
      const tr = el('tr');
      for (const [get, numeric, code] of columns) {
        const td = el('td', undefined, numeric ? 'n' : undefined);
        const value = get(row);
        if (code) td.append(el('code', value));
        else td.textContent = value === undefined ? '' : String(value);
        tr.append(td);
      }
      body.append(tr);
    }
  }

  const short = (iso) => (iso ? iso.slice(0, 19).replace('T', ' ') : '');

  function drawChart(timeline) {
    let xs = timeline.buckets.map((b) => Date.parse(b.start) / 1000);
    let ys = CLASSES.map(([c]) => timeline.buckets.map((b) => b[c]));
    // A run of a few seconds fills one or two buckets: give the axis a minute around them (empty points), or
    // uPlot stretches a single instant over years.
    if (xs.length > 0 && xs[xs.length - 1] - xs[0] < 60) {
      xs = [xs[0] - 30, ...xs, xs[xs.length - 1] + 30];
      ys = ys.map((y) => [null, ...y, null]);
    }
    const data = [xs, ...ys];
    const box = document.getElementById('chart');
    const width = Math.max(400, box.clientWidth - 16);
    if (chart) {
      chart.setData(data);
      return;
    }
    chart = new uPlot(
      {
        width,
        height: 240,
        scales: { x: { time: true } },
        axes: [{}, { label: 'per bucket' }],
        series: [{}, ...CLASSES.map(([label, stroke]) => ({ label, stroke, width: 2, fill: `${stroke}22`, points: { show: true, size: 5 } }))],
      },
      data,
      box,
    );
  }

  async function refresh() {
    const res = await fetch('/api/summary', { credentials: 'same-origin' });
    if (!res.ok) {
      document.getElementById('source').textContent = `cannot read the findings: HTTP ${res.status}`;
      return;
    }
    const { file, generatedAt, summary: s } = await res.json();
    document.getElementById('source').textContent = `${file} — ${s.records} records${s.from ? `, ${short(s.from)} to ${short(s.to)} UTC` : ''} — updated ${short(generatedAt)} UTC`;
    for (const [c] of CLASSES) document.getElementById(`count-${c}`).textContent = String(s.byClass[c] || 0);
    document.getElementById('bucket').textContent = `(${s.timeline.bucketSeconds} s buckets)`;
    drawChart(s.timeline);
    fill('top-rules', s.topRules, [[(r) => r.rule], [(r) => r.count, true]]);
    fill('top-routes', s.topRoutes, [[(r) => r.route], [(r) => r.count, true]]);
    fill('vulnerable', s.vulnerableRoutes, [
      [(v) => v.route],
      [(v) => v.rule],
      [(v) => v.count, true],
      [(v) => short(v.firstSeen)],
      [(v) => short(v.lastSeen)],
      [(v) => [v.example.source, v.example.text].filter(Boolean).join(' → '), false, true],
    ]);
    fill('step-up', s.stepUp, [
      [(r) => r.rule],
      [(r) => r.challenges, true],
      [(r) => r.challengesPerHour, true],
      [(r) => r.verified, true],
      [(r) => r.failed, true],
      [(r) => `${(r.failureRate * 100).toFixed(1)} %`, true],
      [(r) => r.lockedOut, true],
      [(r) => r.grantsUsed, true],
    ]);
    fill('flagged', s.flaggedAccounts, [[(a) => a.user], [(a) => a.reasons.join(', ')], [(a) => short(a.lastSeen)]]);
    fill('anomalies', s.anomalies, [
      [(a) => short(a.time)],
      [(a) => a['stepguard.anomaly.kind']],
      [(a) => [a['security_rule.name'], a['http.route'], a['user.id']].filter(Boolean).join(' · ')],
      [(a) => a['stepguard.anomaly.expected'], true],
      [(a) => a['stepguard.anomaly.observed'], true],
    ]);
    document.body.dataset.loaded = 'true';
  }

  refresh().catch((e) => (document.getElementById('source').textContent = `error: ${e.message}`));
  setInterval(() => refresh().catch(() => undefined), 5000);
})();
