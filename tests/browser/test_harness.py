"""The browser harness itself: JupyterLab starts, the browser logs in, the token guards the API."""

from __future__ import annotations

import urllib.error
import urllib.request


def test_lab_page_is_logged_in_and_shows_the_launcher(lab_page, screenshot):
    lab_page.wait_for_selector(".jp-Launcher", state="visible")
    assert "token=" not in lab_page.url  # the token became a cookie
    screenshot(lab_page, "harness-launcher")


def test_server_rejects_requests_without_the_token(jupyterlab_server):
    status, body = jupyterlab_server.api("GET", "api/contents")
    assert status == 200 and body["type"] == "directory"
    try:
        urllib.request.urlopen(jupyterlab_server.url + "api/contents", timeout=30)
    except urllib.error.HTTPError as exc:
        assert exc.code == 403
    else:
        raise AssertionError("an unauthenticated request was answered")
