// What the case, worklist and rankings pages share: building DOM nodes, China time, the workflow's words.
// Everything that came from users goes into the page as text nodes, never as markup.
(function () {
  "use strict";

  const STATES = {
    reported: "已上报 reported", opened: "已立案 opened", voided: "已作废 voided", dispatched: "已派遣 dispatched",
    in_progress: "处置中 in progress", handled: "已处理 handled", closed: "已结案 closed",
  };
  const LEVELS = {
    grid: "单元网格 unit grid", community: "社区/村 community", street: "街道/乡镇 street",
    district: "区县 district", city: "市级平台 city", department: "部门 department", post: "岗位 post",
  };

  // el("td", {class: "x", href: "/y"}, "text", otherNode): strings become text nodes
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  // "2026-11-20T01:00:00+00:00" → "2026-11-20 09:00": China has kept UTC+8 without daylight saving since 1991,
  // so the page need not trust the browser's time-zone data.
  function chinaTime(iso) {
    if (!iso) return "—";
    const t = new Date(iso);
    if (Number.isNaN(t.getTime())) return String(iso);
    const c = new Date(t.getTime() + 8 * 3600 * 1000);
    return `${c.getUTCFullYear()}-${pad(c.getUTCMonth() + 1)}-${pad(c.getUTCDate())} ` +
      `${pad(c.getUTCHours())}:${pad(c.getUTCMinutes())}`;
  }

  function looksLikeTime(value) { return typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(value); }

  // 'street:410105001' → '街道/乡镇 street 410105001'
  function unitName(unit) {
    if (!unit) return "—";
    const [kind, code] = unit.split(":");
    return code === undefined ? (LEVELS[kind] || kind) : `${LEVELS[kind] || kind} ${code}`;
  }

  // The answer's JSON, or an Error with the server's message and status.
  // Writes carry the session's CSRF token, which the page's <meta name="csrf-token"> holds.
  async function fetchJson(url, options) {
    const method = ((options && options.method) || "GET").toUpperCase();
    const token = document.querySelector('meta[name="csrf-token"]');
    if (method !== "GET" && method !== "HEAD" && token) {
      options = { ...options, headers: { ...(options.headers || {}), "X-CSRFToken": token.content } };
    }
    const res = await fetch(url, options);
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON: the status says enough */ }
    if (!res.ok) {
      const err = new Error((body && body.message) || `${res.status} ${res.statusText}`);
      err.status = res.status;
      err.body = body;
      throw err;
    }
    return body;
  }

  window.gmPage = { STATES, LEVELS, el, chinaTime, looksLikeTime, unitName, fetchJson };
})();
