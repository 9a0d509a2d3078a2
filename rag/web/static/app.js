// rag's reading room: asks POST /ask, shows cited passages, their map, context and matched terms.
// Rule of this file: data (questions, passages, titles, errors) only ever enters the page as text
// (textContent / createTextNode / setAttribute of plain values), never as markup.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const CJK = /[\u3400-\u9fff\uf900-\ufaff]/;
  const SVG = "http://www.w3.org/2000/svg";
  const DEFAULT_K = 5;
  const DEFAULT_MODE = "hybrid";
  let documents = [];
  let asking = 0; // id of the latest question, so a slow older answer never overwrites a newer one

  // -- small helpers ------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else node.setAttribute(k, String(v));
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }
  function langOf(text) { return CJK.test(text || "") ? "zh" : "en"; }
  function setLang(node, text) { node.setAttribute("lang", langOf(text)); return node; }
  function citation(p) { return `${p.source}:L${p.line_start}-${p.line_end}`; }
  function status(text) { $("status").textContent = text; }
  function showError(text) {
    const box = $("error");
    box.textContent = text;
    box.hidden = !text;
  }

  // -- talking to the server ----------------------------------------------------------------
  class ServerError extends Error {
    constructor(message, code) { super(message); this.code = code; }
  }
  async function api(path, options) {
    const headers = Object.assign({}, (options && options.headers) || {});
    const key = sessionStorage.getItem("rag-api-key");
    if (key) headers["Authorization"] = "Bearer " + key;
    let response;
    try {
      response = await fetch(path, Object.assign({}, options, { headers }));
    } catch (e) {
      throw new ServerError("The server cannot be reached: it may have stopped. Start it again (rag serve) and retry.", 0);
    }
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const why = body && typeof body.error === "string" ? body.error : response.statusText || "no details";
      if (response.status === 401) $("keybox").hidden = false;
      throw new ServerError(`The server could not answer (HTTP ${response.status}): ${why}`, response.status);
    }
    if (body === null || typeof body !== "object") throw new ServerError("The server sent an answer this page cannot read.", response.status);
    return body;
  }

  // -- the URL carries the question ----------------------------------------------------------
  function readURL() {
    const u = new URLSearchParams(location.search);
    const k = parseInt(u.get("k") || "", 10);
    return { q: u.get("q") || "", k: k >= 1 && k <= 50 ? k : DEFAULT_K, mode: u.get("mode") || DEFAULT_MODE };
  }
  function urlFor(q, k, mode) {
    const u = new URLSearchParams();
    u.set("q", q);
    u.set("k", String(k));
    if (mode !== DEFAULT_MODE) u.set("mode", mode);
    return "/?" + u.toString();
  }
  function fillForm(state) {
    $("q").value = state.q;
    $("k").value = String(state.k);
    $("mode").value = ["hybrid", "dense", "bm25"].includes(state.mode) ? state.mode : DEFAULT_MODE;
    if (state.k !== DEFAULT_K || state.mode !== DEFAULT_MODE) $("advanced").open = true;
  }

  // -- asking ---------------------------------------------------------------------------------
  async function ask(q, k, mode) {
    const mine = ++asking;
    showError("");
    status("Searching…");
    document.title = `${q} — rag`;
    try {
      const answer = await api("/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question: q, k: k, mode: mode }),
      });
      if (mine !== asking) return;
      render(answer);
      const n = answer.passages.length;
      status(`${n} passage${n === 1 ? "" : "s"}${answer.not_found ? " (the report does not seem to answer this)" : ""}.`);
    } catch (e) {
      if (mine !== asking) return;
      status("");
      showError(e.message);
    }
  }

  function submit(event) {
    event.preventDefault();
    const q = $("q").value.trim();
    if (!q) { $("q").focus(); return; }
    let k = parseInt($("k").value, 10);
    if (!(k >= 1 && k <= 50)) { k = DEFAULT_K; $("k").value = String(k); }
    const mode = $("mode").value;
    const url = urlFor(q, k, mode);
    if (location.pathname + location.search !== url) history.pushState({ q, k, mode }, "", url);
    ask(q, k, mode);
  }

  function fromURL() {
    const state = readURL();
    fillForm(state);
    if (state.q) ask(state.q, state.k, state.mode);
    else { $("answer").hidden = true; status(""); showError(""); document.title = "rag — ask the reports"; }
  }

  // -- one passage ------------------------------------------------------------------------------
  // Link targets and citation markers (the hit's `hidden` spans: absolute offsets into the file) are
  // folded away: `[标题](https://…)` reads 标题 with the address on hover and a small ↗ link after it;
  // `增长 [sina](https://…)。` reads 增长[sina]。 with [sina] the link. This mirrors rag.cite.folded and
  // rag.markup.LINK (tests/test_web.py checks the page shows exactly rag.cite.shown_text). Offsets
  // are the file's, in code points, so the text is handled as an array of code points.
  const LINK = /\[([^\[\]\r\n]{0,300})\]\((https?:\/\/[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)\)/g;
  const SHORT_NAME = /^[^\/\s]{1,20}$/;
  function markerName(label, url) {
    label = label.trim();
    if (SHORT_NAME.test(label) && !/^http/i.test(label)) return label;
    let host = url;
    try { host = new URL(url).hostname || url; } catch (e) { host = url; }
    return host.startsWith("www.") ? host.slice(4) : host;
  }
  function webAddress(url) { return /^https?:\/\//i.test(url) ? url : null; } // never javascript: or data:
  function codePoints(text) {
    const at = new Array(text.length + 1); // UTF-16 index -> code point index
    let c = 0;
    for (let i = 0; i < text.length; i++) {
      at[i] = c;
      const u = text.charCodeAt(i);
      if (u >= 0xd800 && u <= 0xdbff && i + 1 < text.length) at[++i] = c;
      c++;
    }
    at[text.length] = c;
    return at;
  }
  function foldsOf(p, at) {
    const links = [];
    for (const m of p.text.matchAll(LINK)) {
      const s = at[m.index], ls = at[m.index + 1], le = at[m.index + 1 + m[1].length], e = at[m.index + m[0].length];
      links.push({ s, e, ls, le, label: m[1], url: m[2] });
    }
    const folds = [];
    for (const [hs, he] of p.hidden || []) {
      const s = hs - p.start, e = he - p.start;
      const inside = links.filter((l) => s <= l.s && l.e <= e);
      const target = links.find((l) => !inside.includes(l) && l.le >= s && l.e <= e);
      folds.push({ s, e, markers: inside.map((l) => ({ name: markerName(l.label, l.url), url: l.url })), target: target ? target.url : null });
    }
    const labels = links.filter((l) => folds.some((f) => f.target === l.url && f.s === l.le)).map((l) => ({ s: l.ls, e: l.le, url: l.url }));
    return { folds, labels };
  }
  function linkTo(url, cls, text, label) {
    const safe = webAddress(url);
    if (!safe) return el("span", { class: cls, title: url }, text);
    return el("a", { class: cls, href: safe, title: safe, target: "_blank", rel: "noopener noreferrer nofollow", "aria-label": label }, text);
  }

  // The passage text, folded, with the best sentence in <mark class="best"> and bridged words in <mark class="term">.
  function markedText(p) {
    const out = el("blockquote", { class: "text", cite: citation(p) });
    setLang(out, p.text);
    appendFolded(out, p);
    return out;
  }

  // Appends a piece of a file to `out`, folded: `p` has its `text`, its absolute `start` (code
  // points), the `hidden` spans to fold and, for a hit, `highlight` and `matched_terms` to mark.
  function appendFolded(out, p) {
    const start = p.start;
    const chars = Array.from(p.text);
    const at = codePoints(p.text);
    const n = chars.length;
    const clamp = (x) => Math.max(0, Math.min(n, x));
    // Bridged words: their spans merged where they touch or overlap (南海 + 南海行为准则 is one mark).
    const spans = [];
    for (const m of p.matched_terms || []) {
      for (const [s, e] of m.spans) spans.push({ s: clamp(s - start), e: clamp(e - start), label: `${m.query} → ${m.passage}` });
    }
    spans.sort((x, y) => x.s - y.s || y.e - x.e);
    const terms = [];
    for (const sp of spans) {
      const last = terms[terms.length - 1];
      if (last && sp.s <= last.e) {
        last.e = Math.max(last.e, sp.e);
        if (!last.labels.includes(sp.label)) last.labels.push(sp.label);
      } else terms.push({ s: sp.s, e: sp.e, labels: [sp.label] });
    }
    const { folds, labels } = foldsOf(p, at);
    const best = p.highlight ? { s: clamp(p.highlight.start - start), e: clamp(p.highlight.end - start) } : null;
    const cuts = new Set([0, n]);
    for (const r of terms.concat(folds, labels)) { cuts.add(clamp(r.s)); cuts.add(clamp(r.e)); }
    if (best) { cuts.add(best.s); cuts.add(best.e); }
    const points = Array.from(cuts).sort((a, b) => a - b);
    for (let i = 0; i + 1 < points.length; i++) {
      const a = points[i], b = points[i + 1];
      const fold = folds.find((f) => f.s <= a && b <= f.e);
      let node;
      if (fold) {
        if (b !== fold.e) continue; // a folded span is shown once, where it ends
        node = document.createDocumentFragment();
        if (fold.target) node.append(linkTo(fold.target, "link", "", `link: ${fold.target}`));
        for (const m of fold.markers) node.append(linkTo(m.url, "src", `[${m.name}]`, `source: ${m.url}`));
        if (!node.childNodes.length) continue;
        node = el("span", { class: "fold", "data-start": start + fold.s, "data-end": start + fold.e }, node);
      } else {
        // Runs of blank lines (page breaks of the source) are shown as one; offsets stay the source's.
        node = document.createTextNode(chars.slice(a, b).join("").replace(/\n[ \t\r]*\n(?:[ \t\r]*\n)+/g, "\n\n"));
        const label = labels.find((r) => r.s <= a && b <= r.e);
        if (label) node = el("span", { class: "linked", title: label.url }, node);
        const term = terms.find((r) => r.s <= a && b <= r.e);
        if (term) node = el("mark", { class: "term", title: term.labels.join("; "), "data-start": start + a, "data-end": start + b }, node);
      }
      if (best && best.s <= a && b <= best.e) node = el("mark", { class: "best" }, node);
      out.append(node);
    }
  }

  // The lines before or after a passage (GET /passages/…), folded as the passage is.
  function contextPiece(cls, text, start, hidden) {
    const node = setLang(el("div", { class: `ctx ${cls}` }), text);
    appendFolded(node, { text, start, hidden });
    return node;
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    const area = el("textarea", { class: "offscreen", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    if (!ok) throw new Error("copy refused");
  }

  function copyButton(p) {
    const button = el("button", { type: "button", class: "copy" }, "Copy citation");
    button.addEventListener("click", async () => {
      // The quote is the file's exact characters (link addresses included, not the folded display):
      // what anyone can find in the file and check.
      const text = `“${p.text.trim()}”\n— ${citation(p)}`;
      try {
        await copyText(text);
        status(`Copied the citation of passage ${p.rank}.`);
        button.textContent = "Copied";
        setTimeout(() => { button.textContent = "Copy citation"; }, 1500);
      } catch (e) {
        showError("The browser did not allow copying; select the citation and the passage by hand.");
      }
    });
    return button;
  }

  function contextButton(p, holder) {
    const button = el("button", { type: "button", class: "context", "aria-expanded": "false" }, "Show context");
    let loaded = null;
    button.addEventListener("click", async () => {
      const open = button.getAttribute("aria-expanded") === "true";
      if (open) {
        holder.querySelectorAll(".ctx").forEach((n) => { n.hidden = true; });
        button.setAttribute("aria-expanded", "false");
        button.textContent = "Show context";
        return;
      }
      try {
        if (!loaded) {
          loaded = await api(`/passages/${encodeURIComponent(p.id)}?context=3`);
          // Folded like the passage; `before` ends where the passage starts (offsets in code points).
          const before = contextPiece("before", loaded.before, loaded.start - Array.from(loaded.before).length, loaded.before_hidden);
          const after = contextPiece("after", loaded.after, loaded.end, loaded.after_hidden);
          holder.prepend(before);
          holder.append(after);
        }
        holder.querySelectorAll(".ctx").forEach((n) => { n.hidden = false; });
        button.setAttribute("aria-expanded", "true");
        button.textContent = "Hide context";
      } catch (e) {
        showError(e.message);
      }
    });
    return button;
  }

  function passageItem(p) {
    const crumbs = el("ol", { class: "crumbs" });
    const path = p.section.length > 1 ? p.section.slice(1) : p.section;
    for (const s of path) crumbs.append(setLang(el("li", {}, s), s));
    const cite = el("code", { class: "cite" }, citation(p));
    const body = el("div", { class: "body" }, markedText(p));
    const head = el("div", { class: "head" },
      el("span", { class: "rank", "aria-label": `rank ${p.rank}` }, String(p.rank)),
      el("nav", { "aria-label": "Section" }, crumbs));
    const tools = el("div", { class: "tools" }, cite, copyButton(p), contextButton(p, body));
    const item = el("li", { id: `hit-${p.rank}`, class: "hit", tabindex: "-1" }, head, tools);
    if (p.matched_terms && p.matched_terms.length) {
      const list = el("ul", { class: "terms", "aria-label": "Question words found in this passage" });
      for (const m of p.matched_terms) {
        list.append(el("li", {}, setLang(el("span", {}, m.query), m.query), " → ", setLang(el("mark", { class: "term" }, m.passage), m.passage)));
      }
      item.append(el("div", { class: "matched" }, "Matched: ", list));
    }
    item.append(body);
    return item;
  }

  // -- the report map -----------------------------------------------------------------------------
  function drawMap(doc, hits) {
    const W = 1000, ROW = 26, PAD = 4;
    const root = doc.outline;
    const rows = [];
    (function walk(node, depth) {
      (rows[depth] = rows[depth] || []).push(node);
      for (const c of node.children) walk(c, depth + 1);
    })(root, 0);
    const x0 = root.start, span = Math.max(1, root.end - root.start);
    const X = (offset) => ((offset - x0) / span) * W;
    const height = rows.length * ROW + PAD;
    const title = doc.title_zh || doc.title_en || doc.source;
    const figure = svg("svg", { viewBox: `0 0 ${W} ${height}`, class: "map", role: "group", "aria-label": `Map of ${title}` });
    const hitSections = new Map(); // path key -> best rank in it
    for (const p of hits) {
      for (let d = root.path.length + 1; d <= p.section.length; d++) {
        const key = JSON.stringify(p.section.slice(0, d));
        if (!hitSections.has(key) || hitSections.get(key) > p.rank) hitSections.set(key, p.rank);
      }
    }
    rows.forEach((nodes, depth) => {
      for (const node of nodes) {
        const x = X(node.start), w = Math.max(1, X(node.end) - x);
        const key = JSON.stringify(node.path);
        const g = svg("g", { class: "sec" + (hitSections.has(key) ? " has-hit" : "") });
        const name = node.title || title;
        const t = svg("title", {}); t.textContent = name; g.append(t);
        g.append(svg("rect", { x: x, y: depth * ROW + PAD, width: w, height: ROW - 3, rx: 2 }));
        const fits = Math.floor((w - 6) / 13); // about 13 units per CJK character
        if (fits >= 2) {
          const label = svg("text", { x: x + 4, y: depth * ROW + PAD + 16, lang: langOf(name) });
          label.textContent = name.length > fits ? name.slice(0, fits - 1) + "…" : name;
          g.append(label);
        }
        figure.append(g);
      }
    });
    const placed = [];
    for (const p of hits) {
      const depth = Math.max(0, Math.min(p.section.length - root.path.length, rows.length - 1));
      let cx = X((p.start + p.end) / 2);
      const cy = depth * ROW + PAD + (ROW - 3) / 2;
      while (placed.some((o) => o.cy === cy && Math.abs(o.cx - cx) < 20)) cx += 20;
      placed.push({ cx, cy });
      const link = svg("a", { href: `#hit-${p.rank}`, class: "mark", "aria-label": `Passage ${p.rank}: ${p.section.join(" › ")}` });
      link.append(svg("circle", { cx, cy, r: 10 }));
      const n = svg("text", { x: cx, y: cy + 4, "text-anchor": "middle" });
      n.textContent = String(p.rank);
      link.append(n);
      link.addEventListener("click", (event) => {
        event.preventDefault();
        const target = $(`hit-${p.rank}`);
        target.scrollIntoView({ block: "start" });
        target.focus({ preventScroll: true });
      });
      figure.append(link);
    }
    const wrap = el("div", { class: "map-doc" }, setLang(el("p", { class: "map-title" }, title), title), figure);
    return wrap;
  }

  function renderMap(passages) {
    const box = $("map-figures");
    box.replaceChildren();
    for (const doc of documents) {
      const hits = passages.filter((p) => p.source === doc.source);
      if (hits.length && doc.outline) box.append(drawMap(doc, hits));
    }
    $("map").hidden = !box.childElementCount;
  }

  // -- the answer ---------------------------------------------------------------------------------
  function render(answer) {
    $("answer").hidden = false;
    const asked = $("asked");
    asked.textContent = answer.question;
    setLang(asked, answer.question);
    $("notfound").hidden = !answer.not_found;
    $("notfound-reason").textContent = answer.not_found
      ? (answer.not_found_reason ? `the report does not seem to answer this (${answer.not_found_reason}).` : "the report does not seem to answer this.")
      : "";
    const list = $("results");
    list.replaceChildren(...answer.passages.map(passageItem));
    renderMap(answer.passages);
  }

  // -- the library --------------------------------------------------------------------------------
  async function loadDocuments() {
    try {
      const out = await api("/documents");
      documents = out.documents || [];
    } catch (e) {
      showError(e.message);
      return;
    }
    const list = $("documents");
    list.replaceChildren();
    for (const d of documents) {
      const item = el("li", { class: "doc" });
      if (d.title_zh) item.append(el("cite", { lang: "zh", class: "zh" }, d.title_zh));
      if (d.title_en) item.append(el("cite", { lang: "en", class: "en" }, d.title_en));
      const meta = [d.publisher, d.year].filter(Boolean).join(", ");
      if (meta) item.append(setLang(el("span", { class: "meta" }, meta), meta));
      item.append(el("code", {}, `${d.source} · ${d.passages} passages`));
      list.append(item);
    }
  }

  // -- start ----------------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", async () => {
    $("ask").addEventListener("submit", submit);
    $("savekey").addEventListener("click", () => {
      sessionStorage.setItem("rag-api-key", $("apikey").value);
      $("keybox").hidden = true;
      loadDocuments().then(fromURL);
    });
    document.addEventListener("keydown", (event) => {
      const typing = event.target.closest && event.target.closest("input, textarea, select");
      if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
        event.preventDefault();
        $("q").focus();
        $("q").select();
      }
    });
    window.addEventListener("popstate", fromURL);
    await loadDocuments();
    fromURL();
  });
})();
