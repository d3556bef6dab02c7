// inspect_kit embedding explorer: an anywidget ESM (also run by the saved-HTML page).
//
// plotly.js is not part of this module: the first view on a page asks the kernel for it once
// (a custom message with one binary buffer, never stored in the notebook), and every later
// view on the page reuses it. A saved HTML page defines window.__inspectKitPlotly itself.
// The hover-thumbnail script (shared with the saved HTML figures) is spliced in below.

/*INSPECT_KIT_HOVER_JS*/

const KEY = "inspect_kit_thumbnails";
const MISSING = "#BBBBBB";
const ERROR = "#D55E00";
const SINGLE = "#0072B2";

function loadPlotly(model) {
  if (window.__inspectKitPlotly) { return window.__inspectKitPlotly; }
  const promise = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      window.__inspectKitPlotly = null;
      reject(new Error("no answer from the kernel with plotly.js (run the cell again)"));
    }, 60000);
    const onMsg = (msg, buffers) => {
      if (!msg || msg.type !== "inspect_kit.plotly") { return; }
      model.off("msg:custom", onMsg);
      clearTimeout(timer);
      // a classic script from a blob (non-strict, like a <script> tag), with module/define
      // hidden so that the UMD bundle hands Plotly back instead of registering globally
      const head = "(function(){var module={exports:{}},exports=module.exports,define;\n";
      const tail = "\n;window.__inspectKitPlotlyModule=module.exports;})();";
      const url = URL.createObjectURL(new Blob([head, buffers[0], tail], { type: "text/javascript" }));
      const s = document.createElement("script");
      s.src = url;
      s.onload = () => { URL.revokeObjectURL(url); resolve(window.__inspectKitPlotlyModule); };
      s.onerror = (e) => { window.__inspectKitPlotly = null; reject(e); };
      document.head.appendChild(s);
    };
    model.on("msg:custom", onMsg);
    model.send({ type: "inspect_kit.plotly" });
  });
  window.__inspectKitPlotly = promise;
  return promise;
}

function typed(dv, Type) {
  if (!dv) { return null; }
  if (dv instanceof Type) { return dv; }
  const buf = dv.buffer ? dv.buffer.slice(dv.byteOffset, dv.byteOffset + dv.byteLength) : dv;
  return new Type(buf);
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) { e.className = cls; }
  if (text !== undefined) { e.textContent = text; }
  return e;
}

// -- a plain figure with hover thumbnails (ThumbnailFigure's notebook view) ---------------------
async function renderFigure(model, root) {
  const Plotly = await loadPlotly(model);
  const gd = el("div", "ik-figure");
  root.appendChild(gd);
  const fig = JSON.parse(model.get("figure"));
  await Plotly.newPlot(gd, fig.data, fig.layout, Object.assign({ displaylogo: false, responsive: true }, fig.config || {}));
  window.inspectKitThumbnails.install(gd);
  return () => Plotly.purge(gd);
}

// -- the explorer -----------------------------------------------------------------------------
class ExplorerView {
  constructor(model, root, Plotly) {
    this.model = model;
    this.root = root;
    this.Plotly = Plotly;
    this.gds = [];
    this.traceIdx = [];
    this.canvases = [];
    this.build();
    this.load();
    this.redraw();
    const on = (name, fn) => model.on("change:" + name, fn);
    on("panels", () => { this.load(); this.syncSelects(); this.redraw(true); });
    on("color_by", () => { this.syncSelects(); this.redraw(); });
    on("selected_points", () => { this.redraw(); this.gallery(); });
    on("highlight", () => this.redraw());
    on("images", () => { this.syncSelects(); this.drawImages(); });
    on("status", () => { this.statusEl.textContent = model.get("status"); });
    this.gallery();
  }

  build() {
    const m = this.model;
    const bar = el("div", "ik-toolbar");
    const select = (label, name, options) => {
      const wrap = el("label", "ik-control", label + " ");
      const s = el("select", "ik-select-" + name);
      wrap.appendChild(s);
      s.addEventListener("change", () => { m.set(name, s.value); m.save_changes(); });
      bar.appendChild(wrap);
      return s;
    };
    this.colorSel = select("colour", "color_by");
    this.layerSel = select("layer", "layer");
    this.methodSel = select("method", "method");
    const imgWrap = el("label", "ik-control");
    this.imagesBox = el("input", "ik-images");
    this.imagesBox.type = "checkbox";
    this.imagesBox.addEventListener("change", () => { m.set("images", this.imagesBox.checked); m.save_changes(); });
    imgWrap.appendChild(this.imagesBox);
    imgWrap.appendChild(document.createTextNode(" images as points"));
    bar.appendChild(imgWrap);
    const clear = el("button", "ik-clear", "clear selection");
    clear.addEventListener("click", () => { m.set("selected_points", []); m.set("highlight", []); m.set("query", -1); m.save_changes(); });
    bar.appendChild(clear);
    this.statusEl = el("span", "ik-status", m.get("status"));
    bar.appendChild(this.statusEl);
    this.panelsEl = el("div", "ik-panels");
    this.galleryHead = el("div", "ik-gallery-head");
    this.galleryEl = el("div", "ik-gallery");
    this.root.append(bar, this.panelsEl, this.galleryHead, this.galleryEl);
    this.syncSelects();
  }

  syncSelects() {
    const m = this.model;
    const fill = (s, options, value, labels) => {
      const keys = options.map(String);
      if (s.__keys !== keys.join("\u0001")) {
        s.innerHTML = "";
        for (const o of keys) {
          const opt = el("option", null, (labels && labels[o]) || o);
          opt.value = o;
          s.appendChild(opt);
        }
        s.__keys = keys.join("\u0001");
      }
      s.value = value;
      s.parentNode.style.display = options.length > 1 ? "" : "none";
    };
    fill(this.colorSel, ["none"].concat(Object.keys(m.get("columns"))), m.get("color_by") || "none");
    fill(this.layerSel, m.get("layer_options"), m.get("layer"));
    fill(this.methodSel, m.get("method_options"), m.get("method"), m.get("method_labels"));
    this.imagesBox.checked = !!m.get("images");
    this.imagesBox.parentNode.style.display = this.tiles ? "" : "none";
  }

  load() {
    const m = this.model;
    this.n = m.get("n_points");
    this.rows = typed(m.get("rows"), Int32Array);
    const atlas = m.get("atlas") || {};
    this.tiles = atlas.tiles ? typed(atlas.tiles, Int32Array) : null;
    this.atlas = atlas.sheets ? {
      sheets: atlas.sheets, tile: atlas.tile, columns: atlas.columns, rows: atlas.rows,
      column: 1, scale: atlas.scale || 4,
    } : null;
    if (this.atlas && !this.sheetImages) {
      this.sheetImages = this.atlas.sheets.map((src) => { const im = new Image(); im.src = src; return im; });
    }
    this.cols = {};
    for (const [name, c] of Object.entries(m.get("columns"))) {
      this.cols[name] = c.kind === "categorical"
        ? Object.assign({}, c, { codes: typed(c.codes, Int32Array) })
        : Object.assign({}, c, { values: typed(c.values, Float32Array) });
    }
    this.panels = m.get("panels").map((p) => ({ title: p.title, x: typed(p.x, Float32Array), y: typed(p.y, Float32Array) }));
    this.text = new Array(this.n);
    const names = Object.keys(this.cols);
    for (let i = 0; i < this.n; i++) {
      let t = "sample " + this.rows[i];
      for (const name of names) { t += "<br>" + name + ": " + this.valueText(name, i); }
      this.text[i] = t;
    }
    // one plot per panel; rebuilt when the number of panels changes
    if (this.gds.length !== this.panels.length) {
      for (const gd of this.gds) { this.Plotly.purge(gd); }
      this.panelsEl.innerHTML = "";
      this.gds = [];
      this.canvases = [];
      const width = Math.floor(100 / Math.min(3, this.panels.length));
      this.panels.forEach((p, k) => {
        const box = el("div", "ik-panel");
        box.style.width = this.panels.length > 1 ? "calc(" + width + "% - 8px)" : "100%";
        box.style.flex = "1 1 " + (this.panels.length > 1 ? "calc(" + width + "% - 8px)" : "100%");
        const gd = el("div", "ik-plot");
        gd.setAttribute("data-panel", String(k));
        gd.id = "ik-plot-" + Math.random().toString(36).slice(2) + "-" + k;
        gd.style.height = m.get("height") + "px";
        const canvas = el("canvas", "ik-images-layer");
        box.append(gd, canvas);
        this.panelsEl.appendChild(box);
        this.gds.push(gd);
        this.canvases.push(canvas);
      });
      this.installed = false;
    }
  }

  valueText(name, i) {
    const c = this.cols[name];
    if (c.kind === "categorical") { const k = c.codes[i]; return k < 0 ? "\u2013" : c.names[k]; }
    const v = c.values[i];
    return Number.isFinite(v) ? String(Math.round(v * 1000) / 1000) : "\u2013";
  }

  traces(k) {
    const m = this.model, p = this.panels[k];
    const col = this.cols[m.get("color_by")];
    const n = this.n, big = n > m.get("webgl_threshold");
    const type = big ? "scattergl" : "scatter";
    const size = n <= 1000 ? 7 : n <= 10000 ? 5 : 3;
    const sel = m.get("selected_points");
    const selSet = sel.length ? new Set(sel) : null;
    const groups = [];
    if (col && col.kind === "categorical") {
      const members = col.names.map(() => []);
      const missing = [];
      for (let i = 0; i < n; i++) { const c = col.codes[i]; (c >= 0 ? members[c] : missing).push(i); }
      members.forEach((idx, c) => groups.push({ idx, name: col.names[c], marker: { color: col.colors[c], size } }));
      if (missing.length) { groups.push({ idx: missing, name: "missing", marker: { color: MISSING, size } }); }
    } else {
      const idx = Array.from({ length: n }, (_, i) => i);
      const marker = { size, color: SINGLE };
      if (col) {
        marker.color = Array.from(col.values);
        Object.assign(marker, { colorscale: "Viridis", cmin: col.cmin, cmax: col.cmax, showscale: k === 0, colorbar: { title: { text: m.get("color_by") }, len: 0.8 } });
      }
      groups.push({ idx, name: col ? m.get("color_by") : "samples", marker, showlegend: false });
    }
    const out = [];
    this.traceIdx[k] = [];
    for (const g of groups) {
      const idx = g.idx;
      const t = {
        type, mode: "markers", name: g.name, legendgroup: g.name,
        showlegend: g.showlegend === false ? false : (k === 0 && idx.length > 0),
        x: idx.map((i) => p.x[i]), y: idx.map((i) => p.y[i]),
        text: idx.map((i) => this.text[i]),
        customdata: idx.map((i) => [i, this.tiles ? this.tiles[i] : -1]),
        hovertemplate: "%{text}<extra></extra>",
        marker: Object.assign({ opacity: m.get("images") ? 0.25 : 0.85 }, g.marker),
        unselected: { marker: { opacity: 0.12 } },
        selected: { marker: { opacity: 1 } },
      };
      if (selSet) { t.selectedpoints = []; idx.forEach((i, j) => { if (selSet.has(i)) { t.selectedpoints.push(j); } }); }
      else { t.selectedpoints = null; }
      out.push(t);
      this.traceIdx[k].push(idx);
    }
    const hl = m.get("highlight"), q = m.get("query");
    if (hl.length) {
      out.push({
        type, mode: "markers", name: "neighbours", showlegend: k === 0, hoverinfo: "skip",
        x: hl.map((i) => p.x[i]), y: hl.map((i) => p.y[i]),
        marker: { symbol: "circle-open", size: size * 2.4, color: ERROR, line: { width: 2, color: ERROR } },
      });
    }
    if (q >= 0) {
      out.push({
        type, mode: "markers", name: "query", showlegend: k === 0, hoverinfo: "skip",
        x: [p.x[q]], y: [p.y[q]],
        marker: { symbol: "star", size: size * 3, color: "#000000", line: { width: 1, color: "#FFFFFF" } },
      });
    }
    return out;
  }

  layout(k) {
    const m = this.model, p = this.panels[k];
    const layout = {
      title: { text: p.title, font: { size: 14 } },
      dragmode: m.get("dragmode"), hovermode: "closest", uirevision: p.title,
      margin: { l: 30, r: 10, t: 40, b: 30 }, showlegend: k === 0,
      legend: { title: { text: m.get("color_by") || "" } },
      xaxis: { showticklabels: false, zeroline: false }, yaxis: { showticklabels: false, zeroline: false },
      template: { layout: { plot_bgcolor: "#FFFFFF", paper_bgcolor: "#FFFFFF", font: { family: "Helvetica Neue, Helvetica, Arial, sans-serif", size: 12 } } },
    };
    if (this.atlas) { layout.meta = { [KEY]: this.atlas }; }
    return layout;
  }

  redraw(fresh) {
    this.panels.forEach((_, k) => {
      const gd = this.gds[k];
      const config = { displaylogo: false, responsive: true, scrollZoom: true };
      const done = this.Plotly.react(gd, this.traces(k), this.layout(k), config);
      if (!gd.__ikInstalled) {
        gd.__ikInstalled = true;
        Promise.resolve(done).then(() => {
          if (this.atlas) { window.inspectKitThumbnails.install(gd); }
          gd.on("plotly_selected", (ev) => this.onSelected(k, ev));
          gd.on("plotly_deselect", () => this.setSelected([]));
          gd.on("plotly_relayout", () => this.drawImages());
          gd.on("plotly_click", (ev) => this.onClick(k, ev));
          gd.setAttribute("data-ready", "1");
          this.drawImages();
        });
      } else {
        Promise.resolve(done).then(() => this.drawImages());
      }
    });
    if (fresh) { this.gallery(); }
  }

  pointsOf(k, ev) {
    const out = [];
    if (!ev || !ev.points) { return out; }
    const groups = this.traceIdx[k] || [];
    for (const pt of ev.points) {
      const idx = groups[pt.curveNumber];
      if (idx && pt.pointNumber !== undefined) { out.push(idx[pt.pointNumber]); }
    }
    return out;
  }

  onSelected(k, ev) {
    if (!ev) { return; }  // plotly_selected fires with no event when a selection is cleared
    this.setSelected(this.pointsOf(k, ev));
  }

  onClick(k, ev) {
    const pts = this.pointsOf(k, ev);
    if (!pts.length) { return; }
    this.model.send({ type: "inspect_kit.neighbours", point: pts[0] });
  }

  setSelected(points) {
    const uniq = Array.from(new Set(points)).sort((a, b) => a - b);
    this.model.set("selected_points", uniq);
    this.model.save_changes();
  }

  drawImages() {
    const on = this.model.get("images") && this.atlas && this.sheetImages;
    this.gds.forEach((gd, k) => {
      const canvas = this.canvases[k];
      const fl = gd._fullLayout;
      if (!on || !fl || !fl.xaxis) { canvas.style.display = "none"; return; }
      const pending = this.sheetImages.filter((im) => !im.complete);
      if (pending.length) { pending[0].addEventListener("load", () => this.drawImages(), { once: true }); return; }
      const w = fl.width, h = fl.height, dpr = window.devicePixelRatio || 1;
      canvas.style.display = "block";
      canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
      canvas.style.width = w + "px"; canvas.style.height = h + "px";
      const ctx = canvas.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.imageSmoothingEnabled = false;
      const xa = fl.xaxis, ya = fl.yaxis, p = this.panels[k], a = this.atlas;
      const [th, tw] = a.tile, per = a.columns * a.rows;
      const x0 = xa._offset, x1 = xa._offset + xa._length, y0 = ya._offset, y1 = ya._offset + ya._length;
      // tiles grow as the user zooms in (up to 4x their stored size)
      const span = Math.abs(xa.range[1] - xa.range[0]);
      const full = Math.abs((xa._ikFullSpan = xa._ikFullSpan || span));
      const s = Math.max(10, Math.min(4 * tw, tw * Math.sqrt(full / span)));
      const sel = this.model.get("selected_points");
      const selSet = sel.length ? new Set(sel) : null;
      ctx.clearRect(0, 0, w, h);
      let drawn = 0;
      for (let i = 0; i < this.n; i++) {
        const t = this.tiles[i];
        if (t < 0 || (selSet && !selSet.has(i))) { continue; }
        const px = xa._offset + xa.l2p(p.x[i]), py = ya._offset + ya.l2p(p.y[i]);
        if (px < x0 || px > x1 || py < y0 || py > y1) { continue; }
        const sheet = this.sheetImages[Math.floor(t / per)], r = t % per;
        ctx.drawImage(sheet, (r % a.columns) * tw, Math.floor(r / a.columns) * th, tw, th,
          px - s / 2, py - s * th / tw / 2, s, s * th / tw);
        drawn++;
      }
      canvas.setAttribute("data-drawn", String(drawn));
    });
  }

  gallery() {
    const m = this.model, sel = m.get("selected_points"), limit = m.get("gallery_size");
    this.galleryEl.innerHTML = "";
    this.galleryHead.textContent = sel.length
      ? sel.length + " selected" + (sel.length > limit ? " (first " + limit + " shown)" : "") +
        " \u2013 explorer.selected / explorer.selection_table() in Python"
      : "Select points with the lasso or box (drag on a map); click a point for its neighbours.";
    const names = Object.keys(this.cols);
    for (const i of sel.slice(0, limit)) {
      const card = el("div", "ik-card");
      card.setAttribute("data-sample", String(this.rows[i]));
      if (this.atlas && this.tiles[i] >= 0) {
        const a = this.atlas, [th, tw] = a.tile, per = a.columns * a.rows, t = this.tiles[i];
        const c = el("canvas", "ik-card-img");
        c.width = tw; c.height = th;
        const scale = Math.max(1, Math.round(64 / Math.max(th, tw)));
        c.style.width = tw * scale + "px"; c.style.height = th * scale + "px";
        const sheet = this.sheetImages[Math.floor(t / per)], r = t % per;
        const draw = () => c.getContext("2d").drawImage(sheet, (r % a.columns) * tw, Math.floor(r / a.columns) * th, tw, th, 0, 0, tw, th);
        if (sheet.complete) { draw(); } else { sheet.addEventListener("load", draw, { once: true }); }
        card.appendChild(c);
      }
      card.appendChild(el("div", "ik-card-title", "#" + this.rows[i]));
      const lines = names.map((n) => n + ": " + this.valueText(n, i));
      for (const line of lines.slice(0, 4)) { card.appendChild(el("div", "ik-card-line", line)); }
      if (this.cols.correct && this.cols.correct.codes[i] >= 0 && this.cols.correct.names[this.cols.correct.codes[i]] !== "correct") {
        card.classList.add("ik-wrong");
      }
      card.title = "sample " + this.rows[i] + "\n" + lines.join("\n");
      this.galleryEl.appendChild(card);
    }
  }

  destroy() { for (const gd of this.gds) { this.Plotly.purge(gd); } }
}

async function render({ model, el: root }) {
  root.classList.add("ik-root");
  const msg = el("div", "ik-loading", "loading plotly.js from the kernel\u2026");
  root.appendChild(msg);
  let Plotly;
  try {
    Plotly = await loadPlotly(model);
  } catch (err) {
    msg.textContent = "inspect_kit: could not load plotly.js: " + err.message;
    return;
  }
  root.removeChild(msg);
  if (model.get("kind") === "figure") { return renderFigure(model, root); }
  const view = new ExplorerView(model, root, Plotly);
  return () => view.destroy();
}

export default { render };
