"""The era timeline (§6): 3D generation from DreamFusion to TRELLIS, filterable by strategy.

The data is :data:`gsbook.era.ERA` (re-exported here with :class:`Entry`, :data:`STRATEGIES`
and :func:`months_between`): one entry per system, with its first arXiv date, venue,
input → output, strategy and the time per asset *as its paper or official code reports it*,
with what that time covers (``task``), the hardware where the source names it, and the source.

:func:`timeline_html` draws it as self-contained HTML (a dated strip and a table) with
client-side strategy filters, so it works the same in JupyterLab and on the static website;
:func:`speed_plot` is the matplotlib view of time per asset against date.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import uuid
from dataclasses import asdict

from gsbook.era import ERA, SHORT_ZH, STRATEGIES, TASKS, Entry, months_between

__all__ = ["Entry", "ERA", "STRATEGIES", "months_between", "timeline_html", "speed_plot"]


_JS = """
(function () {
  var root = document.getElementById(%(id)s);
  if (!root || root.dataset.ready) return;
  root.dataset.ready = "1";
  var boxes = root.querySelectorAll("input[type=checkbox]");
  var out = root.querySelector(".gsbook-era-count");
  function update() {
    var on = {};
    boxes.forEach(function (b) { on[b.value] = b.checked; });
    var items = root.querySelectorAll("[data-strategy]:not(input)"), shown = 0;
    items.forEach(function (el) {
      var vis = !!on[el.getAttribute("data-strategy")];
      el.style.display = vis ? "" : "none";
      if (vis && el.tagName === "TR") shown++;
    });
    out.textContent = shown + " / " + %(n)d;
  }
  boxes.forEach(function (b) { b.addEventListener("change", update); });
  update();
})();
"""


def timeline_html(entries: list[Entry] | None = None) -> str:
    """Self-contained HTML: strategy filters, a dated strip, and the table of entries."""
    entries = sorted(entries or ERA, key=lambda e: e.date)
    pid = "gsbook-era-" + uuid.uuid4().hex[:10]
    first, last = entries[0].day, entries[-1].day
    start = dt.date(first.year, first.month, 1)
    end = dt.date(last.year + (last.month == 12), last.month % 12 + 1, 1)
    span = (end - start).days
    W, H, pad, levels = 760, 190, 24, 6

    def x(day: dt.date) -> float:
        return pad + (W - 2 * pad) * (day - start).days / span

    ticks = []
    y0 = start.year
    for year in range(y0, end.year + 1):
        for month in (1, 4, 7, 10):
            d = dt.date(year, month, 1)
            if start <= d <= end:
                ticks.append(f'<line x1="{x(d):.1f}" x2="{x(d):.1f}" y1="{H - 28}" y2="{H - 22}" stroke="#888"/>'
                             f'<text x="{x(d):.1f}" y="{H - 8}" font-size="11" text-anchor="middle" fill="#555">'
                             f'{year}-{month:02d}</text>')
    def anchor(cx: float) -> str:   # labels near the right edge go to the left of their dot
        return ' text-anchor="end" dx="-16"' if cx > W - 110 else ""

    dots = []
    for i, e in enumerate(entries):
        color = STRATEGIES[e.strategy][2]
        cx, cy = x(e.day), 16 + (i % levels) * 24
        dots.append(f'<g data-strategy="{e.strategy}"><title>{html.escape(e.name)} · {e.date} · {html.escape(e.time)}</title>'
                    f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{cy + 5}" y2="{H - 28}" stroke="{color}" stroke-opacity=".35"/>'
                    f'<circle cx="{cx:.1f}" cy="{cy}" r="5" fill="{color}"/>'
                    f'<text x="{cx + 8:.1f}" y="{cy + 4}" font-size="12" fill="#222"{anchor(cx)}>{html.escape(e.name)}</text></g>')
    boxes = "".join(
        f'<label style="margin-right:1em;white-space:nowrap"><input type="checkbox" value="{k}" checked> '
        f'<span style="color:{c};font-weight:600">●</span> {html.escape(en)} · {html.escape(zh)}</label>'
        for k, (en, zh, c) in STRATEGIES.items())
    def times(e: Entry) -> str:
        out = []
        for t in e.timings:
            what = "" if t.task == "2D/multi-view prior" else \
                f'<br><span style="font-size:.85em;color:#666">{html.escape(t.task)}' + \
                (f", {html.escape(t.scope)}" if t.scope else "") + f" · {html.escape(TASKS[t.task])}</span>"
            out.append(f"{html.escape(t.time)}{what}")
        return "<br>".join(out)

    rows = "".join(
        f'<tr data-strategy="{e.strategy}"><td style="white-space:nowrap">{e.date[:7]}<br>'
        f'<span style="color:#666">{html.escape(e.venue)}</span></td>'
        f'<td><b>{html.escape(e.name)}</b><br><span style="font-size:.9em;color:#555">{html.escape(e.note)}</span></td>'
        f'<td>{html.escape(e.io)}</td>'
        f'<td style="white-space:nowrap"><span style="color:{STRATEGIES[e.strategy][2]}">●</span> {e.strategy} · '
        f'{SHORT_ZH[e.strategy]}</td>'
        f'<td>{times(e)}</td>'
        f'<td>{html.escape(e.hardware) or "—"}</td>'
        f'<td style="font-size:.8em;color:#555">{html.escape(e.source)}</td></tr>'
        for e in entries)
    data = json.dumps([asdict(e) for e in entries])
    return f"""
<div class="gsbook-era" id="{pid}" data-figure="era_timeline">
  <div style="margin:.3em 0">{boxes} <span style="color:#555">showing · 显示 <b class="gsbook-era-count">{len(entries)} / {len(entries)}</b></span></div>
  <svg viewBox="0 0 {W} {H}" style="width:100%;max-width:{W}px;height:auto" role="img"
       aria-label="timeline of 3D generation methods">
    <line x1="{pad}" x2="{W - pad}" y1="{H - 28}" y2="{H - 28}" stroke="#888"/>{''.join(ticks)}{''.join(dots)}
  </svg>
  <div style="overflow-x:auto"><table class="table" style="font-size:.9em">
    <thead><tr><th>date, venue · 日期、会议</th><th>method · 方法</th><th>input → output · 输入 → 输出</th>
    <th>strategy · 路线</th><th>time per asset, as reported, and what it covers · 论文报告的单资产耗时及其范围</th>
    <th>hardware · 硬件</th><th>source · 出处</th></tr></thead>
    <tbody>{rows}</tbody></table></div>
  <script type="application/json" class="gsbook-era-data">{data}</script>
  <script>{_JS % {"id": json.dumps(pid), "n": len(entries)}}</script>
</div>"""


def speed_plot(entries: list[Entry] | None = None, ax=None):
    """Time per asset (log scale) against date, for the entries that report a number."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    entries = [e for e in (entries or ERA) if e.seconds is not None]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    for key, (en, _, color) in STRATEGIES.items():
        pts = [e for e in entries if e.strategy == key]
        if pts:
            ax.scatter([e.day for e in pts], [e.seconds for e in pts], color=color, label=en, zorder=3)
            for e in pts:
                label = e.name + (" (reconstruction only)" if e.task == "reconstruction only" else "")
                ax.annotate(label, (e.day, e.seconds), xytext=(4, 4), textcoords="offset points", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("seconds per asset (as reported)")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return ax
