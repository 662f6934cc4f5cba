"""Real-browser check: JupyterLab on 127.0.0.1, each notebook opened in headless Chromium, Run All Cells,
then a widget panel must render (a slider and a button) and one interaction must change its output.

Run with `make browser`. Needs Debian's chromium (/usr/bin/chromium) and PyPI's playwright; it never
downloads a browser of its own, and skips loudly when either is missing. Screenshots go to build/screenshots/.
"""
from __future__ import annotations

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
from pathlib import Path

import pytest

from saelab.course import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in the visible tab
CHROMIUM = os.environ.get("SAELAB_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

playwright_api = pytest.importorskip("playwright.sync_api", reason="SKIPPED LOUDLY: pip install playwright")
if not Path(CHROMIUM).exists():
    pytest.skip(f"SKIPPED LOUDLY: no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab():
    """A JupyterLab server on 127.0.0.1 with a random token, stopped afterwards."""
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, SAELAB_OFFLINE="1", MPLBACKEND="module://matplotlib_inline.backend_inline")
    runtime = ROOT / "build" / "jupyter-runtime"
    env["JUPYTER_RUNTIME_DIR"] = str(runtime)
    settings = ROOT / "build" / "jupyter-settings"
    shutil.rmtree(settings, ignore_errors=True)  # no tabs restored from an earlier run's workspace
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
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}", "--LabApp.news_url=None",
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
    shutil.rmtree(settings, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def notebooks_stay_untouched():
    """Running the notebooks in the browser must not rewrite the repository's copies."""
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    before = {p: p.read_bytes() for p in paths}
    yield
    changed = [p.name for p in paths if p.read_bytes() != before[p]]
    for p in paths:
        p.write_bytes(before[p])
    assert not changed, f"JupyterLab saved over {changed} (restored)"


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def accept_kernel_dialog(page) -> None:
    """JupyterLab may ask which kernel to start; the notebook's own (Python 3) is preselected."""
    try:
        page.locator(".jp-Dialog button:has-text('Select')").click(timeout=10_000)
    except playwright_api.TimeoutError:
        pass  # no dialog: the kernel started by itself


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


def wait_until_idle(page, timeout_s: float, name: str) -> None:
    """Wait until every code cell has run and the kernel reports idle."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if all_cells_ran(page) and page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count():
            return
        time.sleep(1)
    page.screenshot(path=str(SHOTS / f"{name}-timeout.png"), full_page=False)
    prompts = page.locator(f"{NOTEBOOK} .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
    raise AssertionError(f"{name}: cells still running or not run after {timeout_s:.0f} s: {prompts}")


def shut_down_kernels(base: str, token: str) -> None:
    """Stop the notebook's kernel so that the next notebook starts with the memory free."""
    request = urllib.request.Request(f"{base}/api/kernels?token={token}")
    for kernel in json.loads(urllib.request.urlopen(request, timeout=10).read()):
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/kernels/{kernel['id']}?token={token}",
                                                      method="DELETE"), timeout=30)


def panel_results(panel) -> str:
    """What the kernel wrote into the panel: its outputs, images and text, not its controls."""
    parts = panel.locator(".widget-output, .widget-html-content, img").evaluate_all(
        "els => els.map(e => e.tagName === 'IMG' ? e.src.slice(-200) : e.innerHTML)")
    return "\n".join(parts)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_widget_panel_renders_and_responds(lab, browser, name):
    base, token = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/lab/tree/notebooks/{name}?reset&token={token}")  # reset: only this notebook open
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    accept_kernel_dialog(page)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    run_all_cells(page)
    wait_until_idle(page, timeout_s=300, name=name)
    errors = page.locator(f"{NOTEBOOK} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']:has-text('Traceback')")
    assert errors.count() == 0, f"{name}: a cell raised: {errors.first.inner_text()[:500]}"

    # the last cell output that holds a widget panel with a slider and a button (the whole panel, not a sub-box)
    panel = page.locator(f"{NOTEBOOK} .jp-OutputArea-output:has(.widget-slider):has(button.jupyter-button)").last
    panel.wait_for(timeout=60_000)
    panel.scroll_into_view_if_needed()
    assert panel.locator(".widget-slider").first.is_visible(), f"{name}: no slider visible"
    # an action button (Train, Generate, ...); else a toggle that is not the current choice
    button = panel.locator("button.widget-button:not([disabled])").first
    if button.count() == 0:
        button = panel.locator("button.widget-toggle-button:not(.mod-active):not([disabled])").first
    assert button.is_visible(), f"{name}: no button visible"
    before = panel_results(panel)
    page.screenshot(path=str(SHOTS / f"{name}-before.png"), full_page=False)
    label = button.inner_text()
    button.click()
    deadline = time.time() + 180
    while panel_results(panel) == before and time.time() < deadline:
        time.sleep(0.5)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=180_000)
    time.sleep(1)
    page.screenshot(path=str(SHOTS / f"{name}-after.png"), full_page=False)
    assert panel_results(panel) != before, f"{name}: clicking {label!r} did not change the panel's output"
    page.close()
    shut_down_kernels(base, token)
