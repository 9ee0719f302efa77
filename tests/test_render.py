"""The torch rasterizer against gsplat's projection reference, the dense reference,
closed-form values, and finite differences."""

import math

import pytest
import torch

from gsbook.cameras import Cameras, intrinsics_from_fov, orbit
from gsbook.gaussians import Gaussians, covariances, init_ball
from gsbook.render import rasterize, render, splat2d
from gsbook.render.compositing import ALPHA_MIN, list_pairs, segmented_cumsum


def random_scene(n=300, seed=0, dtype=torch.float32, sh_degree=None):
    gen = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=gen) - 0.5) * 1.2
    quats = torch.randn(n, 4, generator=gen)
    quats = quats / quats.norm(dim=-1, keepdim=True)
    scales = torch.exp(torch.randn(n, 3, generator=gen) * 0.5 - 3.2)
    opacities = torch.rand(n, generator=gen) * 0.9 + 0.05
    if sh_degree is None:
        colors = torch.rand(n, 3, generator=gen)
    else:
        colors = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=gen) * 0.3
    return [t.to(dtype) for t in (means, quats, scales, opacities, colors)]


def cameras(width=40, height=32, dtype=torch.float32):
    cams = orbit([15.0, -30.0, 60.0], [20.0, 160.0, -80.0], radius=2.2, width=width, height=height)
    return cams.viewmats.to(dtype), cams.Ks.to(dtype)


# ------------------------------------------------------------------------ projection
def test_projection_matches_gsplat_reference():
    gsplat_ref = pytest.importorskip("gsplat.cuda._torch_impl")
    for seed in range(3):
        means, quats, scales, opacities, colors = random_scene(2000, seed)
        # Push some Gaussians behind the near plane and off-screen to exercise culling.
        means[:50] *= 4
        viewmats, Ks = cameras(64, 48)
        _, _, info = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, 64, 48,
                               backend="torch")
        radii, means2d, depths, conics, _ = gsplat_ref._fully_fused_projection(
            means, covariances(quats, scales), viewmats, Ks, 64, 48)
        assert torch.equal(info["radii"], radii)
        visible = (radii > 0).all(-1)
        assert visible.sum() > 1000
        assert (info["means2d"] - means2d)[visible].abs().max() <= 1e-4
        assert (info["conics"] - conics)[visible].abs().max() <= 1e-4
        assert (info["depths"] - depths).abs().max() <= 1e-4


def test_antialiased_compensation_matches_gsplat_reference():
    gsplat_ref = pytest.importorskip("gsplat.cuda._torch_impl")
    means, quats, scales, opacities, colors = random_scene(500, seed=7)
    viewmats, Ks = cameras(64, 48)
    _, _, info = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, 64, 48,
                           rasterize_mode="antialiased", backend="torch")
    radii, _, _, _, comp = gsplat_ref._fully_fused_projection(
        means, covariances(quats, scales), viewmats, Ks, 64, 48, calc_compensations=True)
    visible = (radii > 0).all(-1)
    expected = opacities.expand_as(comp) * comp
    assert (info["opacities"] - expected)[visible].abs().max() <= 1e-5
    assert (comp[visible] < 1).all()


# ------------------------------------------------------------------------ images
@pytest.mark.parametrize("background", [None, "grey"])
def test_fast_matches_dense_reference(background):
    means, quats, scales, opacities, colors = random_scene(1500, seed=1)
    viewmats, Ks = cameras(48, 40)
    bg = None if background is None else torch.tensor([[0.5, 0.6, 0.7]]).expand(3, 3)
    fast, fast_alpha, _ = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, 48, 40,
                                    backgrounds=bg, backend="torch")
    dense, dense_alpha, _ = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, 48, 40,
                                      backgrounds=bg, backend="dense")
    assert fast.shape == (3, 40, 48, 3) and fast_alpha.shape == (3, 40, 48, 1)
    assert fast.is_contiguous() and fast_alpha.is_contiguous()
    assert fast_alpha.max() > 0.9, "the scene should cover some pixels fully"
    assert (fast - dense).abs().max() <= 2e-3
    assert (fast_alpha - dense_alpha).abs().max() <= 2e-3


def test_fast_gradients_match_dense_reference():
    scene = random_scene(400, seed=2)
    viewmats, Ks = cameras(32, 24)
    weights = torch.randn(3, 24, 32, 4, generator=torch.Generator().manual_seed(9))

    def grads(backend):
        params = [t.clone().requires_grad_() for t in scene]
        bg = torch.tensor([[0.2, 0.4, 0.6]] * 3, requires_grad=True)
        img, alpha, _ = rasterize(*params, viewmats, Ks, 32, 24, backgrounds=bg, backend=backend)
        (torch.cat([img, alpha], -1) * weights).sum().backward()
        return [p.grad for p in params] + [bg.grad]

    for fast, dense in zip(grads("torch"), grads("dense")):
        scale = dense.abs().max().clamp_min(1e-6)
        assert ((fast - dense).abs().max() / scale) < 1e-3


def test_single_isotropic_gaussian_has_closed_form_profile():
    """One isotropic Gaussian on the optical axis: α(r) = o·exp(−r²/(2(σ²+0.3)))."""
    width = height = 33
    fovy = 40.0
    K = intrinsics_from_fov(fovy, width, height)
    viewmat = torch.eye(4)
    viewmat[2, 3] = 3.0                            # camera 3 units in front of the origin
    depth, sigma_world, opacity = 3.0, 0.05, 0.8
    means = torch.zeros(1, 3)
    quats = torch.tensor([[1.0, 0, 0, 0]])
    scales = torch.full((1, 3), sigma_world)
    colors = torch.tensor([[1.0, 0.5, 0.25]])
    img, alpha, _ = rasterize(means, quats, scales, torch.tensor([opacity]), colors, viewmat[None],
                              K[None], width, height, backend="torch")
    focal = K[0, 0].item()
    var_px = (focal * sigma_world / depth) ** 2 + 0.3  # EWA + low-pass
    centre = width / 2                                 # principal point, a pixel corner
    for u, v in [(16, 16), (18, 16), (16, 13), (20, 19), (11, 17)]:
        r2 = (u + 0.5 - centre) ** 2 + (v + 0.5 - centre) ** 2
        expected = opacity * math.exp(-0.5 * r2 / var_px)
        if expected < ALPHA_MIN:
            expected = 0.0
        assert alpha[0, v, u, 0].item() == pytest.approx(expected, abs=1e-5)
        assert img[0, v, u, 1].item() == pytest.approx(0.5 * expected, abs=1e-5)


def test_front_to_back_order_and_background():
    """A red Gaussian in front of a blue one hides it; the background fills the rest."""
    K = intrinsics_from_fov(50, 16, 16)[None]
    viewmat = torch.eye(4)[None]
    means = torch.tensor([[0.0, 0, 2.0], [0.0, 0, 3.0]])
    quats = torch.tensor([[1.0, 0, 0, 0]] * 2)
    scales = torch.full((2, 3), 0.5)
    colors = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])
    bg = torch.tensor([[0.0, 1.0, 0.0]])
    img, alpha, _ = rasterize(means, quats, scales, torch.tensor([0.99, 0.99]), colors, viewmat, K,
                              16, 16, backgrounds=bg, backend="torch")
    centre = img[0, 8, 8]
    assert centre[0] > 0.95 and centre[2] < 0.03 and alpha[0, 8, 8, 0] > 0.999
    # Swap the depths: now blue is in front.
    img2, _, _ = rasterize(means.flip(0), quats, scales, torch.tensor([0.99, 0.99]), colors, viewmat, K,
                           16, 16, backgrounds=bg, backend="torch")
    assert img2[0, 8, 8, 2] > 0.95 and img2[0, 8, 8, 0] < 0.03
    # Corners see mostly background.
    assert img[0, 0, 0, 1] > 0.5


def test_near_plane_culls_and_empty_scene_renders_background():
    K = intrinsics_from_fov(50, 8, 8)[None]
    viewmat = torch.eye(4)[None]
    means = torch.tensor([[0.0, 0.0, -1.0]])       # behind the camera
    one = torch.tensor([[1.0, 0, 0, 0]])
    img, alpha, info = rasterize(means, one, torch.full((1, 3), 0.3), torch.tensor([0.9]),
                                 torch.ones(1, 3), viewmat, K, 8, 8,
                                 backgrounds=torch.tensor([[0.1, 0.2, 0.3]]), backend="torch")
    assert (info["radii"] == 0).all()
    assert torch.allclose(img, torch.tensor([0.1, 0.2, 0.3]).expand(1, 8, 8, 3))
    assert (alpha == 0).all()


def test_depth_modes_and_sh_colours():
    means, quats, scales, opacities, sh = random_scene(500, seed=3, sh_degree=2)
    viewmats, Ks = cameras(24, 24)
    rgbd, alpha, info = rasterize(means, quats, scales, opacities, sh, viewmats, Ks, 24, 24,
                                  sh_degree=2, render_mode="RGB+ED", backend="torch")
    dense, _, _ = rasterize(means, quats, scales, opacities, sh, viewmats, Ks, 24, 24,
                            sh_degree=2, render_mode="RGB+ED", backend="dense")
    assert rgbd.shape == (3, 24, 24, 4)
    covered = alpha[..., 0] > 0.5
    depth = rgbd[..., 3][covered]
    # Expected depth lies within the scene's depth range.
    assert depth.min() > info["depths"].min() - 1e-4 and depth.max() < info["depths"].max() + 1e-4
    assert (rgbd - dense).abs().max() < 2e-3
    # SH degree 0 part alone reproduces plain colours C0·sh + 0.5.
    plain, _, _ = rasterize(means, quats, scales, opacities, (0.28209479177387814 * sh[:, 0] + 0.5).clamp_min(0),
                            viewmats, Ks, 24, 24, backend="torch")
    sh0_only, _, _ = rasterize(means, quats, scales, opacities, sh[:, :1], viewmats, Ks, 24, 24,
                               sh_degree=0, backend="torch")
    assert (plain - sh0_only).abs().max() < 1e-5


def test_gradcheck_rasterize_float64():
    means, quats, scales, opacities, colors = random_scene(6, seed=4, dtype=torch.float64)
    scales = scales * 4                                   # large enough to cover several pixels
    viewmats, Ks = cameras(10, 8, dtype=torch.float64)
    bg = torch.tensor([[0.3, 0.2, 0.1]] * 3, dtype=torch.float64)
    inputs = [t.clone().requires_grad_() for t in (means, quats, scales, opacities, colors, bg)]

    def f(m, q, s, o, c, b):
        img, alpha, _ = rasterize(m, q, s, o, c, viewmats, Ks, 10, 8, backgrounds=b,
                                  render_mode="RGB+ED", backend="torch")
        return img, alpha

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_gradcheck_splat2d_float64():
    gen = torch.Generator().manual_seed(5)
    n = 5
    means = (torch.rand(n, 2, generator=gen, dtype=torch.float64) * 10).requires_grad_()
    scales = (torch.rand(n, 2, generator=gen, dtype=torch.float64) * 2 + 1).requires_grad_()
    rot = (torch.rand(n, generator=gen, dtype=torch.float64) * 3).requires_grad_()
    opac = (torch.rand(n, generator=gen, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    col = torch.rand(n, 3, generator=gen, dtype=torch.float64).requires_grad_()
    bg = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: splat2d(*a[:5], 10, 10, background=a[5]),
                                    [means, scales, rot, opac, col, bg], eps=1e-6, atol=1e-5, rtol=1e-3)


def test_splat2d_closed_form_and_order():
    means = torch.tensor([[8.0, 8.0], [8.0, 8.0]])
    scales = torch.tensor([[2.0, 1.0], [3.0, 3.0]])
    rot = torch.tensor([math.pi / 2, 0.0])                 # first axis along +y
    opac = torch.tensor([0.5, 0.5])
    colors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    img, alpha = splat2d(means, scales, rot, opac, colors, 16, 16)
    # At pixel (8, 10) the first Gaussian has dx=0.5, dy=2.5 in a frame rotated by 90°.
    a1 = 0.5 * math.exp(-0.5 * (0.5**2 / 1.0 + 2.5**2 / 4.0))
    a2 = 0.5 * math.exp(-0.5 * (0.5**2 + 2.5**2) / 9.0)
    assert img[10, 8, 0].item() == pytest.approx(a1, abs=1e-5)
    assert img[10, 8, 1].item() == pytest.approx(a2 * (1 - a1), abs=1e-5)
    assert alpha[10, 8, 0].item() == pytest.approx(1 - (1 - a1) * (1 - a2), abs=1e-5)


def test_render_helper_and_means2d_grad_for_densification():
    g = init_ball(800, generator=torch.Generator().manual_seed(0))
    params = g.parameter_dict()
    scene = Gaussians.from_params(params)
    cams = orbit([0.0, 20.0], [0.0, 90.0], width=32, height=32)
    out = render(scene, cams, background=1.0, depth=True)
    assert out.image.shape == (2, 32, 32, 3) and out.depth.shape == (2, 32, 32, 1)
    out.info["means2d"].retain_grad()
    out.image.mean().backward()
    assert out.info["means2d"].grad is not None
    assert out.info["means2d"].grad.abs().sum() > 0
    assert params["means"].grad.abs().sum() > 0 and params["sh0"].grad.abs().sum() > 0


def test_gsplat_default_strategy_reads_our_info():
    strategy_mod = pytest.importorskip("gsplat.strategy")
    g = init_ball(500, generator=torch.Generator().manual_seed(0))
    params = g.parameter_dict()
    optimizers = {k: torch.optim.Adam([v], lr=1e-3) for k, v in params.items()}
    strategy = strategy_mod.DefaultStrategy(refine_start_iter=0, refine_every=1, grow_grad2d=1e-9,
                                            reset_every=10_000, verbose=False)
    strategy.check_sanity(params, optimizers)
    state = strategy.initialize_state()
    cams = orbit(0.0, [0.0, 120.0, 240.0], width=32, height=32)
    scene = Gaussians.from_params(params)
    out = render(scene, cams)
    strategy.step_pre_backward(params, optimizers, state, 1, out.info)
    ((out.image - 0.2) ** 2).mean().backward()
    strategy.step_post_backward(params, optimizers, state, 1, out.info, packed=False)
    assert params["means"].shape[0] > 500, "densification should have grown the scene"


def test_list_pairs_respects_alpha_threshold():
    means2d = torch.tensor([[[5.0, 5.0]]])
    conics = torch.tensor([[[1.0, 0.0, 1.0]]])            # unit variance
    for opacity in (0.02, 0.5, 0.99):
        pairs = list_pairs(means2d, conics, torch.tensor([[opacity]]), torch.zeros(1, 1, dtype=torch.long),
                           torch.ones(1, 1, dtype=torch.bool), 11, 11)
        xs = (pairs.pixel % 11).double() + 0.5 - 5
        ys = (pairs.pixel // 11).double() + 0.5 - 5
        alpha = opacity * torch.exp(-0.5 * (xs**2 + ys**2))
        assert (alpha >= ALPHA_MIN - 1e-7).all()
        # Every pixel with α ≥ 1/255 is listed.
        grid = torch.arange(11).double() + 0.5 - 5
        full = opacity * torch.exp(-0.5 * (grid[:, None] ** 2 + grid[None] ** 2))
        assert len(pairs.pixel) == int((full >= ALPHA_MIN).sum())


def test_list_pairs_is_independent_of_chunking():
    """Pairs are listed in chunks to bound memory; the chunk size must not change them."""
    means, quats, scales, opacities, colors = random_scene(600, seed=6)
    viewmats, Ks = cameras(40, 32)
    _, _, info = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, 40, 32, backend="torch")
    args = (info["means2d"].detach(), info["conics"], info["opacities"],
            torch.argsort(torch.argsort(info["depths"], dim=-1), dim=-1), (info["radii"] > 0).all(-1), 40, 32)
    whole = list_pairs(*args)
    assert len(whole.pixel) > 5000
    for chunk in (1, 97, 5000):
        part = list_pairs(*args, max_chunk=chunk)
        assert all(torch.equal(a, b) for a, b in zip(whole, part))


def test_segmented_cumsum():
    values = torch.tensor([1.0, 2.0, 3.0, 10.0, 20.0, 5.0], dtype=torch.float64)
    start = torch.tensor([0, 0, 0, 3, 3, 5])
    assert segmented_cumsum(values, start).tolist() == [1.0, 3.0, 6.0, 10.0, 30.0, 5.0]


@pytest.mark.parametrize("bad, message", [
    (dict(means=torch.zeros(3, 2)), "means must have shape"),
    (dict(scales=-torch.ones(4, 3)), "scales must be positive"),
    (dict(opacities=torch.full((4,), 2.0)), "opacities must lie in"),
    (dict(means=torch.full((4, 3), float("nan"))), "means contains NaN"),
    (dict(colors=torch.zeros(5, 3)), "colors must have shape"),
])
def test_clear_errors(bad, message):
    args = dict(means=torch.zeros(4, 3), quats=torch.tensor([[1.0, 0, 0, 0]] * 4),
                scales=torch.ones(4, 3), opacities=torch.full((4,), 0.5), colors=torch.zeros(4, 3))
    args.update(bad)
    viewmats, Ks = cameras(8, 8)
    with pytest.raises((ValueError, TypeError), match=message):
        rasterize(**args, viewmats=viewmats, Ks=Ks, width=8, height=8, backend="torch")


def test_gsplat_backend_needs_cuda():
    means, quats, scales, opacities, colors = random_scene(10)
    viewmats, Ks = cameras(8, 8)
    with pytest.raises(ValueError, match="CUDA"):
        rasterize(means, quats, scales, opacities, colors, viewmats, Ks, 8, 8, backend="gsplat")


def test_cameras_object_round_trip_through_render():
    cams = orbit(10.0, [0.0, 90.0], width=20, height=10)
    assert isinstance(cams, Cameras) and len(cams) == 2
    g = init_ball(300, generator=torch.Generator().manual_seed(1))
    out = render(g, cams, background=None)
    assert out.image.shape == (2, 10, 20, 3)


def test_info_counts_the_pixel_gaussian_pairs_the_compositor_evaluates():
    """n_pairs is the torch backend's work: it follows the splats' footprints, not pixels × Gaussians."""
    from gsbook.cameras import orbit
    from gsbook.gaussians import Gaussians
    from gsbook.render import render

    def scene(scale: float, n: int = 16) -> Gaussians:
        g = torch.Generator().manual_seed(0)
        return Gaussians.from_activated((torch.rand(n, 3, generator=g) - 0.5) * 0.6, torch.full((n, 3), scale),
                                        torch.full((n,), 0.9), torch.rand(n, 3, generator=g))

    cams = orbit(0.0, [0.0, 90.0], width=32, height=32)
    small = render(scene(0.01), cams, backend="torch").info["n_pairs"]
    large = render(scene(0.08), cams, backend="torch").info["n_pairs"]
    dense = render(scene(0.01), cams, backend="dense").info["n_pairs"]
    assert 0 < small < large < dense == 2 * 16 * 32 * 32
    more = render(Gaussians.cat([scene(0.01), scene(0.01)]), cams, backend="torch").info["n_pairs"]
    assert more == 2 * small                                   # the same splats twice: twice the pairs
