"""A real 3D viewer for Gaussians in the browser: WebGL splatting with GaussianSplats3D.

For §2's export step (a generated object handed to a web viewer) and every result the book
generates: ``gsbook generate … --view`` writes a page with it, and ``widgets.splat_viewer``
shows it in the chapters. The renderer is not the book's: it is GaussianSplats3D (Mark
Kellogg, MIT), a three.js splat renderer from npm, which sorts the Gaussians by depth in a web
worker whenever the camera moves and blends them as screen-space ellipses in that order, as
3DGS does (with the same 0.3 px low-pass). It reads the two files :mod:`gsbook.io` writes,
``.splat`` and the 3DGS ``.ply``.

The JavaScript is not in git. ``tools/fetch_assets.py`` downloads it from npm into
``_vendor/splats/`` (git-ignored), with its licences; the website serves it from its
``_static/splats/`` (Sphinx copies ``_vendor/``), and :func:`write_viewer_page` copies it
beside a generated page. :func:`library_files` finds it, and fetches it once when asked to.

One HTML snippet (:func:`viewer_html`) shows one scene in a ``<div>``; what differs between
places is where its JavaScript comes from (``library``):

* ``"site"`` — a page of the book: the ``_static/`` folder that Sphinx pages name in their
  ``<html data-content_root>``;
* a folder URL such as ``"viewer/"`` — a page written beside its files
  (:func:`write_viewer_page`, which ``gsbook generate --view`` calls);
* ``"global"`` — a page that has already put the library module in
  ``window[LIBRARY_GLOBAL]`` (a promise); JupyterLab's live output does this
  (``widgets.splat_viewer``).

The scene is carried inline (the ``.splat`` bytes, base64, inside the page: a notebook output
must hold everything, since the executed notebook is all the website build receives) or read
from a URL beside the page (``url=``).

The viewer opens where the book's cameras sit: elevation 20°, azimuth 0° (looking down −z
from +z), 2.5 units from the origin, a vertical field of view of 49.1°, +y up
(:class:`ViewerCamera`, :func:`gsbook.cameras.orbit_position`). Dragging orbits, the wheel
zooms, the right button pans; the keyboard moves the camera only while the canvas has focus.
No ``SharedArrayBuffer`` is used, so any static server works (no cross-origin isolation).

    >>> from gsbook.viewer import viewer_html
    >>> html = viewer_html(gaussians)                       # doctest: +SKIP
    >>> page = write_viewer_page("out/red-ball")            # doctest: +SKIP   (view.html + viewer/)
    >>> with serve_folder("out/red-ball") as server:        # doctest: +SKIP
    ...     print(server.url + "view.html")
"""

from __future__ import annotations

import base64
import functools
import html
import http.server
import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .cameras import orbit_position
from .gaussians import Gaussians
from .io import splat_bytes

__all__ = ["LIBRARY_FILES", "LIBRARY_GLOBAL", "VIEW_PAGE", "ViewerAssetsMissing", "ViewerCamera", "vendor_dir",
           "library_files", "scene_payload", "viewer_html", "viewer_start_js", "write_viewer_page",
           "ViewerServer", "serve_folder"]

PathLike = str | os.PathLike
ROOT = Path(__file__).resolve().parents[1]
# The two ES modules the viewer needs, under the vendor folder (tools/fetch_assets.py puts them there;
# GaussianSplats3D's import of 'three' is rewritten to the file beside it).
LIBRARY_FILES = ("splats/gaussian-splats-3d.module.js", "splats/three.module.min.js")
LICENCE_FILES = ("splats/LICENSE.gaussian-splats-3d.txt", "splats/LICENSE.three.txt")
MODULE = "gaussian-splats-3d.module.js"
# Where a page that brings the library itself (JupyterLab's live output) leaves the module's promise.
LIBRARY_GLOBAL = "gsbookSplatLibrary"
VIEW_PAGE = "view.html"
FORMATS = {".splat": "splat", ".ply": "ply"}
FETCH_COMMAND = "python tools/fetch_assets.py"


class ViewerAssetsMissing(FileNotFoundError):
    """The viewer's JavaScript is not in the vendor folder (and could not be fetched)."""


# ============================================================================== the JavaScript files
def vendor_dir() -> Path:
    """The folder ``tools/fetch_assets.py`` fills: ``$GSBOOK_VENDOR``, else ``_vendor/`` in the checkout."""
    return Path(os.environ.get("GSBOOK_VENDOR") or ROOT / "_vendor")


def library_files(fetch: bool = False, timeout: float = 600.0,
                  log: Callable[[str], None] | None = None) -> dict[str, Path]:
    """The viewer's JavaScript and licence files: ``{"splats/…": path}``.

    Args:
        fetch: when a file is missing, run ``tools/fetch_assets.py`` once (npm, or the npm
            registry over HTTPS) and look again.
        timeout: seconds the fetch may take.
        log: told, in one line, before a fetch starts (it takes seconds to minutes).

    Raises:
        ViewerAssetsMissing: a file is missing (after the fetch, when asked), with the command
            that gets it.
    """
    vendor = vendor_dir()
    files = {name: vendor / name for name in LIBRARY_FILES + LICENCE_FILES}
    missing = [name for name, path in files.items() if not path.is_file()]
    script = ROOT / "tools" / "fetch_assets.py"
    if missing and fetch and script.is_file() and "GSBOOK_VENDOR" not in os.environ:
        if log is not None:
            log(f"fetching the 3D viewer's JavaScript from npm, once: {FETCH_COMMAND}")
        # A subprocess, not an import: tools/ is the book's build tooling, above the library.
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout)
        missing = [name for name, path in files.items() if not path.is_file()]
        if missing:
            detail = " ".join((done.stdout + done.stderr).split())[-400:]
            raise ViewerAssetsMissing(f"the 3D viewer's JavaScript could not be fetched into {vendor} "
                                      f"({detail or 'no output'}); it comes from npm: run {FETCH_COMMAND} "
                                      "where the npm registry can be reached")
    if missing:
        how = (f"run {FETCH_COMMAND} in the gsbook checkout (it downloads them from npm)" if script.is_file()
               else "set GSBOOK_VENDOR to a folder holding them (tools/fetch_assets.py of the gsbook "
                    "checkout downloads them from npm)")
        raise ViewerAssetsMissing(f"the 3D viewer's JavaScript is missing from {vendor}: {', '.join(missing)}; {how}")
    return files


# ============================================================================== the camera
@dataclass(frozen=True)
class ViewerCamera:
    """Where the viewer's camera starts (the orbit's centre is ``target``).

    Defaults are the book's cameras (:func:`gsbook.cameras.orbit`): 2.5 units from the origin,
    vertical field of view 49.1°, and a little above the object so its top shows.
    """

    elevation: float = 20.0
    azimuth: float = 0.0
    radius: float = 2.5
    fovy: float = 49.1
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def position(self) -> list[float]:
        """The camera centre ``[x, y, z]``, on the book's orbit convention around ``target``."""
        if self.radius <= 0 or not 1 <= self.fovy <= 179:
            raise ValueError(f"camera radius must be positive and fovy within [1, 179]°, got {self.radius}, {self.fovy}")
        eye = orbit_position(torch.tensor([float(self.elevation)]), torch.tensor([float(self.azimuth)]),
                             torch.tensor([float(self.radius)]))[0]
        return [round(float(e + t), 6) for e, t in zip(eye, self.target)]

    def to_json(self) -> dict:
        return {"position": self.position(), "target": [float(t) for t in self.target], "up": [0.0, 1.0, 0.0],
                "fovy": float(self.fovy)}


# ============================================================================== the scene
def scene_payload(scene: Gaussians | PathLike | bytes, format: str = "splat") -> tuple[bytes, str, int]:
    """``(bytes, format, count)`` of a scene to carry inline: :class:`Gaussians` become
    ``.splat`` bytes (:func:`gsbook.io.splat_bytes`); a ``.splat`` or ``.ply`` file is read as
    it is; raw bytes are a file's contents in ``format`` (``"splat"`` or ``"ply"``). ``count``
    is the number of Gaussians (a ``.ply``'s from its header).

    Raises:
        ValueError: an empty scene, a file of another kind, or ``.splat`` bytes that are not
            whole 32-byte records.
    """
    if isinstance(scene, Gaussians):
        if scene.n == 0:
            raise ValueError("nothing to show: the scene has no Gaussians")
        return splat_bytes(scene), "splat", scene.n
    if isinstance(scene, (bytes, bytearray)):
        if format not in FORMATS.values():
            raise ValueError(f"format is 'splat' or 'ply', got {format!r}")
        data, fmt, name = bytes(scene), format, f"the {format} bytes"
    else:
        path = Path(scene)
        fmt, name = FORMATS.get(path.suffix.lower()), str(path)
        if fmt is None:
            raise ValueError(f"{path}: the viewer reads .splat and .ply files, not {path.suffix or 'this file'}")
        data = path.read_bytes()
    if fmt == "ply":
        header = data[:data.find(b"end_header")] if data.startswith(b"ply\n") else b""
        vertices = re.search(rb"^element vertex (\d+)", header, re.M)
        if vertices is None:
            raise ValueError(f"{name}: not a 3DGS .ply file (no 'ply' header with a vertex element)")
        return data, fmt, int(vertices.group(1))
    if not data or len(data) % 32:
        raise ValueError(f"a .splat scene is whole 32-byte records, got {len(data)} bytes")
    return data, fmt, len(data) // 32


# ============================================================================== the page snippet
# The viewer's start-up, one function that every page uses (a Sphinx page, view.html, JupyterLab's
# live output). It reads its options from the <script class="gsbook-splat-options"> inside `root`,
# loads GaussianSplats3D, builds a Viewer in `root` and adds the scene. `root.dataset.state` says
# loading / ready / error, for readers' scripts and the tests.
START_JS = r"""
function gsbookStartSplatViewer(root) {
  if (!root || root.dataset.started) return;
  root.dataset.started = "1";
  var opts = JSON.parse(root.querySelector("script.gsbook-splat-options").textContent);
  var status = root.querySelector(".gsbook-splat-status");
  function say(state, text) {
    root.dataset.state = state;
    status.textContent = text;
    status.style.display = text ? "" : "none";
  }
  function libraryUrl() {
    if (opts.library !== "site") return new URL(opts.library + "%(module)s", document.baseURI).href;
    // A Sphinx page names its root (Sphinx >= 7.2); older themes: any script from _static/.
    var rootRel = document.documentElement.dataset.content_root;
    if (rootRel !== undefined) return new URL(rootRel + "_static/splats/%(module)s", document.baseURI).href;
    var s = document.querySelector('script[src*="_static/"]');
    return s ? s.src.slice(0, s.src.indexOf("_static/")) + "_static/splats/%(module)s" : null;
  }
  function loadLibrary() {
    if (opts.library === "global") {
      return window[%(global)s] || Promise.reject(new Error("the viewer's library was not loaded on this page"));
    }
    var url = libraryUrl();
    if (!url) return Promise.reject(new Error("no _static/ folder on this page for the viewer's JavaScript; " +
                                              "in JupyterLab run %(fetch)s once and re-run the cell"));
    return import(url);
  }
  function sceneUrl() {
    var query = opts.query ? new URLSearchParams(window.location.search).get("file") : null;
    if (query && /^[\w.\-]+\.(splat|ply)$/.test(query)) { opts.format = query.split(".").pop(); return query; }
    if (opts.url) return opts.url;
    var b64 = root.querySelector("script.gsbook-splat-data").textContent.trim();
    var bytes = Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); });
    return URL.createObjectURL(new Blob([bytes], {type: "application/octet-stream"}));
  }
  say("loading", "loading the 3D viewer…");
  loadLibrary().then(function (GS) {
    var cam = opts.camera;
    var viewer = new GS.Viewer({
      rootElement: root.querySelector(".gsbook-splat-canvas"),
      cameraUp: cam.up, initialCameraPosition: cam.position, initialCameraLookAt: cam.target,
      sharedMemoryForWorkers: false,        // no SharedArrayBuffer: any static server will do
      gpuAcceleratedSort: false,            // (its advice when shared memory is off)
      renderMode: GS.RenderMode.OnChange,   // idle pages stay idle
      sceneRevealMode: GS.SceneRevealMode.Instant,
      sphericalHarmonicsDegree: 0,          // the book's Gaussians carry SH degree 0
      logLevel: GS.LogLevel.None
    });
    viewer.camera.fov = cam.fovy;           // the book's 49.1°, not the library's 50°
    viewer.camera.updateProjectionMatrix();
    // The library listens for keys on the whole window (arrows, letters that toggle modes):
    // inside a book page or a notebook that would steal typing. Keys go to the focused canvas only.
    window.removeEventListener("keydown", viewer.keyDownListener);
    var canvas = viewer.renderer.domElement;
    canvas.style.display = "block";         // not inline: no baseline gap under it
    canvas.tabIndex = 0;
    canvas.setAttribute("aria-label", "3D view of the Gaussians: drag to orbit, wheel to zoom, right-drag to pan");
    canvas.addEventListener("keydown", viewer.keyDownListener);
    [viewer.perspectiveControls, viewer.orthographicControls].forEach(function (c) {
      if (c) { c.stopListenToKeyEvents(); c.listenToKeyEvents(canvas); }
    });
    root.gsbookViewer = viewer;
    // A re-run cell removes its output: free the WebGL context once the viewer has left the page.
    var gone = 0, watch = setInterval(function () {
      gone = root.isConnected ? 0 : gone + 1;
      if (gone >= 3) { clearInterval(watch); viewer.dispose(); }
    }, 1000);
    return viewer.addSplatScene(sceneUrl(), {format: GS.SceneFormat[opts.format === "ply" ? "Ply" : "Splat"],
                                             showLoadingUI: false, progressiveLoad: false})
      .then(function () { viewer.start(); say("ready", ""); });
  }).catch(function (err) {
    say("error", "3D viewer: " + (err && err.message ? err.message : err));
  });
}
"""


def viewer_start_js() -> str:
    """The JavaScript that defines ``gsbookStartSplatViewer(root)`` (see :data:`START_JS`)."""
    return START_JS % {"module": MODULE, "global": json.dumps(LIBRARY_GLOBAL), "fetch": FETCH_COMMAND}


def viewer_html(scene: Gaussians | PathLike | bytes | None = None, *, format: str = "splat",
                url: str | None = None, library: str = "site", width: int | str = 480, height: int | str = 360,
                camera: ViewerCamera | None = None,
                background: str = "#ffffff", caption: str = "", element_id: str | None = None,
                allow_query: bool = False, script: bool = True) -> str:
    """An HTML snippet that shows one scene in a WebGL viewer.

    Args:
        scene: the Gaussians (or a ``.splat``/``.ply`` path, or a file's bytes), carried
            inline; or ``None`` with ``url``.
        format: what ``scene``'s bytes are, ``"splat"`` or ``"ply"`` (bytes only).
        url: read the scene from this URL instead (a ``.splat`` or ``.ply`` beside the page).
        library: where the JavaScript comes from: ``"site"`` (the book's ``_static/splats/``),
            ``"global"`` (``window[LIBRARY_GLOBAL]``, set by the page) or a folder URL ending
            in ``/`` that holds :data:`LIBRARY_FILES`' files.
        width, height: the canvas: CSS pixels, or a CSS length such as ``"100%"`` or ``"75vh"``
            (the width shrinks to fit narrow pages).
        camera: where the camera starts (default :class:`ViewerCamera`: the book's cameras).
        background: CSS colour behind the Gaussians (the book renders on white).
        caption: a line under the viewer.
        element_id: the root ``<div>``'s id (default: a fresh one).
        allow_query: let ``?file=NAME.ply`` in the page's address pick another file beside it.
        script: end with the ``<script>`` that starts the viewer (``False``: the caller starts
            it, as JupyterLab's live output does).

    Raises:
        ValueError: neither or both of ``scene`` and ``url``, a bad ``library`` or size, or a
            scene :func:`scene_payload` refuses.
    """
    if (scene is None) == (url is None):
        raise ValueError("give the scene (Gaussians, a file or .splat bytes) or a url, not both or neither")
    if library not in ("site", "global") and not library.endswith("/"):
        raise ValueError(f"library is 'site', 'global' or a folder URL ending in '/', got {library!r}")
    width, height = _css_length(width, "width"), _css_length(height, "height")
    if not re.fullmatch(r"#[0-9a-fA-F]{3,8}|[a-zA-Z]+", background):
        raise ValueError(f"background is a CSS colour such as '#ffffff' or 'white', got {background!r}")
    camera = camera or ViewerCamera()
    opts = {"library": library, "camera": camera.to_json(), "query": allow_query}
    data_tag, count = "", -1
    if url is not None:
        fmt = FORMATS.get(Path(url.split("?")[0]).suffix.lower())
        if fmt is None:
            raise ValueError(f"url {url!r}: the viewer reads .splat and .ply files")
        opts.update(url=url, format=fmt)
    else:
        data, fmt, count = scene_payload(scene, format)
        opts["format"] = fmt
        # base64 has no '<', so the bytes cannot close the script element early.
        data_tag = (f'<script type="application/octet-stream" class="gsbook-splat-data">'
                    f'{base64.b64encode(data).decode("ascii")}</script>')
    pid = element_id or "gsbook-splat-" + uuid.uuid4().hex[:10]
    options = json.dumps(opts, separators=(",", ":")).replace("</", "<\\/")
    start = (f"<script>{viewer_start_js()}\ngsbookStartSplatViewer(document.getElementById({json.dumps(pid)}));"
             "</script>") if script else ""
    label = f"{count:,} Gaussians · 个高斯 · " if count > 0 else ""
    return f"""
<div class="gsbook-splat-viewer" id="{html.escape(pid)}" data-figure="splat_viewer" data-count="{count}" data-state="static">
  <div style="width:{width};max-width:100%;border:1px solid #ddd;box-sizing:content-box">
    <div class="gsbook-splat-canvas" style="position:relative;width:100%;height:{height};background:{background};overflow:hidden">
      <div class="gsbook-splat-status" style="position:absolute;left:0;right:0;top:45%;text-align:center;color:#666;font-size:.9em;pointer-events:none">3D viewer: needs JavaScript and WebGL · 三维查看器需要 JavaScript 和 WebGL</div>
    </div>
  </div>
  <div class="gsbook-caption" style="font-size:.85em;color:#555">{label}drag to orbit, wheel to zoom, right-drag to pan · 拖动旋转，滚轮缩放，右键平移{(' · ' + html.escape(caption)) if caption else ''}</div>
  <script type="application/json" class="gsbook-splat-options">{options}</script>
  {data_tag}
</div>{start}"""


def _css_length(value: int | str, name: str) -> str:
    """``480`` → ``"480px"``; a CSS length string is checked and kept (it goes into a style attribute)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 16:
            raise ValueError(f"the viewer's {name} is at least 16 pixels, got {value}")
        return f"{value}px"
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?(px|%|vh|vw|em|rem)", value):
        return value
    raise ValueError(f"the viewer's {name} is pixels (an int) or a CSS length such as '100%' or '75vh', got {value!r}")


# ============================================================================== a page beside its files
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 60em; padding: 0 1em; color: #222 }}
a {{ color: #2a5db0 }} .gsbook-files {{ font-size: .9em }}</style>
</head>
<body>
<h1 style="font-size:1.3em">{title}</h1>
{viewer}
<p class="gsbook-files">{links}</p>
<p style="font-size:.8em;color:#777">Renderer: GaussianSplats3D and three.js (MIT; licences in <a href="viewer/">viewer/</a>).
Serve this folder over HTTP to open it, e.g. <code>python -m http.server -d FOLDER</code>: browsers do not
load modules from <code>file://</code>.</p>
</body>
</html>
"""


def write_viewer_page(folder: PathLike, scene_file: str = "gaussians.splat", *, title: str = "",
                      caption: str = "", camera: ViewerCamera | None = None, width: int | str = "100%",
                      height: int | str = "75vh",
                      fetch: bool = False) -> Path:
    """Write ``folder/view.html``, a page showing ``folder/scene_file`` in 3D, and copy the
    viewer's JavaScript (with its licences) into ``folder/viewer/``: the folder then opens on
    any static server, with no network. ``?file=NAME.ply`` in the address shows another scene
    file of the folder. Returns the page's path.

    Raises:
        FileNotFoundError: ``folder/scene_file`` does not exist.
        ValueError: ``scene_file`` is not a plain ``.splat``/``.ply`` name in the folder.
        ViewerAssetsMissing: the JavaScript is missing (see :func:`library_files`; ``fetch``).
    """
    folder = Path(folder)
    if not re.fullmatch(r"[\w.\-]+\.(splat|ply)", scene_file):
        raise ValueError(f"scene_file is a .splat or .ply file name inside the folder, got {scene_file!r}")
    if not (folder / scene_file).is_file():
        raise FileNotFoundError(f"{folder / scene_file}: no such scene to view")
    files = library_files(fetch=fetch)
    target = folder / "viewer"
    target.mkdir(exist_ok=True)
    for name, path in files.items():
        shutil.copyfile(path, target / Path(name).name)
    others = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != VIEW_PAGE)
    links = " · ".join(
        f'<a href="{VIEW_PAGE}?file={html.escape(n)}">view {html.escape(n)}</a>' if Path(n).suffix in FORMATS and n != scene_file
        else f'<a href="{html.escape(n)}">{html.escape(n)}</a>' for n in others)
    title = title or f"{scene_file} · 3D view"
    viewer = viewer_html(url=scene_file, library="viewer/", width=width, height=height, camera=camera,
                         caption=caption, allow_query=True, element_id="gsbook-view")
    page = folder / VIEW_PAGE
    page.write_text(PAGE.format(title=html.escape(title), viewer=viewer, links=links), encoding="utf-8")
    return page


# ============================================================================== serving a folder
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript", ".splat": "application/octet-stream", ".ply": "application/octet-stream"}

    def log_message(self, *args) -> None:  # the command prints the address once; no line per request
        pass


class ViewerServer:
    """A static HTTP server for one folder on 127.0.0.1, in a background thread.

    Attributes:
        url: ``http://127.0.0.1:PORT/``.
    """

    def __init__(self, folder: PathLike, port: int = 0):
        folder = Path(folder).resolve()
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder to serve")
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", port),
                                                       functools.partial(_QuietHandler, directory=str(folder)))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, name="gsbook-viewer", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Block until :meth:`close` (another thread) or Ctrl-C."""
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.close()

    def close(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "ViewerServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve_folder(folder: PathLike, port: int = 0) -> ViewerServer:
    """Serve ``folder`` on ``127.0.0.1`` (``port`` 0: any free one) until the server is closed."""
    return ViewerServer(folder, port)
