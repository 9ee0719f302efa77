"""The book's 3D viewer: any Gaussians, turned with the mouse, in JupyterLab and on the website.

Every result the book generates is otherwise a flat picture. :func:`splat_viewer` shows it in
a real WebGL Gaussian-splat renderer (GaussianSplats3D on three.js, from npm; see
:mod:`gsbook.viewer`): drag to orbit, wheel to zoom, right-drag to pan. It opens at the book's
camera (elevation 20°, 2.5 units away, 49.1° field of view), so its first picture is the one
the book's rasterizer draws.

One output, two renderings, as for the other figures:

* **live** (JupyterLab, a trusted notebook): an ``application/javascript`` output that carries
  the library itself (gzip, base64: about 370 kB) and loads it from memory, so it works with
  no server path and no network; JupyterLab ranks it above HTML;
* **static** (the website): ``text/html`` that loads the library from the site's own
  ``_static/splats/`` (``tools/fetch_assets.py`` put it in ``_vendor/``, Sphinx copied it); the
  book's ``_config.yml`` ranks HTML above JavaScript, so the page stays light.

Both carry the scene inline (``.splat`` bytes, 32 per Gaussian): the executed notebook is all
the website build receives, so a file written beside it by the kernel would never reach the
site. When the library has not been fetched yet, the live rendering is left out and the
output says to run ``python tools/fetch_assets.py``.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import os

from gsbook.gaussians import Gaussians
from gsbook.viewer import (LIBRARY_GLOBAL, ViewerAssetsMissing, ViewerCamera, library_files, scene_payload,
                           viewer_html, viewer_start_js)

__all__ = ["SplatViewer", "splat_viewer", "live_javascript"]

# Live outputs share one copy of the library per browser page, keyed by the files' contents, so
# an older output in the same page never hands a newer one a different library.
_LOADER_JS = r"""
(function (element) {
  var key = %(global)s, sources = %(sources)s, version = %(version)s;
  function gunzip(b64) {
    var bytes = Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); });
    return new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text();
  }
  function moduleUrl(text) { return URL.createObjectURL(new Blob([text], {type: "text/javascript"})); }
  if (!window[key] || window[key + "Version"] !== version) {
    window[key + "Version"] = version;
    // GaussianSplats3D imports './three.module.min.js'; from memory that name means nothing, so it
    // is pointed at the in-memory three.js before GaussianSplats3D itself is loaded.
    window[key] = gunzip(sources.three).then(function (three) {
      var threeUrl = moduleUrl(three);
      return gunzip(sources.viewer).then(function (viewer) {
        return import(moduleUrl(viewer.split("'./three.module.min.js'").join(JSON.stringify(threeUrl))));
      });
    });
  }
%(start)s
  element.innerHTML = %(snippet)s;
  gsbookStartSplatViewer(element.querySelector(".gsbook-splat-viewer"));
})(element);
"""


@functools.lru_cache(maxsize=2)
def _library_sources(stamp: tuple) -> dict[str, str]:
    """The two modules, gzip-compressed and base64-encoded (``stamp``: the files' paths, sizes and times)."""
    files = library_files()
    def pack(name: str) -> str:
        return base64.b64encode(gzip.compress(files[name].read_bytes(), 9, mtime=0)).decode("ascii")
    return {"viewer": pack("splats/gaussian-splats-3d.module.js"), "three": pack("splats/three.module.min.js")}


def live_javascript(snippet: str) -> str | None:
    """The ``application/javascript`` output for JupyterLab: loads the library from memory, puts
    ``snippet`` (a :func:`gsbook.viewer.viewer_html` with ``library="global", script=False``) into
    the output and starts it. ``None`` when the library is not in ``_vendor/`` yet."""
    try:
        files = library_files()
    except ViewerAssetsMissing:
        return None
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for _, p in sorted(files.items()))
    sources = _library_sources(stamp)
    return _LOADER_JS % {"global": json.dumps(LIBRARY_GLOBAL), "sources": json.dumps(sources),
                         "version": json.dumps(hashlib.sha256(sources["viewer"].encode() + sources["three"].encode())
                                               .hexdigest()[:16]),
                         "start": viewer_start_js(),
                         "snippet": json.dumps(snippet)}


class SplatViewer:
    """A scene in the 3D viewer: static HTML for the website, live JavaScript for JupyterLab.

    Attributes:
        html: the website's rendering (library from ``_static/splats/``).
        javascript: JupyterLab's rendering, or ``None`` when the library is not fetched.
        count: the number of Gaussians.
    """

    def __init__(self, data: bytes, fmt: str, count: int, *, camera: ViewerCamera, width: int, height: int,
                 caption: str):
        self.format, self.count, self.nbytes = fmt, count, len(data)
        same = dict(format=fmt, camera=camera, width=width, height=height, caption=caption)
        self.html = viewer_html(data, **same)
        self.javascript = live_javascript(viewer_html(data, library="global", script=False, **same))

    def _summary(self) -> str:
        return (f"3D viewer: {self.count:,} Gaussians (.{self.format}, {self.nbytes:,} bytes), "
                "WebGL (GaussianSplats3D)")

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        bundle = {"text/html": self.html, "text/plain": self._summary()}
        if self.javascript is not None:
            bundle["application/javascript"] = self.javascript
        return bundle


def splat_viewer(scene: Gaussians | str | os.PathLike, *, camera: ViewerCamera | None = None, width: int = 480,
                 height: int = 360, caption: str = "") -> SplatViewer:
    """Show ``scene`` (Gaussians, or a ``.splat``/``.ply`` file) in the WebGL viewer.

    Args:
        camera: where the camera starts (default: the book's, :class:`gsbook.viewer.ViewerCamera`).
        width, height: the canvas in CSS pixels.
        caption: a line under the viewer.

    Raises:
        ValueError: an empty scene, or a file that is not ``.splat``/``.ply``.
    """
    data, fmt, count = scene_payload(scene)
    return SplatViewer(data, fmt, count, camera=camera or ViewerCamera(), width=width, height=height,
                       caption=caption)
