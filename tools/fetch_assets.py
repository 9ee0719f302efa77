"""Fetch the site's JavaScript (MathJax, require.js, the widget manager, the 3D splat viewer) from npm.

The built website must show maths and widgets with no network, so these libraries are
served from the site itself. They are *not* committed to git: this script downloads the
npm tarballs at build time (``npm pack``, the registry's ordinary client; where Node.js
is not installed, the same tarball straight from the registry over HTTPS), unpacks the
few files the site needs into ``_vendor/`` (git-ignored; Sphinx copies it into the site's ``_static/``), and records versions in
``_vendor/VERSIONS.json``. Running it again is a no-op when the files are there.

The 3D Gaussian viewer (``gsbook.viewer``, ``widgets.splat_viewer``, ``gsbook generate --view``)
is GaussianSplats3D (MIT) on three.js (MIT), both ES modules, in ``_vendor/splats/`` with their
licences. GaussianSplats3D imports the bare name ``'three'``, which a browser resolves only
through an import map; a page holds one import map, declared before any module loads, which a
notebook output or a book page cannot promise. So its import is rewritten here to the file
beside it (:data:`PATCHES`), and the two files load from any folder, with no import map.

    python tools/fetch_assets.py [--force]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "_vendor"

# package spec -> list of (path inside the tarball's "package/" folder, destination under VENDOR)
PACKAGES: dict[str, list[tuple[str, str]]] = {
    "mathjax@3.2.2": [
        ("es5/tex-mml-chtml.js", "mathjax/tex-mml-chtml.js"),
        ("es5/output/chtml/fonts/woff-v2", "mathjax/output/chtml/fonts/woff-v2"),
        ("es5/input/tex/extensions", "mathjax/input/tex/extensions"),
        ("es5/a11y", "mathjax/a11y"),
        ("es5/ui", "mathjax/ui"),
        ("es5/sre", "mathjax/sre"),
        ("LICENSE", "mathjax/LICENSE"),
    ],
    "requirejs@2.3.7": [
        ("require.js", "requirejs/require.js"),
    ],
    "@jupyter-widgets/html-manager@1.0.15": [
        # embed-amd.js plus the fonts and chunks it loads relative to itself
        ("dist", "html-manager"),
    ],
    # The 3D viewer. GaussianSplats3D 0.4.7 asks for three >= 0.160; it was built and tested
    # against 0.16x, and three 0.171 split three.module.js into two files (three.core.js), which
    # GaussianSplats3D's own demo had to be fixed for. 0.170.0 is the newest single-file build.
    "@mkkellogg/gaussian-splats-3d@0.4.7": [
        ("build/gaussian-splats-3d.module.js", "splats/gaussian-splats-3d.module.js"),
        ("LICENSE", "splats/LICENSE.gaussian-splats-3d.txt"),
    ],
    "three@0.170.0": [
        ("build/three.module.min.js", "splats/three.module.min.js"),
        ("LICENSE", "splats/LICENSE.three.txt"),
    ],
}

# Text edits applied after copying: destination -> [(old, new, how many times old must occur)].
# A count that does not match (a different upstream file) stops the fetch instead of shipping a
# viewer that cannot load.
PATCHES: dict[str, list[tuple[str, str, int]]] = {
    "splats/gaussian-splats-3d.module.js": [
        ("from 'three';", "from './three.module.min.js';", 2),      # no import map needed
        ("//# sourceMappingURL=gaussian-splats-3d.module.js.map", "", 1),   # the map is not shipped
    ],
}

# What Sphinx/myst-nb point at (relative to the site's _static/); checked after fetching.
REQUIRED = [
    "mathjax/tex-mml-chtml.js",
    "requirejs/require.js",
    "html-manager/embed-amd.js",
    "splats/gaussian-splats-3d.module.js",
    "splats/three.module.min.js",
    "splats/LICENSE.gaussian-splats-3d.txt",
    "splats/LICENSE.three.txt",
]


def have_all() -> bool:
    return all((VENDOR / p).is_file() for p in REQUIRED) and (VENDOR / "VERSIONS.json").is_file()


def download(spec: str, folder: Path, npm: str | None) -> str:
    """Fetch one package tarball into ``folder``; return its file name."""
    if npm is not None:
        print(f"[fetch_assets] npm pack {spec}")
        return subprocess.run([npm, "pack", spec, "--silent"], cwd=folder, check=True,
                              capture_output=True, text=True).stdout.strip().splitlines()[-1]
    # No Node.js: the registry serves the same tarball at a fixed address.
    import urllib.request
    name, version = spec.rsplit("@", 1)
    filename = f"{name.split('/')[-1]}-{version}.tgz"
    url = f"https://registry.npmjs.org/{name}/-/{filename}"
    print(f"[fetch_assets] npm is not installed; downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            (folder / filename).write_bytes(response.read())
    except OSError as err:
        sys.exit(f"[fetch_assets] could not download {url} ({err}); install Node.js (npm) "
                 "or check the network")
    return filename


def patch(path: Path, edits: list[tuple[str, str, int]]) -> None:
    """Apply ``(old, new, count)`` text edits to ``path``; exit when ``old`` occurs a different
    number of times than ``count`` (the upstream file is not the one these edits were written for)."""
    text = path.read_text(encoding="utf-8")
    for old, new, count in edits:
        found = text.count(old)
        if found != count:
            sys.exit(f"[fetch_assets] {path.name}: expected {count} × {old!r}, found {found}; "
                     "the package changed, update PATCHES")
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")


def fetch(force: bool = False) -> Path:
    """Download every package into ``_vendor/``. The files are gathered in a staging folder beside
    it and swapped in only once all are there and checked, so a failed or interrupted fetch (no
    network, a changed upstream file) leaves the ``_vendor/`` there was, not an empty one."""
    if have_all() and not force:
        print(f"[fetch_assets] up to date: {VENDOR}")
        return VENDOR
    npm = shutil.which("npm")
    staging = VENDOR.with_name(VENDOR.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)                   # what an earlier failed fetch left
    staging.mkdir(parents=True)
    try:
        versions = _gather(staging, npm)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if VENDOR.exists():
        shutil.rmtree(VENDOR)
    staging.rename(VENDOR)
    print(f"[fetch_assets] fetched {versions} into {VENDOR}")
    return VENDOR


def _gather(folder: Path, npm: str | None) -> dict[str, str]:
    """Every package's files into ``folder``, patched and checked; the packages' versions."""
    versions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec, files in PACKAGES.items():
            out = download(spec, Path(tmp), npm)
            unpack = Path(tmp) / (out + ".d")
            with tarfile.open(Path(tmp) / out) as tar:
                tar.extractall(unpack, filter="data")
            pkg = unpack / "package"
            versions[spec.rsplit("@", 1)[0]] = json.loads((pkg / "package.json").read_text())["version"]
            for src, dst in files:
                s, d = pkg / src, folder / dst
                d.parent.mkdir(parents=True, exist_ok=True)
                if s.is_dir():
                    shutil.copytree(s, d, ignore=shutil.ignore_patterns("*.map"))
                elif s.is_file():
                    shutil.copy2(s, d)
                else:
                    sys.exit(f"[fetch_assets] {spec} has no {src}")
    for dst, edits in PATCHES.items():
        patch(folder / dst, edits)
    (folder / "VERSIONS.json").write_text(json.dumps(versions, indent=2) + "\n")
    missing = [p for p in REQUIRED if not (folder / p).is_file()]
    if missing:
        sys.exit(f"[fetch_assets] missing after fetch: {missing}")
    return versions


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="download again")
    fetch(ap.parse_args().force)
