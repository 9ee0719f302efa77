"""Write the ShapeWorld gallery (every category, two colours each, four views) to a PNG.

    python examples/shapeworld_gallery.py [out.png]
"""

import sys
import time

from gsbook.world import gallery_figure

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "shapeworld_gallery.png"
    start = time.perf_counter()
    fig = gallery_figure()
    fig.savefig(out, dpi=110)
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")
