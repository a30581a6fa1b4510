// The log page: while the job runs, each <pre> is read again from its
// start through the followed log and grows as the attempt writes, until it
// ends. Text is added as text (never as HTML: the bytes are the task's).
(function () {
  var state = document.getElementById("log-state");
  if (!state || state.getAttribute("data-follow") !== "true" || !window.fetch || !window.TextDecoder) return;
  ["stdout", "stderr"].forEach(function (id) {
    var pre = document.getElementById(id);
    fetch(pre.getAttribute("data-src"), { credentials: "same-origin" }).then(function (r) {
      if (!r.ok || !r.body) return;
      var reader = r.body.getReader(), decoder = new TextDecoder(), first = true;
      function next() {
        return reader.read().then(function (part) {
          if (part.done) { state.textContent = "The attempt has ended."; return; }
          if (first) { pre.textContent = ""; first = false; }
          var atEnd = window.innerHeight + window.scrollY >= document.body.scrollHeight - 4;
          pre.textContent += decoder.decode(part.value, { stream: true });
          if (atEnd) window.scrollTo(0, document.body.scrollHeight);
          return next();
        });
      }
      return next();
    }).catch(function () {});
  });
})();
