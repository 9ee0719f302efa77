"""The harness (gsbook.harness): every generator through ``gsbook generate``'s registry, timed,
judged and counted; its ratios and tables; its refusals.

The real generators run in the ``ci`` profile, the SDS ones shortened to 3 steps through their
own command-line options (as a reader would shorten them); nothing asserts a time beyond its
being positive."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import gsbook.generate as gen
import gsbook.harness as harness
from gsbook.harness import (Contender, HarnessRow, contender, count_network_calls, medians, ratio_table, ratios,
                            run_harness, times_table)
from gsbook.methods import DreamGaussianConfig, ImageSDSConfig
from gsbook.world import PromptError
from gsbook.zoo import load_model

TINY = [
    Contender("sds2d", "sds2d"),
    Contender("dreamgaussian-tiny", "dreamgaussian", ("--stages", "1", "--steps", "3")),
    Contender("lgm", "lgm"),
    Contender("trellis", "trellis"),
    Contender("dreamfusion-tiny", "dreamfusion", ("--steps", "3", "--set", "grid_resolution=16")),
]


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("harness")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(harness.SDS2D_STEPS, "ci", 3)
        return run_harness(["a red ball"], TINY, profile="ci", device="cpu", progress=False, out_dir=out), out


def by_key(rows) -> dict[str, HarnessRow]:
    return {r.key: r for r in rows}


# ============================================================================== one row per generator
def test_one_row_per_generator_with_positive_times(rows):
    got, _ = rows
    assert [r.key for r in got] == [c.key for c in TINY]
    for r in got:
        assert r.prompt == "a red ball" and r.profile == "ci" and r.device == "cpu" and r.threads >= 1
        assert r.wall_seconds > 0 and r.cpu_seconds > 0 and 0 <= r.load_seconds < r.wall_seconds
        assert 0 < r.generate_seconds <= r.wall_seconds
        assert r.judge["n"] == (1 if r.key == "sds2d" else 8)
        assert all(0 <= r.judge[k] <= 1 for k in ("category", "colour", "part_colour", "all"))


def test_primitive_counts_and_splat_sizes_are_the_methods_own(rows):
    r = by_key(rows[0])
    assert r["sds2d"].primitives == ImageSDSConfig().n_gaussians and r["sds2d"].splat_bytes is None
    # three SDS steps never reach DreamGaussian's first densification (every 50 steps): N stays n_init
    assert r["dreamgaussian-tiny"].primitives == DreamGaussianConfig.for_profile("ci").n_init
    assert r["lgm"].primitives == load_model("lgm").config.n_gaussians                 # one per output pixel per view
    trellis = r["trellis"].counts
    assert r["trellis"].primitives == trellis["active_voxels"] * trellis["gaussians_per_voxel"]
    assert r["dreamfusion-tiny"].primitives == r["dreamfusion-tiny"].counts["gaussians"] > 0
    for key in ("dreamgaussian-tiny", "lgm", "trellis", "dreamfusion-tiny"):
        assert r[key].splat_bytes == 32 * r[key].primitives                             # .splat: 32 bytes a Gaussian


def test_network_calls_are_counted_per_network(rows):
    r = by_key(rows[0])
    assert r["sds2d"].network_calls == {"TextToImagePrior": 3}
    assert r["dreamgaussian-tiny"].network_calls == {"TextToImagePrior": 3}
    assert r["lgm"].network_calls == {"MultiViewPrior": 10, "LGM": 1}                  # ci: 10 sampler steps, 1 pass
    assert r["trellis"].network_calls == {"StructureFlow": 25, "StructureDecoder": 2, "SLatFlow": 25, "SLatDecoder": 1}, \
        "every TRELLIS network by name: the flows' steps, the structure decoder's two passes, one SLat decode"
    # the NeRF: one call per step (all the step's rays at once) and one for the conversion grid
    assert r["dreamfusion-tiny"].network_calls == {"TextToImagePrior": 3, "DreamFusionNeRF": 4}
    counts = r["dreamfusion-tiny"].counts
    assert counts["mlp_queries_optimise"] == 3 * counts["mlp_queries_per_step"] == 3 * 32 * 32 * 32
    for key in ("sds2d", "dreamgaussian-tiny", "dreamfusion-tiny"):
        assert r[key].sds_steps == 3 and r[key].seconds_per_step > 0
    assert r["lgm"].sds_steps is None and r["lgm"].seconds_per_step is None


def test_out_dir_gets_each_assets_generate_files(rows):
    _, out = rows
    for key in ("lgm", "dreamfusion-tiny"):
        assert {p.name for p in (out / key / "a-red-ball").iterdir()} >= {"gaussians.ply", "gaussians.splat",
                                                                        "turntable.png", "result.json"}
    assert not (out / "sds2d").exists()                                                  # a picture, not an asset


def test_rows_round_trip_through_json(rows):
    for r in rows[0]:
        back = HarnessRow.from_dict(r.to_dict())
        assert back.key == r.key and back.options == r.options and back.primitives == r.primitives
        assert back.network_calls == r.network_calls and back.judge == r.judge
        assert math.isclose(back.generate_seconds, r.generate_seconds, abs_tol=2e-3)


# ============================================================================== refusals
@pytest.fixture
def nothing_runs(monkeypatch):
    def boom(request, progress):
        raise AssertionError("a generator ran despite bad input")

    for name, m in list(gen.GENERATORS.items()):
        monkeypatch.setitem(gen.GENERATORS, name, gen.Method(m.name, m.summary, boom, m.add_arguments, m.configure,
                                                              m.prompt_optional))


def test_an_unknown_generator_is_refused_before_anything_runs(nothing_runs):
    with pytest.raises(ValueError, match="unknown generator 'nerf'") as error:
        run_harness(["a red ball"], ["lgm", "nerf"], profile="ci", progress=False)
    for name in ("sds2d", "dreamgaussian-1", "dreamfusion", "trellis"):
        assert name in str(error.value)
    with pytest.raises(ValueError, match="'nope' is not a gsbook generate method"):
        contender(Contender("x", "nope"))


def test_bad_prompts_and_options_are_refused_before_anything_runs(nothing_runs):
    with pytest.raises(PromptError, match="banana"):
        run_harness(["a red ball", "a red banana"], ["lgm"], profile="ci", progress=False)
    with pytest.raises(PromptError, match="banana"):
        run_harness(["a red banana"], ["sds2d"], profile="ci", progress=False)
    with pytest.raises(ValueError, match="--stages"):
        run_harness(["a red ball"], [Contender("dg", "dreamgaussian", ("--stages", "3"))], profile="ci",
                    progress=False)
    with pytest.raises(ValueError, match="at least one prompt"):
        run_harness([], ["lgm"], profile="ci", progress=False)


def test_a_registered_method_is_a_contender_by_its_name():
    assert contender("grm") == harness.CONTENDERS["grm"]
    assert contender("dreamgaussian-1").options == ("--stages", "1")


# ============================================================================== counting
def test_count_network_calls_counts_outermost_calls_only():
    mlp = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    other = nn.Linear(3, 3)
    x = torch.zeros(2, 3)
    mlp(x)                                                                              # before: not counted
    with count_network_calls() as calls:
        for _ in range(3):
            mlp(x)
        other(x)
    mlp(x)                                                                              # after: not counted
    assert dict(calls) == {"Sequential": 3, "Linear": 1}


# ============================================================================== ratios and tables
def fake_row(key: str, seconds: float, prompt: str = "a red ball", load: float = 0.5) -> HarnessRow:
    return HarnessRow(key=key, label=harness.CONTENDERS[key].label, method=harness.CONTENDERS[key].method,
                      options=(), prompt=prompt, seed=0, profile="cpu", device="cpu", threads=2,
                      wall_seconds=seconds + load, cpu_seconds=2 * seconds, load_seconds=load,
                      stage_seconds={"load": load}, primitives=1000, splat_bytes=32_000,
                      judge={"category": 1.0, "colour": 0.5, "part_colour": 1.0, "all": 0.5, "n": 8},
                      network_calls={"LGM": 1})


def test_ratios_use_medians_and_set_the_essay_and_the_papers_beside_them():
    rows = [fake_row("dreamfusion", s, p) for s, p in ((900.0, "a"), (1000.0, "b"), (5000.0, "c"))]
    rows += [fake_row("lgm", 1.0), fake_row("trellis", 2.0), fake_row("dreamgaussian", 100.0)]
    assert medians(rows)["dreamfusion"]["generate_seconds"] == 1000.0
    got = {(r.slow, r.fast): r for r in ratios(rows)}
    r = got[("dreamfusion", "lgm")]
    assert r.book == pytest.approx(1000.0) and r.magnitude(r.book) == pytest.approx(3.0)
    assert r.essay == pytest.approx(1800.0)                            # ~30 min against ~1 s
    assert r.papers == pytest.approx(5400.0 / 5.0)                     # gsbook.era: ~1.5 h against ~5 s
    assert got[("dreamgaussian", "trellis")].book == pytest.approx(50.0)
    assert ratios(rows[:3])[0].book is None                            # no LGM row: no ratio, not a guess


def test_tables_in_both_languages():
    rows = [fake_row("dreamfusion", 1000.0), fake_row("lgm", 1.0), fake_row("sds2d", 3.0)]
    en, zh = times_table(rows), times_table(rows, "zh")
    assert en.count("\n") == zh.count("\n") == 1 + 3                   # header, rule, one line per generator
    assert "DreamFusion (NeRF)" in en and "~30 min" in en and "~1.5 h" in en and "17 min" not in en
    assert "16.7 min" in en and "1 × LGM" in en and "31 KiB" in en
    assert "生成器" in zh and "约 30 分钟" in zh and "16.7 分钟" in zh
    ratio = ratio_table(rows)
    assert "| DreamFusion / LGM | ×1,800 (10^3.3) | ×1,080 (10^3.0) | ×1,000 (10^3.0) |" in ratio
    assert "| DreamFusion / TRELLIS | ×900 (10^3.0) | ×540 (10^2.7) | — |" in ratio
    assert "慢 / 快" in ratio_table(rows, "zh") and ratio.splitlines()[0].endswith("| this machine |")
    assert ratio_table(rows, machine="the book's machine (cpu)").splitlines()[0].endswith("| the book's machine (cpu) |")
    with pytest.raises(ValueError, match="lang"):
        times_table(rows, "fr")


# ============================================================================== steps put back, training paid back
def test_at_paper_steps_scales_the_sds_stage_and_keeps_the_rest():
    row = fake_row("dreamfusion", 30.0)                      # 30 s: 20 s of 100 SDS steps, 10 s of the rest
    row.stage_seconds = {"load": row.load_seconds, "optimise": 20.0, "convert": 10.0}
    row.sds_steps, row.sds_seconds = 100, 20.0
    got = harness.at_paper_steps([row, fake_row("lgm", 1.0)])
    assert set(got) == {"dreamfusion"}                        # only methods with steps, and a paper's step count
    assert got["dreamfusion"] == pytest.approx(0.2 * 15_000 + 10.0)
    assert harness.PAPER_SDS_STEPS["dreamgaussian"] == 500


def test_training_cost_reads_the_model_cards():
    lgm = harness.training_cost("lgm")
    assert set(lgm.networks) == {"prior_mv", "lgm"}
    assert lgm.seconds == pytest.approx(sum(s for s, _ in lgm.networks.values())) and lgm.seconds > 3600
    assert all(hardware for _, hardware in lgm.networks.values())
    assert len(harness.training_cost("trellis").networks) == 4
    with pytest.raises(ValueError, match="no networks listed for 'nerf'"):
        harness.training_cost("nerf")


@pytest.mark.parametrize("train, fast, slow, want", [
    (100.0, 1.0, 11.0, 10), (101.0, 1.0, 11.0, 11), (0.0, 5.0, 5.0, 1), (0.0, 1.0, 2.0, 1),
    (10.0, 5.0, 5.0, None), (0.0, 6.0, 5.0, None), (0.3, 0.1, 0.2, 3), (9788.4, 7.3, 600.0, 17)])
def test_break_even_assets(train, fast, slow, want):
    got = harness.break_even_assets(train, fast, slow)
    assert got == want
    if got is not None:                                       # the smallest n with train + n·fast ≤ n·slow
        assert train + got * fast <= got * slow and (got == 1 or train + (got - 1) * fast > (got - 1) * slow)


def test_break_even_assets_refuses_negative_times():
    with pytest.raises(ValueError, match="≥ 0"):
        harness.break_even_assets(-1.0, 1.0, 2.0)
