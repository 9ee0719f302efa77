"""The transport of the book's static frame players: play/pause, step, reset and a slider.

A static figure (:mod:`widgets.convergence`, :mod:`widgets.flow_steps`) embeds its frames and
one ``<script>`` that defines ``show(k)`` (draw frame ``k``, clamped, and remember it in ``i``)
over ``last`` frames, then appends :data:`CONTROLS_JS`, which wires the buttons
``[data-action=play|step|reset]`` and the ``input[type=range]`` slider to ``show``. The snippet
is pasted into each figure's own script, so every page stays self-contained (no shared file,
no network), and it expects ``q`` (a query inside the figure), ``i``, ``last`` and ``show`` in
scope. Its ``%(interval)d`` is the milliseconds between frames while playing.
"""

__all__ = ["CONTROLS_JS"]

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
