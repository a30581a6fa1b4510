// Live updates for the job page. With EventSource, the job's event stream
// (/ui/jobs/{id}/events) says when something changed: the page then re-reads
// state.json (at most every 300 ms) and updates the state badges and the
// DAG's boxes; progress events give the frames per second of running
// encodes. Tasks added while the page is open (an expansion, a retry) and
// attempts' bars come from parts.json: the graph, timeline and task table
// redrawn by the server, at most every second on events and every two
// seconds while the job runs (so running bars grow). Without EventSource,
// or if the stream fails, it polls state.json every second. Once the job
// ends it reloads (so the timeline and the table show the final numbers).
// The page is complete without this script.
(function () {
  var badge = document.getElementById("job-state");
  if (!badge) return;
  var terminal = ["succeeded", "failed", "cancelled"];
  if (terminal.indexOf(badge.getAttribute("data-state")) >= 0) return;
  var url = badge.getAttribute("data-poll");
  var ended = false;
  function apply(d) {
    badge.textContent = d.state;
    badge.setAttribute("class", "badge s-" + d.state);
    d.tasks.forEach(function (t) {
      var nodes = document.querySelectorAll('[data-task="' + t[0] + '"]');
      Array.prototype.forEach.call(nodes, function (n) {
        if (n.tagName.toLowerCase() === "rect") {
          n.setAttribute("class", "n s-" + t[1]);
        } else {
          n.textContent = t[1];
          n.setAttribute("class", "badge s-" + t[1]);
        }
      });
    });
    var p = document.getElementById("progress");
    if (p) { p.max = d.total; p.value = d.done; }
    var pt = document.getElementById("progress-text");
    if (pt) pt.textContent = d.done + " / " + d.total;
    if (terminal.indexOf(d.state) >= 0 && !ended) { ended = true; location.reload(); }
  }
  var box = document.getElementById("tasks-box");
  var partsUrl = box && box.getAttribute("data-parts");
  var partsPending = null, partsAt = 0;
  function put(id, html) {
    var e = document.getElementById(id);
    if (e && typeof html === "string") e.innerHTML = html;
  }
  function redraw() {
    if (!partsUrl || partsPending || ended) return;
    var wait = Math.max(0, 1000 - (Date.now() - partsAt));
    partsPending = setTimeout(function () {
      partsPending = null;
      partsAt = Date.now();
      fetch(partsUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (p) {
          put("graph-box", p.dag);
          // A timeline scrolled to its recent end stays there as it grows.
          var tl = document.getElementById("timeline-box");
          var atEnd = tl && tl.scrollLeft + tl.clientWidth >= tl.scrollWidth - 2;
          put("timeline-box", p.gantt);
          if (tl && atEnd) tl.scrollLeft = tl.scrollWidth;
          put("tasks-box", p.tasks);
          if (p.chunks) { put("chunk-box", p.chunks); frames(); }
        })
        .catch(function () {});
    }, wait);
  }
  var growing = setInterval(function () {
    if (ended) { clearInterval(growing); return; }
    redraw();
  }, 2000);
  function read() {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(apply);
  }
  function poll() {
    read().then(function () { if (!ended) setTimeout(poll, 1000); },
                function () { setTimeout(poll, 3000); });
  }
  if (!window.EventSource || !badge.getAttribute("data-events")) { setTimeout(poll, 1000); return; }

  var pending = null;
  function soon() {
    if (pending) return;
    pending = setTimeout(function () { pending = null; read().catch(function () {}); }, 300);
  }
  // Frames per second: each running attempt's last two progress reports.
  var last = {}, rates = {}, progress = {};
  var fps = document.getElementById("fps");
  function rate() {
    var sum = 0;
    Object.keys(rates).forEach(function (k) { sum += rates[k]; });
    return sum;
  }
  function showFps() {
    var sum = rate();
    if (fps) fps.textContent = sum > 0 ? "· " + sum.toFixed(1) + " frames/s" : "";
    frames();
  }
  // An encode's chunk map and frame count: succeeded chunks count whole,
  // running ones as far as their progress reports say.
  function frames() {
    var line = document.getElementById("frames-line");
    if (!line) return;
    var done = 0, total = 0;
    var chunks = document.querySelectorAll("#chunk-map g.chunk");
    Array.prototype.forEach.call(chunks, function (g) {
      var n = +g.getAttribute("data-frames"), t = g.getAttribute("data-chunk-task");
      total += n;
      var d = g.getAttribute("data-state") === "succeeded" ? n : Math.min(progress[t] || 0, n);
      done += d;
      var bar = g.querySelector("rect.done");
      if (bar && n > 0) bar.setAttribute("width", (+bar.getAttribute("data-full")) * d / n);
    });
    if (!chunks.length) return;
    document.getElementById("frames-done").textContent = done;
    document.getElementById("frames-total").textContent = total;
    var r = rate(), src = +line.getAttribute("data-fps"), words = [];
    if (r > 0) {
      words.push(r.toFixed(1) + " fps");
      if (src > 0) words.push((r / src).toFixed(2) + "x realtime");
      if (total > done) words.push(Math.ceil((total - done) / r) + " s left");
    }
    document.getElementById("frames-rate").textContent = words.length ? "· " + words.join(" · ") : "";
  }
  var es = new EventSource(badge.getAttribute("data-events"));
  ["snapshot", "job", "task", "tasks_added", "lagged"].forEach(function (name) {
    es.addEventListener(name, soon);
  });
  ["tasks_added", "attempt_started", "lagged"].forEach(function (name) {
    es.addEventListener(name, redraw);
  });
  es.addEventListener("progress", function (e) {
    var d = JSON.parse(e.data), k = d.index + "/" + d.attempt, now = Date.now();
    var prev = last[k];
    if (prev && now > prev.t && d.done >= prev.done) {
      rates[k] = (d.done - prev.done) * 1000 / (now - prev.t);
    }
    last[k] = { t: now, done: d.done };
    progress[d.index] = d.done;
    showFps();
  });
  es.addEventListener("attempt_ended", function (e) {
    var d = JSON.parse(e.data), k = d.index + "/" + d.attempt;
    delete rates[k]; delete last[k];
    showFps();
    soon();
    redraw();
  });
  es.addEventListener("end", function () { es.close(); read().catch(function () {}); });
  es.onerror = function () {
    // The stream broke (server restart, proxy): fall back to polling.
    if (ended) return;
    es.close();
    setTimeout(poll, 1000);
  };
})();
