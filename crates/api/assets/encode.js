// The encode page with JavaScript: a chosen file is sent on its own by
// XMLHttpRequest (so a <progress> bar can show percent and MB/s), then the
// form's other fields are posted with the new upload's id, and the browser
// goes to the job's page. Without a file (an earlier upload, a volume) or
// without this script the form posts as it is; the server does the rest.
(function () {
  // The CRF field takes the chosen codec's range (none for ffv1).
  var codec = document.getElementById("codec"), crf = document.getElementById("crf");
  function narrow() {
    if (!codec || !crf) return;
    var range = (codec.options[codec.selectedIndex].getAttribute("data-crf") || "").split("-");
    if (range.length === 2) {
      crf.disabled = false; crf.min = range[0]; crf.max = range[1];
      crf.placeholder = range[0] + " to " + range[1];
    } else {
      crf.value = ""; crf.disabled = true; crf.placeholder = "none: lossless";
    }
  }
  if (codec) { codec.addEventListener("change", narrow); narrow(); }
})();
(function () {
  var form = document.getElementById("encode-form");
  if (!form || !window.XMLHttpRequest || !window.FormData || !window.fetch) return;
  var fileInput = document.getElementById("file");
  var box = document.getElementById("upload-progress");
  var bar = document.getElementById("upload-bar");
  var status = document.getElementById("upload-status");
  var error = document.getElementById("encode-error");
  var button = document.getElementById("encode");

  function fail(message) {
    error.textContent = message;
    error.hidden = false;
    button.disabled = false;
  }
  function messageOf(text, code) {
    try {
      return JSON.parse(text).error.message;
    } catch (e) {
      return "the server answered " + code + "; try again";
    }
  }
  // Tests may set window.tesseraNavigate to stay on the page.
  function go(url) {
    (window.tesseraNavigate || function (u) { location.assign(u); })(url);
  }
  function rate(bytes, started) {
    var secs = (performance.now() - started) / 1000;
    return (secs > 0 ? bytes / 1e6 / secs : 0).toFixed(1) + " MB/s";
  }
  function encode(upload, done) {
    var data = new FormData(form);
    data.delete("file");
    data.set("upload", upload);
    status.textContent = done + " · starting the encode…";
    fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (r) {
        return r.text().then(function (text) {
          if (!r.ok) throw new Error(messageOf(text, r.status));
          var job = JSON.parse(text);
          status.textContent = done + " · job #" + job.job + " submitted";
          go(job.url);
        });
      })
      .catch(function (e) { fail(e.message); });
  }

  form.addEventListener("submit", function (ev) {
    var file = fileInput && fileInput.files && fileInput.files[0];
    if (!file) return;
    ev.preventDefault();
    var limit = Number(form.getAttribute("data-limit"));
    if (limit && file.size > limit) {
      fail(file.name + " is larger than this server's upload limit (" + (limit / 1e6).toFixed(1) + " MB)");
      return;
    }
    error.hidden = true;
    button.disabled = true;
    box.hidden = false;
    bar.value = 0;
    var started = performance.now();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("data-upload") + "?name=" + encodeURIComponent(file.name));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable || e.total === 0) return;
      var pct = Math.floor((100 * e.loaded) / e.total);
      bar.value = pct;
      status.textContent = pct + " % · " + rate(e.loaded, started);
    };
    xhr.onload = function () {
      if (xhr.status !== 201) {
        fail(messageOf(xhr.responseText, xhr.status));
        return;
      }
      bar.value = 100;
      var up = JSON.parse(xhr.responseText);
      encode(up.upload, "100 % · " + rate(file.size, started) + " · " + up.name + " uploaded");
    };
    xhr.onerror = function () { fail("the upload broke off (connection lost); try again"); };
    xhr.send(file);
  });
})();
