"""The notebooks' widgets in a real JupyterLab, driven by headless Chromium.

A module fixture starts the test environment's ``jupyter lab`` on a free localhost port with a
token, on temporary copies of notebooks 01 and 02 (outputs cleared), with the smoke profile, a
throw-away run directory and progress bars switched on. Each test opens a notebook, runs all its
cells from JupyterLab's Run menu, waits until every code cell has executed and the kernel is idle,
and then checks from the page:

- 01_datasets: the slice viewer shows an image, the image changes when the slice slider moves
  (keyboard on the slider handle), and the cache's tqdm progress bar reached 100 %;
- 02_shape_vae: the latent explorer shows the decoded shape, and the image changes when a latent
  direction slider moves.

Screenshots go to each test's ``tmp_path`` and, when ``CARDIGAN_BROWSER_SHOTS`` is set, are copied
there too. Selenium is pointed at Debian's /usr/bin/chromium and /usr/bin/chromedriver: it never
downloads a driver. Without selenium, Chromium or chromedriver the tests are skipped, saying which.
The widgets are found by the CSS classes cardigan_utils/widgets.py gives them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.browser

pytest.importorskip(
    "selenium",
    reason="selenium is not installed: the browser tests need it "
           "(.venv/bin/python -m pip install -c .ci/constraints.txt selenium, or the dev extra)",
)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NOTEBOOKS = ("01_datasets.ipynb", "02_shape_vae.ipynb")

# Upper bounds for failures only; on a 2-core CPU the whole file takes one to two minutes.
SERVER_START_S = 60
PAGE_READY_S = 90
RUN_ALL_S = 150
WIDGET_S = 30

# Notebook settings for the test's own JupyterLab settings folder: every cell stays attached to
# the page (the default windowing detaches cells out of view, and the checks read all of them),
# and no news or update toasts cover the widgets in the screenshots.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}

# One round trip: the state of the notebook panel arguments[0], named arguments[1]. The toolbar's
# execution indicator reads "idle" even before a kernel is connected; the status bar's kernel item
# ("<kernel> | Idle") only once it is, so both are read.
NOTEBOOK_STATE_JS = """
const [panel, name] = arguments;
const prompts = Array.from(panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt'), p => p.textContent.trim());
const errors = Array.from(
    panel.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]'),
    e => e.textContent.slice(-1500));
const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator[data-status]');
const session = Array.from(document.querySelectorAll('.jp-StatusBar-TextItem'))
    .find(item => item.title === 'Change kernel for ' + name);
return {prompts: prompts, errors: errors, kernel: indicator ? indicator.getAttribute('data-status') : null,
        session: session ? session.textContent.trim() : ''};
"""

# The figure a widget shows: its <img> in the widget's Output (class cardigan-figure), or null.
FIGURE_JS = """
const img = arguments[0].querySelector('.cardigan-figure img');
if (!img) { return null; }
return {src: img.getAttribute('src') || '', loaded: img.complete && img.naturalWidth > 0};
"""

# Every ipywidgets progress bar of the panel with the text of the tqdm row around it.
PROGRESS_BARS_JS = """
return Array.from(arguments[0].querySelectorAll('.widget-hprogress'), bar => {
    const inner = bar.querySelector('.progress-bar');
    return {text: bar.parentElement.textContent.replace(/\\s+/g, ' ').trim(),
            width: inner ? inner.style.width : '',
            classes: inner ? inner.className : ''};
});
"""


@dataclass
class LabServer:
    """A running JupyterLab: where it listens, its token, and the folders it uses."""

    base_url: str
    token: str
    root_dir: Path
    run_dir: Path
    log: Path

    def notebook_url(self, name: str) -> str:
        """The URL that opens notebook ``name`` alone (``reset``: no restored layout)."""
        return f"{self.base_url}/lab/tree/{name}?token={self.token}&reset"

    def api(self, path: str, *, method: str = "GET", timeout: float = 5.0):
        """The JSON answer of the server's REST API at ``path`` (e.g. ``/api/status``)."""
        request = urllib.request.Request(f"{self.base_url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def log_tail(self, n_chars: int = 3000) -> str:
        """The end of the server's log, for failure messages."""
        return self.log.read_text(errors="replace")[-n_chars:] if self.log.exists() else "(no log)"


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_without_outputs(source: Path, target: Path) -> None:
    """Copy a notebook with its outputs, execution counts and widget state cleared.

    Old outputs would show images before anything ran, and JupyterLab saves into the copy, never
    into notebooks/.
    """
    nb = json.loads(source.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.get("metadata", {}).pop("widgets", None)
    target.write_text(json.dumps(nb, indent=1))


def write_lab_settings(settings_dir: Path) -> None:
    """Write :data:`LAB_SETTINGS` as the user settings of a JupyterLab."""
    for name, values in LAB_SETTINGS.items():
        path = settings_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def stop_server(process: subprocess.Popen, server: LabServer) -> None:
    """Shut the server down with its kernels: the REST shutdown first, then signals to its group."""
    if process.poll() is None:
        with contextlib.suppress(OSError):
            server.api("/api/shutdown", method="POST")
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            # SIGTERM still lets jupyter_server shut its kernels down; SIGKILL is the last resort
            for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=wait_s)
                if process.poll() is not None:
                    break


@pytest.fixture(scope="module")
def chromium_paths() -> tuple[Path, Path]:
    """(chromium, chromedriver); the tests are skipped, naming what is missing, without them."""
    missing = [f"{what} not found at {path}" for what, path in (("Chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER))
               if not path.is_file()]
    if missing:
        pytest.skip("; ".join(missing) + ": install the Debian packages chromium and chromium-driver "
                    "(apt-get install -y --no-install-recommends chromium chromium-driver; .ci/run does when it can)")
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture(scope="module")
def driver(chromium_paths, tmp_path_factory):
    """Headless Chromium under Selenium, with the Debian binaries given explicitly (no Selenium Manager)."""
    chromium, chromedriver = chromium_paths
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    options.add_argument("--headless=new")
    # Chromium's sandbox refuses to start as root (CI containers); /dev/shm is small in containers
    options.add_argument("--no-sandbox")
    options.add_argument("--disable-dev-shm-usage")
    options.add_argument("--window-size=1400,1000")
    log = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    browser = webdriver.Chrome(options=options, service=Service(executable_path=str(chromedriver), log_output=str(log)))
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """JupyterLab on copies of notebooks 01 and 02: smoke profile, a fresh run dir, progress bars on."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root_dir, run_dir = base / "notebooks", base / "run"
    root_dir.mkdir()
    run_dir.mkdir()
    for name in NOTEBOOKS:
        copy_without_outputs(ROOT / "notebooks" / name, root_dir / name)
    write_lab_settings(base / "lab-settings")

    env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}  # CI sets Agg: no inline figures
    env.update({
        "CARDIGAN_PROFILE": "smoke",
        "CARDIGAN_RUN_DIR": str(run_dir),
        "CARDIGAN_PROGRESS": "1",  # CI switches progress bars off; here they are under test
        # the user's Jupyter folders could hold another "python3" kernel or lab settings: empty ones
        "JUPYTER_CONFIG_DIR": str(base / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(base / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(base / "jupyter-runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(base / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "lab-workspaces"),
    })
    # the jupyter of the environment running the tests (.venv under `make test`): its python3 kernel is the kit's
    jupyter = Path(sys.executable).parent / "jupyter"
    port, token = free_port(), secrets.token_hex(16)
    server = LabServer(base_url=f"http://127.0.0.1:{port}", token=token, root_dir=root_dir, run_dir=run_dir,
                       log=base / "jupyterlab.log")
    command = [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
               f"--ServerApp.token={token}", f"--ServerApp.root_dir={root_dir}",
               "--ServerApp.allow_root=True"]  # CI containers run as root; harmless otherwise
    with server.log.open("w") as log:
        process = subprocess.Popen(command, env=env, cwd=root_dir, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"jupyter lab exited with code {process.returncode}:\n{server.log_tail()}")
            try:
                server.api("/api/status", timeout=2)
                break
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer within {SERVER_START_S} s:\n{server.log_tail()}")
                time.sleep(0.5)
        argv = server.api("/api/kernelspecs")["kernelspecs"]["python3"]["spec"]["argv"]
        assert Path(argv[0]).is_relative_to(sys.prefix), f"the python3 kernel is not this environment's: {argv}"
        yield server
    finally:
        stop_server(process, server)


def save_screenshot(driver, folder: Path, name: str) -> Path:
    """Save the page as ``folder/name.png``, and copy it to $CARDIGAN_BROWSER_SHOTS when that is set."""
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    shots = os.environ.get("CARDIGAN_BROWSER_SHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(shots) / path.name)
    return path


@contextlib.contextmanager
def screenshot_on_failure(driver, folder: Path, name: str):
    """Save ``name_failure.png`` (see :func:`save_screenshot`) if the block raises, then re-raise."""
    try:
        yield
    except (Exception, pytest.fail.Exception):  # pytest.fail raises a BaseException
        with contextlib.suppress(Exception):
            save_screenshot(driver, folder, f"{name}_failure")
        raise


def scroll_to(driver, element: WebElement) -> None:
    """Scroll ``element`` to the middle of the notebook's view."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)


def notebook_state(driver, panel: WebElement, name: str) -> dict:
    """Input prompts of all code cells, error outputs, and the kernel status (toolbar and status bar)."""
    return driver.execute_script(NOTEBOOK_STATE_JS, panel, name)


def kernel_idle(state: dict) -> bool:
    """Whether a kernel is connected and idle, by toolbar and status bar (see :data:`NOTEBOOK_STATE_JS`)."""
    return state["kernel"] == "idle" and state["session"].endswith("| Idle")


def has_run(prompt: str) -> bool:
    """Whether a code cell's input prompt shows an execution count (``[3]:``, not ``[ ]:`` or ``[*]:``)."""
    return re.fullmatch(r"\[\d+\]:", prompt) is not None


def run_menu_command(driver, menu: str, command: str) -> None:
    """Click ``menu`` in JupyterLab's menu bar, then its item for the JupyterLab ``command`` id."""
    menu_xpath = (f"//li[contains(@class, 'lm-MenuBar-item')]"
                  f"[.//div[contains(@class, 'lm-MenuBar-itemLabel')][normalize-space() = '{menu}']]")
    WebDriverWait(driver, WIDGET_S).until(EC.element_to_be_clickable((By.XPATH, menu_xpath))).click()
    item = (By.CSS_SELECTOR, f".lm-Menu li.lm-Menu-item[data-command='{command}']:not(.lm-mod-disabled)")
    WebDriverWait(driver, WIDGET_S).until(EC.element_to_be_clickable(item)).click()


def open_notebook(driver, server: LabServer, name: str) -> WebElement:
    """Open notebook ``name`` and wait until its kernel is idle; returns the notebook panel.

    The page open before (a notebook with outputs) is saved first, so leaving it raises no
    "unsaved changes" prompt.
    """
    if driver.find_elements(By.CSS_SELECTOR, ".lm-TabBar-tab.jp-mod-dirty"):
        run_menu_command(driver, "File", "docmanager:save")
        WebDriverWait(driver, WIDGET_S).until_not(
            EC.presence_of_element_located((By.CSS_SELECTOR, ".lm-TabBar-tab.jp-mod-dirty")))
    driver.get(server.notebook_url(name))
    try:
        panel = WebDriverWait(driver, PAGE_READY_S).until(
            EC.visibility_of_element_located((By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden)")))
        WebDriverWait(driver, PAGE_READY_S).until(lambda d: kernel_idle(notebook_state(d, panel, name)))
    except TimeoutException:
        pytest.fail(f"{name} did not open with an idle kernel within {PAGE_READY_S} s:\n{server.log_tail()}")
    state = notebook_state(driver, panel, name)
    assert state["prompts"], f"{name}: no code cells on the page"
    return panel


def run_all_cells(driver, panel: WebElement, name: str) -> float:
    """Run > Run All Cells, then wait until every code cell has run and the kernel is idle.

    Fails at once, with the traceback shown on the page, when a cell raises, and after
    ``WIDGET_S`` when the command queued nothing (JupyterLab then only clears the prompts).

    Returns:
        The seconds it took.
    """
    start = time.monotonic()
    run_menu_command(driver, "Run", "runmenu:run-all")

    def finished(d) -> bool:
        state = notebook_state(d, panel, name)
        if state["errors"]:
            pytest.fail(f"{name}: a cell raised an error:\n{state['errors'][0]}")
        if time.monotonic() - start > WIDGET_S and all(p == "[ ]:" for p in state["prompts"]):
            pytest.fail(f"{name}: Run All Cells executed nothing in {WIDGET_S} s (status bar: {state['session']!r})")
        return kernel_idle(state) and all(has_run(p) for p in state["prompts"])

    try:
        WebDriverWait(driver, RUN_ALL_S, poll_frequency=1.0).until(finished)
    except TimeoutException:
        state = notebook_state(driver, panel, name)
        pending = sum(not has_run(p) for p in state["prompts"])
        pytest.fail(f"{name}: {pending} of {len(state['prompts'])} code cells had not run after {RUN_ALL_S} s "
                    f"(kernel {state['session']!r}; prompts {state['prompts']})")
    return time.monotonic() - start


def find_widget(driver, panel: WebElement, css_class: str, what: str) -> WebElement:
    """The widget of class ``css_class`` in the notebook's outputs, scrolled into view."""
    try:
        widget = WebDriverWait(driver, WIDGET_S).until(
            lambda d: panel.find_element(By.CSS_SELECTOR, f".jp-OutputArea-output .{css_class}"))
    except TimeoutException:
        pytest.fail(f"no {what} (.{css_class}) in the notebook's outputs after {WIDGET_S} s")
    scroll_to(driver, widget)
    return widget


def shown_figure(driver, widget: WebElement, what: str) -> str:
    """Wait until ``widget`` shows a loaded PNG in its output; returns the image's src (a data URL)."""
    def loaded_png(d):
        figure = d.execute_script(FIGURE_JS, widget)
        ok = figure and figure["loaded"] and figure["src"].startswith("data:image/png;base64,")
        return figure["src"] if ok else False

    try:
        src = WebDriverWait(driver, WIDGET_S).until(loaded_png)
    except TimeoutException:
        pytest.fail(f"the {what} shows no image after {WIDGET_S} s: {driver.execute_script(FIGURE_JS, widget)!r:.200}")
    assert len(src.partition(",")[2]) > 1000, f"the {what}'s image has almost no data: {src[:200]!r}"
    return src


def move_slider(driver, slider: WebElement, key: str, what: str) -> tuple[str, str]:
    """Press ``key`` on the slider's handle (as a keyboard user does); returns its readout before and after."""
    readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout")
    before = readout.text
    slider.find_element(By.CSS_SELECTOR, ".noUi-handle").send_keys(key)
    try:
        WebDriverWait(driver, WIDGET_S).until(lambda d: readout.text != before)
    except TimeoutException:
        pytest.fail(f"pressing a key on the {what}'s handle did not move it (readout stayed {before!r})")
    return before, readout.text


def wait_for_new_figure(driver, widget: WebElement, old_src: str, what: str, moved: tuple[str, str]) -> str:
    """Wait until ``widget`` shows a loaded image other than ``old_src``; returns the new src."""
    def changed(d):
        figure = d.execute_script(FIGURE_JS, widget)
        return figure["src"] if figure and figure["loaded"] and figure["src"] != old_src else False

    try:
        return WebDriverWait(driver, WIDGET_S).until(changed)
    except TimeoutException:
        pytest.fail(f"the {what} moved from {moved[0]} to {moved[1]} but the image did not change within {WIDGET_S} s")


@pytest.fixture(scope="module")
def notebook_01(driver, lab_server, tmp_path_factory):
    """Notebook 01 opened and run to the end in the browser (its cache is what notebook 02 reads).

    ``driver`` comes first so that the tests skip before a server starts when Chromium is missing.
    """
    panel = open_notebook(driver, lab_server, NOTEBOOKS[0])
    with screenshot_on_failure(driver, tmp_path_factory.mktemp("shots-01"), "01_datasets_run"):
        seconds = run_all_cells(driver, panel, NOTEBOOKS[0])
    print(f"\n{NOTEBOOKS[0]}: all cells ran in {seconds:.0f} s")
    return panel


def test_01_slice_viewer_and_progress_bar(driver, notebook_01, tmp_path):
    panel = notebook_01
    with screenshot_on_failure(driver, tmp_path, "01_datasets"):
        viewer = find_widget(driver, panel, "cardigan-case-viewer", "slice viewer")
        first = shown_figure(driver, viewer, "slice viewer")

        slider = viewer.find_element(By.CSS_SELECTOR, ".cardigan-slice")
        handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
        at_end = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        moved = move_slider(driver, slider, Keys.ARROW_LEFT if at_end else Keys.ARROW_RIGHT, "slice slider")
        wait_for_new_figure(driver, viewer, first, "slice slider", moved)
        save_screenshot(driver, tmp_path, "01_datasets_slice_viewer")

        bars = driver.execute_script(PROGRESS_BARS_JS, panel)
        cache_bars = [bar for bar in bars if bar["text"].startswith("cache ")]
        assert cache_bars, f"no progress bar of the cache build (tqdm 'cache ...') on the page; progress bars: {bars}"
        bar = cache_bars[0]
        assert bar["width"] == "100%" and "100%" in bar["text"], f"the cache's progress bar stopped short of 100 %: {bar}"
        assert "progress-bar-danger" not in bar["classes"], f"tqdm marked the cache's progress bar as failed: {bar}"
        scroll_to(driver, panel.find_elements(By.CSS_SELECTOR, ".widget-hprogress")[bars.index(bar)])
        save_screenshot(driver, tmp_path, "01_datasets_progress_bar")


def test_02_latent_explorer(driver, lab_server, notebook_01, tmp_path):
    panel = open_notebook(driver, lab_server, NOTEBOOKS[1])
    with screenshot_on_failure(driver, tmp_path, "02_shape_vae"):
        seconds = run_all_cells(driver, panel, NOTEBOOKS[1])
        print(f"\n{NOTEBOOKS[1]}: all cells ran in {seconds:.0f} s")
        explorer = find_widget(driver, panel, "cardigan-latent-explorer", "latent explorer")
        first = shown_figure(driver, explorer, "latent explorer")

        sliders = explorer.find_elements(By.CSS_SELECTOR, ".cardigan-latent-slider")
        assert len(sliders) >= 2, f"the latent explorer has {len(sliders)} direction sliders"
        # End jumps to +3 sigma on the first direction: one arrow step (0.1 sigma) may not change a single label
        moved = move_slider(driver, sliders[0], Keys.END, "first latent direction slider")
        wait_for_new_figure(driver, explorer, first, "first latent direction slider", moved)
        save_screenshot(driver, tmp_path, "02_shape_vae_latent_explorer")
