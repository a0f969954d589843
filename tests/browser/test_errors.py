"""The harness fails a browser test when anything goes wrong after its page is ready: each
button of the test-only ``errors.ipynb`` fails in one way a dashboard can, and each failure
is caught by the same check that ends every browser test (``browser_errors.check()``)."""

import pytest

from .harness import open_app, settle, tracebacks, tree_noise

FAILURES = {  # button -> what the check must report
    "callback": ["the kernel of", "ValueError: a widget callback failed on purpose"],
    "logged": ["the kernel of", "in exception_logged", "KeyError: 'missing'"],
    "thread": ["the kernel of", "RuntimeError: a thread died on purpose"],
    "server": ["Voilà's log gained a traceback", "LookupError: a traceback for the server's log on purpose"],
}


def caught(browser_errors) -> str:
    """The check's failure message (it must fail), then a clean slate for the next case."""
    with pytest.raises(AssertionError) as failure:
        browser_errors.check()
    browser_errors.forget()
    browser_errors.check()  # forgotten: nothing left to hold against this test
    return str(failure.value)


def test_every_way_a_page_can_fail_fails_the_test(page, browser_errors, offsite_requests):
    open_app(page, "errors.ipynb", ".errors-server")
    browser_errors.check()  # a page that renders cleanly passes

    for button, expected in FAILURES.items():
        page.locator(f".errors-{button}").click()
        settle(page)
        message = caught(browser_errors)
        for text in expected:
            assert text in message, f"{button}: {text!r} not in\n{message}"

    page.evaluate("""() => new Promise((resolve) => {
        setTimeout(() => { throw new Error('thrown in the page on purpose'); });
        setTimeout(resolve);  // timers run in order: the error is out before this resolves
    })""")
    assert "uncaught in the page: thrown in the page on purpose" in caught(browser_errors)

    page.evaluate("() => console.error('logged in the console on purpose')")
    assert "console error: logged in the console on purpose" in caught(browser_errors)
    assert offsite_requests == []


def test_tracebacks_are_found_in_a_log_whole():
    log = """[Voila] Kernel started: 1
Traceback (most recent call last):
  File "x.py", line 1, in <module>
    boom()

ValueError: boom
[Voila] Kernel shutdown: 1
"""
    assert tracebacks(log) == [
        'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n    boom()\n\nValueError: boom'
    ]
    assert tracebacks("[Voila] WARNING | Notebook pipeline.ipynb is not trusted\n") == []


def test_only_the_tree_pages_known_noise_is_let_through():
    noise = [
        "console error: Plugin 'anywidget:plugin' failed to activate. Error: The model for kernel id  does not exist",
        "console error: Failed to load resource: the server responded with a status of 404 (Not Found)"
        " (http://127.0.0.1:53057/api/kernels?1796094672874)",
    ]
    assert all(tree_noise(message) for message in noise)
    for message in [
        "console error: Plugin 'anywidget:plugin' failed to activate. Error: boom",
        "console error: Failed to load resource: the server responded with a status of 404 (Not Found)"
        " (http://127.0.0.1:53057/voila/static/app.js)",
        "uncaught in the page: The model for kernel id  does not exist",
    ]:
        assert not tree_noise(message), message
