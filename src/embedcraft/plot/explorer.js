// The embedcraft explorer: points drawn into one pixel buffer on a <canvas>, so hundreds of
// thousands stay responsive; a grid over the screen finds the point under the mouse; the search
// highlights an item and its nearest neighbours, computed beforehand in the ORIGINAL space.
(function () {
  "use strict";

  const BACKGROUND = [250, 250, 250];
  const SELECTED = "#e4002b";
  const NEIGHBOUR = "#ff9f1c";
  const CELL = 8; // CSS pixels per hover-grid cell
  const HOVER_RADIUS = 8; // CSS pixels

  // ---------------------------------------------------------------- data
  const raw = JSON.parse(document.getElementById("explorer-data").textContent);
  function decode(b64) {
    const s = atob(b64);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out.buffer;
  }
  const n = raw.n;
  const k = raw.k;
  const xy = new Float32Array(decode(raw.xy));
  const codes = new Uint16Array(decode(raw.codes));
  const neighbours = new Int32Array(decode(raw.neighbours));
  const texts = raw.texts;
  const images = raw.images || null; // thumbnails (data URLs) of an image set, else null
  const ids = raw.ids;
  const labels = raw.labels;

  function rgb(hex) {
    const v = parseInt(hex.slice(1), 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }
  function pack(c) { // RGBA bytes as one little-endian uint32
    return ((255 << 24) | (c[2] << 16) | (c[1] << 8) | c[0]) >>> 0;
  }
  function fade(c) { // a colour mixed towards the background: points in the back
    return c.map((v, j) => Math.round(v * 0.25 + BACKGROUND[j] * 0.75));
  }
  const colour = new Uint32Array(labels.colours.map((h) => pack(rgb(h))));
  const faded = new Uint32Array(labels.colours.map((h) => pack(fade(rgb(h)))));
  const background = pack(BACKGROUND);
  const hiddenCode = new Uint8Array(labels.names.length);

  // ---------------------------------------------------------------- view
  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d");
  const plot = document.getElementById("plot");
  const tooltip = document.getElementById("tooltip");
  const statusLine = document.getElementById("status");
  const details = document.getElementById("details");
  const searchBox = document.getElementById("search");
  const sx = new Float32Array(n); // screen position of each point, CSS pixels
  const sy = new Float32Array(n);
  let width = 0, height = 0, dpr = 1;
  let scale = 1, ox = 0, oy = 0; // screen = (x * scale + ox, -y * scale + oy)
  let image = null, pixels = null;
  let grid = null; // {cols, rows, start: Int32Array, items: Int32Array}, built on first hover
  let pending = false;

  const state = {
    ready: false, firstPaintMs: null, lastDrawMs: null, n: n, k: k,
    selected: -1, highlighted: [], hovered: -1, matches: [], query: "",
  };

  function radius() { // CSS pixels, by how many points there are
    if (n <= 2000) return 3;
    if (n <= 20000) return 2;
    return 1;
  }
  function stamp(r) { // pixel offsets of a dot of radius r device pixels
    const out = [];
    if (r <= 1) return [[0, 0], [1, 0], [0, 1], [1, 1]];
    for (let dy = -r; dy <= r; dy++) {
      for (let dx = -r; dx <= r; dx++) if (dx * dx + dy * dy <= r * r + r) out.push([dx, dy]);
    }
    return out;
  }
  let dot = [];

  function resize() {
    dpr = window.devicePixelRatio || 1;
    width = plot.clientWidth;
    height = plot.clientHeight;
    canvas.width = Math.max(1, Math.round(width * dpr));
    canvas.height = Math.max(1, Math.round(height * dpr));
    image = ctx.createImageData(canvas.width, canvas.height);
    pixels = new Uint32Array(image.data.buffer);
    const r = Math.max(1, Math.round(radius() * dpr * (n > 20000 ? 0.5 : 1)));
    dot = stamp(r);
  }

  function fit() {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = xy[2 * i], y = xy[2 * i + 1];
      if (x < x0) x0 = x; if (x > x1) x1 = x;
      if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
    if (n === 0) { x0 = y0 = -1; x1 = y1 = 1; }
    const margin = 24;
    const dx = Math.max(x1 - x0, 1e-9), dy = Math.max(y1 - y0, 1e-9);
    scale = Math.min((width - 2 * margin) / dx, (height - 2 * margin) / dy);
    if (!isFinite(scale) || scale <= 0) scale = 1;
    ox = width / 2 - ((x0 + x1) / 2) * scale;
    oy = height / 2 + ((y0 + y1) / 2) * scale;
  }

  function draw() {
    const t = performance.now();
    const W = canvas.width, H = canvas.height;
    pixels.fill(background);
    const dim = state.selected >= 0;
    const pal = dim ? faded : colour;
    const offsets = dot.map(([dx, dy]) => dy * W + dx);
    const reach = dot.reduce((m, [dx, dy]) => Math.max(m, Math.abs(dx), Math.abs(dy)), 0);
    for (let i = 0; i < n; i++) {
      const px = xy[2 * i] * scale + ox;
      const py = -xy[2 * i + 1] * scale + oy;
      sx[i] = px;
      sy[i] = py;
      const code = codes[i];
      if (hiddenCode[code]) continue;
      const X = (px * dpr) | 0, Y = (py * dpr) | 0;
      if (X < reach || Y < reach || X >= W - reach - 1 || Y >= H - reach - 1) continue;
      const c = pal[code];
      const base = Y * W + X;
      for (let j = 0; j < offsets.length; j++) pixels[base + offsets[j]] = c;
    }
    ctx.putImageData(image, 0, 0);
    drawHighlights();
    grid = null;
    state.lastDrawMs = performance.now() - t;
    return state.lastDrawMs;
  }

  function circle(i, r, fill, stroke) {
    ctx.beginPath();
    ctx.arc(sx[i] * dpr, sy[i] * dpr, r * dpr, 0, 2 * Math.PI);
    ctx.fillStyle = fill;
    ctx.fill();
    ctx.lineWidth = 1.5 * dpr;
    ctx.strokeStyle = stroke;
    ctx.stroke();
  }

  function drawHighlights() {
    const s = state.selected;
    if (s < 0) return;
    ctx.save();
    ctx.strokeStyle = "rgba(228,0,43,0.35)";
    ctx.lineWidth = 1 * dpr;
    ctx.beginPath();
    for (const j of state.highlighted) {
      ctx.moveTo(sx[s] * dpr, sy[s] * dpr);
      ctx.lineTo(sx[j] * dpr, sy[j] * dpr);
    }
    ctx.stroke();
    for (const j of state.highlighted) circle(j, 5, NEIGHBOUR, "#7a4a00");
    circle(s, 7, SELECTED, "#400");
    ctx.restore();
  }

  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }

  // ---------------------------------------------------------------- hover
  function buildGrid() {
    const cols = Math.max(1, Math.ceil(width / CELL)), rows = Math.max(1, Math.ceil(height / CELL));
    const start = new Int32Array(cols * rows + 1);
    const cell = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const cx = Math.floor(sx[i] / CELL), cy = Math.floor(sy[i] / CELL);
      if (hiddenCode[codes[i]] || cx < 0 || cy < 0 || cx >= cols || cy >= rows) { cell[i] = -1; continue; }
      cell[i] = cy * cols + cx;
      start[cell[i] + 1]++;
    }
    for (let c = 0; c < cols * rows; c++) start[c + 1] += start[c];
    const fill = start.slice(0, cols * rows);
    const items = new Int32Array(start[cols * rows]);
    for (let i = 0; i < n; i++) if (cell[i] >= 0) items[fill[cell[i]]++] = i;
    grid = { cols, rows, start, items };
  }

  function pointAt(mx, my) {
    if (!grid) buildGrid();
    const cx = Math.floor(mx / CELL), cy = Math.floor(my / CELL);
    let best = -1, bestD = HOVER_RADIUS * HOVER_RADIUS;
    for (let y = cy - 1; y <= cy + 1; y++) {
      if (y < 0 || y >= grid.rows) continue;
      for (let x = cx - 1; x <= cx + 1; x++) {
        if (x < 0 || x >= grid.cols) continue;
        const c = y * grid.cols + x;
        for (let p = grid.start[c]; p < grid.start[c + 1]; p++) {
          const i = grid.items[p];
          const d = (sx[i] - mx) ** 2 + (sy[i] - my) ** 2;
          if (d < bestD || (d === bestD && i > best)) { best = i; bestD = d; }
        }
      }
    }
    return best;
  }

  function showTooltip(i, mx, my) {
    state.hovered = i;
    if (i < 0) { tooltip.hidden = true; return; }
    tooltip.replaceChildren();
    const head = document.createElement("b");
    head.textContent = ids[i] + (labels.names.length > 1 ? " · " + labels.names[codes[i]] : "");
    tooltip.append(head);
    if (images && images[i]) tooltip.append(thumbnail(i, "thumb"));
    if (texts[i] !== ids[i]) tooltip.append(document.createTextNode(texts[i]));
    tooltip.hidden = false;
    const left = Math.min(mx + 14, Math.max(0, width - tooltip.offsetWidth - 4));
    const top = my + 14 + tooltip.offsetHeight > height ? my - tooltip.offsetHeight - 10 : my + 14;
    tooltip.style.left = left + "px";
    tooltip.style.top = Math.max(0, top) + "px";
  }

  // ---------------------------------------------------------------- selection and search
  let lowered = null;
  let idIndex = null;

  function find(query) {
    const q = query.trim();
    if (!q) return [];
    if (!idIndex) {
      idIndex = new Map();
      for (let i = n - 1; i >= 0; i--) idIndex.set(String(ids[i]), i);
    }
    const out = [];
    if (idIndex.has(q)) out.push(idIndex.get(q));
    if (!lowered) lowered = texts.map((t) => t.toLowerCase());
    const lq = q.toLowerCase();
    for (let i = 0; i < n; i++) if (i !== out[0] && lowered[i].includes(lq)) out.push(i);
    return out;
  }

  function thumbnail(i, cls) {
    const img = document.createElement("img");
    img.className = cls;
    img.alt = ids[i];
    img.src = images[i];
    return img;
  }

  function listItem(i, cls) {
    const div = document.createElement("div");
    div.className = "item" + (cls ? " " + cls : "");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = labels.colours[codes[i]];
    const id = document.createElement("span");
    id.className = "id";
    id.textContent = ids[i] + (labels.names.length > 1 ? " · " + labels.names[codes[i]] : "");
    div.append(sw, id, document.createElement("br"));
    if (images && images[i]) div.append(thumbnail(i, "thumb-small"));
    if (texts[i] !== ids[i]) div.append(document.createTextNode(texts[i]));
    div.addEventListener("click", () => select(i));
    return div;
  }

  function showDetails() {
    details.replaceChildren();
    const s = state.selected;
    if (s < 0) return;
    const h = document.createElement("h2");
    h.textContent = "Selected";
    const h2 = document.createElement("h2");
    h2.textContent = k + " nearest in the original space";
    details.append(h, listItem(s, "selected"), h2, ...state.highlighted.map((j) => listItem(j)));
  }

  function select(i) {
    if (i < 0 || i >= n) {
      state.selected = -1;
      state.highlighted = [];
    } else {
      state.selected = i;
      state.highlighted = Array.from(neighbours.subarray(i * k, i * k + k));
      const x = xy[2 * i] * scale + ox, y = -xy[2 * i + 1] * scale + oy;
      if (x < 0 || y < 0 || x > width || y > height) { // bring it into view
        ox += width / 2 - x;
        oy += height / 2 - y;
      }
    }
    showDetails();
    draw();
  }

  function report() {
    const m = state.matches;
    if (!state.query.trim()) { statusLine.textContent = n.toLocaleString() + " points"; return; }
    if (!m.length) { statusLine.textContent = "no match for “" + state.query.trim() + "”"; return; }
    const at = m.indexOf(state.selected) + 1;
    statusLine.textContent = "match " + at + " of " + m.length.toLocaleString() + ": " +
      ids[state.selected] + " and its " + k + " nearest neighbours (original space)";
  }

  function search(query) {
    state.query = query;
    state.matches = find(query);
    select(state.matches.length ? state.matches[0] : -1);
    report();
    return state.selected;
  }

  function next() {
    const m = state.matches;
    if (!m.length) return -1;
    select(m[(m.indexOf(state.selected) + 1) % m.length]);
    report();
    return state.selected;
  }

  // ---------------------------------------------------------------- legend
  function legend() {
    const box = document.getElementById("legend");
    const h = document.createElement("h2");
    h.textContent = raw.labelColumn ? "Colour: " + raw.labelColumn : n.toLocaleString() + " points";
    box.append(h);
    if (labels.names.length < 2) return;
    labels.names.forEach((name, code) => {
      const b = document.createElement("button");
      b.className = "legend-item";
      b.title = "show or hide";
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = labels.colours[code];
      b.append(sw, document.createTextNode(name + " (" + labels.counts[code].toLocaleString() + ")"));
      b.addEventListener("click", () => {
        hiddenCode[code] ^= 1;
        b.classList.toggle("off", hiddenCode[code] === 1);
        draw();
      });
      box.append(b);
    });
  }

  // ---------------------------------------------------------------- input
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => {
    drag = { x: e.offsetX, y: e.offsetY, moved: 0 };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (drag) {
      const dx = e.offsetX - drag.x, dy = e.offsetY - drag.y;
      drag.moved += Math.abs(dx) + Math.abs(dy);
      drag.x = e.offsetX;
      drag.y = e.offsetY;
      if (drag.moved > 2) {
        canvas.classList.add("dragging");
        tooltip.hidden = true;
        ox += dx;
        oy += dy;
        schedule();
      }
      return;
    }
    showTooltip(pointAt(e.offsetX, e.offsetY), e.offsetX, e.offsetY);
  });
  canvas.addEventListener("pointerup", (e) => {
    const click = drag && drag.moved <= 2;
    drag = null;
    canvas.classList.remove("dragging");
    if (click) {
      const i = pointAt(e.offsetX, e.offsetY);
      if (i >= 0) { state.matches = [i]; state.query = String(ids[i]); select(i); report(); }
    }
  });
  canvas.addEventListener("pointerleave", () => { if (!drag) showTooltip(-1, 0, 0); });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    zoomBy(Math.exp(-e.deltaY * 0.0015), e.offsetX, e.offsetY);
  }, { passive: false });
  canvas.addEventListener("dblclick", () => { fit(); draw(); });
  let typing = 0;
  searchBox.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => search(searchBox.value), n > 100000 ? 250 : 60);
  });
  searchBox.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    clearTimeout(typing);
    if (searchBox.value !== state.query) search(searchBox.value); else next();
  });
  window.addEventListener("resize", () => { resize(); draw(); });

  function zoomBy(f, cx, cy) {
    ox = cx - (cx - ox) * f;
    oy = cy - (cy - oy) * f;
    scale *= f;
    schedule();
  }

  // ---------------------------------------------------------------- start
  Object.assign(state, {
    search, next, select,
    redraw: draw,
    panBy(dx, dy) { ox += dx; oy += dy; return draw(); },
    zoomBy(f, cx, cy) { zoomBy(f, cx ?? width / 2, cy ?? height / 2); return draw(); },
    screenPosition(i) { // page coordinates (CSS pixels) of point i as drawn now
      const r = canvas.getBoundingClientRect();
      return { x: r.left + sx[i], y: r.top + sy[i] };
    },
    pixel(i) { // the [r, g, b, a] on the canvas at point i
      const d = ctx.getImageData(Math.round(sx[i] * dpr), Math.round(sy[i] * dpr), 1, 1).data;
      return Array.from(d);
    },
  });
  window.explorer = state;
  legend();
  resize();
  fit();
  draw();
  report();
  requestAnimationFrame(() => requestAnimationFrame(() => {
    state.firstPaintMs = performance.now();
    state.ready = true;
  }));
})();
