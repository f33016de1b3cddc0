// The worklist: a unit's open cases from /api/v1/cases, overdue first, as the API orders them.
(function () {
  "use strict";

  const { STATES, LEVELS, el, chinaTime, unitName, fetchJson } = window.gmPage;
  const LIMIT = 500;
  const statusEl = document.getElementById("worklist-status");
  const table = document.getElementById("worklist");

  // A worklist item is an incident document; the city-wide overdue list has flat rows: one shape for both.
  function normalise(item) {
    if (item.case) {
      return { id: item.id, category: item.category, status: item.status, level: item.case.level,
        holder: item.case.holder, due_at: item.case.due_at, overdue: item.case.overdue, reported_at: item.reported_at };
    }
    return { id: item.public_id, category: null, status: item.status, level: item.case_level,
      holder: item.holder, due_at: item.due_at, overdue: true, reported_at: null };
  }

  function worklistLink(unit) {
    return unit ? el("a", { href: "/worklist?" + new URLSearchParams({ unit, scope: "mine" }) }, unitName(unit)) : "—";
  }

  function row(c) {
    const deadline = [chinaTime(c.due_at)];
    if (c.overdue) deadline.push(" ", el("span", { class: "overdue-mark" }, "超期 overdue"));
    return el("tr", { class: c.overdue ? "overdue" : null, dataset: { id: c.id } },
      el("td", {}, el("a", { href: "/cases/" + encodeURIComponent(c.id) }, c.id)),
      el("td", {}, c.category ? [c.category.name_zh, " ", el("span", { class: "en" }, c.category.name_en)] : "—"),
      el("td", {}, STATES[c.status] || c.status),
      el("td", {}, LEVELS[c.level] || c.level || "—"),
      el("td", {}, worklistLink(c.holder)),
      el("td", {}, deadline),
      el("td", {}, chinaTime(c.reported_at)));
  }

  async function start() {
    const asked = new URLSearchParams(location.search);
    const unit = (asked.get("unit") || "").trim();
    const overdue = !["", "0", "false"].includes(asked.get("overdue") || "");
    if (!unit && !overdue) {
      statusEl.textContent = "请填写单位。Name a unit to see its worklist.";
      return;
    }
    const params = new URLSearchParams({ limit: String(LIMIT) });
    if (unit) { params.set("unit", unit); params.set("scope", asked.get("scope") || "mine"); }
    if (overdue) params.set("overdue", "1");
    statusEl.textContent = "加载中… Loading…";
    try {
      const body = await fetchJson("/api/v1/cases?" + params);
      const items = body.cases.map(normalise);
      table.tBodies[0].replaceChildren(...items.map(row));
      table.hidden = items.length === 0;
      const late = items.filter((c) => c.overdue).length;
      statusEl.textContent = items.length
        ? `共 ${items.length} 件，超期 ${late} 件。${items.length} case(s), ${late} overdue.` +
          (items.length === LIMIT ? ` 只显示前 ${LIMIT} 件 first ${LIMIT} shown.` : "")
        : "没有待办案件。No open cases here.";
    } catch (err) {
      statusEl.textContent = "加载失败 Could not load: " + err.message;
      statusEl.classList.add("error");
    }
  }

  start().finally(() => { document.body.dataset.ready = "true"; });
})();
