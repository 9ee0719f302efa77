"""gsbook: the library behind the book "Generating 3D Gaussian Splatting scenes".

Modules, bottom to top (arrows only point down):
``config`` → ``gaussians`` → ``cameras`` → ``render`` → ``io`` → ``world`` → ...
Each symbol is taught in a chapter; the module docstrings say which.
"""

__version__ = "0.1.0"
