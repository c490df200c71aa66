"""The rivals of WNE (paper App. D, E, O, §5.2, Table 7) in the catalog, the trainer's options,
the symmetries each one has and has not, and every rival checkpoint trained so far.

The zoo's listings (``keys``, ``entries``, ``families``: what the demo shows) stay as they were;
a rival is found by ``catalog.get(key)``, ``catalog.rivals()`` and ``wne.load(key)``. The
golden, config and Set12 checks of the trained rivals are test_shipped's and test_bundled's
(parametrized over the zoo and the rivals present); here, that each present one is complete.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

import wne
from wne import catalog, checkpoints, models
from wne.lab import evaluate, paper, train, zoo
from wne.lab.defect import defect_sweep
from wne.lab.protocol import EvalModel
from wne.wrapper import InputNormalized, NormEquivariant

ROOT = Path(__file__).resolve().parent.parent
CKPT = ROOT / "checkpoints"
RESULTS = ROOT / "assets" / "results"
GOLDEN = Path(__file__).resolve().parent / "golden" / "shipped.json"
RIVALS = [k for k in catalog.rival_keys() if (CKPT / k / "config.json").is_file()]
ZOO_KEYS = [
    "dncnn-plain-s25", "dncnn-wne-s25", "swinir-plain-s25", "swinir-wne-s25", "fdncnn-ne-s25",
    "dncnn-plain-s10", "dncnn-wne-s10", "swinir-plain-s10", "swinir-wne-s10",
    "dncnn-plain-s50", "dncnn-wne-s50", "swinir-plain-s50", "swinir-wne-s50",
    "dncnn-plain-s25-gpu", "dncnn-wne-s25-gpu",
]  # fmt: skip
"""The zoo's keys before the rivals came: the demo's, unchanged."""


def test_rivals_are_catalogued_beside_the_zoo_not_in_it() -> None:
    """keys(), entries() and families() list exactly the zoo of before; every rival has a
    key that get() finds (role "rival"), built by catalog.key (a range: ``-s0-55``)."""
    assert catalog.keys() == ZOO_KEYS
    assert [e.key for e in catalog.entries()] == ZOO_KEYS
    assert [f.id for f in catalog.families(zoo_only=True)] == ["dncnn", "swinir", "fdncnn-ne"]
    assert [f.id for f in catalog.families()] == ["dncnn", "swinir", "fdncnn-ne", "fdncnn"]
    assert catalog.rival_keys() == [
        "dncnn-in-s10", "fdncnn-se-s25", "fdncnn-plain-s25", "fdncnn-wne-s25",
        "swinir-softne-s10", "swinir-plain-s0-55", "swinir-wne-s0-55",
    ]  # fmt: skip
    assert not set(catalog.rival_keys()) & set(ZOO_KEYS)
    for e in catalog.rivals():
        assert catalog.get(e.key) is e and e.role == "rival" and e.size == "cpu"
        assert e.key == catalog.key(
            e.family.id, e.variant, e.sigma_train, sigma_range=e.sigma_range
        )
        assert e.family.id not in catalog.FAMILIES or e.sigma_train not in e.family.sigmas
    assert all(catalog.get(k).role == "zoo" for k in ZOO_KEYS)
    e = catalog.get("swinir-wne-s0-55")
    assert (e.sigma_train, e.sigma_range, e.matched_sigma, e.wrapper) == (None, (0, 55), 25, "wne")
    assert catalog.get("dncnn-in-s10").wrapper == "input"
    assert catalog.get("swinir-softne-s10").augment == {
        "soft_ne": {"alpha": [0.0, 1.0], "mu": [0.0, 1.0]}
    }
    with pytest.raises(ValueError, match="either sigma_train or sigma_range"):
        catalog.key("swinir", "plain", 25, sigma_range=(0, 55))
    with pytest.raises(ValueError, match=r"not a zoo key.*swinir-wne-s0-55"):
        catalog.get("swinir-wne-s0-56")


@pytest.mark.parametrize("key", catalog.rival_keys())
def test_each_rival_is_trained_like_its_zoo_twin_but_for_what_makes_it_a_rival(key: str) -> None:
    """``wne zoo --print KEY`` parses into the recipe of the zoo (or Table 7) model it is a
    rival of, with only its own option changed: the wrapper, the noise range, the augmentation
    or the backbone."""
    entry = catalog.get(key)
    got = train.recipe_fingerprint(train.parse_args(zoo.command(key)))
    twin_key = {
        "dncnn-in-s10": "dncnn-wne-s10", "fdncnn-se-s25": "fdncnn-plain-s25",
        "swinir-softne-s10": "swinir-plain-s10", "swinir-plain-s0-55": "swinir-plain-s25",
        "swinir-wne-s0-55": "swinir-wne-s25", "fdncnn-plain-s25": "fdncnn-ne-s25",
        "fdncnn-wne-s25": "fdncnn-plain-s25",
    }[key]  # fmt: skip
    twin = train.recipe_fingerprint(train.parse_args(zoo.command(twin_key)))
    differ = {k for k in {*got, *twin} if got.get(k) != twin.get(k)}
    assert (
        differ
        == {
            "dncnn-in-s10": {"wrapper"},
            "fdncnn-se-s25": {"arch"},
            "fdncnn-plain-s25": {"arch"},
            "fdncnn-wne-s25": {"wrapper"},
            "swinir-softne-s10": {"soft_ne"},
            "swinir-plain-s0-55": {"sigma", "sigma_range"},
            "swinir-wne-s0-55": {"sigma", "sigma_range"},
        }[key]
    )
    assert (got["arch"], got["wrapper"], got["steps"]) == (
        entry.arch, entry.wrapper, entry.recipe().steps
    )  # fmt: skip
    assert got.get("sigma_range") == (list(map(float, entry.sigma_range)) if entry.sigma_range
                                      else None)  # fmt: skip
    assert got.get("soft_ne") == (entry.augment or {}).get("soft_ne")


def test_zoo_lists_and_prints_the_rivals(capsys: pytest.CaptureFixture) -> None:
    assert zoo.main(["--list", "--rivals"]) == 0
    assert capsys.readouterr().out.split() == catalog.rival_keys()
    assert zoo.main(["--print", "swinir-softne-s10", "swinir-plain-s0-55"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "--soft-ne --soft-ne-alpha 0 1 --soft-ne-mu 0 1" in out[0]
    assert "--sigma-range 0 55" in out[1] and "--sigma " not in out[1]


def test_describe_reads_what_config_json_records() -> None:
    """(arch, wrapper, augment) → the rival's family and variant, never its key; the paper
    columns stay the zoo's (a soft-NE or range-trained SwinIR is not the paper's b_swinir)."""
    for e in catalog.rivals():
        assert catalog.describe(e.arch, e.wrapper, augment=e.augment) == (e.family, e.variant)
    assert catalog.describe("swinir", "input") is None
    assert catalog.describe("swinir", "wne", augment={"soft_ne": {}}) is None
    assert catalog.describe("swinir", "none", augment={"mixup": {}}) is None
    assert paper.paper_column("swinir", "none") == "b_swinir"
    assert paper.paper_column("swinir", "none", augment={"soft_ne": {}}) is None
    assert paper.paper_column("swinir", "wne", sigma_range=[0, 55]) is None
    assert paper.paper_column("dncnn", "input") is None


# --- the symmetries -------------------------------------------------------------------------


def _y(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    base = torch.linspace(0, 1, 40).view(1, 1, 1, 40).expand(2, 1, 36, 40)
    return base + 0.1 * torch.randn(2, 1, 36, 40, generator=gen)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).flatten(1).norm(dim=1).max() / b.flatten(1).norm(dim=1).min())


def _properties(model: torch.nn.Module, variant: str) -> None:
    """The symmetry a (family, variant) has, and the one it lacks, on ``model``."""
    y = _y()
    with torch.no_grad():
        f = model(y)
        shifted, scaled = model(y + 0.3), model(2.5 * y)
    if variant == "in":  # invariant: the brightness and contrast are lost
        assert _rel(shifted, f) < 1e-4 and _rel(scaled, f) < 1e-4
        assert _rel(shifted, f + 0.3) > 0.05 and _rel(scaled, 2.5 * f) > 0.05
    elif variant == "se":  # scale-equivariant only
        assert _rel(scaled, 2.5 * f) < 1e-5
        assert _rel(shifted, f + 0.3) > 1e-3
    elif variant in ("wne", "ne"):
        assert float(wne.ne_defect(model, y, a=2.5, b=0.3).max()) < 1e-5
    else:
        assert float(wne.ne_defect(model, y, a=2.5, b=0.3).max()) > 1e-3


@pytest.mark.parametrize(
    ("build", "variant"),
    [
        (lambda: InputNormalized(models.build("dncnn", depth=4, width=8)), "in"),
        (lambda: models.build("fdncnn_se", depth=4, width=8), "se"),
        (lambda: NormEquivariant(models.build("fdncnn", depth=4, width=8)), "wne"),
        (lambda: models.build("fdncnn", depth=4, width=8), "plain"),
    ],
)
def test_random_models_have_their_symmetry_and_lack_the_other(build, variant: str) -> None:
    """Input-only normalization is invariant (f(y + b) = f(y) ≠ f(y) + b), the bias-free
    FDnCNN scale-equivariant to round-off but not shift-equivariant, WNE NE to round-off."""
    torch.manual_seed(0)
    model = build().eval()
    if variant == "se":
        assert not any("bias" in name for name, _ in model.named_parameters())
    _properties(model, variant)


def test_input_normalized_checkpoints_round_trip(tmp_path: Path) -> None:
    """An InputNormalized model saves as wrapper "input" (the backbone's tensors only) and
    loads back as one; a constant image maps to g(0); the new config fields are validated and
    written only when set."""
    torch.manual_seed(0)
    model = InputNormalized(models.build("dncnn", depth=3, width=8)).eval()
    kw = {"depth": 3, "width": 8}
    cfg = wne.save(model, tmp_path / "k", key="k", arch="dncnn", arch_kwargs=kw, sigma_train=10)
    assert cfg.wrapper == "input" and cfg.wrapper_mode is None
    assert "sigma_range" not in cfg.to_dict() and "augment" not in cfg.to_dict()
    back = wne.load("k", root=tmp_path)
    assert isinstance(back, InputNormalized)
    y = _y()
    with torch.no_grad():
        assert torch.equal(back(y), model(y))
        flat = torch.full((1, 1, 16, 16), 0.7)
        assert torch.equal(back(flat), model.backbone(torch.zeros_like(flat)))
    with pytest.raises(ValueError, match="NaN"):
        back(torch.full((1, 1, 16, 16), float("nan")))
    data = json.loads((tmp_path / "k" / "config.json").read_text())
    for bad in ([55, 0], [0], "0-55", [0, float("inf")]):
        with pytest.raises(checkpoints.CheckpointError, match="sigma_range"):
            checkpoints.ModelConfig.from_dict({**data, "sigma_range": bad})
    with pytest.raises(checkpoints.CheckpointError, match="augment"):
        checkpoints.ModelConfig.from_dict({**data, "augment": ["soft_ne"]})


def test_defect_sweep_and_evaluate_all_leave_rivals_to_models(tmp_path: Path) -> None:
    """``wne defect``'s sweep: WNE at round-off at every σ (σ = 0 too), a plain model not;
    ``wne evaluate --all`` / ``--sigma-train`` never pick a rival up (only ``--models``)."""
    torch.manual_seed(0)
    kw = {"depth": 3, "width": 8}
    nets = {"w": NormEquivariant(models.build("fdncnn", **kw)), "p": models.build("fdncnn", **kw)}
    ms = [EvalModel(k, m.eval(), 10.0) for k, m in nets.items()]
    images = [("a", _y()[:1]), ("b", _y(1)[:1])]
    rows = defect_sweep(ms, images, [0.0, 25.0], pairs=3)
    assert [(r["model"], r["sigma_test"], r["n"]) for r in rows] == [
        ("w", 0.0, 6), ("w", 25.0, 6), ("p", 0.0, 6), ("p", 25.0, 6)
    ]  # fmt: skip
    assert all(r["defect_max"] < 1e-5 for r in rows[:2])
    assert all(r["defect_mean"] > 1e-3 for r in rows[2:])
    for key in ("dncnn-in-s10", "dncnn-wne-s10", "mine-s10"):
        wne.save(nets["p"], tmp_path / key, key=key, arch="fdncnn", arch_kwargs=kw, sigma_train=10)
    args = argparse.Namespace(root=tmp_path, size="cpu")
    assert evaluate._keys(args, 10.0) == ["dncnn-wne-s10", "mine-s10"]


# --- the rival checkpoints trained so far ----------------------------------------------------


def test_every_present_rival_checkpoint_is_complete() -> None:
    """Each rival in checkpoints/ is whole: verified weights, a model card saying what it is,
    Set12 numbers in config.json, its evaluation folder, a golden PSNR, a lab-book row; and on
    its real weights it has the symmetry its kind has (and lacks the other)."""
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))["psnr"]
    book = (RESULTS / "README.md").read_text(encoding="utf-8")
    for key in RIVALS:
        folder, entry = CKPT / key, catalog.get(key)
        cfg = checkpoints.read_config(folder)
        assert checkpoints.sha256_file(folder / cfg.weights) == cfg.sha256, key
        card = (folder / "README.md").read_text(encoding="utf-8")
        assert cfg.metrics["set12"]["sigma_train"] == entry.matched_sigma, key
        assert f"PSNR {cfg.metrics['set12']['psnr_matched']:.2f} dB" in card, key
        assert (RESULTS / "rivals" / key / "summary.json").is_file(), key
        assert (RESULTS / "rivals" / key / "psnr.csv").is_file(), key
        assert key in golden, key
        assert any(line.startswith("|") and f"(`{key}`)" in line for line in book.splitlines())
        _properties(wne.load(key, root=CKPT, source="local"), entry.variant)
