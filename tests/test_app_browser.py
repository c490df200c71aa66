"""The page in a real browser: Playwright (Python) driving Debian's /usr/bin/chromium.

Opens the app (served once for the session by :mod:`app_fixtures`, tiny random-init
checkpoints),
uploads an image, moves the contrast slider, runs the comparison, waits for the
outputs, checks that the PSNR readouts appear and that the ImageSlider shows two
images, and saves a screenshot under the test's tmp dir. The comparison streams:
one test holds each model call to watch the panels arrive one by one. Never installs a
browser: skipped when /usr/bin/chromium or Playwright is absent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
pytest_plugins = ["app_fixtures"]  # the session's served app (`app_url`)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing"),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian chromium not installed at " + str(CHROMIUM)
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright (Python) is not installed")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def page(app_url: str) -> Iterator[sync_api.Page]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 1000})
            pg.set_default_timeout(120_000)
            pg.goto(app_url)
            yield pg
        finally:
            browser.close()


def test_upload_move_slider_run_and_compare(page: sync_api.Page, tmp_path: Path) -> None:
    """Upload → contrast slider → run: PSNR readouts and a two-image ImageSlider appear."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:128]
    img = np.stack([(xx * 2) % 256, (yy * 2) % 256, rng.integers(0, 255, (96, 128))], -1)
    upload = tmp_path / "upload.png"
    Image.fromarray(img.astype(np.uint8)).save(upload)

    box = page.locator("#input-image")
    box.get_by_label("Remove Image").click()  # the page starts with an example image
    box.locator("input[type=file]").set_input_files(str(upload))
    page.wait_for_function(
        "() => [...document.querySelectorAll('#input-image img')]"
        ".some(i => i.src.includes('upload'))"
    )

    number = page.locator("#contrast-a input[type=number]")
    rng_input = page.locator("#contrast-a input[type=range]")
    bb = rng_input.bounding_box()
    assert bb is not None
    page.mouse.click(bb["x"] + 0.1 * bb["width"], bb["y"] + bb["height"] / 2)  # move the slider
    page.wait_for_function(
        "() => parseFloat(document.querySelector('#contrast-a input[type=number]').value) < 0.9"
    )
    a_value = float(number.input_value())
    assert 0.1 <= a_value < 0.9

    page.locator("#run").click()
    # The image labels change only when the results arrive (the progress overlay does not):
    # one "WNE · <PSNR> dB" readout per backbone panel.
    wne_labels = page.get_by_text(re.compile(r"^\s*WNE · -?[\d.]+ dB"))
    sync_api.expect(wne_labels).to_have_count(2, timeout=180_000)
    table_text = page.locator("#scores").inner_text()
    psnrs = re.findall(r"CNN · (?:plain|WNE)\s+(-?\d+(?:\.\d+)?)", table_text)
    assert len(psnrs) == 2, table_text  # numeric PSNR readouts in the scores table
    sync_api.expect(page.get_by_text(f"a = {a_value:g}", exact=False).first).to_be_visible()

    slider = page.locator(".wne-slider").first
    sync_api.expect(slider.locator("img")).to_have_count(2)
    srcs = [slider.locator("img").nth(i).get_attribute("src") for i in range(2)]
    assert all(s and s.endswith(".png") for s in srcs) and srcs[0] != srcs[1]

    shot = tmp_path / "app.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("WNE_SCREENSHOT_DIR"):  # keep a copy for humans (e.g. the README)
        Path(os.environ["WNE_SCREENSHOT_DIR"], "app.png").write_bytes(shot.read_bytes())


def test_the_comparison_arrives_panel_by_panel(
    page: sync_api.Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page streams: noisy input and target first with every model "computing…", then
    each model's output in display order as it is computed. The server runs in this process;
    each model call waits here for the test to let it go."""
    import threading

    from wne.demo.pages import compare as cmp

    gate, real = threading.Semaphore(0), cmp.apply_model

    def one_at_a_time(*args: object, **kwargs: object) -> object:
        assert gate.acquire(timeout=120), "the test never let this model run"
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cmp, "apply_model", one_at_a_time)
    page.get_by_text("More settings").click()
    page.get_by_label("noise seed").fill("4321")  # a request no other test sends (no cache hit)

    def count(pattern: str) -> sync_api.Locator:
        return page.get_by_text(re.compile(pattern))

    done = {name: rf"^\s*{name} · -?[\d.]+ dB" for name in ("plain", "WNE")}
    waiting = {name: rf"^\s*{name} · computing…" for name in ("plain", "WNE")}
    try:
        page.locator("#run").click()
        sync_api.expect(count(r"^\s*noisy input · PSNR")).to_have_count(1)
        sync_api.expect(count(waiting["plain"])).to_have_count(2)
        sync_api.expect(count(waiting["WNE"])).to_have_count(2)
        sync_api.expect(page.locator("#scores")).to_contain_text("(computing…)")
        # (plain done, WNE done) after each model: CNN plain, CNN WNE, Transformer plain, ...
        for plain, wne_done in [(1, 0), (1, 1), (2, 1), (2, 2)]:
            gate.release()
            sync_api.expect(count(done["plain"])).to_have_count(plain)
            sync_api.expect(count(done["WNE"])).to_have_count(wne_done)
            sync_api.expect(count(waiting["plain"])).to_have_count(2 - plain)
            sync_api.expect(count(waiting["WNE"])).to_have_count(2 - wne_done)
        sync_api.expect(page.locator("#scores")).not_to_contain_text("computing")
        assert len(ROW.findall(page.locator("#scores").inner_text())) == 5
        sync_api.expect(page.locator(".toast-body.error")).to_have_count(0)
    finally:
        for _ in range(8):  # never leave the server's model queue waiting
            gate.release()


def test_clicking_an_example_loads_its_settings_and_runs(page: sync_api.Page) -> None:
    """An example click fills the image and sliders from examples.json and runs the comparison.

    Regression: with Gradio's lazy example cache every example click ended in an error toast.
    """
    import json

    spec = json.loads((REPO / "assets" / "examples" / "examples.json").read_text())
    example = next(e for e in spec if e["settings"].get("sigma", 25) != 25)
    page.get_by_text(example["label"], exact=True).first.click()
    page.wait_for_function(
        "s => parseFloat(document.querySelector('#noise-sigma input[type=number]').value) === s",
        arg=float(example["settings"]["sigma"]),
    )
    wne_labels = page.get_by_text(re.compile(r"^\s*WNE · -?[\d.]+ dB"))
    sync_api.expect(wne_labels).to_have_count(2, timeout=180_000)
    sync_api.expect(page.locator(".toast-body.error")).to_have_count(0)
    assert "Error" not in page.locator("#scores").inner_text()


def test_slider_release_with_live_updates_off_runs_nothing(page: sync_api.Page) -> None:
    """With "re-run when a slider is released" off, moving a slider starts no comparison and
    shows no error (the gate before the shared compare function stops silently)."""
    page.get_by_text("More settings").click()
    page.get_by_label("re-run when a slider is released").uncheck()
    page.locator("#contrast-a").scroll_into_view_if_needed()
    bb = page.locator("#contrast-a input[type=range]").bounding_box()
    assert bb is not None
    page.mouse.click(bb["x"] + 0.1 * bb["width"], bb["y"] + bb["height"] / 2)
    page.wait_for_function(
        "() => parseFloat(document.querySelector('#contrast-a input[type=number]').value) < 0.9"
    )
    page.wait_for_timeout(3000)  # a comparison of the tiny models takes well under a second
    sync_api.expect(page.locator(".toast-body")).to_have_count(0)
    sync_api.expect(page.get_by_text(re.compile(r"^\s*WNE · -?[\d.]+ dB"))).to_have_count(0)
    page.locator("#run").click()  # the button still runs it
    wne_labels = page.get_by_text(re.compile(r"^\s*WNE · -?[\d.]+ dB"))
    sync_api.expect(wne_labels).to_have_count(2, timeout=180_000)


def test_a_scenario_button_sets_the_controls_and_runs(page: sync_api.Page) -> None:
    """About → "Dim the lights": a = 0.3, the Compare tab opens and the comparison runs."""
    page.get_by_role("tab", name="About").click()
    page.get_by_role("button", name="Dim the lights").click()
    page.wait_for_function(
        "() => parseFloat(document.querySelector('#contrast-a input[type=number]').value) === 0.3"
    )
    wne_labels = page.get_by_text(re.compile(r"^\s*WNE · -?[\d.]+ dB"))
    sync_api.expect(wne_labels).to_have_count(2, timeout=180_000)
    sync_api.expect(page.get_by_text("a = 0.3", exact=False).first).to_be_visible()
    sync_api.expect(page.locator(".toast-body.error")).to_have_count(0)


def test_inside_wne_tab_shows_the_pipeline(page: sync_api.Page) -> None:
    """Inside WNE → "Show the steps": eight PNG pictures with their numbers, T(a·y+b) = T(y)
    to round-off. Choosing low light shows the photons control instead of σ."""
    page.get_by_role("tab", name="Inside WNE").click()
    page.locator("#inside-run").click()
    sync_api.expect(page.get_by_text("2 · Normalize", exact=False)).to_be_visible(timeout=180_000)
    formula = page.get_by_text(re.compile(r"f\(y\) = [\d.]+ · g\(T\(y\)\) \+ [\d.]+"))
    sync_api.expect(formula.first).to_be_visible()
    panel = page.locator("#inside-numbers").locator("xpath=ancestor::*[@role='tabpanel'][1]")
    images = panel.locator(".wne-out img")
    sync_api.expect(images).to_have_count(8, timeout=60_000)
    srcs = [images.nth(i).get_attribute("src") or "" for i in range(8)]
    assert all(s.endswith(".png") for s in srcs), srcs
    sync_api.expect(page.get_by_text("float round-off", exact=False).first).to_be_visible()
    sync_api.expect(page.locator(".toast-body.error")).to_have_count(0)

    sync_api.expect(page.locator("#noise-photons")).to_be_hidden()
    page.locator("#noise-type input").click()
    page.get_by_role("option", name=re.compile("low light")).click()
    sync_api.expect(page.locator("#noise-photons")).to_be_visible()
    sync_api.expect(page.locator("#noise-sigma")).to_be_hidden()
    if os.environ.get("WNE_SCREENSHOT_DIR"):
        page.screenshot(
            path=str(Path(os.environ["WNE_SCREENSHOT_DIR"], "inside.png")), full_page=True
        )


# --------------------------------------------------------------------------- classroom kit

ROW = re.compile(r"(noisy input|\w+ · (?:plain|WNE)|NE-arch)\s+(-?\d+(?:\.\d+)?|∞)\s+(-?\d\.\d+)")


def _wait_for_results(page: sync_api.Page) -> None:
    wne_labels = page.get_by_text(re.compile(r"^\s*WNE · -?[\d.]+ dB"))
    sync_api.expect(wne_labels).to_have_count(2, timeout=180_000)


def _scores(page: sync_api.Page) -> list[tuple[str, str, str]]:
    """(model, PSNR, SSIM) of every row of the scores table (the time column left out)."""
    rows = ROW.findall(page.locator("#scores").inner_text())
    assert len(rows) == 5, rows  # noisy input + plain/WNE for two backbones
    return rows


def _number(page: sync_api.Page, elem_id: str) -> float:
    return float(page.locator(f"#{elem_id} input[type=number]").input_value())


def test_a_copied_scenario_link_reproduces_the_settings_and_the_numbers(
    page: sync_api.Page, tmp_path: Path
) -> None:
    """Seed 7 + "Dim the lights" → copy link → the link, opened in a new page, sets the same
    controls and runs the comparison once: the same PSNR/SSIM table. Then the slide figure."""
    page.get_by_text("More settings").click()
    seed = page.get_by_label("noise seed")
    seed.fill("7")
    seed.press("Tab")  # committed, as a person leaving the field
    page.get_by_role("tab", name="About").click()
    page.get_by_role("button", name="Dim the lights").click()
    _wait_for_results(page)
    before = _scores(page)

    sync_api.expect(seed).to_have_value("7")  # the scenario kept the seed
    page.get_by_text("Classroom: link to this scenario").click()
    page.locator("#copy-link").click()
    box = page.locator("#scenario-link textarea, #scenario-link input").first
    sync_api.expect(box).to_have_value(re.compile(r"^http://.*\?image=parrots&"))
    link = box.input_value()
    for part in ("a=0.3", "seed=7", "order=noise-then-shift", "tab=compare", "present=false"):
        assert f"&{part}" in link, link

    browser = page.context.browser
    assert browser is not None
    other = browser.new_page(viewport={"width": 1400, "height": 1000})
    other.set_default_timeout(120_000)
    other.goto(link)
    _wait_for_results(other)
    assert _scores(other) == before
    assert (_number(other, "contrast-a"), _number(other, "noise-sigma")) == (0.3, 25.0)
    other.get_by_text("More settings").click()
    assert other.get_by_label("noise seed").input_value() == "7"
    sync_api.expect(other.locator("#link-note")).to_be_hidden()  # nothing was ignored
    sync_api.expect(other.locator(".toast-body.error")).to_have_count(0)
    if os.environ.get("WNE_SCREENSHOT_DIR"):
        other.screenshot(path=str(Path(os.environ["WNE_SCREENSHOT_DIR"], "link.png")))

    page.locator("#make-figure").click()  # the slide figure of the comparison shown
    files = page.locator("#figure-files")
    both = re.compile(r"wne-figure\s*\.png[\s\S]*wne-figure\s*\.pdf")
    sync_api.expect(files).to_contain_text(both, timeout=60_000)


def test_a_malformed_link_opens_the_default_page_with_a_note(
    page: sync_api.Page, app_url: str
) -> None:
    page.goto(app_url.rstrip("/") + "/?a=banana&zzz=%3Cb%3Ehi%3C/b%3E&clip=maybe")
    note = page.locator("#link-note")
    sync_api.expect(note).to_be_visible()
    text = note.inner_text()
    assert "could not be used" in text and "contrast a must be a number" in text, text
    assert "zzz" in text and "clip to [0, 1] must be true or false" in text, text
    assert _number(page, "contrast-a") == 1.0
    page.wait_for_timeout(3000)  # nothing runs: a comparison of the tiny models is faster
    sync_api.expect(page.get_by_text(re.compile(r"^\s*WNE · -?[\d.]+ dB"))).to_have_count(0)
    sync_api.expect(page.locator(".toast-body")).to_have_count(0)


def test_presentation_mode_hides_the_controls(page: sync_api.Page, app_url: str) -> None:
    """The toggle hides the controls column and the secondary panels; ?present=true opens
    the page that way (and runs nothing)."""
    controls, toggle = page.locator("#wne-controls"), page.locator("#present-toggle input")
    sync_api.expect(controls).to_be_visible()
    toggle.check()
    sync_api.expect(controls).to_be_hidden()
    sync_api.expect(page.locator("#scores")).to_be_visible()
    sync_api.expect(page.get_by_text("All outputs")).to_be_hidden()
    toggle.uncheck()
    sync_api.expect(controls).to_be_visible()
    page.goto(app_url.rstrip("/") + "/?present=true")
    sync_api.expect(page.locator("#present-toggle input")).to_be_checked()
    sync_api.expect(page.locator("#wne-controls")).to_be_hidden()


def _overlap(a: dict[str, float] | None, b: dict[str, float] | None) -> bool:
    assert a is not None and b is not None
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_on_a_narrow_screen_the_presentation_toggle_covers_no_image(
    page: sync_api.Page, app_url: str
) -> None:
    """A phone-sized window: the toggle sits in the page's flow, over none of the images."""
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(app_url)
    toggle = page.locator("#present-toggle")
    sync_api.expect(toggle).to_be_visible()
    images = page.locator("#input-image, .wne-out")
    sync_api.expect(images.first).to_be_visible()
    for i in range(images.count()):  # each image scrolled to the top, where a floating
        image = images.nth(i)  # toggle would stay
        image.evaluate("el => el.scrollIntoView({block: 'start'})")
        box = image.bounding_box()
        if box is not None and box["height"] > 0:
            assert not _overlap(toggle.bounding_box(), box), (i, box)
    page.set_viewport_size({"width": 1400, "height": 1000})  # a wide one keeps it floating
    assert (
        page.evaluate("() => getComputedStyle(document.querySelector('#present-toggle')).position")
        == "fixed"
    )


def test_the_sweep_tables_are_named_by_their_folder(page: sync_api.Page) -> None:
    """Noise sweep: the precomputed CSV list shows which table each file is, no two alike."""
    page.get_by_role("tab", name="Noise sweep").click()
    tables = page.locator("#sweep-tables")
    sync_api.expect(tables).to_contain_text("sigma25-psnr")
    text = re.sub(r"\s+\.csv", ".csv", tables.inner_text())  # shown as "name .csv"
    names = re.findall(r"[\w.-]+\.csv", text)
    assert len(names) >= 8 and len(set(names)) == len(names), names
    assert {"sigma10-defect.csv", "noise-jpeg-psnr.csv"} <= set(names), names


# --------------------------------------------------------------------------- restore page

WATCH_RESTORE = """() => {
  window.__walk = {srcs: new Set(), steps: new Set(), plotted: false};
  window.__walkTimer = setInterval(() => {
    const img = document.querySelector('#restore-wne img');
    if (img && img.src) window.__walk.srcs.add(img.src);
    const text = document.querySelector('#restore-results')?.innerText || '';
    const m = text.match(/Walking… step (\\d+)/);
    if (m) {
      window.__walk.steps.add(m[1]);
      const plot = document.querySelector('#restore-sigma canvas, #restore-sigma svg');
      if (plot && plot.getBoundingClientRect().height > 0) window.__walk.plotted = true;
    }
  }, 20);
}"""
"""Records, every 20 ms from before the click, the WNE frame's address, the step the text
reports while walking, and whether the σ̂ plot is drawn while walking."""


def test_restore_tab_streams_both_walks_then_shows_the_numbers(page: sync_api.Page) -> None:
    """Restore from a few pixels → Restore: the WNE frame changes while the walks go
    (streamed snapshots), the σ̂ and PSNR plots are drawn, then the final PSNR/SSIM, steps
    and stop reasons of the plain and WNE walks appear; choosing super-resolution shows its
    factor instead of the kept pixels."""
    page.get_by_role("tab", name="Restore from a few pixels").click()
    page.locator("#restore-task").get_by_text("super-resolution", exact=False).click()
    sync_api.expect(page.locator("#restore-factor")).to_be_visible()
    sync_api.expect(page.locator("#restore-keep")).to_be_hidden()
    page.locator("#restore-task").get_by_text("inpainting", exact=False).click()
    sync_api.expect(page.locator("#restore-keep")).to_be_visible()
    page.get_by_text("More settings").last.click()
    budget = page.locator("#restore-max-steps input[type=number]")
    sync_api.expect(budget).to_be_visible()
    for _ in range(3):  # a longer walk to watch (the accordion's content may still be mounting)
        budget.fill("300")
        budget.press("Tab")
        page.wait_for_timeout(300)
        if budget.input_value() == "300":
            break
    sync_api.expect(page.locator("#restore-max-steps input[type=range]")).to_have_value("300")
    page.evaluate(WATCH_RESTORE)

    page.locator("#restore-run").click()
    results = page.locator("#restore-results")
    sync_api.expect(results).to_contain_text("Done.", timeout=180_000)
    walk = page.evaluate(
        "() => { clearInterval(window.__walkTimer); const w = window.__walk;"
        " return {frames: w.srcs.size, steps: w.steps.size, plotted: w.plotted}; }"
    )
    # streamed: several frames and step counts, and the σ̂ plot, before the end
    assert walk["frames"] >= 3 and walk["steps"] >= 2 and walk["plotted"], walk
    text = results.inner_text()
    assert "at most 300 steps" in text, text
    rows = re.findall(
        r"CNN · (plain|WNE)\s+(-?[\d.]+ dB|–)\s+([\d.]+|–)\s+(\d+)\s+(.+?)\s+[\d.]+ s", text
    )
    assert [r[0] for r in rows] == ["plain", "WNE"], text
    reasons = ("σ̂ reached σ_L", "step budget used up", "diverged")
    assert all(any(r[4].startswith(x) for x in reasons) and int(r[3]) <= 300 for r in rows), rows
    for plot in ("#restore-sigma", "#restore-psnr"):
        sync_api.expect(page.locator(f"{plot} canvas, {plot} svg").first).to_be_visible()
        for series in ("CNN · plain", "CNN · WNE"):  # each walk drawn, not only σ_L
            sync_api.expect(page.locator(plot)).to_contain_text(series)
    sync_api.expect(page.locator("#restore-sigma")).to_contain_text("σ_L")
    for eid in ("#restore-observed", "#restore-plain", "#restore-wne"):
        src = page.locator(f"{eid} img").get_attribute("src") or ""
        assert src.endswith(".png"), (eid, src)
    final = re.compile(r"^\s*(plain|WNE) · (-?[\d.]+ dB · \d+ steps|diverged at step \d+)")
    sync_api.expect(page.get_by_text(final)).to_have_count(2)  # the results' captions
    sync_api.expect(page.locator(".toast-body.error")).to_have_count(0)
    if os.environ.get("WNE_SCREENSHOT_DIR"):
        page.screenshot(
            path=str(Path(os.environ["WNE_SCREENSHOT_DIR"], "restore.png")), full_page=True
        )


def _png(page: sync_api.Page, src: str) -> np.ndarray:
    """The pixels of an image the page shows (fetched from its address)."""
    import io

    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB"))


def test_why_tab_click_a_pixel_and_see_its_filters(page: sync_api.Page) -> None:
    """Why it works: with a brightness shift, "Show the filters" draws the plain and WNE
    filters on y and a·y + b (the WNE pair identical, the plain pair not); clicking the noisy
    image picks that pixel, re-runs, and the marked image shows it in red there."""
    page.locator("#brightness-b input[type=number]").fill("0.3")
    page.locator("#brightness-b input[type=number]").press("Tab")
    page.get_by_role("tab", name="Why it works").click()
    page.locator("#why-run").click()
    numbers = page.locator("#why-numbers")
    sync_api.expect(numbers).to_contain_text("weights sum to", timeout=180_000)
    sync_api.expect(numbers).to_contain_text("WNE: weights sum to 1.000000")
    filters = page.locator("#why-filters img")
    sync_api.expect(filters).to_have_count(4, timeout=60_000)
    drawn = [_png(page, filters.nth(i).get_attribute("src") or "") for i in range(4)]
    assert np.array_equal(drawn[2], drawn[3]) and not np.array_equal(drawn[0], drawn[1])
    assert len(np.unique(drawn[2].reshape(-1, 3), axis=0)) >= 3  # weights drawn, not a flat square

    before = (_number(page, "why-row"), _number(page, "why-col"))
    shown = page.locator("#why-image img")
    old_src = shown.get_attribute("src")  # before the click: the re-run may finish at once
    bb = shown.bounding_box()
    assert bb is not None
    shown.click(position={"x": 0.3 * bb["width"], "y": 0.7 * bb["height"]})  # scrolled into view
    page.wait_for_function(
        "([r, c]) => { const v = id => parseFloat(document.querySelector("
        "`#${id} input[type=number]`).value); return v('why-row') != r || v('why-col') != c; }",
        arg=list(before),
    )
    row, col = int(_number(page, "why-row")), int(_number(page, "why-col"))
    sync_api.expect(numbers).to_contain_text("weights sum to", timeout=180_000)
    page.wait_for_function(
        "(src) => (document.querySelector('#why-image img') || {}).src !== src",
        arg=old_src,
        timeout=180_000,
    )
    marked = _png(page, page.locator("#why-image img").get_attribute("src") or "")
    assert tuple(marked[row, col]) == (255, 0, 0), (row, col)
    sync_api.expect(page.locator(".toast-body.error")).to_have_count(0)
    if os.environ.get("WNE_SCREENSHOT_DIR"):
        page.screenshot(path=str(Path(os.environ["WNE_SCREENSHOT_DIR"], "why.png")), full_page=True)


def test_rivals_tab_opened_from_a_link_answers_each_objection(
    page: sync_api.Page, app_url: str
) -> None:
    """Why it works, its objections: a scenario link with a brightness shift opens the tab and
    runs them;
    each objection gets its finding, the table its ε_NE, the outputs are drawn (the WNE one
    is not a flat image), and the tab's slide figure downloads."""
    page.goto(app_url.rstrip("/") + "/?image=parrots&a=0.6&b=0.2&sigma=25&tab=why")
    answers = page.locator("#rivals-answers")
    sync_api.expect(answers).to_contain_text("Isn't a scale-equivariant network enough?")
    sync_api.expect(answers).to_contain_text("Here with b = 0.2 its ε_NE is", timeout=180_000)
    sync_api.expect(answers).to_contain_text("The rival is not installed")  # the tiny zoo's
    table = page.locator("#rivals-table")
    sync_api.expect(table).to_contain_text("SE-arch, σ_train 25")
    outs = page.locator("#rivals-out img")
    sync_api.expect(outs.first).to_be_visible(timeout=60_000)
    captions = page.locator("#rivals-out").inner_text()
    assert "FDnCNN · WNE, σ_train 25 at a·y + b" in captions, captions
    n = outs.count()
    drawn = [_png(page, outs.nth(i).get_attribute("src") or "") for i in range(n)]
    # the tiny zoo's six: DnCNN-IN, CNN plain σ 10, Transformer WNE σ 25, the three FDnCNNs
    assert n == 6 and {d.shape for d in drawn} == {(256, 256, 3)}
    assert drawn[-1].std() > 1  # FDnCNN · WNE: an image, not a flat square
    shown = _png(page, page.locator("#rivals-input img").get_attribute("src") or "")
    clean = np.asarray(Image.open(REPO / "assets" / "examples" / "parrots.png").convert("RGB"))
    assert abs(shown.mean() - (0.6 * clean.mean() + 0.2 * 255)) < 3  # y shifted to a·y + b
    page.locator("#rivals-figure").click()
    both = re.compile(r"wne-rivals\s*\.png[\s\S]*wne-rivals\s*\.pdf")
    sync_api.expect(page.get_by_text(re.compile("wne-rivals")).first).to_be_visible(timeout=60_000)
    sync_api.expect(page.locator("#wne-tabs")).to_contain_text(both, timeout=60_000)
    sync_api.expect(page.locator(".toast-body.error")).to_have_count(0)


def test_a_16_bit_upload_is_previewed_stretched(page: sync_api.Page) -> None:
    """The Lighthouse example (12-bit values in a 16-bit PNG) shows black in the browser's own
    preview; the page shows it stretched from its value range, an 8-bit upload hides it."""
    src = REPO / "assets" / "examples" / "lighthouse_12bit.png"
    raw = np.asarray(Image.open(src)).astype(np.float64)
    assert raw.max() < 4096 and raw.mean() / 257 < 10  # as 8 bits: nearly black
    box = page.locator("#input-image")
    box.get_by_label("Remove Image").click()
    box.locator("input[type=file]").set_input_files(str(src))
    shown = page.locator("#native-preview img")
    sync_api.expect(shown).to_be_visible(timeout=60_000)
    pixels = _png(page, shown.get_attribute("src") or "")
    assert pixels.max() >= 250 and pixels.mean() > 40, pixels.mean()  # stretched, not black
    sync_api.expect(page.locator("#native-preview")).to_contain_text("shown stretched")
    box.get_by_label("Remove Image").click()
    box.locator("input[type=file]").set_input_files(str(REPO / "assets" / "examples" / "caps.png"))
    sync_api.expect(page.locator("#native-preview")).to_be_hidden(timeout=60_000)
