"""The shared parts of the book's static players' scripts: the opening and the transport.

:data:`OPEN_JS` opens a figure's script: it finds the figure by its ``%(id)s``, runs once, reads
the JSON the figure embeds into ``d`` and defines ``q`` (a query inside the figure); used by
:mod:`widgets.convergence`, :mod:`widgets.flow_steps` and :mod:`widgets.four_views`.

A figure with frames (:mod:`widgets.convergence`, :mod:`widgets.flow_steps`) then defines ``show(k)`` (draw frame ``k``, clamped, and remember it in ``i``)
over ``last`` frames, then appends :data:`CONTROLS_JS`, which wires the buttons
``[data-action=play|step|reset]`` and the ``input[type=range]`` slider to ``show``. The snippet
is pasted into each figure's own script, so every page stays self-contained (no shared file,
no network), and it expects ``q`` (a query inside the figure), ``i``, ``last`` and ``show`` in
scope. Its ``%(interval)d`` is the milliseconds between frames while playing.
"""

__all__ = ["OPEN_JS", "CONTROLS_JS"]

OPEN_JS = """
(function () {
  var root = document.getElementById(%(id)s);
  if (!root || root.dataset.ready) return;
  root.dataset.ready = "1";
  var d = JSON.parse(root.querySelector("script.gsbook-data").textContent);
  function q(s) { return root.querySelector(s); }
"""

CONTROLS_JS = """
  var playBtn = q("[data-action=play]"), controlSlider = q("input[type=range]"), timer = null;
  function stop() { if (timer) { clearInterval(timer); timer = null; } playBtn.textContent = "▶ play · 播放"; }
  function play() {
    if (i >= last) show(0);
    playBtn.textContent = "❚❚ pause · 暂停";
    timer = setInterval(function () { if (i >= last) stop(); else show(i + 1); }, %(interval)d);
  }
  playBtn.onclick = function () { if (timer) stop(); else play(); };
  q("[data-action=step]").onclick = function () { stop(); show(i + 1); };
  q("[data-action=reset]").onclick = function () { stop(); show(0); };
  controlSlider.oninput = function () { stop(); show(parseInt(controlSlider.value, 10)); };
  show(0);
})();
"""
