// The diff of two grid versions: /api/v1/versions/<a>/diff/<b> on a map (no tiles) and in a table.
(function () {
  "use strict";

  const { el, fetchJson } = window.gmPage;
  const LABELS = {
    added: "新增 added", removed: "删除 removed", reshaped: "边界调整 reshaped", renamed: "改名 renamed",
    modified: "属性变更 modified", unchanged: "未变 unchanged", gained: "增加部分 gained", lost: "减少部分 lost",
  };
  const LEVELS = ["区县 district", "街道/乡镇 street", "社区/村 community", "单元网格 unit grid"];
  const STYLES = {
    added: { color: "#1e8449", weight: 2, fillOpacity: 0.25 },
    removed: { color: "#c0392b", weight: 2, dashArray: "6 4", fillOpacity: 0.05 },
    reshaped: { color: "#d35400", weight: 2, fillOpacity: 0.06 },
    renamed: { color: "#2c6fbb", weight: 1.5, fillOpacity: 0.05 },
    modified: { color: "#2c6fbb", weight: 1.5, fillOpacity: 0.05 },
    // a boundary moved between two cells is one's gained piece and the other's lost one, drawn over each other:
    // green fill for gained, a red dashed outline for lost, so that both show
    gained: { stroke: false, fillColor: "#1e8449", fillOpacity: 0.55 },
    lost: { color: "#c0392b", weight: 2, dashArray: "3 3", fillColor: "#c0392b", fillOpacity: 0.2 },
  };
  // removed cells over added ones (a renumbered cell is both, in the same place), the gained and lost pieces on
  // top of the cells they belong to
  const DRAW_ORDER = ["added", "renamed", "modified", "reshaped", "removed", "gained", "lost"];
  const PIECES = ["gained", "lost"]; // a reshaped cell's pieces: drawn, not listed

  const statusEl = document.getElementById("diff-status");
  const table = document.getElementById("changes");
  const map = L.map("diff-map", { zoomSnap: 0.5 });
  L.control.scale({ imperial: false }).addTo(map); // no tiles: the platform works offline
  const cells = {}; // code → the cell's layer (not its gained/lost pieces)
  let selected = null;
  window.gridmap = { map, cells };

  const area = (v) => (v === null || v === undefined ? "—"
    : Number(v).toLocaleString("en-US", { maximumFractionDigits: 1 }));
  const pct = (v) => (v === null || v === undefined ? "—" : `${v > 0 ? "+" : ""}${Number(v).toFixed(2)}%`);

  function select(code, zoom) {
    if (selected) {
      cells[selected].setStyle({ weight: STYLES[cells[selected].feature.properties.change].weight });
      table.querySelector(`tr[data-code="${selected}"]`).classList.remove("selected");
    }
    selected = code;
    const layer = cells[code];
    layer.setStyle({ weight: 5 });
    const row = table.querySelector(`tr[data-code="${code}"]`);
    row.classList.add("selected");
    if (zoom) map.fitBounds(layer.getBounds(), { padding: [40, 40], maxZoom: 17, animate: false });
    else row.scrollIntoView({ block: "nearest" });
  }

  function row(p) {
    const renamed = p.changed && p.changed.name;
    const also = p.change !== "renamed" && renamed ? ` · ${LABELS.renamed}` : "";
    const others = Object.keys(p.changed || {}).filter((k) => k !== "name");
    return el("tr", { dataset: { code: p.code, change: p.change }, title: "点击在地图上显示 Click to show on the map" },
      el("td", {}, p.code),
      el("td", { class: "name" }, renamed ? `${renamed[0]} → ${renamed[1]}` : p.name),
      el("td", {}, LEVELS[p.level] || String(p.level)),
      el("td", { class: `change-${p.change}` }, LABELS[p.change] + also,
        others.length ? el("span", { class: "muted" }, ` (${others.join(", ")})`) : null),
      el("td", { class: "num" }, area(p.area_before_m2)),
      el("td", { class: "num" }, area(p.area_after_m2)),
      el("td", { class: "num", dataset: { field: "area_change_pct" } }, pct(p.area_change_pct)));
  }

  function render(fc) {
    const features = [...fc.features].sort((f, g) =>
      DRAW_ORDER.indexOf(f.properties.change) - DRAW_ORDER.indexOf(g.properties.change));
    const layer = L.geoJSON(features, {
      style: (f) => STYLES[f.properties.change],
      onEachFeature: (f, l) => {
        const p = f.properties;
        // a node, not a string: Leaflet puts a string into the tooltip as HTML, and names are users' text
        l.bindTooltip(() => el("span", {}, `${LABELS[p.change]} ${p.code} ${p.name}`), { sticky: true });
        if (!PIECES.includes(p.change)) cells[p.code] = l;
        l.on("click", () => select(p.code, false));
      },
    }).addTo(map);
    if (features.length) map.fitBounds(layer.getBounds(), { padding: [20, 20], animate: false });
    else map.setView([34.75, 113.65], 9);

    const changed = fc.features.filter((f) => !PIECES.includes(f.properties.change));
    table.tBodies[0].replaceChildren(...changed.map((f) => row(f.properties)));
    table.hidden = changed.length === 0;
    table.tBodies[0].addEventListener("click", (e) => {
      const tr = e.target.closest("tr[data-code]");
      if (tr) select(tr.dataset.code, true);
    });

    const counts = fc.counts || {};
    document.getElementById("summary").replaceChildren(...Object.keys(LABELS).filter((k) => k in counts)
      .map((k, i) => el("span", { class: `change-${k}`, dataset: { count: k } },
        i ? " · " : "", `${LABELS[k]} ${counts[k]}`)));
    statusEl.textContent = changed.length ? `共 ${changed.length} 个网格有变更 ${changed.length} changed cell(s).`
      : "两个版本没有差别。No differences.";
  }

  async function start() {
    statusEl.textContent = "加载中… Loading…";
    try {
      render(await fetchJson(table.dataset.url));
    } catch (err) {
      map.setView([34.75, 113.65], 9);
      statusEl.textContent = "加载失败 Could not load: " + err.message;
      statusEl.classList.add("error");
    }
  }

  start().finally(() => { document.body.dataset.ready = "true"; });
})();
