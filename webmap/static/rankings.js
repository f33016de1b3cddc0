// The rankings: /api/v1/stats for this page's level and period, ranked by score, with the weights used.
(function () {
  "use strict";

  const { el, chinaTime, fetchJson } = window.gmPage;
  const WEIGHT_NAMES = {
    closure_rate: "结案率 closure rate", on_time_rate: "按期结案率 on-time closure rate",
    rework_rate: "1 − 返工率 rework rate", extension_rate: "1 − 延期率 extension rate",
  };
  // [field, heading, how to show it]
  const COUNT = (v) => String(v);
  const RATE = (v) => (v === null || v === undefined ? "—" : `${(100 * v).toFixed(1)}%`);
  const HOURS = (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(1));
  const FIGURES = [
    ["received", "收到 received", COUNT], ["opened", "立案 opened", COUNT], ["voided", "作废 voided", COUNT],
    ["due", "到期 due", COUNT], ["closed", "结案 closed", COUNT],
    ["closure_rate", "结案率 closure", RATE], ["on_time_rate", "按期结案率 on time", RATE],
    ["rework_rate", "返工率 rework", RATE], ["extension_rate", "延期率 extension", RATE],
    ["escalations", "上报 escalations", COUNT],
    ["handling_mean_h", "平均用时 mean h", HOURS], ["handling_p90_h", "P90 用时 h", HOURS],
  ];
  const statusEl = document.getElementById("rankings-status");
  const table = document.getElementById("rankings");

  function scoreCell(score) {
    if (score === null || score === undefined) {
      return el("td", { class: "score-cell muted", title: "无到期案件 nothing fell due" }, "—");
    }
    const width = Math.max(0, Math.min(100, score));
    return el("td", { class: "score-cell" },
      el("span", { class: "score-bar", style: `width: ${width}px`, "aria-hidden": "true" }),
      el("span", { class: "score" }, Number(score).toFixed(1)));
  }

  function render(body, level) {
    const post = level === "post";
    const heads = ["名次 rank", "编码 code", post ? "姓名 name" : "名称 name", ...(post ? ["岗位 post"] : []),
      ...FIGURES.map((f) => f[1]), "得分 score"];
    table.tHead.rows[0].replaceChildren(...heads.map((h) => el("th", {}, h)));
    const row = (r) => el("tr", { dataset: { rank: String(r.rank), code: r.code } },
      el("td", { class: "num rank" }, String(r.rank)),
      el("td", {}, r.code),
      el("td", { class: "name" }, r.name || "—"),
      post ? el("td", {}, r.post_name || r.post || "—", " ", el("span", { class: "muted" }, r.cell_name || "")) : null,
      FIGURES.map(([field, , show]) => el("td", { class: "num", dataset: { field } }, show(r[field]))),
      scoreCell(r.score));
    table.tBodies[0].replaceChildren(...body.rows.map(row));
    table.hidden = body.rows.length === 0;

    // in the order of the score's definition (the JSON object's keys arrive sorted)
    const given = body.weights || {};
    const weights = [...Object.keys(WEIGHT_NAMES), ...Object.keys(given).filter((k) => !(k in WEIGHT_NAMES))]
      .filter((k) => k in given).map((k) => [k, given[k]]);
    const total = weights.reduce((sum, [, w]) => sum + Number(w), 0);
    document.querySelector("#weights tbody").replaceChildren(...weights.map(([name, w]) => el("tr", {},
      el("td", {}, WEIGHT_NAMES[name] || name),
      el("td", { class: "num", dataset: { weight: name } }, String(w)),
      el("td", { class: "num muted" }, total ? `${((100 * w) / total).toFixed(0)}%` : "—"))));

    const period = body.period || {};
    document.getElementById("period-label").textContent =
      `周期 Period ${period.label || ""}: ${chinaTime(period.from)} – ${chinaTime(period.to)}（不含 exclusive）` +
      (body.as_of ? ` · 统计至 as of ${chinaTime(body.as_of)}` : "");
    statusEl.textContent = body.rows.length ? `共 ${body.rows.length} 个单位 ${body.rows.length} unit(s).`
      : "没有单位。No units at this level.";
  }

  async function start() {
    // the page's query as the server settled it (defaults filled in), the same the CSV link has
    const params = new URLSearchParams(table.dataset.query);
    params.set("format", "json");
    statusEl.textContent = "加载中… Loading…";
    try {
      render(await fetchJson("/api/v1/stats?" + params), params.get("level"));
    } catch (err) {
      statusEl.textContent = "加载失败 Could not load: " + err.message;
      statusEl.classList.add("error");
    }
  }

  start().finally(() => { document.body.dataset.ready = "true"; });
})();
