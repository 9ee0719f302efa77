/* gsbook gallery (gallery.md): one 3D viewer, many results. A thumbnail is a <button> carrying
 * its .splat URL (data-splat) and its captions (data-en, data-zh); a click loads that scene into
 * the page's one viewer, which gsbook.viewer's own start-up code has already built (browsers
 * allow about 16 WebGL contexts a page, so not one viewer per result). The camera stays where
 * the reader left it, so two results compare from the same side. tools/make_gallery.py writes the
 * buttons and the viewer into the page; this file only switches scenes.
 *
 * The viewer's root says what it shows: data-state (loading / ready / error, as the viewer sets
 * it) and data-scene (the URL of the scene on screen), for readers' scripts and the site test. */
(function () {
  function start() {
    var gallery = document.querySelector(".gsbook-gallery");
    var root = gallery && gallery.querySelector(".gsbook-splat-viewer");
    if (!root) return;
    var buttons = Array.prototype.slice.call(gallery.querySelectorAll("button[data-splat]"));
    var now = gallery.querySelector(".gsbook-gallery-now");
    var status = root.querySelector(".gsbook-splat-status");
    var options = JSON.parse(root.querySelector("script.gsbook-splat-options").textContent);
    var wanted = null, busy = false;
    root.dataset.scene = options.url;

    function caption(button) {
      var en = now.querySelector(".lang-en"), zh = now.querySelector(".lang-zh");
      if (en) en.textContent = button.dataset.en;
      if (zh) zh.textContent = button.dataset.zh;
    }
    function say(state, text) {
      root.dataset.state = state;
      status.textContent = text;
      status.style.display = text ? "" : "none";
    }
    // One load at a time (the library refuses a second); the last click wins.
    function load() {
      var viewer = root.gsbookViewer;
      if (busy || !wanted || !viewer || root.dataset.state !== "ready") return;
      var url = wanted.dataset.splat;
      wanted = null;
      if (url === root.dataset.scene) return;
      busy = true;
      say("loading", "loading…");
      viewer.removeSplatScene(0, false).then(function () {
        return viewer.addSplatScene(url, {showLoadingUI: false, progressiveLoad: false});
      }).then(function () {
        root.dataset.scene = url;
        busy = false;
        say("ready", "");
        load();
      }).catch(function (err) {
        busy = false;
        say("error", "3D viewer: " + (err && err.message ? err.message : err));
      });
    }
    gallery.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-splat]");
      if (!button) return;
      buttons.forEach(function (b) { b.setAttribute("aria-pressed", b === button ? "true" : "false"); });
      caption(button);
      var box = root.getBoundingClientRect();
      if (box.top < 0 || box.bottom > window.innerHeight) root.scrollIntoView({block: "nearest", behavior: "smooth"});
      wanted = button;
      load();
    });
    // A click before the first scene is ready waits for it.
    var watch = setInterval(function () {
      if (root.dataset.state === "ready" || root.dataset.state === "error") { clearInterval(watch); load(); }
    }, 200);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
