// The grid map: districts and streets load whole; communities and unit grids load for the view.
(function () {
  "use strict";

  const LEVELS = {
    0: { name: "区县", style: { color: "#1b3a6b", weight: 3, fill: false }, minZoom: 0 },
    1: { name: "街道/乡镇", style: { color: "#c0392b", weight: 2, fillOpacity: 0.04 }, minZoom: 0 },
    2: { name: "社区/村", style: { color: "#27864a", weight: 1.2, fillOpacity: 0.04 }, minZoom: 11 },
    3: { name: "单元网格", style: { color: "#7d5ba6", weight: 0.7, fillOpacity: 0.06 }, minZoom: 13 },
  };
  const POSTS = {
    street_head: "街道/乡镇负责人", community_secretary: "书记", community_director: "主任",
    grid_head: "网格长", grid_worker: "网格员",
  };

  const map = L.map("map", { preferCanvas: true, zoomSnap: 0.5 }).setView([34.75, 113.65], 9);
  window.gridmap = { map }; // for the browser tests and the console
  const layers = {};
  const statusEl = document.getElementById("status");
  const loaded = {}; // level → bbox key of what is shown, so a pan inside it fetches nothing
  let versionId = null;

  function text(value) { return value === null || value === undefined ? "—" : String(value); }

  function showCell(p) {
    const box = document.getElementById("cell");
    box.replaceChildren();
    const h = document.createElement("h2");
    h.textContent = p.name;
    box.append(h);
    const table = document.createElement("table");
    const rows = [["编码 Code", p.code], ["层级 Level", LEVELS[p.level].name], ["上级 Parent", p.parent_code],
      ["面积 Area", (p.area_m2 / 1e6).toFixed(3) + " km²"], ["人口 Population", p.population],
      ["类型 Kind", p.kind === "special" ? "专属网格 special" : "常规 regular"]];
    for (const s of p.staff) rows.push([POSTS[s.post] || s.post, s.name + " " + s.phone]);
    for (const [k, v] of rows) {
      const tr = table.insertRow();
      tr.insertCell().textContent = k;
      tr.insertCell().textContent = text(v);
    }
    box.append(table);
    box.hidden = false;
  }

  function makeLayer(level) {
    return L.geoJSON(null, {
      style: LEVELS[level].style,
      onEachFeature: (f, layer) => {
        layer.on("click", (e) => { L.DomEvent.stopPropagation(e); showCell(f.properties); });
        // a node, not a string: Leaflet puts a string into the tooltip as HTML, and names are users' text
        layer.bindTooltip(() => document.createTextNode(f.properties.name), { sticky: true });
      },
    });
  }

  async function fetchJson(url) {
    const res = await fetch(url);
    const body = await res.json();
    if (!res.ok) throw new Error(body.message || res.statusText);
    return body;
  }

  async function load(level, bbox) {
    const params = new URLSearchParams({ level: String(level), version: String(versionId) });
    if (bbox) params.set("bbox", bbox);
    const fc = await fetchJson("/api/v1/grids?" + params);
    layers[level].clearLayers();
    layers[level].addData(fc);
    if (fc.truncated) statusEl.textContent = "视图内网格过多，请放大。Too many cells in view: zoom in.";
    return fc;
  }

  function enabled(level) { return document.querySelector(`input[data-level="${level}"]`).checked; }

  // One refresh at a time, so that overlapping moves never race for the same layer.
  let queue = Promise.resolve();
  function refresh() {
    document.body.dataset.ready = "false";
    queue = queue.then(refreshNow);
    return queue;
  }

  async function refreshNow() {
    const z = map.getZoom();
    const b = map.getBounds().pad(0.2);
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(",");
    for (const level of [2, 3]) {
      const want = enabled(level) && z >= LEVELS[level].minZoom;
      if (!want) { layers[level].remove(); loaded[level] = null; continue; }
      layers[level].addTo(map);
      const inside = loaded[level] && loaded[level].contains(map.getBounds());
      if (!inside) {
        loaded[level] = b;
        try { await load(level, bbox); } catch (err) { statusEl.textContent = "加载失败 " + err.message; }
      }
    }
    statusEl.textContent = statusEl.textContent.startsWith("视图") && z >= 13 ? statusEl.textContent : "";
    document.body.dataset.ready = "true";
  }

  async function start() {
    const health = await fetchJson("/health").catch((err) => ({ status: err.message }));
    const v = document.getElementById("version");
    if (health.active_version == null) {
      v.textContent = "没有生效的网格版本 No active grid version: " + health.status;
      document.body.dataset.ready = "true";
      return;
    }
    versionId = health.active_version;
    v.textContent = `生效版本 Active version ${versionId} · PostGIS ${health.postgis}`;
    for (const [level, n] of Object.entries(health.cells)) {
      const el = document.querySelector(`[data-count="${level}"]`);
      if (el) el.textContent = `(${n.toLocaleString("zh-CN")})`;
    }
    for (const level of [0, 1, 2, 3]) layers[level] = makeLayer(level);
    const districts = await load(0);
    const streets = await load(1);
    layers[1].addTo(map);
    layers[0].addTo(map);
    // the districts, or for a user whose scope is a street only its street (gis/access.py: no cell above it)
    const top = districts.features.length ? layers[0] : streets.features.length ? layers[1] : null;
    if (top) map.fitBounds(top.getBounds(), { animate: false });
    document.querySelectorAll("input[data-level]").forEach((box) => box.addEventListener("change", () => {
      const level = Number(box.dataset.level);
      if (level < 2) { if (box.checked) layers[level].addTo(map); else layers[level].remove(); }
      refresh();
    }));
    map.on("moveend", refresh);
    await refresh();
  }

  start();
})();
