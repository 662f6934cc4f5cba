"""Real-browser check of the classroom decks: headless Chromium opens each deck from build/classroom/ (file://, as a
teacher double-clicking it would), steps through every slide to the last, finds a drawn image on every slide that
holds one of the notebook's figures, sees the math typeset and the speaker notes present, and logs every request:
none may leave the machine (only file:, data:, blob: and about: addresses), and no local file may be missing (but
MathJax 2's probes for its TeX fonts, which jupyter-server-mathjax does not ship: it then draws with STIX-Web).

Needs executed notebooks for the figures: `make course` (build/notebooks/) or, in `make test`, the claim run of
`make unit`, which keeps what it executed in build/claims/notebooks/. The kit is (re)built here into build/classroom/
when it is missing or older than those notebooks; with no executed notebooks at all the test skips and says so.
Chromium and playwright as in test_notebooks_in_browser.py: Debian's chromium, never a browser download.
Screenshots: build/screenshots/slides-*.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

# Chromium and playwright exactly as the notebooks' browser test finds them: importing it skips this module where
# that one skips, and fails it where that one fails (Chromium installable but missing).
from test_notebooks_in_browser import SHOTS, browser  # noqa: E402,F401  (browser: the Chromium fixture)

from saelab.course import NOTEBOOKS  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CLASSROOM = ROOT / "build" / "classroom"
EXECUTED = ROOT / "build" / "notebooks"
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


CLAIMS_EXECUTED = ROOT / "build" / "claims" / "notebooks"  # what `make unit`'s claim run executed (same offline run)


def _kit_built_after(executed: Path | None) -> bool:
    """The kit exists for every notebook and is newer than the executed notebooks it would be built from."""
    index = CLASSROOM / "slides" / "figures.json"
    if not index.exists() or not all((CLASSROOM / "slides" / f"{Path(n).stem}.slides.html").exists()
                                     for n in NOTEBOOKS):
        return False
    return executed is None or all((executed / n).stat().st_mtime <= index.stat().st_mtime for n in NOTEBOOKS)


def _executed_dir() -> Path | None:
    """build/notebooks/ (`make course`) or else build/claims/notebooks/ (`make unit`), whichever holds all seven."""
    for folder in (EXECUTED, CLAIMS_EXECUTED):
        if all((folder / n).exists() for n in NOTEBOOKS):
            return folder
    return None


@pytest.fixture(scope="module")
def kit() -> dict[str, list[str]]:
    """build/classroom/, (re)built here from the executed notebooks when it is missing or older than they are; the
    figure cells of each deck. In `make test` the executed notebooks are the claim run's (build/claims/notebooks/)."""
    executed = _executed_dir()
    if not _kit_built_after(executed):
        if executed is None:
            pytest.skip("SKIPPED: no build/classroom/ and no executed notebooks: run `make course && make classroom` "
                        "(or `make unit`, whose claim run keeps them in build/claims/notebooks/)")
        from saelab.classroom import build
        build.build(ROOT / "notebooks", executed, CLASSROOM)
    return json.loads((CLASSROOM / "slides" / "figures.json").read_text())


def step_through(page, figures: set[str], stem: str) -> tuple[int, set[str], list[str]]:
    """Visit every slide in order; return (slides visited, figure cells seen drawn, slides missing a figure)."""
    visited, drawn, missing, shot = 0, set(), [], False
    total = page.evaluate("Reveal.getTotalSlides()")
    while True:
        visited += 1
        here = page.evaluate("""() => [...Reveal.getCurrentSlide().querySelectorAll('[id^="cell-id="]')]
                                      .map(e => e.id.slice('cell-id='.length))""")
        for cell in figures.intersection(here):
            selector = f'[id="cell-id={cell}"] img'
            try:
                page.wait_for_function(f"""() => [...document.querySelectorAll('{selector}')]
                                           .some(i => i.complete && i.naturalWidth > 0 && i.offsetParent !== null)""",
                                       timeout=10_000)
                drawn.add(cell)
            except Exception:  # noqa: BLE001 - reported below with the slide's position
                missing.append(f"{page.evaluate('JSON.stringify(Reveal.getIndices())')}: cell {cell}")
            if not shot:
                page.screenshot(path=str(SHOTS / f"slides-{stem}-figure.png"))
                shot = True
        if page.evaluate("Reveal.isLastSlide()") or visited > 2 * total:
            break
        page.evaluate("Reveal.next()")
    return visited, drawn, missing


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_deck_shows_every_figure_and_asks_nothing_of_the_network(kit, browser, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    stem = Path(name).stem
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    requests, failed = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failed.append(r.url))
    try:
        page.goto((CLASSROOM / "slides" / f"{stem}.slides.html").as_uri())
        page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=30_000)
        total = page.evaluate("Reveal.getTotalSlides()")
        visited, drawn, missing = step_through(page, set(kit[stem]), stem)
        assert page.evaluate("Reveal.isLastSlide()"), f"stopped after {visited} of {total} slides"
        assert visited == total, f"visited {visited} slides, the deck has {total}"
        assert not missing, f"slides without their figure drawn: {missing}"
        assert drawn == set(kit[stem]), f"figures never shown on a slide: {set(kit[stem]) - drawn}"
        assert kit[stem], f"{stem}: the deck holds no figure (was build/notebooks/ executed?)"
        assert page.locator("aside.notes").count() >= 3, "speaker notes missing"
        if stem == "01_sae_theory":  # its section 2 writes the SAE's equations in LaTeX
            page.wait_for_function("document.querySelectorAll('.MathJax, .MathJax_Display').length > 0",
                                   timeout=20_000)
        page.screenshot(path=str(SHOTS / f"slides-{stem}-last.png"))
    finally:
        page.close()
    outside = [u for u in requests if not u.startswith(LOCAL_SCHEMES)]
    assert not outside, f"requests that leave the machine: {outside[:10]}"
    broken = [u for u in failed if not u.startswith("about:") and "/vendor/mathjax/fonts/HTML-CSS/TeX/" not in u]
    assert not broken, f"local files the deck asked for and did not find: {broken[:10]}"


def test_index_page_opens_with_no_outside_request(kit, browser):
    page = browser.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((CLASSROOM / "index.html").as_uri())
    links = page.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    page.close()
    for n in NOTEBOOKS:
        stem = Path(n).stem
        assert f"slides/{stem}.slides.html" in links and f"guide/{stem}.html" in links
    assert all((CLASSROOM / link).exists() for link in links if not link.startswith(("http", "#")))
    assert all(u.startswith(LOCAL_SCHEMES) for u in requests), requests
