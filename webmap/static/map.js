// The command room's live map: a choropleth of report density per grid cell from vector tiles, drill-down
// from streets to unit grids, a cell's card, incidents as clustered markers at close zoom, and the live feed
// (server-sent events) that moves the counts and the markers as reports and status changes come in.
(function () {
  "use strict";
  const CONFIG = JSON.parse(document.getElementById("map-config").textContent);
  const T = CONFIG.text;
  const { el, chinaTime, fetchJson } = window.gmPage;
  const LEVEL_KEYS = ["district_id", "street_id", "community_id", "grid_id"];  // a live event's routing
  const WINDOW_HOURS = { "1h": 1, "7d": 7 * 24, "30d": 30 * 24, "90d": 90 * 24 };
  const REFRESH_MS = 5 * 60 * 1000;  // redraw from the server now and then: relative windows slide
  const CLASS_CHECK_MS = 3000;        // how long after a live change the classes are looked at again
  // light to dark; k classes take k colours spread over it
  const PALETTE = ["#fff3c4", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026", "#8c0026",
                   "#5a0018"];
  const ZERO = "#f4f4f1", NO_DATA = "#cfd6dc";

  const form = document.getElementById("filters");
  const statusLine = document.getElementById("status");
  const gcj = CONFIG.basemap.crs === "gcj02";

  const map = L.map("map", { crs: gcj ? L.CRS.GCJ02 : L.CRS.EPSG3857, zoomControl: true, preferCanvas: true, maxZoom: 19,
                             attributionControl: Boolean(CONFIG.basemap.attribution) });
  for (const layer of CONFIG.basemap.layers) {
    L.tileLayer(layer.url, { subdomains: layer.subdomains, attribution: CONFIG.basemap.attribution,
                             maxZoom: 19 }).addTo(map);
  }
  function cityBounds() { return [[CONFIG.bounds[1], CONFIG.bounds[0]], [CONFIG.bounds[3], CONFIG.bounds[2]]]; }
  if (CONFIG.bounds) map.fitBounds(cityBounds());
  else map.setView([34.75, 113.65], 10);

  const state = {
    level: deepestLevelAt(map.getZoom(), 1),
    trail: [],          // the cells drilled into, coarsest first: {code, name, level, bbox}
    query: null,        // the filters as query parameters, fixed for one drawing (rev)
    since: null, until: null, categories: [], statuses: [],
    breaks: [], measure: "count", rev: 0,
    props: new Map(),   // cell id → its properties as drawn, moved by the live feed
    selected: null,     // code of the cell whose card is shown
    inside: null,       // drilled down: the codes of the cells under the chosen one; others are greyed
    liveAfter: CONFIG.live_cursor,  // events after this one are not in the tiles yet
  };
  let cells = null;   // the vector tile layer on the map
  const drawings = new Map();  // rev → its tile layer, while on the map
  const markers = L.markerClusterGroup({ iconCreateFunction: clusterIcon, maxClusterRadius: 50 }).addTo(map);
  const legend = L.control({ position: "bottomright" });
  legend.onAdd = () => el("div", { class: "legend", id: "legend" });
  legend.addTo(map);

  // --- filters --------------------------------------------------------------------------------------

  function chinaDate(ms) { return new Date(ms + 8 * 3600e3).toISOString().slice(0, 10); }

  function nextDay(date) { return chinaDate(Date.parse(date + "T00:00:00+08:00") + 24 * 3600e3); }

  // Reads the form once per drawing, so that every tile of it counts the same window.
  function readFilters() {
    const q = new URLSearchParams(), w = form.window.value, now = Date.now();
    state.since = state.until = null;
    if (w === "range") {
      if (form.from.value) state.since = Date.parse(form.from.value + "T00:00:00+08:00");
      if (form.to.value) state.until = Date.parse(nextDay(form.to.value) + "T00:00:00+08:00");
    } else if (w === "today") {
      state.since = Date.parse(chinaDate(now) + "T00:00:00+08:00");
    } else {
      state.since = Math.floor((now - WINDOW_HOURS[w] * 3600e3) / 60e3) * 60e3;  // whole minutes: cacheable
    }
    if (state.since !== null) q.set("since", new Date(state.since).toISOString());
    if (state.until !== null) q.set("until", new Date(state.until).toISOString());
    state.categories = form.category.value ? [form.category.value] : [];
    if (state.categories.length) q.set("category", state.categories.join(","));
    state.statuses = [...form.querySelectorAll("input[name=status]:checked")].map((i) => i.value);
    if (state.statuses.length) q.set("status", state.statuses.join(","));
    state.measure = form.measure.value;
    state.query = q;
  }

  function parentCode() { return state.trail.length ? state.trail[state.trail.length - 1].code : null; }

  // --- the choropleth -------------------------------------------------------------------------------

  function value(p) {
    if (state.measure === "per_km2") return p.area_km2 ? p.count / p.area_km2 : null;
    if (state.measure === "per_1000") return p.population ? p.count / p.population * 1000 : null;
    return p.count;
  }

  function colours() {
    const n = state.breaks.length;
    const last = PALETTE.length - 1;
    return state.breaks.map((_, i) => PALETTE[n === 1 ? last : Math.round(i * last / (n - 1))]);
  }

  function colourOf(v) {
    if (v === null || v === undefined) return NO_DATA;
    if (v === 0) return ZERO;
    const i = state.breaks.findIndex((b) => v <= b);
    return colours()[i < 0 ? state.breaks.length - 1 : i];
  }

  function cellStyle(p) {
    if (state.inside && !state.inside.has(p.code)) {
      return { fill: true, fillColor: "#9aa", fillOpacity: 0.06, color: "#9aa", weight: 0.4, opacity: 0.4 };
    }
    const selected = p.code === state.selected;
    // overdue cases outline their community or unit grid in red; a street or district almost always has
    // one somewhere, so there the card says how many instead
    const late = p.overdue > 0 && p.level >= 2;
    return { fill: true, fillColor: colourOf(value(p)), fillOpacity: 0.72,
             color: selected ? "#0b57d0" : late ? "#b3001b" : "#5b6470",
             weight: selected ? 3 : late ? 1.6 : 0.6, opacity: 0.9 };
  }

  // One drawing: the filters read once, the class breaks, then the tiles; a new drawing replaces the last.
  async function drawCells() {
    readFilters();
    const rev = ++state.rev;
    drawLevelButtons();
    loadMarkers();
    try {
      await loadClasses();
    } catch (err) {
      say(`${T.error}: ${err.message}`);
      return;
    }
    if (rev !== state.rev) return;  // a newer drawing started meanwhile
    state.props = new Map();
    const q = new URLSearchParams(state.query);
    if (gcj) q.set("crs", "gcj02");
    if (CONFIG.past) q.set("version", CONFIG.version);
    q.set("rev", rev);  // a new drawing is never answered from the browser's cache of the last one
    const fresh = L.vectorGrid.protobuf(`/tiles/${state.level}/{z}/{x}/{y}.pbf?${q}`, {
      // SVG, not canvas: VectorGrid's canvas tiles repaint a restyled cell (live counts, the selection) over
      // itself without clearing it first; a few thousand paths at the levels' zooms are no load for SVG
      rendererFactory: L.svg.tile, interactive: true, minZoom: CONFIG.min_zoom[state.level],
      vectorTileLayerStyles: { cells: (p) => cellStyle(p) },
      getFeatureId: (f) => { if (!state.props.has(f.id)) state.props.set(f.id, f.properties); return f.id; },
    });
    // a click on the drawing being replaced (still shown till the new one loads) is not for this level
    fresh.on("click", (e) => { if (e.layer.properties.level === state.level) onCellClick(e.layer.properties); });
    drawings.set(rev, fresh);
    fresh.once("load", () => {
      // the older drawings go only once the new one is there: no blank flash on the wall screen
      for (const [older, layer] of drawings) {
        if (older < rev) { map.removeLayer(layer); drawings.delete(older); }
      }
      cells = fresh;
      state.drawn = rev;
      document.body.dataset.ready = "true";
    });
    fresh.addTo(map);
    if (!cells) cells = fresh;
  }

  function classesQuery() {
    const q = new URLSearchParams(state.query);
    q.set("level", state.level);
    q.set("measure", state.measure);
    q.set("scheme", form.scheme.value);
    q.set("k", 5);
    if (parentCode()) q.set("parent", parentCode());
    if (CONFIG.past) q.set("version", CONFIG.version);
    return q;
  }

  async function loadClasses() {
    const body = await fetchJson("/api/v1/map/classes?" + classesQuery());
    state.breaks = body.breaks;
    state.inside = body.codes ? new Set(body.codes) : null;  // drilled down: the cells under the chosen one
    drawLegend(body);
  }

  // Restyles the drawn cells of a code (the selection outline) without fetching a tile.
  function restyle(code) {
    if (!cells || !code) return;
    for (const [id, p] of state.props) if (p.code === code) cells.setFeatureStyle(id, cellStyle(p));
  }

  function number(v) {
    if (state.measure === "count") return String(Math.round(v));
    return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  }

  function drawLegend(body) {
    const box = document.getElementById("legend");
    const swatch = (colour, label) => el("li", {}, el("span", { class: "swatch", style: `background:${colour}` }), label);
    // zero has a colour of its own (colourOf): a row of its own too, whether or not a class ends at 0
    const rows = [swatch(ZERO, "0")];
    let low = 0;
    state.breaks.forEach((b, i) => {
      if (b === 0) return;
      const from = state.measure === "count" ? Math.floor(low) + 1 : low;
      rows.push(swatch(colours()[i], from >= b ? number(b) : `${number(from)} – ${number(b)}`));
      low = b;
    });
    if (state.measure === "per_1000") {
      rows.push(swatch(NO_DATA, T.no_population));
    }
    box.replaceChildren(el("strong", {}, T.measures[state.measure]),
                        el("small", {}, ` · ${T.levels[state.level]} · ${body.cells} / Σ ${body.total}`),
                        el("ol", {}, rows));
  }

  // --- levels and drill-down ------------------------------------------------------------------------

  function deepestLevelAt(zoom, cap) {
    let level = 0;
    CONFIG.min_zoom.forEach((z, i) => { if (zoom >= z && i <= cap) level = i; });
    return level;
  }

  function drawLevelButtons() {
    for (const b of document.querySelectorAll("#levels button")) {
      const level = Number(b.dataset.level);
      b.classList.toggle("active", level === state.level);
      b.title = map.getZoom() < CONFIG.min_zoom[level] ? T.zoom_in : "";
    }
    const crumbs = [el("a", { href: "#", dataset: { crumb: -1 } }, T.city)];
    state.trail.forEach((c, i) => crumbs.push(" › ", el("a", { href: "#", dataset: { crumb: i } }, c.name)));
    document.getElementById("crumbs").replaceChildren(...crumbs);
  }

  function setLevel(level, bbox) {
    state.level = level;
    state.trail = state.trail.filter((c) => c.level < level);
    if (bbox) map.fitBounds([[bbox[1], bbox[0]], [bbox[3], bbox[2]]], { animate: false });
    if (map.getZoom() < CONFIG.min_zoom[level]) map.setZoom(CONFIG.min_zoom[level], { animate: false });
    drawCells();
  }

  async function onCellClick(p) {
    const card = await showCard(p.code);
    if (card && card.level < 3 && card.level === state.level) {
      state.trail = state.trail.filter((c) => c.level < card.level);
      state.trail.push({ code: card.code, name: card.name, level: card.level, bbox: card.bbox });
      setLevel(card.level + 1, card.bbox);
    }
  }

  document.getElementById("levels").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-level]");
    if (b) setLevel(Number(b.dataset.level));
  });

  document.getElementById("crumbs").addEventListener("click", (e) => {
    const a = e.target.closest("a[data-crumb]");
    if (!a) return;
    e.preventDefault();
    const i = Number(a.dataset.crumb);
    if (i < 0) {
      state.trail = [];
      if (CONFIG.bounds) map.fitBounds(cityBounds(), { animate: false });
      setLevel(deepestLevelAt(map.getZoom(), 1));
    } else {
      const crumb = state.trail[i];
      state.trail = state.trail.slice(0, i + 1);
      setLevel(crumb.level + 1, crumb.bbox);
    }
  });

  // Zooming out past what a level can show goes up to the level that can.
  map.on("zoomend", () => {
    if (map.getZoom() < CONFIG.min_zoom[state.level]) setLevel(deepestLevelAt(map.getZoom(), state.level));
    else drawLevelButtons();
  });

  // --- a cell's card --------------------------------------------------------------------------------

  async function showCard(code) {
    const box = document.getElementById("cell");
    const q = new URLSearchParams(state.query);
    if (CONFIG.version) q.set("version", CONFIG.version);
    const before = state.selected;
    state.selected = code;
    restyle(before);
    restyle(code);
    try {
      const c = await fetchJson(`/api/v1/cells/${encodeURIComponent(code)}?${q}`);
      const L_ = T.cell_card;
      const staff = c.staff.length ? c.staff.map((s) => el("li", {},
        `${CONFIG.lang === "en" ? s.post_name_en : s.post_name_zh} · ${s.name} `,
        el("a", { href: `tel:${s.phone}` }, s.phone))) : [el("li", {}, L_.none)];
      const counts = c.counts;
      box.replaceChildren(
        el("h2", {}, c.name, " ", el("small", {}, T.levels[c.level])),
        el("p", { class: "muted" }, `${L_.code} ${c.code} · ${L_.area} ${c.area_km2} km²`,
           c.population ? ` · ${L_.population} ${c.population.toLocaleString()}` : ""),
        el("h3", {}, L_.staff), el("ul", { class: "staff" }, staff),
        el("h3", {}, L_.counts),
        el("table", { class: "counts" },
           el("tr", {}, [L_.total, L_.open, L_.overdue, L_.closed].map((h) => el("th", {}, h))),
           el("tr", {}, [counts.total, counts.open, counts.overdue, counts.closed].map((n) => el("td", {}, n)))),
        el("h3", {}, L_.top),
        el("ol", { class: "top" }, c.top_categories.length ? c.top_categories.map((t) => el("li", {},
          `${CONFIG.lang === "en" ? t.name_en : t.name_zh} (${t.count})`)) : [el("li", {}, L_.none)]),
        el("p", {}, el("a", { href: `/worklist?${new URLSearchParams({ unit: c.unit, scope: "level" })}` }, L_.cases + " →")));
      box.hidden = false;
      box.dataset.code = c.code;
      return c;
    } catch (err) {
      say(`${T.error}: ${err.message}`);
      return null;
    }
  }

  // --- incidents at close zoom ----------------------------------------------------------------------

  function statusClass(status, overdue) {
    if (overdue) return "overdue";
    return status === "closed" || status === "voided" ? "closed" : "open";
  }

  function incidentMarker(id, lat, lon, status, overdue, category) {
    const kind = statusClass(status, overdue);
    const m = L.marker([lat, lon], { icon: L.divIcon({ className: `incident ${kind}`, iconSize: [14, 14] }),
                                     kind, title: `${categoryName(category)} · ${T.states[status] || status}` });
    m.bindPopup(() => el("div", {}, el("strong", {}, categoryName(category)), el("br"),
      `${T.states[status] || status}${overdue ? " · " + T.states.overdue : ""}`, el("br"),
      el("a", { href: `/cases/${encodeURIComponent(id)}` }, id)));
    return m;
  }

  function clusterIcon(cluster) {
    const kinds = cluster.getAllChildMarkers().map((m) => m.options.kind);
    const worst = kinds.includes("overdue") ? "overdue" : kinds.includes("open") ? "open" : "closed";
    return L.divIcon({ html: `<span>${cluster.getChildCount()}</span>`, className: `cluster ${worst}`, iconSize: [34, 34] });
  }

  let markerRequest = 0;
  async function loadMarkers() {
    const mine = ++markerRequest;
    if (map.getZoom() < CONFIG.marker_zoom) { markers.clearLayers(); return; }
    const b = map.getBounds(), q = new URLSearchParams(state.query);
    q.set("bbox", [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(6)).join(","));
    q.set("limit", 1000);
    try {
      const fc = await fetchJson("/api/v1/reports?" + q);
      if (mine !== markerRequest) return;
      markers.clearLayers();
      markers.addLayers(fc.features.map((f) => incidentMarker(f.id, f.geometry.coordinates[1], f.geometry.coordinates[0],
        f.properties.status, Boolean(f.properties.case && f.properties.case.overdue), f.properties.category.code)));
    } catch (err) {
      say(`${T.error}: ${err.message}`);
    }
  }
  map.on("moveend", loadMarkers);

  // --- the live feed --------------------------------------------------------------------------------

  const CATEGORY_NAMES = {};
  for (const c of CONFIG.categories) {
    CATEGORY_NAMES[c.code] = c.name;
    for (const s of c.subclasses) CATEGORY_NAMES[s.code] = s.name;
  }
  function categoryName(code) { return CATEGORY_NAMES[code] || code || ""; }

  // "<xact>-<id>" ids order by their two numbers
  function isAfter(id, cursor) {
    if (!cursor) return true;
    const [a, b] = id.split("-").map(BigInt), [c, d] = cursor.split("-").map(BigInt);
    return a > c || (a === c && b > d);
  }

  function matchesFilters(d) {
    const at = Date.parse(d.reported_at);
    if (state.since !== null && at < state.since) return false;
    if (state.until !== null && at >= state.until) return false;
    return !state.categories.length || state.categories.some((c) => d.category === c || d.category.slice(0, 2) === c);
  }

  function matchesStatus(status) {
    if (!state.statuses.length) return true;
    const open = status !== "closed" && status !== "voided";
    return state.statuses.includes(status) || (open && state.statuses.includes("open"));
  }

  // A live event moves one cell's counts by what it changed: +1 for a new report, ±1 where a status change
  // takes a case into or out of the status filter.
  function moveCounts(kind, d) {
    if (!matchesFilters(d)) return;
    const id = d[LEVEL_KEYS[state.level]];
    const p = id !== null && id !== undefined ? state.props.get(id) : undefined;
    if (!p) return;  // not drawn (yet): its tile will bring the count
    const isOpen = (s) => (s !== "closed" && s !== "voided" ? 1 : 0);
    let count = 0, open = 0;
    if (kind === "report") { count = matchesStatus(d.status) ? 1 : 0; open = isOpen(d.status) * count; }
    if (kind === "case") {
      count = (matchesStatus(d.to_state) ? 1 : 0) - (matchesStatus(d.from_state) ? 1 : 0);
      open = isOpen(d.to_state) - isOpen(d.from_state);
    }
    if (!count && !open) return;
    const moved = { ...p, count: p.count + count, open: p.open + open };
    state.props.set(id, moved);
    if (cells) cells.setFeatureStyle(id, cellStyle(moved));
    scheduleClassCheck();
  }

  // Counts that moved may have outgrown the classes (a quiet morning's breaks are all zero): a few seconds
  // after a change, ask for the classes again, and draw anew when they differ — the tiles then bring the
  // counts, events included, so nothing is counted twice.
  let classCheck = null;
  function scheduleClassCheck() {
    if (classCheck) return;
    classCheck = setTimeout(async () => {
      const before = JSON.stringify(state.breaks), rev = state.rev;
      try {
        const q = classesQuery();
        const body = await fetchJson("/api/v1/map/classes?" + q);
        if (rev === state.rev && JSON.stringify(body.breaks) !== before) await drawCells();
      } catch (err) {
        say(`${T.error}: ${err.message}`);
      } finally {
        classCheck = null;
      }
    }, CLASS_CHECK_MS);
  }

  function flash(lat, lon) {
    const ring = L.circleMarker([lat, lon], { radius: 12, className: "flash", color: "#e31a1c", weight: 2, fill: false,
                                              interactive: false }).addTo(map);
    setTimeout(() => map.removeLayer(ring), 4000);
  }

  const feed = document.getElementById("feed");
  function addToFeed(kind, d, at) {
    const what = kind === "report" ? T.new_report
      : kind === "case" ? `${T.status_change}: ${T.states[d.from_state] || d.from_state} → ${T.states[d.to_state] || d.to_state}`
        : T.rerouted;
    const item = el("li", { class: kind, dataset: { id: d.id } },
      el("time", {}, chinaTime(at).slice(11)), " ", el("strong", {}, what), " ", categoryName(d.category), " ",
      el("a", { href: `/cases/${encodeURIComponent(d.id)}` }, d.id));
    item.addEventListener("click", (e) => {
      if (e.target.tagName === "A" || d.lat === undefined) return;
      map.setView([d.lat, d.lon], Math.max(map.getZoom(), CONFIG.marker_zoom + 1));
    });
    feed.prepend(item);
    while (feed.children.length > 100) feed.lastChild.remove();
  }

  function onLive(kind, e) {
    const d = JSON.parse(e.data);
    addToFeed(kind, d, d.at || d.reported_at);
    if (!isAfter(e.lastEventId, state.liveAfter)) return;  // the backlog: already in the counts
    moveCounts(kind, d);
    if (kind === "report" && d.lat !== undefined) {
      flash(d.lat, d.lon);
      if (map.getZoom() >= CONFIG.marker_zoom && matchesFilters(d) && matchesStatus(d.status)) {
        markers.addLayer(incidentMarker(d.id, d.lat, d.lon, d.status, false, d.category));
      }
    }
    // a new grid version went live (its re-routings name it): the wall screen reloads onto it
    if (kind === "routing" && !CONFIG.past && d.version_id && d.version_id !== CONFIG.version && !state.reloading) {
      state.reloading = setTimeout(() => window.location.reload(), 3000);
    }
    window.gridmap.lastLive = { kind, id: e.lastEventId, data: d, received: Date.now() };
  }

  function connectLive() {
    const liveState = document.getElementById("live-state");
    const source = new EventSource("/api/v1/live?backlog=30");
    source.onopen = () => { liveState.className = "on"; liveState.textContent = T.live_on; };
    source.onerror = () => { liveState.className = "off"; liveState.textContent = T.live_off; };  // it retries by itself
    for (const kind of ["report", "case", "routing"]) source.addEventListener(kind, (e) => onLive(kind, e));
    return source;
  }

  // --- the rest -------------------------------------------------------------------------------------

  function say(text) { statusLine.textContent = text; }

  form.addEventListener("change", (e) => {
    document.getElementById("range").hidden = form.window.value !== "range";
    if (e.target.name === "window" && form.window.value === "range" && !form.from.value) return;
    drawCells();
  });
  setInterval(drawCells, REFRESH_MS);

  window.gridmap = { map, state, cells: () => cells, markers, lastLive: null };
  drawCells();
  window.gridmap.live = connectLive();
})();
