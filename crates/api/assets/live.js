// Live updates for the job page: polls state.json every second and
// updates the state badges and the DAG's boxes; reloads once the job ends
// (so the timeline and the table show the final numbers). The page is
// complete without this script.
(function () {
  var badge = document.getElementById("job-state");
  if (!badge) return;
  var terminal = ["succeeded", "failed", "cancelled"];
  if (terminal.indexOf(badge.getAttribute("data-state")) >= 0) return;
  var url = badge.getAttribute("data-poll");
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
  }
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) {
        apply(d);
        if (terminal.indexOf(d.state) >= 0) location.reload();
        else setTimeout(tick, 1000);
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 1000);
})();
