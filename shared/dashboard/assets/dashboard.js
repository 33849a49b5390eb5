/* Election dashboard page script.
 *
 * Draws the charts from the option JSON rendered by the Go dashboard package,
 * sorts and pages the state table, and refreshes the page in place: every
 * `refresh` seconds it re-loads data.js (as a script element, since fetch() of a file
 * is blocked on file://), which calls votingDashboard.update(data). The
 * table's sort, page and page size live in the URL fragment, so they survive
 * both an in-place refresh and a full reload; legend choices and zoom survive
 * the in-place refresh.
 *
 * Every string from the data is written with textContent or as a chart
 * option value, never as HTML (the map's tooltip is built as DOM nodes).
 *
 * Test hook: a fragment containing "selftest" makes the page check that each
 * chart painted, drive the table through its own controls, show each chart's
 * tooltips, report the map's series and the page's layout (overflow, header
 * wrapping), and write the results as JSON into <pre id="selftest">.
 * "selftest=report" only reports the map and the layout, after every
 * update, without touching the page.
 */
(function () {
  "use strict";

  var SIZES = [10, 25, 50, 100];
  // The state table's sort keys; TEXT ones sort as strings, ascending first.
  var COLS = { k: true, v: true, r: true, t: true, l: true, m: true };
  var TEXT = { k: true, l: true };
  var MAP = "state-map";
  var donutRadius = null; // as rendered, for fit()
  var cur = null;
  var charts = {};
  var refreshes = 0;
  var loading = null;
  var lastData = Date.now();
  var table = { sort: "k", dir: "asc", page: 1, size: 10 };

  function $(id) { return document.getElementById(id); }

  function hashParams() { return new URLSearchParams(location.hash.replace(/^#/, "")); }

  function readHash() {
    var p = hashParams();
    if (COLS[p.get("sort")]) { table.sort = p.get("sort"); }
    if (p.get("dir") === "asc" || p.get("dir") === "desc") { table.dir = p.get("dir"); }
    var size = parseInt(p.get("size"), 10);
    if (SIZES.indexOf(size) >= 0) { table.size = size; }
    var page = parseInt(p.get("page"), 10);
    if (page >= 1) { table.page = page; }
  }

  function writeHash() {
    var p = hashParams();
    p.set("sort", table.sort);
    p.set("dir", table.dir);
    p.set("page", String(table.page));
    p.set("size", String(table.size));
    var h = "#" + p.toString();
    if (location.hash === h) { return; }
    try { history.replaceState(null, "", h); } catch (e) { location.hash = h; }
  }

  function cmpStr(a, b) { return a < b ? -1 : a > b ? 1 : 0; }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }

  function renderStates() {
    if (!cur) { return; }
    var rows = cur.states.slice();
    var key = table.sort;
    var mul = table.dir === "desc" ? -1 : 1;
    rows.sort(function (a, b) {
      var c = TEXT[key] ? cmpStr(a[key], b[key]) : a[key] - b[key];
      return c * mul || cmpStr(a.k, b.k);
    });
    var pages = Math.max(1, Math.ceil(rows.length / table.size));
    table.page = Math.min(Math.max(1, table.page), pages);
    var from = (table.page - 1) * table.size;
    var slice = rows.slice(from, from + table.size);

    var frag = document.createDocumentFragment();
    slice.forEach(function (r) {
      var tr = document.createElement("tr");
      cell(tr, r.k);
      cell(tr, r.vs, "num");
      cell(tr, r.rs, "num");
      cell(tr, r.ts, "num");
      var td = cell(tr, "", "leader");
      td.setAttribute("data-kind", r.lk);
      if (r.lk !== "none") { td.appendChild(swatch(r.lk, r.lc)); }
      td.appendChild(document.createTextNode(r.l));
      cell(tr, r.ms, "num");
      frag.appendChild(tr);
    });
    document.querySelector("#states tbody").replaceChildren(frag);

    document.querySelectorAll("#states th[data-sort]").forEach(function (th) {
      if (th.getAttribute("data-sort") === key) {
        th.setAttribute("aria-sort", table.dir === "asc" ? "ascending" : "descending");
      } else {
        th.removeAttribute("aria-sort");
      }
    });
    $("states-size").value = String(table.size);
    $("states-range").textContent = rows.length === 0 ? "No states yet" :
      "Showing " + (from + 1) + "–" + (from + slice.length) + " of " + rows.length + " · page " + table.page + " of " + pages;

    var pager = $("states-pager");
    var btns = document.createDocumentFragment();
    function btn(label, page, disabled, current, name) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.setAttribute("data-page", String(page));
      if (name) { b.setAttribute("data-name", name); b.setAttribute("aria-label", name + " page"); }
      if (disabled) { b.disabled = true; }
      if (current) { b.setAttribute("aria-current", "page"); }
      btns.appendChild(b);
    }
    btn("«", 1, table.page === 1, false, "first");
    btn("‹", table.page - 1, table.page === 1, false, "previous");
    for (var i = 1; i <= pages; i++) {
      // Every page is listed up to 20 pages; beyond that the first, the
      // last and those near the current one (the arrows reach the rest).
      if (pages <= 20 || i === 1 || i === pages || Math.abs(i - table.page) <= 3) {
        btn(String(i), i, false, i === table.page);
      }
    }
    btn("›", table.page + 1, table.page === pages, false, "next");
    btn("»", pages, table.page === pages, false, "last");
    pager.replaceChildren(btns);
  }

  function swatch(kind, color) {
    var sw = document.createElement("span");
    sw.className = kind === "tie" ? "swatch tie" : "swatch";
    if (kind !== "tie") { sw.style.background = color; }
    return sw;
  }

  function renderLegend(m) {
    var frag = document.createDocumentFragment();
    ((m && m.legend) || []).forEach(function (it) {
      var li = document.createElement("li");
      li.setAttribute("data-kind", it.kind);
      li.appendChild(swatch(it.kind, it.color));
      var name = document.createElement("span");
      name.className = "name";
      name.textContent = it.name;
      var count = document.createElement("span");
      count.className = "count";
      count.textContent = it.count;
      li.appendChild(name);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(count);
      frag.appendChild(li);
    });
    $("state-map-legend").replaceChildren(frag);
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function stateByName(name) {
    var k = String(name).trim().toLowerCase();
    var rows = cur ? cur.states : [];
    for (var i = 0; i < rows.length; i++) {
      if (String(rows[i].k).trim().toLowerCase() === k) { return rows[i]; }
    }
    return null;
  }

  // mapTip is the map's tooltip: the state's votes per candidate, margin and
  // turnout, as DOM nodes (text only) from the item's tip.
  function mapTip(p) {
    var box = el("div", "map-tip");
    box.appendChild(el("div", "tip-title", p.name));
    var t = p.data && p.data.tip;
    if (!t) {
      box.appendChild(el("div", "tip-status", "No votes yet"));
      var row = stateByName(p.name);
      if (row) { box.appendChild(el("div", "tip-line", row.rs + " registered")); }
      return box;
    }
    box.appendChild(el("div", "tip-status", t.status));
    var tbl = el("table", "tip-rows");
    (t.rows || []).forEach(function (r) {
      var tr = el("tr");
      var td = el("td");
      td.appendChild(swatch("lead", r.c));
      td.appendChild(document.createTextNode(r.n));
      tr.appendChild(td);
      tr.appendChild(el("td", "num", r.v));
      tr.appendChild(el("td", "num", r.s));
      tbl.appendChild(tr);
    });
    box.appendChild(tbl);
    box.appendChild(el("div", "tip-line", t.margin));
    box.appendChild(el("div", "tip-line", t.turnout));
    return box;
  }

  function renderCandidates(list) {
    var frag = document.createDocumentFragment();
    list.forEach(function (c) {
      var tr = document.createElement("tr");
      cell(tr, c.rank);
      var td = cell(tr, "");
      var sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = c.color;
      td.appendChild(sw);
      if (c.photo) {
        var img = document.createElement("img");
        img.className = "avatar";
        img.alt = "";
        img.width = 28;
        img.height = 28;
        img.src = c.photo;
        td.appendChild(img);
      }
      cell(tr, c.name);
      cell(tr, c.party);
      cell(tr, c.votes, "num");
      cell(tr, c.share, "num");
      frag.appendChild(tr);
    });
    document.querySelector("#candidates tbody").replaceChildren(frag);
  }

  function applyText(t) {
    document.querySelectorAll("[data-k]").forEach(function (el) {
      var k = el.getAttribute("data-k");
      if (Object.prototype.hasOwnProperty.call(t, k) && el.textContent !== t[k]) { el.textContent = t[k]; }
    });
    document.title = t.title + " · " + t.election;
  }

  function applyLeader(l) {
    var img = $("leader-photo");
    if (l.photo) {
      if (img.getAttribute("src") !== l.photo) { img.src = l.photo; }
      img.hidden = false;
    } else {
      img.hidden = true;
      img.removeAttribute("src");
    }
    $("leader").toggleAttribute("data-tie", !!l.tie);
  }

  // fit adapts a chart to its container's width (the options are drawn for
  // a desktop): on a narrow screen the bar chart's names wrap within their
  // column and the donut shrinks to leave its labels room. It runs after
  // every setOption and on every resize.
  function fit(id) {
    var ch = charts[id];
    var w = $(id).clientWidth;
    var o = ch.getOption();
    if (id === "votes-bar") {
      var lab = o.xAxis[0].axisLabel || {};
      var n = Math.max(1, (o.xAxis[0].data || []).length);
      if (!lab.rotate) {
        ch.setOption({ xAxis: [{ axisLabel: { width: Math.max(40, Math.min(120, Math.floor(w * 0.8 / n) - 6)), overflow: "break", lineHeight: 14 } }] });
      }
    } else if (id === "votes-donut") {
      ch.setOption({ series: [{ radius: w < 460 ? ["34%", "54%"] : donutRadius }] });
    }
  }

  function applyCharts(list) {
    if (!window.echarts) { return; }
    list.forEach(function (c) {
      if (c.id === "votes-donut") { donutRadius = c.option.series[0].radius; }
      // Tooltips stay inside their chart: a phone has no room beside it.
      c.option.tooltip = c.option.tooltip || {};
      c.option.tooltip.confine = true;
      // Functions cannot travel in JSON: the map tooltip's is the page's.
      if (c.id === MAP) { c.option.tooltip.formatter = mapTip; }
      var ch = charts[c.id];
      if (!ch) {
        var box = $(c.id);
        if (!box) { return; }
        ch = charts[c.id] = window.echarts.init(box, null, { renderer: "canvas" });
        ch.setOption(c.option, true);
        fit(c.id);
        // Charts follow their container (a phone turned, a grid reflowed).
        if (window.ResizeObserver) {
          new ResizeObserver(function () { ch.resize(); fit(c.id); }).observe(box);
        }
        return;
      }
      // Keep the reader's zoom and legend choices: leave those components
      // out of the update and merge the rest, replacing the series.
      var o = c.option;
      delete o.dataZoom;
      if (o.legend) { delete o.legend.selected; }
      ch.setOption(o, { replaceMerge: ["series"] });
      fit(c.id);
    });
  }

  function apply(d) {
    cur = d;
    lastData = Date.now();
    applyText(d.text);
    applyLeader(d.leader);
    renderCandidates(d.candidates);
    renderStates();
    renderLegend(d.map);
    applyCharts(d.charts);
    tickAge();
    if (hashParams().get("selftest") === "report") {
      writeSelftest({ takenAt: d.takenAt, map: mapState(), layout: layout(), errors: [] });
    }
  }

  function ago(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) { return s + " s ago"; }
    if (s < 3600) { return Math.floor(s / 60) + " min ago"; }
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min ago";
  }

  function tickAge() {
    if (!cur) { return; }
    var age = Date.now() - cur.takenAt;
    $("age").textContent = "(" + ago(age) + ")";
    var stale = cur.refresh > 0 && age > Math.max(3 * cur.refresh, 15) * 1000;
    $("fresh").classList.toggle("stale", stale);
    $("fresh").title = stale ? "No newer data has been published since then: voting may have ended or the pipeline is not running." : "";
  }

  function poll() {
    if (loading && Date.now() - loading.started < 30000) { return; }
    if (loading) { loading.el.remove(); }
    var s = document.createElement("script");
    s.src = "data.js?t=" + Date.now();
    s.async = true;
    loading = { el: s, started: Date.now() };
    s.onload = s.onerror = function (ev) {
      $("live").classList.toggle("offline", ev.type === "error");
      s.remove();
      loading = null;
    };
    document.head.appendChild(s);
  }

  function update(d) {
    if (!d || typeof d !== "object" || !cur) { return; }
    if (d.v !== cur.v) { location.reload(); return; }
    if (d.takenAt <= cur.takenAt) { return; }
    apply(d);
    refreshes++;
    document.documentElement.setAttribute("data-refreshes", String(refreshes));
  }

  function wire() {
    document.querySelectorAll("#states th[data-sort] button").forEach(function (b) {
      b.addEventListener("click", function () {
        var key = b.parentNode.getAttribute("data-sort");
        if (table.sort === key) {
          table.dir = table.dir === "asc" ? "desc" : "asc";
        } else {
          table.sort = key;
          table.dir = TEXT[key] ? "asc" : "desc";
        }
        table.page = 1;
        renderStates();
        writeHash();
      });
    });
    $("states-pager").addEventListener("click", function (ev) {
      var b = ev.target.closest("button[data-page]");
      if (!b || b.disabled) { return; }
      table.page = parseInt(b.getAttribute("data-page"), 10);
      renderStates();
      writeHash();
    });
    $("states-size").addEventListener("change", function (ev) {
      var size = parseInt(ev.target.value, 10);
      // Keep the first row in view.
      table.page = Math.floor((table.page - 1) * table.size / size) + 1;
      table.size = size;
      renderStates();
      writeHash();
    });
    window.addEventListener("hashchange", function () { readHash(); renderStates(); });
    if (!window.ResizeObserver) {
      window.addEventListener("resize", function () {
        Object.keys(charts).forEach(function (id) { charts[id].resize(); fit(id); });
      });
    }
  }

  function start(d) {
    readHash();
    wire();
    apply(d);
    setInterval(tickAge, 1000);
    if (d.refresh > 0) { setInterval(poll, d.refresh * 1000); }
    if (hashParams().has("selftest") && hashParams().get("selftest") !== "report") { setTimeout(selftest, 1500); }
  }

  // ---- test hook ----

  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function painted(id) {
    var el = $(id);
    var cv = el && el.querySelector("canvas");
    var r = { id: id, canvas: !!cv, width: 0, height: 0, painted: 0 };
    if (!cv) { return r; }
    r.width = cv.width;
    r.height = cv.height;
    if (!cv.width || !cv.height) { return r; }
    var px = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
    for (var i = 3; i < px.length; i += 4 * 7) {
      if (px[i] !== 0) { r.painted++; }
    }
    return r;
  }

  function tableState(label) {
    var rows = [];
    document.querySelectorAll("#states tbody tr").forEach(function (tr) {
      rows.push(Array.prototype.map.call(tr.cells, function (td) { return td.textContent; }));
    });
    var pages = document.querySelectorAll("#states-pager button:not([data-name])").length;
    return { step: label, sort: table.sort, dir: table.dir, page: table.page, size: table.size,
      pages: pages, range: $("states-range").textContent, hash: location.hash, rows: rows };
  }

  function click(sel) {
    var el = document.querySelector(sel);
    if (el) { el.click(); }
    return !!el;
  }

  // mapState reports the map's series as echarts holds it.
  function mapState() {
    var ch = charts[MAP];
    if (!ch) { return null; }
    var ser = ch.getOption().series[0];
    return { type: ser.type, map: ser.map, registered: !!window.echarts.getMap("us-states"),
      items: (ser.data || []).map(function (it) {
        return { name: it.name, leader: it.tip && it.tip.leader, color: it.itemStyle && it.itemStyle.areaColor,
          decal: !!(it.itemStyle && it.itemStyle.decal) };
      }) };
  }

  // layout reports what a reader on a narrow screen would notice: the page
  // wider than the window, charts past its right edge, headers broken
  // across lines.
  function layout() {
    var out = { innerWidth: window.innerWidth, scrollWidth: document.scrollingElement.scrollWidth, charts: [], headers: [], tables: [] };
    Object.keys(charts).forEach(function (id) {
      var r = $(id).getBoundingClientRect();
      out.charts.push({ id: id, left: Math.round(r.left), right: Math.round(r.right), width: Math.round(r.width), height: Math.round(r.height) });
    });
    // The outermost elements that reach past the right edge, for a failing test to name.
    function clipped(e) {
      for (var a = e.parentElement; a; a = a.parentElement) {
        if (getComputedStyle(a).overflowX !== "visible" && a.getBoundingClientRect().right <= window.innerWidth + 0.5) { return true; }
      }
      return false;
    }
    document.querySelectorAll("body *").forEach(function (e) {
      if (out.wide && out.wide.length >= 5) { return; }
      var r = e.getBoundingClientRect();
      if (r.right > window.innerWidth + 0.5 && !clipped(e) &&
          !(e.parentElement && e.parentElement.getBoundingClientRect().right > window.innerWidth + 0.5)) {
        var path = [];
        for (var a = e; a && a !== document.body && path.length < 4; a = a.parentElement) {
          path.unshift(a.tagName.toLowerCase() + (a.id ? "#" + a.id : "") + (a.className && typeof a.className === "string" ? "." + a.className.split(" ").join(".") : ""));
        }
        out.wide = out.wide || [];
        out.wide.push(path.join(" > ") + " right " + Math.round(r.right));
      }
    });
    document.querySelectorAll("table.data").forEach(function (t) {
      var wrap = t.closest(".table-wrap") || t.parentElement;
      out.tables.push({ id: t.id, overflow: Math.max(0, Math.round(wrap.scrollWidth - wrap.clientWidth)) });
    });
    document.querySelectorAll("table.data th").forEach(function (th) {
      if (th.offsetParent === null) { return; } // a column the layout hides
      var lines = 0;
      var walk = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
      var range = document.createRange();
      for (var n = walk.nextNode(); n; n = walk.nextNode()) {
        if (!n.textContent.trim()) { continue; }
        range.selectNodeContents(n);
        lines = Math.max(lines, range.getClientRects().length);
      }
      out.headers.push({ table: th.closest("table").id, text: th.textContent.trim(), lines: lines });
    });
    return out;
  }

  async function selftest() {
    var out = { charts: [], table: [], tooltips: [], map: null, layout: null, errors: [] };
    try {
      Object.keys(charts).forEach(function (id) { out.charts.push(painted(id)); });
      out.table.push(tableState("initial"));
      click("#states th[data-sort='t'] button");
      out.table.push(tableState("sort turnout"));
      click("#states th[data-sort='t'] button");
      out.table.push(tableState("sort turnout again"));
      click("#states-pager button[data-name='next']");
      out.table.push(tableState("next"));
      click("#states-pager button[data-name='last']");
      out.table.push(tableState("last"));
      var sel = $("states-size");
      sel.value = "25";
      sel.dispatchEvent(new Event("change"));
      out.table.push(tableState("size 25"));
      click("#states th[data-sort='k'] button");
      out.table.push(tableState("sort state"));
      click("#states-pager button[data-page='2']");
      out.table.push(tableState("page 2"));

      var tipCharts = ["votes-bar", "votes-donut"];
      for (var c = 0; c < tipCharts.length; c++) {
        var ch = charts[tipCharts[c]];
        if (!ch) { continue; }
        var n = cur.candidates.length;
        for (var i = 0; i < n; i++) {
          ch.dispatchAction({ type: "showTip", seriesIndex: 0, dataIndex: i });
          await sleep(50);
          out.tooltips.push({ chart: tipCharts[c], index: i, text: $(tipCharts[c]).textContent });
        }
        ch.dispatchAction({ type: "hideTip" });
      }

      out.map = mapState();
      out.layout = layout();
      // The map's tooltips: the first states with votes, and one without.
      var mc = charts[MAP];
      if (mc && out.map) {
        var names = out.map.items.slice(0, 3).map(function (it) { return it.name; });
        var have = {};
        out.map.items.forEach(function (it) { have[it.name] = true; });
        var reg = window.echarts.getMap("us-states");
        var bare = (reg.geoJSON || reg.geoJson).features.map(function (f) { return f.properties.name; })
          .filter(function (n) { return !have[n]; });
        if (bare.length) { names.push(bare[0]); }
        for (var k = 0; k < names.length; k++) {
          mc.dispatchAction({ type: "showTip", seriesIndex: 0, name: names[k] });
          await sleep(50);
          var tip = $(MAP).querySelector(".map-tip");
          out.tooltips.push({ chart: MAP, state: names[k], text: tip ? tip.textContent : "" });
        }
        mc.dispatchAction({ type: "hideTip" });
      }
    } catch (e) {
      out.errors.push(String(e && e.stack || e));
    }
    writeSelftest(out);
  }

  function writeSelftest(out) {
    var pre = $("selftest");
    pre.textContent = JSON.stringify(out);
    pre.setAttribute("data-done", "1");
  }

  window.votingDashboard = { start: start, update: update };
})();
