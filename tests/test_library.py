"""The library core besides the wrapper: catalog, tiling, device, environment, packaging."""

from __future__ import annotations

import ast
import itertools
import re
import sys
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from torch import nn

import wne
from wne import catalog
from wne.settings import EnvSettings
from wne.tiling import GPU_TILE_SIZE, TILE_SIZE, apply_tiled, tile_count, tile_size, tile_starts

ROOT = Path(__file__).resolve().parent.parent


# --- catalog ------------------------------------------------------------------------------


def test_catalog_keys_are_unique_and_round_trip() -> None:
    """Every key is built by catalog.key from its entry's fields, and get() returns it."""
    keys = catalog.keys()
    assert len(keys) == len(set(keys)) == 15
    for k in keys:
        e = catalog.get(k)
        assert e.key == k == catalog.key(e.family.id, e.variant, e.sigma_train, e.size)
    assert [e.key for e in catalog.entries(size="gpu")] == keys[13:]
    assert keys[13:] == ["dncnn-plain-s25-gpu", "dncnn-wne-s25-gpu"]
    assert keys[:5] == [
        "dncnn-plain-s25",
        "dncnn-wne-s25",
        "swinir-plain-s25",
        "swinir-wne-s25",
        "fdncnn-ne-s25",
    ]


def test_catalog_families_build_and_describe_back() -> None:
    """Each family's arch is registered and builds at CPU and paper size; describe() inverts."""
    for fam in catalog.families():
        assert fam.arch in wne.models.available()
        for recipe in (fam.cpu, fam.paper):
            model = wne.models.build(fam.arch, **recipe.arch_kwargs)
            assert sum(p.numel() for p in model.parameters()) > 0
        for variant in fam.variants:
            wrapper = "wne" if variant == "wne" else "none"
            found = catalog.describe(fam.arch, wrapper)
            assert found is not None and found == (fam, variant)
    assert catalog.describe("no-such-arch") is None
    assert catalog.describe("fdncnn_ne", "wne") is None  # the NE-arch family has no WNE twin


def test_catalog_twins_share_every_recipe_field() -> None:
    """Plain and WNE twins are trained by the same recipe (only the wrapper differs)."""
    for e in catalog.entries():
        if e.variant == "wne":
            twin = catalog.get(catalog.key(e.family.id, "plain", e.sigma_train, e.size))
            assert twin.recipe() == e.recipe() and twin.recipe(paper=True) == e.recipe(paper=True)
    assert catalog.get("dncnn-wne-s25").recipe().steps == 6000  # the σ-specific override
    assert catalog.get("dncnn-wne-s10").recipe().steps == 3000
    gpu = catalog.get("dncnn-wne-s25-gpu")
    assert (gpu.size, catalog.SIZE_LABELS[gpu.size]) == ("gpu", "paper-size, GPU-trained")
    assert dict(gpu.recipe().arch_kwargs) == dict(gpu.recipe(paper=True).arch_kwargs)
    assert gpu.recipe().total_steps == 3200 + 12800 and gpu.recipe(paper=True).steps == 500_000


def test_catalog_rejects_unknown_keys_and_slots() -> None:
    with pytest.raises(ValueError, match="not a zoo key"):
        catalog.get("dncnn-wne-s26")
    with pytest.raises(ValueError, match="no 'wne' variant"):
        catalog.key("fdncnn-ne", "wne", 25)
    with pytest.raises(ValueError, match="family 'resnet'"):
        catalog.key("resnet", "plain", 25)
    with pytest.raises(ValueError, match="size 'tpu'"):
        catalog.key("dncnn", "plain", 25, "tpu")


BOTH = {"dncnn-plain-s25": 29.6, "dncnn-wne-s25": 29.2, "dncnn-plain-s25-gpu": 30.2,
        "dncnn-wne-s25-gpu": 30.0}  # fmt: skip


@pytest.mark.parametrize(
    ("psnrs", "choice", "want"),
    [
        (BOTH, {}, "dncnn-wne-s25-gpu"),  # no device: the highest recorded numbers
        (BOTH, {"device": "cuda:0"}, "dncnn-wne-s25-gpu"),
        (BOTH, {"device": "cpu"}, "dncnn-wne-s25"),  # a CPU needs a measurement for GPU sizes
        (BOTH, {"device": "cpu", "seconds": {"gpu": 1.5}, "budget": 1.8}, "dncnn-wne-s25-gpu"),
        (BOTH, {"device": "cpu", "seconds": {"gpu": 2.5}, "budget": 1.8}, "dncnn-wne-s25"),
        (BOTH, {"device": "cuda", "seconds": {"gpu": 2.5}, "budget": 1.8}, "dncnn-wne-s25"),
        # nothing fits: the fastest measured size
        (BOTH, {"seconds": {"gpu": 2.5, "cpu": 2.0}, "budget": 1.0}, "dncnn-wne-s25"),
        # a size with both twins beats one without the plain twin; recorded beats unrecorded
        ({**BOTH, "dncnn-plain-s25-gpu": None}, {}, "dncnn-wne-s25"),
        ({"dncnn-plain-s25": 29.6, "dncnn-wne-s25": 29.2, "dncnn-wne-s25-gpu": 30.0}, {},
         "dncnn-wne-s25"),
        ({"dncnn-plain-s25": None, "dncnn-wne-s25": None, "dncnn-plain-s25-gpu": 1.0,
          "dncnn-wne-s25-gpu": 1.0}, {}, "dncnn-wne-s25-gpu"),
        ({"dncnn-plain-s25": None, "dncnn-wne-s25": None}, {"device": "cpu"}, "dncnn-wne-s25"),
        ({"dncnn-wne-s25-gpu": None}, {"device": "cpu"}, "dncnn-wne-s25-gpu"),  # the only one
        ({"swinir-wne-s25": 29.0}, {}, None),
    ],
)  # fmt: skip
def test_catalog_picks_the_best_checkpoint_for_a_device_and_a_budget(
    psnrs: dict[str, float | None], choice: dict, want: str | None
) -> None:
    assert catalog.best_checkpoint("dncnn", "wne", 25, psnrs, **choice) == want


def test_best_checkpoint_keeps_twins_together_and_reads_recorded_metrics() -> None:
    """The plain model runs at the size its WNE twin runs at; a slot missing at the best size
    falls back to its own best key; set12_psnr reads config.json's metrics."""
    psnrs = {"dncnn-plain-s25": 29.6, "dncnn-wne-s25": 29.2, "dncnn-wne-s25-gpu": 30.0}
    assert catalog.best_size("dncnn", 25, psnrs) == "cpu"
    psnrs |= {"dncnn-plain-s25-gpu": 28.0}  # the GPU twins' mean (29.0) loses
    assert catalog.best_checkpoint("dncnn", "plain", 25, psnrs) == "dncnn-plain-s25"
    assert catalog.best_checkpoint("dncnn", "wne", 25, psnrs) == "dncnn-wne-s25"
    assert catalog.best_checkpoint("dncnn", "wne", 25, {"dncnn-wne-s25-gpu": 1.0,
                                   "dncnn-plain-s25": 2.0}) == "dncnn-wne-s25-gpu"  # fmt: skip
    assert catalog.set12_psnr({"set12": {"psnr_matched": 29.5}}) == 29.5
    for bad in (
        None,
        {},
        {"set12": {"psnr_matched": float("nan")}},
        {"set12": {"psnr_matched": True}},
    ):
        assert catalog.set12_psnr(bad) is None


def _key_builders(path: Path) -> list[str]:
    """f-strings that format ``...-s{σ}`` and regular expressions that parse such keys."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr):
            for part, nxt in itertools.pairwise(node.values):
                if (
                    isinstance(part, ast.Constant)
                    and str(part.value).endswith("-s")
                    and isinstance(nxt, ast.FormattedValue)
                ):
                    found.append(f"{path.name}:{node.lineno}: f-string builds a key")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("compile", "match", "search", "fullmatch")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and re.search(r"-s\\?\(|plain\|wne", str(node.args[0].value))
        ):
            found.append(f"{path.name}:{node.lineno}: regex parses a key")
    return found


def test_only_the_catalog_builds_or_parses_key_strings() -> None:
    """Keys come from catalog.key(); loaded models are described by config.json, not their key."""
    offenders = [
        hit
        for path in sorted((ROOT / "wne").rglob("*.py"))
        if path.name != "catalog.py"
        for hit in _key_builders(path)
    ]
    assert not offenders, "\n".join(offenders)
    assert _key_builders(ROOT / "wne" / "catalog.py"), "the detector finds the catalog's builder"


# --- tiling -------------------------------------------------------------------------------


# (h, w) hitting every branch for tile=32, overlap=8: one tile; h <= tile < w; both > tile;
# odd sizes whose last tile overlaps more than `overlap`; exactly one tile plus one pixel.
SIZES = [(20, 30), (32, 32), (20, 70), (70, 20), (70, 90), (33, 33), (57, 101), (95, 41)]


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_tiled_identity_returns_its_input_bit_exactly(h: int, w: int) -> None:
    """A stitching error (off-by-one offset, double-counted overlap) changes some pixel."""
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    assert torch.equal(apply_tiled(nn.Identity(), x, tile=32, overlap=8), x)


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_tiled_3x3_conv_net_equals_untiled(h: int, w: int) -> None:
    """Receptive field radius 2 <= overlap // 2: seams mid-overlap are invisible."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1))
    x = torch.rand(2, 1, h, w, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = net(x)
    torch.testing.assert_close(apply_tiled(net, x, tile=32, overlap=8), full, rtol=0, atol=1e-6)


def test_tiled_wne_model_stays_exactly_equivariant() -> None:
    torch.manual_seed(0)
    model = wne.NormEquivariant(wne.models.build("dncnn", depth=3, width=8)).eval()
    y = torch.rand(1, 1, 70, 90)
    assert tile_count(70, 90, 32, 8) > 1
    # apply_tiled works in float32: equal up to float32 round-off (a broken tiling: ~1e-1).
    shifted = apply_tiled(model, 0.3 * y + 0.6, tile=32, overlap=8)
    torch.testing.assert_close(
        shifted, 0.3 * apply_tiled(model, y, tile=32, overlap=8) + 0.6, rtol=0, atol=2e-6
    )


def test_tile_size_follows_the_device() -> None:
    """512 px tiles on the CPU (bounded memory), whole 1024² images on a GPU; the tile
    count a page reports uses the same rule as apply_tiled."""
    assert tile_size("cpu") == tile_size(None) == TILE_SIZE == 512
    assert tile_size("cuda") == tile_size(torch.device("cuda", 0)) == GPU_TILE_SIZE >= 1024
    assert tile_count(1024, 1024, device="cpu") == 9
    assert tile_count(1024, 1024, device="cuda") == 1
    assert tile_count(1024, 1024) == tile_count(1024, 1024, TILE_SIZE)


def test_tile_starts_cover_and_overlap() -> None:
    for length in range(1, 200):
        starts = tile_starts(length, 32, 8)
        assert starts[0] == 0 and starts[-1] + min(32, length) == length
        assert all(b - a <= 32 - 8 for a, b in itertools.pairwise(starts))
    assert tile_count(70, 90, 32, 8) == len(tile_starts(70, 32, 8)) * len(tile_starts(90, 32, 8))
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 32, 32)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        apply_tiled(nn.Identity(), torch.rand(3, 40, 40))


# --- device -------------------------------------------------------------------------------


def test_pick_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WNE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert wne.pick_device().type == expected == wne.pick_device("auto").type
    monkeypatch.setenv("WNE_DEVICE", "cpu")
    assert wne.pick_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="not a device"):
        wne.pick_device("gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            wne.pick_device("cuda")


# --- environment ---------------------------------------------------------------------------


def test_env_settings_parse_every_variable_and_survive_typos(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each WNE_* variable parses to its type; unset, empty or unparsable ones (logged) keep
    the default (the library's readers: test_pick_device, test_checkpoints)."""
    env = {"WNE_FAST": "off", "WNE_QUEUE_SIZE": "10", "WNE_LATENCY_TARGET": "2.5",
           "WNE_CHECKPOINT_DIR": "/ckpt", "WNE_HUB_REPO": "", "WNE_DEMO_MAX_SIDE": "big",
           "WNE_RESULT_CACHE_MB": "-1", "WNE_WARM_EXAMPLES": "maybe"}  # fmt: skip
    got = EnvSettings.from_env(env)
    default = EnvSettings()
    assert (got.fast, got.queue_size, got.latency_target) == (False, 10, 2.5)
    assert got.checkpoint_dir == Path("/ckpt") and got.hub_repo is None
    assert got.demo_max_side is None and got.result_cache_mb == default.result_cache_mb
    assert got.warm_examples is True and got.hub_revision == "main"
    assert {r.getMessage().split("=")[0] for r in caplog.records} == {
        "ignoring WNE_DEMO_MAX_SIDE", "ignoring WNE_RESULT_CACHE_MB", "ignoring WNE_WARM_EXAMPLES"
    }  # fmt: skip
    assert all(f.metadata["env"] == f"WNE_{f.name.upper()}" for f in fields(EnvSettings))


def test_only_wne_settings_reads_wne_variables() -> None:
    """No module but wne/settings.py reads a WNE_* variable from the environment itself."""
    read = re.compile(r"""(environ\.get\(|environ\[|getenv\()\s*["']WNE_""")
    offenders = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in [ROOT / "app.py", *sorted((ROOT / "wne").rglob("*.py"))]
        if p.name != "settings.py" or p.parent.name != "wne"
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if read.search(line)
    ]
    assert not offenders, offenders


# --- packaging ----------------------------------------------------------------------------


def _third_party_imports(files: list[Path]) -> set[str]:
    names: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n != "wne" and n not in sys.stdlib_module_names}


def test_core_library_imports_only_declared_dependencies() -> None:
    """`pip install .` brings everything `import wne` needs (no gradio, matplotlib, pandas)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        re.split(r"[<>=!; \[]", d)[0].lower().replace("-", "_") for d in project["dependencies"]
    }
    # the [dask] extra: imported only inside the function a dask array reaches (wne.chunked)
    declared |= {re.split(r"[<>=!; \[]", d)[0] for d in project["optional-dependencies"]["dask"]}
    dist_to_module = {"pillow": "PIL", "huggingface_hub": "huggingface_hub"}
    provided = {dist_to_module.get(d, d) for d in declared}
    core = [
        p
        for p in (ROOT / "wne").rglob("*.py")
        if not {"lab", "demo"} & set(p.relative_to(ROOT / "wne").parts)
    ]
    used = _third_party_imports(core)
    assert used <= provided, f"undeclared: {sorted(used - provided)}"
    assert not used & {"gradio", "matplotlib", "pandas"}


def test_the_one_console_script_points_at_a_callable() -> None:
    """`wne <subcommand>` is the only console script (issue 23), and its target exists."""
    import importlib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"wne"}
    module, func = scripts["wne"].split(":")
    assert callable(getattr(importlib.import_module(module), func))
