// The case page: where the case stands, its timeline on a small map, and the form to act on it.
(function () {
  "use strict";

  const { STATES, LEVELS, el, chinaTime, looksLikeTime, unitName, fetchJson } = window.gmPage;
  const ACTIONS = JSON.parse(document.getElementById("action-table").textContent);
  const DETAIL_NAMES = {
    reason: "原因 reason", unit_kind: "单位类型 unit kind", unit: "单位 unit", due_at: "期限 deadline",
    deadline: "新期限 new deadline", previous_deadline: "原期限 previous deadline", approved_by: "审批人 approved by",
    approver_level: "审批层级 approver level", on_time: "按期 on time",
  };
  let doc = JSON.parse(document.getElementById("case-data").textContent);
  const caseUrl = "/api/v1/cases/" + encodeURIComponent(doc.id);

  const form = document.getElementById("act");
  const message = document.getElementById("act-message");
  const actionSelect = document.getElementById("action");

  // --- the map ----------------------------------------------------------------------------------------
  const map = L.map("case-map", { zoomSnap: 0.5 });
  L.control.scale({ imperial: false }).addTo(map); // no tiles: the scale is the only sense of size
  const eventLayer = L.layerGroup().addTo(map);
  const markers = {}; // seq → marker
  window.gridmap = { map, markers }; // for the browser tests and the console
  const here = doc.location && doc.location.lat !== null ? [doc.location.lat, doc.location.lon] : null;
  if (here) {
    L.marker(here, {
      icon: L.divIcon({ className: "incident-marker", html: "", iconSize: [14, 14] }),
      title: "事发位置 incident", keyboard: false,
    }).addTo(map);
    map.setView(here, 16);
    drawCells();
  } else {
    map.setView([34.75, 113.65], 9);
  }

  // The unit grid the case lies in, and its neighbours, as the only background (no tiles: the platform works
  // offline).
  async function drawCells() {
    const grid = (doc.routing.cells || []).find((c) => c.level === 3);
    if (!grid || !doc.routing.version) return;
    const d = 0.01;
    const bbox = [here[1] - d, here[0] - d, here[1] + d, here[0] + d].map((v) => v.toFixed(5)).join(",");
    const params = new URLSearchParams({ level: "3", version: String(doc.routing.version), bbox });
    try {
      const fc = await fetchJson("/api/v1/grids?" + params);
      L.geoJSON(fc, {
        style: (f) => (f.properties.code === grid.code
          ? { color: "#7d5ba6", weight: 2, fillOpacity: 0.08 }
          : { color: "#999", weight: 0.8, fill: false }),
        interactive: false,
      }).addTo(map).bringToBack();
    } catch (err) { /* the case reads without its cell outline */ }
  }

  function drawEvents(events) {
    eventLayer.clearLayers();
    for (const key of Object.keys(markers)) delete markers[key];
    const points = here ? [here] : [];
    for (const e of events) {
      if (!e.location) continue;
      const at = [e.location.lat, e.location.lon];
      const icon = el("span", {}, String(e.seq));
      const marker = L.marker(at, {
        icon: L.divIcon({ className: "event-marker", html: icon, iconSize: [22, 22] }),
        title: `${e.seq} ${e.name_zh} ${e.action}`,
      }).addTo(eventLayer);
      marker.on("click", () => select(e.seq));
      markers[e.seq] = marker;
      points.push(at);
    }
    if (points.length > 1) map.fitBounds(points, { padding: [30, 30], maxZoom: 16, animate: false });
  }

  function select(seq) {
    document.querySelectorAll("#timeline li.selected").forEach((li) => li.classList.remove("selected"));
    const row = document.querySelector(`#timeline li[data-seq="${seq}"]`);
    if (row) row.classList.add("selected");
    for (const [key, marker] of Object.entries(markers)) {
      const chosen = Number(key) === seq;
      const icon = marker.getElement();
      if (icon) icon.classList.toggle("active", chosen);
      marker.setZIndexOffset(chosen ? 1000 : 0); // the chosen one on top of any it overlaps
    }
    if (markers[seq]) map.panTo(markers[seq].getLatLng(), { animate: false });
  }

  // --- where it stands --------------------------------------------------------------------------------
  function renderStanding(c) {
    const table = document.getElementById("standing");
    const holder = c.holder
      ? el("a", { href: "/worklist?" + new URLSearchParams({ unit: c.holder, scope: "mine" }) }, unitName(c.holder))
      : "— 已办结 final";
    const deadline = [chinaTime(c.due_at)];
    if (c.overdue) deadline.push(" ", el("span", { class: "overdue-mark" }, "超期 overdue"));
    const rows = [
      ["状态 Status", el("span", { class: "state state-" + doc.status, id: "status" }, STATES[doc.status] || doc.status)],
      ["层级 Level", LEVELS[c.level] || c.level || "—"],
      ["承办 Holder", el("span", { id: "holder" }, holder)],
      ["承办单位 Unit", c.unit ? unitName(`${c.unit.kind}:${c.unit.code}`) : "—"],
      ["期限 Deadline", el("span", { id: "deadline" }, deadline)],
      ["处置用时 Handling", c.handling_hours === null ? "—" : `${Number(c.handling_hours).toFixed(2)} h`],
      ["计数 Counters", el("span", { id: "counters" },
        `返工 reworks ${c.reworks} · 延期 extensions ${c.extensions} · 上报 escalations ${c.escalations}`)],
      ["版本 Version", String(c.version)],
    ];
    table.replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
    const link = document.getElementById("holder-link");
    link.replaceChildren(c.holder
      ? el("a", { href: "/worklist?" + new URLSearchParams({ unit: c.holder, scope: "mine" }) },
        "承办单位的待办 Worklist of the holder →")
      : "");
  }

  // --- the timeline -----------------------------------------------------------------------------------
  function eventRow(e) {
    const change = e.from_state === e.to_state
      ? `状态不变 ${STATES[e.to_state] || e.to_state}`
      : `${STATES[e.from_state] || e.from_state} → ${STATES[e.to_state] || e.to_state}`;
    const lines = [
      el("div", { class: "event-head" },
        el("span", { class: "seq" + (e.location ? " has-location" : "") }, String(e.seq)),
        el("strong", {}, e.name_zh), " ", el("span", { class: "en" }, e.action), " ",
        el("time", { datetime: e.at }, chinaTime(e.at))),
      el("div", { class: "change" }, change),
    ];
    if (e.from_level !== e.to_level) {
      lines.push(el("div", { class: "change" },
        `层级 level ${LEVELS[e.from_level] || e.from_level} → ${LEVELS[e.to_level] || e.to_level}`));
    }
    lines.push(el("div", { class: "actor" }, "办理人 by ", el("span", { class: "actor-name" }, e.actor), " · ",
      e.actor_unit ? unitName(e.actor_unit) : "系统 system"));
    if (e.note) lines.push(el("p", { class: "note" }, e.note));
    const details = Object.entries(e.details || {});
    if (details.length) {
      lines.push(el("dl", { class: "details" }, details.map(([k, v]) => [
        el("dt", {}, DETAIL_NAMES[k] || k),
        el("dd", {}, typeof v === "boolean" ? (v ? "是 yes" : "否 no") : looksLikeTime(v) ? chinaTime(v) : String(v)),
      ])));
    }
    if (e.location) {
      const acc = e.location.accuracy_m === null ? "" : ` ±${Math.round(e.location.accuracy_m)} m`;
      lines.push(el("div", { class: "muted" },
        `定位 GPS ${e.location.lat.toFixed(5)}, ${e.location.lon.toFixed(5)}${acc}`));
    }
    const li = el("li", { dataset: { seq: String(e.seq), action: e.action } }, lines);
    li.addEventListener("click", () => select(e.seq));
    return li;
  }

  function renderTimeline(events) {
    const list = document.getElementById("timeline");
    list.replaceChildren(...(events.length ? events.map(eventRow)
      : [el("li", { class: "muted empty" }, "尚无办理记录 No events yet")]));
  }

  // --- the form ---------------------------------------------------------------------------------------
  function renderForm(c) {
    const final = c.allowed.length === 0;
    document.getElementById("final").hidden = !final;
    document.getElementById("act-fields").hidden = final;
    const chosen = actionSelect.value;
    actionSelect.replaceChildren(...c.allowed.map((name) =>
      el("option", { value: name }, `${(ACTIONS[name] || {}).name_zh || ""} ${name}`)));
    if (c.allowed.includes(chosen)) actionSelect.value = chosen;
    document.getElementById("form-version").textContent = String(c.version);
    form.elements.actor_unit.value = c.holder || "";
    showFields();
  }

  function showFields() {
    const needs = (ACTIONS[actionSelect.value] || { needs: [] }).needs;
    form.querySelectorAll("[data-field]").forEach((label) => {
      const field = label.dataset.field;
      label.hidden = !(needs.includes(field) || field === "note" || (field === "unit" && needs.includes("unit_kind")));
      label.classList.toggle("required", needs.includes(field));
    });
  }

  function say(text, kind) {
    message.textContent = text;
    message.className = "message " + kind;
    message.hidden = !text;
  }

  function body() {
    const f = form.elements;
    const out = {
      action: actionSelect.value, version: doc.case.version,
      actor: { unit: f.actor_unit.value.trim() },  // who acts is who is signed in
    };
    const needs = ACTIONS[out.action].needs;
    for (const name of ["reason", "unit_kind", "approved_by"]) if (needs.includes(name)) out[name] = f[name].value;
    if (needs.includes("unit_kind") && f.unit.value.trim()) out.unit = f.unit.value.trim();
    if (needs.includes("deadline")) {
      // a datetime-local value is the wall clock the user typed: China time
      const typed = f.deadline.value;
      out.deadline = typed ? typed + (typed.length === 16 ? ":00" : "") + "+08:00" : "";
    }
    if (f.note.value.trim()) out.note = f.note.value.trim();
    return out;
  }

  function render(next) {
    doc = next;
    renderStanding(doc.case);
    renderTimeline(doc.case.events);
    drawEvents(doc.case.events);
    renderForm(doc.case);
    document.body.dataset.version = String(doc.case.version);
  }

  async function reload() {
    render(await fetchJson(caseUrl));
  }

  async function submit(event) {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    document.body.dataset.ready = "false";
    say("", "");
    const request = body();
    try {
      const next = await fetchJson(caseUrl + "/actions", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request),
      });
      form.elements.reason.value = "";
      form.elements.note.value = "";
      render(next);
      say(`已提交 Done: ${ACTIONS[request.action].name_zh} ${request.action}`, "ok");
    } catch (err) {
      if (err.status === 409) {
        // someone acted first, or the action no longer fits: say why, and show the case as it is now
        say(`未提交 Not done (409): ${err.message}`, "error");
        try {
          await reload();
        } catch (again) {
          say(`${message.textContent} — 重新加载失败 reload failed: ${again.message}`, "error");
        }
      } else {
        say(`未提交 Not done${err.status ? ` (${err.status})` : ""}: ${err.message}`, "error");
      }
    } finally {
      button.disabled = false;
      document.body.dataset.ready = "true";
    }
  }

  actionSelect.addEventListener("change", showFields);
  form.addEventListener("submit", submit);
  render(doc);
  document.body.dataset.ready = "true";
})();
