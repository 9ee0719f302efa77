"""The README's Python example runs as written (documentation that rots is a defect)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README should show the library in use"
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, str(README), "exec"), namespace)
        scene = namespace.get("scene")
        if scene is not None:
            assert scene.means.grad is not None and scene.means.grad.abs().sum() > 0
        image = namespace.get("image")
        if image is not None:
            assert image.shape == (64, 64, 3) and 0 <= float(image.min()) and float(image.max()) <= 1
