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
 * option value, never as HTML.
 *
 * Test hook: a fragment containing "selftest" makes the page check that each
 * chart painted, drive the table through its own controls, show each chart's
 * tooltips, and write the results as JSON into <pre id="selftest">.
 */
(function () {
  "use strict";

  var SIZES = [10, 25, 50, 100];
  var COLS = { k: true, v: true, r: true, t: true };
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
      var c = key === "k" ? cmpStr(a.k, b.k) : a[key] - b[key];
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

  function applyCharts(list) {
    if (!window.echarts) { return; }
    list.forEach(function (c) {
      var ch = charts[c.id];
      if (!ch) {
        var el = $(c.id);
        if (!el) { return; }
        ch = charts[c.id] = window.echarts.init(el, null, { renderer: "canvas" });
        ch.setOption(c.option, true);
        return;
      }
      // Keep the reader's zoom and legend choices: leave those components
      // out of the update and merge the rest, replacing the series.
      var o = c.option;
      delete o.dataZoom;
      if (o.legend) { delete o.legend.selected; }
      ch.setOption(o, { replaceMerge: ["series"] });
    });
  }

  function apply(d) {
    cur = d;
    lastData = Date.now();
    applyText(d.text);
    applyLeader(d.leader);
    renderCandidates(d.candidates);
    renderStates();
    applyCharts(d.charts);
    tickAge();
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
          table.dir = key === "k" ? "asc" : "desc";
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
    window.addEventListener("resize", function () {
      Object.keys(charts).forEach(function (id) { charts[id].resize(); });
    });
  }

  function start(d) {
    readHash();
    wire();
    apply(d);
    setInterval(tickAge, 1000);
    if (d.refresh > 0) { setInterval(poll, d.refresh * 1000); }
    if (hashParams().has("selftest")) { setTimeout(selftest, 1500); }
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

  async function selftest() {
    var out = { charts: [], table: [], tooltips: [], errors: [] };
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
    } catch (e) {
      out.errors.push(String(e && e.stack || e));
    }
    var pre = $("selftest");
    pre.textContent = JSON.stringify(out);
    pre.setAttribute("data-done", "1");
  }

  window.votingDashboard = { start: start, update: update };
})();
