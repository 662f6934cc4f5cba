"""Real-browser check: JupyterLab on 127.0.0.1, each notebook's student edition opened in headless Chromium, Run All
Cells, then its widget panel is driven like a reader would: a slider is moved and a button pressed, and after every
action the panel must show what the action asked for (a different plot, a new table, a finished run with its numbers)
and never a traceback or an error message. Then the notebook is saved and what the run printed is checked as a
student who wrote nothing must see it (`saelab.classroom.editions.student_run_problems`: every check "not done
yet", each stand-in saying what stands in). The student edition differs from the notebook only in its solution
cells, which the claim run executes strictly (tests/claims), so one browser run serves the panels and the student
edition. The kernels run with `SAELAB_BUDGET=smoke`, as the online run does: notebooks 05 and 06 train less, the
same cells and panels run (the claim run trains at the notebooks' own budgets and checks their numbers).
Notebook 01 (as it is) also keeps its solution cells folded until unfolded.

Run with `make browser` (part of `make test`). Needs Debian's chromium (/usr/bin/chromium) and PyPI's playwright;
it never downloads a browser of its own. Where `apt-get install chromium` is possible the test FAILS without it;
it skips only where installing is impossible, and `make browser` prints why on its last line.
Screenshots go to build/screenshots/.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from saelab.classroom import editions
from saelab.course import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in the visible tab
CHROMIUM = os.environ.get("SAELAB_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "build" / "screenshots"
SERVED = ROOT / "build" / "browser-run"  # JupyterLab serves copies: the repository's notebooks are never opened
SKIP_NOTE = ROOT / "build" / "browser-skipped.txt"  # `make browser` prints it as its last line
LAB_STATE = ROOT / "build" / "browser-lab"  # JupyterLab's runtime files and settings, the kernels' IPython profile
KERNEL_ERRORS = LAB_STATE / "kernel-errors.txt"  # every traceback any kernel showed, cells' or callbacks'
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ERROR_RED = "#b00020"  # the colour every saelab panel writes its error messages in


def can_install_chromium() -> str | None:
    """None where `apt-get install chromium` is impossible here, else the command that would install it."""
    if not shutil.which("apt-get"):
        return None
    if os.geteuid() == 0:
        return "apt-get install -y chromium"
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return "sudo apt-get install -y chromium"
    return None


def missing_tooling() -> str | None:
    """Why the browser test cannot run (None when it can)."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "PyPI's playwright is not installed"
    return None


_problem = missing_tooling()
if _problem is not None:
    _fix = can_install_chromium() if "Chromium" in _problem else "pip install -e '.[browser]'"
    if "SAELAB_CHROMIUM" in os.environ:
        _fix = "unset SAELAB_CHROMIUM, or point it at a Chromium"
    if _fix is None:
        SKIP_NOTE.parent.mkdir(parents=True, exist_ok=True)
        why = f"{_problem}, and apt-get install chromium is impossible on this machine (no apt-get, or not root)"
        SKIP_NOTE.write_text(why + "\n")
        pytest.skip(f"SKIPPED: {why}", allow_module_level=True)
    pytest.fail(f"the browser test cannot run: {_problem}. This machine can fix that: {_fix} "
                "(`make browser` installs Chromium where apt-get can)", pytrace=False)

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

# Logs every traceback a kernel shows (a cell's or a widget callback's, which JupyterLab never puts in a cell).
KERNEL_STARTUP = f"""
import traceback as _tb
from IPython.core.interactiveshell import InteractiveShell as _Shell
_show = _Shell.showtraceback
def _logged(self, *args, **kwargs):
    import sys
    with open({str(KERNEL_ERRORS)!r}, "a") as f:
        f.write("".join(_tb.format_exception(*sys.exc_info())) + "\\n")
    return _show(self, *args, **kwargs)
_Shell.showtraceback = _logged
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab():
    """A JupyterLab server on 127.0.0.1 with a random token, serving copies of the notebooks; stopped afterwards."""
    shutil.rmtree(SERVED, ignore_errors=True)
    (SERVED / "selftest").mkdir(parents=True)
    shutil.copytree(ROOT / "notebooks", SERVED / "notebooks")
    for name in NOTEBOOKS:  # the students' copies, beside the notebooks so that relative paths resolve the same
        nbformat.write(editions.student_edition(nbformat.read(ROOT / "notebooks" / name, as_version=4)),
                       SERVED / "notebooks" / student_name(name))
    port, token = free_port(), secrets.token_hex(16)
    # kernels draw inline (never with Agg), and a stub prints "not done yet" as it does for a reader
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "SAELAB_CHECKS_STRICT")}
    env["SAELAB_OFFLINE"] = "1"
    # Run All here drives the panels and shows the student edition; the claim run trained at the notebooks' own budgets
    env["SAELAB_BUDGET"] = "smoke"
    shutil.rmtree(LAB_STATE, ignore_errors=True)
    runtime = LAB_STATE / "runtime"
    env["JUPYTER_RUNTIME_DIR"] = str(runtime)
    ipython = LAB_STATE / "ipython"
    (ipython / "profile_default" / "startup").mkdir(parents=True)
    (ipython / "profile_default" / "startup" / "00-log-tracebacks.py").write_text(KERNEL_STARTUP)
    env["IPYTHONDIR"] = str(ipython)
    settings = LAB_STATE / "settings"  # fresh: no tabs restored from an earlier run's workspace
    # Render every cell (JupyterLab 4 otherwise leaves off-screen cells empty), never save the executed
    # notebooks over the repository's, and skip the news prompt.
    for plugin, values in {"notebook-extension/tracker": {"windowingMode": "none"},
                           "docmanager-extension/plugin": {"autosave": False},
                           "apputils-extension/notification": {"fetchNews": "false"}}.items():
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={SERVED}", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
         f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={settings / 'workspaces'}"]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start within 60 s")
    yield base, token
    proc.terminate()
    proc.wait(timeout=30)
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


# --- driving JupyterLab ---------------------------------------------------------------------------------------
def accept_kernel_dialog(page) -> None:
    """JupyterLab may ask which kernel to start; the notebook's own (Python 3) is preselected."""
    try:
        page.locator(".jp-Dialog button:has-text('Select')").click(timeout=10_000)
    except PlaywrightTimeout:
        pass  # no dialog: the kernel started by itself


def open_notebook(lab, browser, path: str):
    """A page with `path` (relative to SERVED) open, its kernel idle."""
    base, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/lab/tree/{path}?reset&token={token}")  # reset: only this notebook open
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    accept_kernel_dialog(page)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    return page


def run_all_cells(page) -> None:
    """Run > Run All Cells; tried again while the kernel was not ready to take it."""
    for _ in range(5):
        page.click("li.lm-MenuBar-item:has-text('Run')")
        page.click("li.lm-Menu-item:has-text('Run All Cells')")
        for _ in range(20):
            prompts = page.locator(f"{NOTEBOOK} .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
            if any(p.strip() != "[ ]:" for p in prompts):
                return
            time.sleep(1)
    raise AssertionError("Run All Cells did not start any cell")


def all_cells_ran(page) -> bool:
    """Every code cell shows an execution count ([3]:), none is busy ([*]:) or unrun ([ ]:)."""
    prompts = page.locator(f"{NOTEBOOK} .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
    return bool(prompts) and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts)


def kernel_idle(page) -> bool:
    return page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count() > 0


def wait_until_idle(page, timeout_s: float, name: str) -> None:
    """Wait until every code cell has run and the kernel reports idle."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if all_cells_ran(page) and kernel_idle(page):
            return
        if errors_shown(page):  # a cell raised: Run All stops there, no need to wait out the clock
            break
        time.sleep(1)
    page.screenshot(path=str(SHOTS / f"{name}-timeout.png"), full_page=False)
    assert_no_errors(page, f"{name}, running all cells")
    prompts = page.locator(f"{NOTEBOOK} .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
    raise AssertionError(f"{name}: cells still running or not run after {timeout_s:.0f} s: {prompts}")


def shut_down_kernels(base: str, token: str) -> None:
    """Stop the notebook's kernel so that the next notebook starts with the memory free."""
    request = urllib.request.Request(f"{base}/api/kernels?token={token}")
    for kernel in json.loads(urllib.request.urlopen(request, timeout=10).read()):
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/kernels/{kernel['id']}?token={token}",
                                                      method="DELETE"), timeout=30)


# --- what a page shows ----------------------------------------------------------------------------------------
def errors_shown(page) -> list[str]:
    """Every error on show: tracebacks and error outputs in cells, red panel messages, a failed run, a widget that
    could not be drawn, and any traceback a kernel showed (widget callbacks' land in no cell)."""
    found = page.locator(f"{NOTEBOOK} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                         ":has-text('Traceback')").all_inner_texts()
    found += page.locator(f"{NOTEBOOK} .jp-OutputArea-output:has(.jp-RenderedText[data-mime-type="
                          "'application/vnd.jupyter.stderr']):has-text('Error')").all_inner_texts()
    found += page.locator(f"{NOTEBOOK} .widget-html-content span[style*='{ERROR_RED}']").all_inner_texts()
    found += [t for t in page.locator(f"{NOTEBOOK} .widget-html-content").all_inner_texts()
              if re.search(r"\b(failed|Traceback)\b", t)]
    found += page.locator(f"{NOTEBOOK} :text('Error displaying widget')").all_inner_texts()
    if KERNEL_ERRORS.exists() and KERNEL_ERRORS.read_text().strip():
        found.append("a kernel showed a traceback:\n" + KERNEL_ERRORS.read_text()[-1500:])
    return [f.strip() for f in found if f.strip()]


def assert_no_errors(page, when: str) -> None:
    errors = errors_shown(page)
    assert not errors, f"{when}: the page shows an error:\n" + "\n---\n".join(e[:800] for e in errors)


@dataclass(frozen=True)
class PanelView:
    """What the kernel wrote into a panel: a fingerprint of each plot's image data, and its text."""
    images: tuple[str, ...]
    text: str
    tables: tuple[str, ...]


def panel_view(panel) -> PanelView:
    # A drawn image: visible, decoded (naturalWidth), with a source. ipywidgets' Image shows its PNG through a short
    # blob: URL made afresh for each new value, so a new drawing is a new source whatever its length.
    srcs = panel.locator("img").evaluate_all(
        "els => els.filter(e => e.offsetParent !== null && e.naturalWidth > 0 && e.src).map(e => e.src)")
    texts = panel.locator(".widget-output, .widget-html-content").all_inner_texts()
    tables = panel.locator("table").evaluate_all("els => els.map(e => e.innerText)")
    return PanelView(tuple(hashlib.sha256(s.encode()).hexdigest()[:16] for s in srcs),
                     "\n".join(texts), tuple(tables))


def wait_for(page, panel, ready, timeout_s: float, what: str) -> PanelView:
    """Poll the panel until `ready(view)` is true; fail at once when an error shows up."""
    deadline = time.time() + timeout_s
    while True:
        assert_no_errors(page, what)
        view = panel_view(panel)
        if ready(view) and kernel_idle(page):
            time.sleep(0.5)  # let the last update land, then look once more
            assert_no_errors(page, what)
            return panel_view(panel)
        if time.time() > deadline:
            raise AssertionError(f"{what}: the panel did not show what was asked within {timeout_s:.0f} s; "
                                 f"it shows:\n{view.text[:1500]}")
        time.sleep(0.5)


def find_panel(page, name: str):
    """The last cell output that holds a widget panel with a slider (the whole panel, not a sub-box)."""
    panel = page.locator(f"{NOTEBOOK} .jp-OutputArea-output:has(.widget-slider)").last
    panel.wait_for(timeout=60_000)
    panel.scroll_into_view_if_needed()
    assert panel.locator(".widget-slider").first.is_visible(), f"{name}: no slider visible"
    return panel


def slider(panel, label: str):
    box = panel.locator(f".widget-slider:has(.widget-label:text-is('{label}'))")
    assert box.count() == 1, f"no slider labelled {label!r} in the panel"
    return box


def slider_value(panel, label: str) -> str:
    return slider(panel, label).locator(".widget-readout").inner_text().strip()


def move_slider(page, panel, label: str, key: str, presses: int = 1) -> str:
    """Move a slider with the keyboard, as a reader can (arrow keys on its handle); returns the new readout."""
    handle = slider(panel, label).locator(".noUi-handle")
    before = slider_value(panel, label)
    handle.focus()
    for _ in range(presses):
        handle.press(key)
    handle.blur()
    after = slider_value(panel, label)
    assert after != before, f"pressing {key} on the {label!r} slider did not move it (still {before})"
    return after


def click(panel, label: str) -> None:
    button = panel.locator(f"button:has-text('{label}')")
    assert button.count() == 1 and button.is_enabled(), f"no enabled button {label!r} in the panel"
    button.click()


# --- what each notebook's panel must do -----------------------------------------------------------------------
def drive_01(page, panel, name):
    """The toy panel retrains on every slider move: each move must draw a different plot."""
    before = panel_view(panel)
    assert before.images, f"{name}: the toy panel shows no plot"
    move_slider(page, panel, "expansion n/d", "ArrowRight")
    after = wait_for(page, panel, lambda v: v.images and v.images != before.images, 120,
                     f"{name}: after moving 'expansion n/d'")
    move_slider(page, panel, "P(feature active)", "ArrowLeft")
    wait_for(page, panel, lambda v: v.images and v.images != after.images, 120,
             f"{name}: after moving 'P(feature active)'")


def drive_02(page, panel, name):
    """Fewer top latents: the bar chart is drawn again, with fewer bars (a different image)."""
    before = panel_view(panel)
    assert before.images, f"{name}: the explorer shows no plot"
    move_slider(page, panel, "top k:", "ArrowLeft", presses=3)
    wait_for(page, panel, lambda v: v.images and v.images != before.images, 120,
             f"{name}: after moving 'top k:'")


def drive_03(page, panel, name):
    """Another position shows its token; 'Causal latents' then answers with a table for that position."""
    token = panel.locator(".widget-html-content code")
    before_token = token.first.inner_text()
    position = move_slider(page, panel, "Position:", "ArrowLeft")
    wait_for(page, panel, lambda v: token.first.inner_text() != before_token, 60,
             f"{name}: after moving 'Position:'")
    before = panel_view(panel)
    click(panel, "Causal latents")
    after = wait_for(page, panel, lambda v: v.tables and v.tables != before.tables, 180,
                     f"{name}: after pressing 'Causal latents'")
    assert f"Latents at position {position} " in after.tables[-1], after.tables[-1][:300]


def drive_04(page, panel, name):
    """A new scale, then Generate: a new table of samples, made with the scale the slider shows."""
    scale = move_slider(page, panel, "scale", "ArrowRight", presses=2)
    before = panel_view(panel)
    click(panel, "Generate")
    after = wait_for(page, panel, lambda v: v.tables and v.tables != before.tables and "Share negative" in v.text,
                     240, f"{name}: after pressing 'Generate'")
    assert f"scale {float(scale):g}," in after.text, f"{name}: the run did not use the slider's scale {scale}"


def drive_05(page, panel, name):
    """Fewest steps (or one notch more where the slider starts at its minimum, as with the smoke budget), then
    Train: a finished run with its final numbers at that step, and its plot."""
    handle = slider(panel, "steps").locator(".noUi-handle")
    now, low = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemin")
    at_minimum = now is not None and low is not None and float(now) <= float(low)
    steps = move_slider(page, panel, "steps", "ArrowRight" if at_minimum else "Home")
    click(panel, "Train")
    done = re.compile(rf"Done at step {steps}\b[^:]*: L0 [\d.]+, FVU [\d.]+, dead [\d.]+%")
    after = wait_for(page, panel, lambda v: done.search(v.text) is not None, 300, f"{name}: after pressing 'Train'")
    assert after.images, f"{name}: the finished run shows no plot"


def card_numbers(view: PanelView) -> dict[str, float]:
    """The metric card's rows (name -> value) from notebook 06's panel; its title line is left out."""
    rows = {}
    for table in view.tables:
        for line in table.splitlines():
            parts = line.split("\t")
            if len(parts) == 2:
                try:
                    rows[parts[0].strip()] = float(parts[1])
                except ValueError:
                    pass
    return rows


def drive_06(page, panel, name):
    """A larger k, then Train: the card's L0 follows the slider (it rises), not just its title; then another
    architecture: a card with other numbers."""
    before = card_numbers(panel_view(panel))
    assert "L0" in before and "FVU" in before, f"{name}: the panel shows no metric card: {before}"
    k = move_slider(page, panel, "k", "ArrowRight", presses=2)
    click(panel, "Train")
    after_view = wait_for(page, panel, lambda v: card_numbers(v) and card_numbers(v) != before and f"= {k}" in v.text
                          + "".join(v.tables), 300, f"{name}: after moving 'k' and pressing 'Train'")
    after = card_numbers(after_view)
    assert after["L0"] > before["L0"] + 0.5, f"{name}: k {k} but L0 {before['L0']:.2f} -> {after['L0']:.2f}"
    assert "trained and scored in" in after_view.text, f"{name}: the status line does not say the run finished"
    assert panel.locator("button", has_text="Train").first.is_enabled(), f"{name}: Train stays disabled after a run"
    panel.locator("select").first.select_option("topk")
    click(panel, "Train")
    switched = wait_for(page, panel, lambda v: card_numbers(v) and card_numbers(v) != after, 300,
                        f"{name}: after choosing TopK and pressing 'Train'")
    assert "TopK" in switched.text + "".join(switched.tables), f"{name}: the card does not name TopK"


def drive_07(page, name):
    """Click a feature node: its card (contexts, promoted words, a histogram); click a logit node: it says it has
    no card, and the old card is gone."""
    panel = page.locator(f"{NOTEBOOK} .jp-OutputArea-output:has(button.widget-button)").last
    panel.wait_for(timeout=60_000)
    panel.scroll_into_view_if_needed()
    feature = panel.locator("button.widget-button", has_text=re.compile(r"^L\d f\d+"))
    assert feature.count() > 0, f"{name}: the explorer shows no feature node"
    feature.first.click()
    card = wait_for(page, panel, lambda v: "promotes:" in v.text and v.text.count("[[") >= 3 and v.images, 120,
                    f"{name}: after clicking feature node {feature.first.inner_text()!r}")
    assert "suppresses:" in card.text
    logit = panel.locator("button.widget-button", has_text=re.compile(r"^logit"))
    assert logit.count() > 0, f"{name}: the explorer shows no logit node"
    logit.first.click()
    wait_for(page, panel, lambda v: "has no feature card" in v.text and "promotes:" not in v.text, 60,
             f"{name}: after clicking logit node {logit.first.inner_text()!r}")


def drive_any(page, name):
    """A notebook without its own script (06, 07, ...): if it has a panel with a slider, moving the first slider
    and pressing the first action button must change what the panel shows; a panel with buttons only must answer
    its first button. Errors are looked for after each action, and after Run All for every notebook."""
    widgets = page.locator(f"{NOTEBOOK} .jp-OutputArea-output:has(.widget-slider)")
    if widgets.count():
        panel = find_panel(page, name)
        label = panel.locator(".widget-slider .widget-label").first.inner_text().strip()
        before = panel_view(panel)
        move_slider(page, panel, label, "ArrowRight")
        what = f"{name}: after moving {label!r}"
    else:
        panel = page.locator(f"{NOTEBOOK} .jp-OutputArea-output:has(button.widget-button)").last
        if not panel.count():
            return  # no panel: Run All without an error is all there is to check
        before, what = panel_view(panel), f"{name}: after pressing a button"
    buttons = panel.locator("button.widget-button:not([disabled])")
    if buttons.count():
        buttons.first.click()
    wait_for(page, panel, lambda v: v != before, 300, what)


DRIVERS = {"01": drive_01, "02": drive_02, "03": drive_03, "04": drive_04, "05": drive_05, "06": drive_06}


def student_name(name: str) -> str:
    return name.replace(".ipynb", ".student.ipynb")


def save_and_read(page, path: Path) -> nbformat.NotebookNode:
    """File > Save (autosave is off), then the saved notebook once it holds this run's outputs."""
    before = path.stat().st_mtime_ns
    page.locator(NOTEBOOK).first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    deadline = time.time() + 60
    while time.time() < deadline:
        if path.stat().st_mtime_ns != before:
            nb = nbformat.read(path, as_version=4)
            if any(c.get("outputs") for c in nb.cells if c.cell_type == "code"):
                return nb
        time.sleep(0.5)
    raise AssertionError(f"{path.name}: JupyterLab did not save the run within 60 s")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_widget_panel_answers_each_action_with_what_it_asked_for(lab, browser, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    KERNEL_ERRORS.unlink(missing_ok=True)
    page = open_notebook(lab, browser, f"notebooks/{student_name(name)}")
    try:
        run_all_cells(page)
        wait_until_idle(page, timeout_s=900, name=name)  # 15-60 s each on a quiet machine
        assert_no_errors(page, f"{name}, after running all cells")
        page.screenshot(path=str(SHOTS / f"{name}-before.png"), full_page=False)
        if name[:2] in DRIVERS:  # notebooks 01-06 have a panel with sliders, each driven by its own script
            DRIVERS[name[:2]](page, find_panel(page, name), name)
        elif name[:2] == "07":  # the graph explorer: buttons only
            drive_07(page, name)
        else:
            drive_any(page, name)
        page.screenshot(path=str(SHOTS / f"{name}-after.png"), full_page=False)
        saved = save_and_read(page, SERVED / "notebooks" / student_name(name))
        source = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        assert editions.student_run_problems(source, saved) == [], f"{name}, student edition"
    finally:
        page.close()
        shut_down_kernels(*lab)


def folded_solution_cells(path: Path) -> list[int]:
    nb = nbformat.read(path, as_version=4)
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and c.metadata.get("jupyter", {}).get("source_hidden")]


def test_solution_cells_stay_folded_until_the_reader_unfolds_one(lab, browser):
    name = NOTEBOOKS[0]
    hidden = folded_solution_cells(SERVED / "notebooks" / name)
    assert hidden, f"{name} has no folded solution cell (metadata jupyter.source_hidden)"
    page = open_notebook(lab, browser, f"notebooks/{name}")
    try:
        cells = page.locator(f"{NOTEBOOK} .jp-Notebook .jp-Cell")
        for i in hidden:
            cell = cells.nth(i)
            cell.scroll_into_view_if_needed()
            assert not cell.locator(".jp-InputArea").is_visible(), f"{name}: cell {i}'s source is not folded"
            assert cell.locator(".jp-InputPlaceholder").is_visible(), f"{name}: cell {i} shows no folded marker"
        first = cells.nth(hidden[0])
        body = nbformat.read(SERVED / "notebooks" / name, as_version=4).cells[hidden[0]].source.splitlines()
        line = next(x for x in body[1:] if x.strip())  # a line only the unfolded source shows
        assert not first.locator(f".cm-line:text-is('{line}')").is_visible()
        first.locator(".jp-InputPlaceholder").click()
        first.locator(".jp-InputArea").wait_for(state="visible", timeout=10_000)
        assert "Solution" in first.locator(".jp-InputArea .cm-content").inner_text()
        assert line.strip() in first.locator(".jp-InputArea .cm-content").inner_text()
        assert not cells.nth(hidden[1]).locator(".jp-InputArea").is_visible() if len(hidden) > 1 else True
    finally:
        page.close()
        shut_down_kernels(*lab)


SELF_TEST = [
    "import ipywidgets as w\n"
    "level = w.IntSlider(value=1, min=0, max=5, description='level')\n"
    "message = w.HTML()\n"
    "def boom(_):\n"
    "    raise ValueError('boom from a callback')\n"
    "def complain(_):\n"
    "    message.value = \"<span style='color:%s'>that did not work</span>\"\n"
    "raising, complaining = w.Button(description='Raise'), w.Button(description='Complain')\n"
    "raising.on_click(boom)\n"
    "complaining.on_click(complain)\n"
    "w.VBox([level, raising, complaining, message])" % ERROR_RED,
]


@pytest.mark.parametrize("button, error", [("Raise", "boom from a callback"), ("Complain", "that did not work")])
def test_a_panel_that_answers_a_click_with_an_error_fails_the_check(lab, browser, button, error):
    """The checks above would catch a panel that raises in a callback (a traceback no cell shows) or that writes
    an error message: a throwaway panel that does both."""
    folder = SERVED / "selftest"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in SELF_TEST])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "error_panel.ipynb")
    KERNEL_ERRORS.unlink(missing_ok=True)
    page = open_notebook(lab, browser, "selftest/error_panel.ipynb")
    try:
        run_all_cells(page)
        wait_until_idle(page, timeout_s=120, name="self-test")
        panel = find_panel(page, "self-test")
        before = panel_view(panel)
        click(panel, button)
        with pytest.raises(AssertionError, match=error):
            wait_for(page, panel, lambda v: v != before, 30, f"self-test: after pressing {button!r}")
    finally:
        page.close()
        shut_down_kernels(*lab)
        KERNEL_ERRORS.unlink(missing_ok=True)
