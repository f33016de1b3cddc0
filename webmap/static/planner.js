// The planners' editor: the cells of a draft version on a map, edited with Leaflet-Geoman, each edit sent to
// the API at once (with the revisions it was made on) and its problems drawn from the answer. Dragging a
// vertex that neighbours share moves it for all of them (move-vertex), so a boundary moves without gap or
// overlap. Undo and redo replay the inverse operations through the same API.
(function () {
  "use strict";
  const CONFIG = JSON.parse(document.getElementById("planner-config").textContent);
  const { el, fetchJson } = window.gmPage;
  const $ = (id) => document.getElementById(id);
  const S = {
    version: null, draft: false, level: 3,
    features: new Map(),  // code → GeoJSON feature as the server last answered (with its revision)
    layers: new Map(),    // code → its L.Polygon
    selected: new Set(),  // codes
    undo: [], redo: [],   // {label, undo(), redo()}
  };

  const map = L.map("map", { maxZoom: 19, preferCanvas: false });
  if (CONFIG.bounds) map.fitBounds([[CONFIG.bounds[1], CONFIG.bounds[0]], [CONFIG.bounds[3], CONFIG.bounds[2]]]);
  else map.setView([34.75, 113.65], 10);
  map.pm.setGlobalOptions({ snappable: true, snapDistance: 15, allowSelfIntersection: false });
  const problemLayer = L.geoJSON(null, { style: { color: "#d6001c", weight: 2, fillOpacity: 0.45 }, interactive: false,
                                          pmIgnore: true }).addTo(map);

  function say(text, ok = false) { $("status").textContent = text; $("status").className = ok ? "ok" : ""; }

  // --- the API -------------------------------------------------------------------------------------

  function api(method, path, body) {
    return fetchJson(`/api/v1/versions/${S.version}${path}`, {
      method, headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ reason: $("reason").value, ...body }),  // who edits is who is signed in
    });
  }

  // Applies an answer: the cells as they are now, those removed, the problems they take part in.
  function apply(answer) {
    for (const f of answer.cells || []) upsert(f);
    for (const code of answer.removed || []) remove(code);
    drawProblems(answer.problems);
    drawForm();
    drawTools();
    return answer;
  }

  // One edit: sent, applied, and put on the undo stack with its inverse.
  async function edit(label, doIt, undoIt) {
    try {
      const answer = apply(await doIt());
      S.undo.push({ label, undo: undoIt(answer), redo: doIt });
      S.redo = [];
      say(`${label} ✓`, true);
      drawTools();
      return answer;
    } catch (err) {
      say(`${label}: ${err.message}`);
      // nothing was saved (refused, e.g. 403 outside the planner's scope, or failed): the selected cells are
      // drawn again as the server last answered, not left as the drag or the reshape made them
      for (const code of S.selected) if (S.features.has(code)) upsert(S.features.get(code));
      if (err.status === 409 && err.body && err.body.details) err.body.details.forEach(upsert);  // as it is now
      return null;
    }
  }

  async function replay(from, to, which) {
    const step = from.pop();
    if (!step) return;
    try {
      const answer = apply(await step[which]());
      to.push(step);
      say(`${which === "undo" ? "撤销 Undone" : "重做 Redone"}: ${step.label}`, true);
      return answer;
    } catch (err) {
      from.push(step);
      say(`${step.label}: ${err.message}`);
    } finally {
      drawTools();
    }
  }

  const rev = (code) => S.features.get(code).properties.revision;
  const props = (code) => S.features.get(code).properties;

  // --- drawing the cells ----------------------------------------------------------------------------

  function styleOf(code) {
    return S.selected.has(code) ? { color: "#0b57d0", weight: 3, fillOpacity: 0.25 }
      : { color: "#394150", weight: 1, fillColor: "#8fb3e8", fillOpacity: 0.12 };
  }

  function upsert(f) {
    const code = f.id;
    S.features.set(code, f);
    const old = S.layers.get(code);
    if (old) map.removeLayer(old);
    const layer = L.geoJSON(f, { style: () => styleOf(code) }).getLayers()[0];
    layer.on("click", (e) => select(code, e.originalEvent.shiftKey));
    // a node, not a string: Leaflet puts a string into the tooltip as HTML, and names are users' text
    layer.bindTooltip(() => el("span", {}, `${f.properties.name} ${code}`), { sticky: true });
    layer.addTo(map);
    S.layers.set(code, layer);
    if (S.selected.has(code)) startEditing(code);
  }

  function remove(code) {
    const layer = S.layers.get(code);
    if (layer) map.removeLayer(layer);
    S.layers.delete(code);
    S.features.delete(code);
    S.selected.delete(code);
  }

  const ZOOM_IN = "放大地图以编辑此层级 Zoom in to edit this level";
  async function loadCells() {
    if (!S.version) return;
    if (map.getZoom() < CONFIG.min_zoom[S.level]) { say(ZOOM_IN); return; }
    if ($("status").textContent === ZOOM_IN) say("");
    const b = map.getBounds();
    const q = new URLSearchParams({ level: S.level, limit: 5000,
      bbox: [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(6)).join(",") });
    const fc = await fetchJson(`/api/v1/versions/${S.version}/cells?${q}`);
    for (const code of [...S.features.keys()]) if (!S.selected.has(code)) remove(code);
    for (const f of fc.features) if (!S.selected.has(f.id) || !S.features.has(f.id)) upsert(f);
    document.body.dataset.ready = "true";
  }

  function drawProblems(fc) {
    problemLayer.clearLayers();
    const list = $("problems");
    list.replaceChildren();
    for (const f of (fc && fc.features) || []) {
      if (f.geometry) problemLayer.addData(f);
      const p = f.properties;
      list.append(el("li", { class: "problem", dataset: { type: p.type } },
        `${p.type} · ${p.codes.join(", ")}${p.area_m2 ? ` · ${p.area_m2} m²` : ""}`));
    }
    $("problem-count").textContent = `(${list.children.length})`;
  }

  // --- selecting and editing ------------------------------------------------------------------------

  function select(code, add) {
    const before = [...S.selected];
    if (!add) S.selected.clear();
    if (add && S.selected.has(code)) S.selected.delete(code); else S.selected.add(code);
    for (const c of new Set([...before, code])) {
      const layer = S.layers.get(c);
      if (!layer) continue;
      layer.setStyle(styleOf(c));
      if (layer.pm.enabled() && !(S.selected.size === 1 && S.selected.has(c))) layer.pm.disable();
    }
    if (S.selected.size === 1) startEditing([...S.selected][0]);
    drawForm();
    drawTools();
  }

  function startEditing(code) {
    const layer = S.layers.get(code);
    if (!S.draft || !layer || S.selected.size !== 1) return;
    layer.pm.enable({ snappable: true, allowSelfIntersection: false });
    if (layer.gmEditing) return;  // its listeners are on already
    layer.gmEditing = true;
    let from = null;
    layer.on("pm:markerdragstart", (e) => { from = e.markerEvent.target.getLatLng(); });
    layer.on("pm:markerdragend", (e) => {
      const to = e.markerEvent.target.getLatLng();
      if (from && $("shared").checked) moveVertex(code, [from.lng, from.lat], [to.lng, to.lat]);
      else saveGeometry(code, layer);
      from = null;
    });
    layer.on("pm:vertexadded pm:vertexremoved", () => saveGeometry(code, layer));
  }

  function moveVertex(code, from, to) {
    const move = (a, b) => () => api("POST", "/move-vertex", { from: a, to: b, revisions: { [code]: rev(code) } });
    return edit("移动顶点 Move vertex", move(from, to), () => move(to, from));
  }

  function saveGeometry(code, layer) {
    const before = S.features.get(code);
    const put = (geometry) => () => api("PUT", `/cells/${code}`, { revision: rev(code), geometry });
    return edit("修改边界 Reshape", put(layer.toGeoJSON().geometry), () => put(before.geometry));
  }

  function drawForm() {
    const form = $("cell");
    form.hidden = S.selected.size !== 1;
    if (form.hidden) return;
    const p = props([...S.selected][0]);
    $("cell-title").textContent = `${p.name} · ${p.code} · r${p.revision}`;
    form.code.value = p.code;
    form.name.value = p.name; form.kind.value = p.kind;
    form.population.value = p.population ?? "";
    form.staff.value = staffText(p.staff);
  }

  function staffText(staff) { return (staff || []).map((s) => `${s.post},${s.name},${s.phone}`).join("\n"); }

  function staffList(text) {
    return text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
      const [post, name, phone] = line.split(/[,，]/).map((part) => (part || "").trim());
      return { post, name, phone };
    });
  }

  $("cell").addEventListener("submit", (e) => {
    e.preventDefault();
    const code = [...S.selected][0], before = props(code), form = e.target;
    const fields = (p) => ({ code: p.code, name: p.name, kind: p.kind, staff: staffList(p.staff),
                             population: p.population === "" || p.population === null ? null : Number(p.population) });
    const after = { code: form.code.value, name: form.name.value, kind: form.kind.value,
                    population: form.population.value, staff: form.staff.value };
    const was = { ...before, staff: staffText(before.staff) };
    // the cell is named by the code it has when the request goes: a code change is undone on the new code
    const put = (from, f) => () => api("PUT", `/cells/${from}`, { revision: rev(from), ...fields(f) });
    edit("修改属性 Edit", put(code, after), () => put(after.code, was)).then((answer) => {
      if (answer && after.code !== code) select(after.code, false);
    });
  });

  // --- split, merge, delete, new --------------------------------------------------------------------

  $("split").addEventListener("click", () => {
    const code = [...S.selected][0];
    say("画一条穿过网格的线，双击结束 Draw a line across the cell; double-click to finish");
    map.pm.enableDraw("Line", { snappable: false, finishOn: "dblclick" });
    map.once("pm:create", (e) => {
      const line = e.layer.toGeoJSON().geometry;
      map.removeLayer(e.layer);
      const split = () => api("POST", `/cells/${code}/split`, { revision: rev(code), line });
      edit("切分 Split", split, (answer) => () => api("POST", "/merge", {
        keep: code, revisions: Object.fromEntries(answer.cells.map((f) => [f.id, rev(f.id)])) }));
    });
  });

  $("merge").addEventListener("click", () => {
    const codes = [...S.selected], keep = codes[0];
    const before = codes.map((c) => S.features.get(c));
    const merge = () => api("POST", "/merge", { keep, revisions: Object.fromEntries(codes.map((c) => [c, rev(c)])) });
    edit("合并 Merge", merge, () => async () => {
      // back: the kept cell's outline, then the others as they were
      let answer = apply(await api("PUT", `/cells/${keep}`, { revision: rev(keep), geometry: before[0].geometry }));
      for (const f of before.slice(1)) answer = apply(await api("POST", "/cells", created(f)));
      return answer;
    });
  });

  function created(f) {
    const p = f.properties;
    return { code: p.code, name: p.name, kind: p.kind, population: p.population, parent_code: p.parent_code,
             geometry: f.geometry };
  }

  $("delete").addEventListener("click", () => {
    const code = [...S.selected][0], before = S.features.get(code);
    edit("删除 Delete", () => api("DELETE", `/cells/${code}`, { revision: rev(code) }),
         () => () => api("POST", "/cells", created(before)));
  });

  $("draw").addEventListener("click", () => {
    const code = window.prompt("新网格编码 Code of the new cell");
    if (!code) return;
    const name = window.prompt("新网格名称 Name of the new cell") || code;
    map.pm.enableDraw("Polygon", { snappable: true });
    map.once("pm:create", (e) => {
      const geometry = e.layer.toGeoJSON().geometry;
      map.removeLayer(e.layer);
      edit("新建 New cell", () => api("POST", "/cells", { code, name, geometry }),
           () => () => api("DELETE", `/cells/${code}`, { revision: rev(code) }));
    });
  });

  // --- impact preview and activation ---------------------------------------------------------------

  const impactLayer = L.layerGroup().addTo(map);
  const deepest = (cells) => (cells.length ? cells[cells.length - 1].code : "—");

  $("impact").addEventListener("click", async () => {
    say("计算中 Working out the impact…", true);
    try {
      const r = await fetchJson(`/api/v1/versions/${S.version}/impact`);
      const m = r.summary;
      $("impact-summary").textContent = `未结案件 ${m.moved} 件改派网格、${m.staff_changed} 件改换责任人；` +
        `${m.recounted} 件历史事件计入别的网格 · open incidents moving: ${m.moved}, changing hands: ` +
        `${m.staff_changed}; incidents counted elsewhere: ${m.recounted}`;
      impactLayer.clearLayers();
      $("impact-table").querySelector("tbody").replaceChildren(...r.incidents.map((i) => {
        L.circleMarker([i.lat, i.lon], { radius: 7, color: i.change === "cell" ? "#d6001c" : "#f08c00", weight: 2,
                                         pmIgnore: true })
          .bindTooltip(() => el("span", {}, `${i.id} ${deepest(i.before.cells)} → ${deepest(i.after.cells)}`))
          .addTo(impactLayer);
        return el("tr", { dataset: { id: i.id } }, el("td", {}, el("a", { href: `/cases/${i.id}` }, i.id)),
          el("td", {}, i.change === "cell" ? "改派网格 cell" : "换责任人 staff"),
          el("td", {}, deepest(i.before.cells)), el("td", {}, deepest(i.after.cells)));
      }));
      $("impact-table").hidden = !r.incidents.length;
      for (const fmt of ["csv", "geojson"]) {
        const a = $(`impact-${fmt}`);
        a.href = `/api/v1/versions/${S.version}/impact?format=${fmt}`;
        a.hidden = false;
      }
      say("影响预览 Impact ✓", true);
    } catch (err) { say(err.message); }
  });

  $("activate").addEventListener("click", async () => {
    try {
      const r = await fetchJson(`/api/v1/versions/${S.version}/activate`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ reason: $("reason").value || undefined,
                               force: $("force").checked }) });
      say(`版本 ${r.activated} 已生效 Version ${r.activated} is active: ${r.rerouted} open incidents routed again, ` +
          `${r.moved} moved`, true);
      const option = $("version").selectedOptions[0];
      option.dataset.status = "active";
      option.textContent = option.textContent.replace("draft", "active");
      S.draft = false;
      for (const layer of S.layers.values()) layer.pm.disable();  // an active version is not edited
      drawTools();
    } catch (err) {
      const problems = err.body && err.body.problems ? ` (${JSON.stringify(err.body.problems)})` : "";
      say(`${err.message}${problems}`);
    }
  });

  $("undo").addEventListener("click", () => replay(S.undo, S.redo, "undo"));
  $("redo").addEventListener("click", () => replay(S.redo, S.undo, "redo"));

  function drawTools() {
    const one = S.selected.size === 1 && S.draft, many = S.selected.size >= 2 && S.draft;
    $("split").disabled = !one; $("delete").disabled = !one; $("merge").disabled = !many;
    $("draw").disabled = !S.draft; $("activate").disabled = !S.draft; $("impact").disabled = !S.version;
    $("undo").disabled = !S.undo.length; $("redo").disabled = !S.redo.length;
    $("undo").title = S.undo.length ? S.undo[S.undo.length - 1].label : "";
    for (const b of document.querySelectorAll("#levels button")) b.classList.toggle("active", Number(b.dataset.level) === S.level);
  }

  // --- versions and levels --------------------------------------------------------------------------

  function chooseVersion() {
    const option = $("version").selectedOptions[0];
    S.version = option ? Number(option.value) : null;
    S.draft = option && option.dataset.status === "draft";
    for (const code of [...S.features.keys()]) remove(code);
    S.undo = []; S.redo = [];
    drawProblems(null);
    drawTools();
    loadCells().catch((err) => say(err.message));
  }

  $("version").addEventListener("change", chooseVersion);
  $("new-draft").addEventListener("click", async () => {
    try {
      const draft = await fetchJson("/api/v1/versions", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ note: $("reason").value }) });
      $("version").prepend(el("option", { value: draft.id, dataset: { status: "draft" } },
        `${draft.id} · draft · ${draft.note}`));
      $("version").value = String(draft.id);
      chooseVersion();
    } catch (err) { say(err.message); }
  });
  $("levels").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-level]");
    if (!b) return;
    S.level = Number(b.dataset.level);
    S.selected.clear();
    for (const code of [...S.features.keys()]) remove(code);
    if (map.getZoom() < CONFIG.min_zoom[S.level]) map.setZoom(CONFIG.min_zoom[S.level]);
    loadCells().catch((err) => say(err.message));
    drawTools();
  });
  map.on("moveend", () => loadCells().catch((err) => say(err.message)));

  window.planner = { map, S, select, apply };
  chooseVersion();
})();
