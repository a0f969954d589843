"""What browser tests do to a Voilà page: open an app, let the kernel catch up, pick options,
read a grid, take screenshots. The fixtures that start the server and Chromium are in
``conftest.py``; these helpers only need a Playwright ``page``.

Waits are for conditions, never for time: Playwright's locators wait for elements, and
:func:`settle` waits until the kernel has handled every widget message the page sent.

Errors after a page is ready are nowhere to be seen by default: a widget callback's traceback
is an IOPub ``error`` message and a logged exception (or a thread's) a ``stream`` on stderr,
which Voilà shows nowhere and which never reach its log. :func:`open_app` has the page keep
them (:func:`kernel_errors`); ``conftest.py`` fails every test whose pages kept any, logged an
uncaught exception or a console error, or whose slice of Voilà's log has a traceback
(:func:`tracebacks`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from playwright.sync_api import Locator, Page

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"

APP_READY_MS = 120_000  # kernel start + imports + first render: ~10 s here, far more on a busy CI
ACTION_MS = 30_000  # one click, one widget update, one query on demo data

# A Voilà page reports a failed cell as stderr output.
_STDERR = "[data-mime-type='application/vnd.jupyter.stderr']"


def open_app(page: Page, name: str, ready: str, timeout_ms: int = APP_READY_MS) -> Page:
    """Open the dashboard ``name`` (``workbench.ipynb``) and wait until ``ready`` (a CSS
    selector) is visible; a failing cell fails the test with the page's error text."""
    response = page.goto(f"voila/render/{name}", timeout=timeout_ms)
    assert response is not None and response.ok, f"{name}: HTTP {response and response.status}"
    found = page.wait_for_function(
        """([ready, stderr]) => {
            const el = document.querySelector(ready);
            if (el && el.offsetParent !== null) return "ready";
            const errors = [...document.querySelectorAll(stderr)].map(e => e.innerText);
            return errors.find(t => /Traceback|Error|error when executing/.test(t)) || false;
        }""",
        arg=[ready, _STDERR],
        timeout=timeout_ms,
        polling=100,
    ).json_value()
    if found != "ready":
        raise AssertionError(f"{name} failed to render:\n{found}")
    assert page.evaluate(_WATCH_KERNEL_JS), f"{name}: the page has no kernel to watch"
    settle(page)
    return page


# What the kernel says on IOPub that no output area shows: tracebacks of widget callbacks
# ("error" messages) and everything written to stderr (logged exceptions, dying threads).
_WATCH_KERNEL_JS = """() => {
    const manager = window.jupyterapp && window.jupyterapp.widgetManager;
    if (!manager || !manager._kernel) return false;
    if (window.__crmKernel) return true;
    const kept = window.__crmKernel = {errors: [], stderr: ""};
    manager._kernel.iopubMessage.connect((_, msg) => {
        const c = msg.content || {};
        if (msg.header.msg_type === "error")
            kept.errors.push([`${c.ename}: ${c.evalue}`, ...(c.traceback || [])].join("\\n"));
        else if (msg.header.msg_type === "stream" && c.name === "stderr") kept.stderr += c.text;
    });
    return true;
}"""
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def kernel_errors(page: Page, forget: bool = False) -> list[str]:
    """Tracebacks the page's kernel sent since :func:`open_app` (or the last ``forget``)."""
    kept = page.evaluate(
        """(forget) => {
        const kept = window.__crmKernel;
        if (!kept) return {errors: [], stderr: ""};
        const copy = {errors: [...kept.errors], stderr: kept.stderr};
        if (forget) { kept.errors = []; kept.stderr = ""; }
        return copy;
    }""",
        forget,
    )
    return [_ANSI.sub("", e) for e in kept["errors"]] + tracebacks(kept["stderr"])


def has_app(page: Page) -> bool:
    """Whether the page runs a Voilà app (has a kernel and widgets)."""
    return bool(
        page.evaluate(
            "() => !!(window.jupyterapp && window.jupyterapp.widgetManager && window.jupyterapp.widgetManager._kernel)"
        )
    )


def tracebacks(text: str) -> list[str]:
    """Every Python traceback in ``text``: from its first line to the exception's."""
    found = []
    lines = text.splitlines()
    for at, line in enumerate(lines):
        if "Traceback (most recent call last)" not in line:
            continue
        end = at + 1
        while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
            end += 1
        found.append("\n".join(lines[at : end + 1]))
    return found


# Errors Voilà's own tree page (the list of apps, which runs no kernel) logs on every load:
# its widget plugins activate without a kernel, and it asks /api/kernels, which Voilà refuses.
# They say nothing about crm_kernel; anything else a page logs fails its test.
VOILA_TREE_NOISE = [
    re.compile(r"^console error: Plugin '[^']+' failed to activate\. Error: The model for kernel id +does not exist"),
    re.compile(
        r"^console error: Failed to load resource: the server responded with a status of 404 \(Not Found\)"
        r" \(https?://[^/]+/api/kernels\?\d+\)$"
    ),
]


def tree_noise(message: str) -> bool:
    """Whether a page's error is one that Voilà's tree page always logs."""
    return any(pattern.search(message) for pattern in VOILA_TREE_NOISE)


def problems_report(problems: Iterable[str]) -> str:
    return "\n\n".join(f"- {p}" for p in problems)


# Every widget model's messages to the kernel are out (none pending or buffered), then one
# kernel_info request: the kernel handles shell messages in order, and the request resolves
# only after its idle status, so every state update the kernel sent before is in the page.
_SETTLE_JS = """async (timeout) => {
    const deadline = Date.now() + timeout;
    const manager = window.jupyterapp && window.jupyterapp.widgetManager;
    if (!manager) return "this page has no widget manager";
    const busy = async () => (await Promise.all(Object.values(manager._models)))
        .some(m => m._pending_msgs > 0 || m._msg_buffer);
    const pause = () => new Promise(resolve => setTimeout(resolve, 25));
    while (Date.now() < deadline) {
        while (await busy() && Date.now() < deadline) await pause();
        await Promise.race([
            manager._kernel.requestKernelInfo(),
            new Promise(r => setTimeout(r, deadline - Date.now())),
        ]);
        if (!(await busy())) return "settled";
    }
    return "the kernel did not answer in time";
}"""


def settle(page: Page, timeout_ms: int = ACTION_MS) -> None:
    """Wait until the kernel has handled everything the page sent and the page has its answers."""
    state = page.evaluate(_SETTLE_JS, timeout_ms)
    assert state == "settled", state


def _text(option: dict) -> str:
    return " ".join(option["text"].replace("\xa0", " ").split())


def choose(select: Locator, accept: Callable[[str], bool], what: str) -> str:
    """Pick the first option of a ``<select>`` whose text ``accept`` takes, as a user would,
    then wait for the kernel; returns the option's text. (ipywidgets' Dropdown renders a
    ``<select>`` whose option values are the labels.)"""
    select.wait_for(state="visible")
    options = select.evaluate("s => [...s.options].map(o => ({text: o.textContent, value: o.value}))")
    for option in options:
        if accept(_text(option)):
            select.select_option(value=option["value"])
            settle(select.page)
            return _text(option)
    raise AssertionError(f"no option for {what} among {[_text(o) for o in options]}")


def choose_field(select: Locator, field: str) -> str:
    """Pick a field by its path (``value``, ``stage.name``): the option whose label's last
    parts name it (``Deal › Value``, ``Stage › Name``), or whose text is the path itself."""
    parts = [p.replace("_", " ") for p in field.split(".")]

    def accept(text: str) -> bool:
        if text == field:
            return True
        labels = [p.strip().lower() for p in re.split(r"[›>/]", text)]
        return labels[-len(parts) :] == parts and len(labels) <= len(parts) + 1

    return choose(select, accept, f"field {field}")


OPERATOR_WORDS = {
    "=": {"=", "equals", "is", "=="},
    "!=": {"!=", "does not equal", "is not"},
    "<": {"<", "less than"},
    ">": {">", "greater than"},
    "<=": {"<=", "at most", "≤", "less than or equal to"},
    ">=": {">=", "at least", "≥", "greater than or equal to"},
    "contains": {"contains"},
}


def choose_operator(select: Locator, operator: str) -> str:
    """Pick an operator by its query-language name (``>=``) or its usual words (``at least``)."""
    words = OPERATOR_WORDS.get(operator, {operator})
    return choose(select, lambda text: text.lower() in words, f"operator {operator}")


def type_value(box: Locator, value) -> None:
    """Type into a value editor (a Text or FloatText) and leave it, which sends the value."""
    field = box.locator("input, textarea").first
    field.fill(str(value))
    field.press("Tab")
    settle(box.page)


_GRID_ROWS_JS = """async ([cls, wanted, timeout]) => {
    // rows of the ipydatagrid with this CSS class: its canvas has no text, its model has the data
    const deadline = Date.now() + timeout;
    const manager = window.jupyterapp.widgetManager;
    const count = async () => {
        for (const model of await Promise.all(Object.values(manager._models))) {
            if (model.get("_model_name") !== "DataGridModel") continue;
            if (!(model.get("_dom_classes") || []).includes(cls)) continue;
            const data = model.get("_data");
            const column = data._data[data._schema.primaryKeyUuid] || Object.values(data._data)[0] || {};
            return Object.keys(column).filter(key => key !== "type").length;
        }
        return null;
    };
    let rows = await count();
    while (rows !== wanted && wanted !== null && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 50));
        rows = await count();
    }
    return rows;
}"""


def grid_rows(page: Page, css_class: str, wait_for: int | None = None, timeout_ms: int = ACTION_MS) -> int | None:
    """How many rows the ipydatagrid with ``css_class`` holds in the browser (None: no such
    grid); with ``wait_for``, first wait up to ``timeout_ms`` for it to hold that many."""
    return page.evaluate(_GRID_ROWS_JS, [css_class, wait_for, timeout_ms])


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/browser/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path
