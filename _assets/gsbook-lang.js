/* gsbook language toggle: English / 中文 / both, remembered across pages (localStorage).
 * Chapters tag each prose cell lang-en or lang-zh; tools/sphinxext/gsbook_lang.py turns
 * the tags into CSS classes, and gsbook.css hides the language not chosen.
 * ?lang=en|zh|both in the address sets the choice too. */
(function () {
  var KEY = "gsbook-lang";
  var CHOICES = [["en", "English"], ["zh", "中文"], ["both", "EN + 中文"]];
  function valid(v) { return v === "en" || v === "zh" || v === "both"; }
  function load() {
    var fromUrl = new URLSearchParams(window.location.search).get("lang");
    if (valid(fromUrl)) { save(fromUrl); return fromUrl; }
    try { var v = window.localStorage.getItem(KEY); if (valid(v)) return v; } catch (e) {}
    return "both";
  }
  function save(v) { try { window.localStorage.setItem(KEY, v); } catch (e) {} }
  function apply(v) {
    document.documentElement.setAttribute("data-gsbook-lang", v);
    document.documentElement.setAttribute("lang", v === "zh" ? "zh-CN" : "en");
    var buttons = document.querySelectorAll(".gsbook-lang-toggle button");
    for (var i = 0; i < buttons.length; i++) {
      var on = buttons[i].getAttribute("data-lang") === v;
      buttons[i].setAttribute("aria-pressed", on ? "true" : "false");
      buttons[i].classList.toggle("active", on);
    }
  }
  // The Jupyter widget manager typesets with MathJax 2's MathJax.Hub.Queue; the site runs
  // MathJax 3. Give MathJax 3 that one call once it is ready.
  if (window.MathJax && !window.MathJax.version) {
    var cfg = window.MathJax;
    cfg.startup = cfg.startup || {};
    var ready = cfg.startup.ready;
    cfg.startup.ready = function () {
      if (ready) ready(); else MathJax.startup.defaultReady();
      if (!MathJax.Hub) MathJax.Hub = { Queue: function (cmd) {
        var el = cmd && cmd[2];
        return MathJax.startup.promise.then(function () { return MathJax.typesetPromise(el ? [el] : undefined); });
      } };
    };
  }
  window.gsbookSetLang = function (v) { if (valid(v)) { save(v); apply(v); } };
  apply(load());  // before the body is drawn: no flash of the other language
  function addToggle() {
    if (document.querySelector(".gsbook-lang-toggle")) return;
    var box = document.createElement("div");
    box.className = "gsbook-lang-toggle";
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "Language / 语言");
    CHOICES.forEach(function (c) {
      var b = document.createElement("button");
      b.type = "button"; b.textContent = c[1]; b.setAttribute("data-lang", c[0]);
      b.addEventListener("click", function () { window.gsbookSetLang(c[0]); });
      box.appendChild(b);
    });
    var host = document.querySelector(".bd-header-article .article-header-buttons")
      || document.querySelector(".bd-header-article .header-article-items__end")
      || document.querySelector("article.bd-article") || document.body;
    host.insertBefore(box, host.firstChild);
    apply(document.documentElement.getAttribute("data-gsbook-lang"));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", addToggle);
  else addToggle();
})();
