"""The status page at / (issue 20), in a real headless Chromium driven over
the DevTools protocol (browser.py): it loads from the server alone, takes the
token without putting it in a URL, shows a running job's figures as the API
has them, pauses the job with its button, shows an error with what to do,
and fits a phone's width.

PENSTOCK_SCREENSHOTS=DIR saves the views it visits as PNGs into DIR.
"""
import json
import os
import pathlib
import urllib.error
import urllib.request

import pytest

import test_server as ts
from test_server import server  # noqa: F401
from browser import Browser
from conftest import Writer, wait_for

SHOTS = os.environ.get("PENSTOCK_SCREENSHOTS")


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path)
    yield b
    b.close()


def shot(b, name):
    if SHOTS:
        pathlib.Path(SHOTS).mkdir(parents=True, exist_ok=True)
        b.screenshot(os.path.join(SHOTS, name))


def sign_in(b, server):
    b.goto(server.url + "/")
    b.wait(lambda: b.visible("#login"), what="the sign-in form")
    b.type_into("#token", ts.TOKEN)
    b.click("#login-form button")
    b.wait(lambda: b.visible("#jobs"), what="the job list")


def open_job(b, name):
    b.click(f'#jobs-body tr[data-job="{name}"] a')
    b.wait(lambda: b.visible("#job") and b.value_of("state"), what=f"the page of job {name}")


def get(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_the_page_shows_a_running_job_as_the_api_does_and_pauses_it(server, db, target_db, browser):
    Writer.create_tables(db, rows=500)
    db.execute("ANALYZE")
    ts.start_streaming(server, ts.spec_for(db, target_db.url))
    db.execute("INSERT INTO w_items SELECT g, 1, 'console' FROM generate_series(10001, 10020) g")
    db.execute("UPDATE w_items SET v = v + 1 WHERE id <= 5")
    wait_for(lambda: server.job("orders")["counters"]["changes_applied"] == 25, 60,
             what="the 25 changes applied")

    # the page's files need no token and come with a strict policy; the API
    # behind them still needs it
    status, headers, body = get(server.url + "/")
    assert status == 200 and b"/ui/app.js" in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert get(server.url + "/ui/app.js")[0] == 200
    assert get(server.url + "/ui/nothing.js")[0] == 401
    assert get(server.url + "/v1/jobs")[0] == 401

    sign_in(browser, server)
    # the token: in this tab's session only, never in a URL
    assert ts.TOKEN not in browser.eval("location.href")
    assert browser.eval("localStorage.length") == 0
    assert browser.eval("sessionStorage.getItem('penstock.token')") == ts.TOKEN
    assert browser.eval("document.cookie") == ""
    # everything it loaded came from the server itself
    origins = browser.eval("performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
    assert origins and set(origins) == {server.url}, origins

    browser.wait(lambda: "running" in (browser.text('#jobs-body tr[data-job="orders"]') or ""),
                 what="the job listed as running")
    shot(browser, "console-jobs.png")
    open_job(browser, "orders")

    job = server.job("orders")
    browser.wait(lambda: browser.value_of("changes-applied") == "25", what="the changes applied")
    for field, want in [("state", job["state"]), ("phase", job["phase"]), ("health", job["health"]),
                        ("cdc_state", job["cdc_state"]),
                        ("pos-applied", job["positions"]["applied"]),
                        ("txns-applied", str(job["counters"]["txns_applied"])),
                        ("log-reader", job["log_reader"]), ("attempts", "0")]:
        assert browser.value_of(field) == want, (field, browser.value_of(field), want)
    # figures that move with the source's log: they meet the API's
    browser.wait(lambda: browser.value_of("retained") == str(server.job("orders")["retained_bytes"]),
                 what="the retained log as the API has it")
    browser.wait(lambda: browser.value_of("retention-status") ==
                 (server.job("orders")["retention"]["status"] or ""), what="the slot's status")
    # per-table load progress and changes
    assert "500" in browser.text('#tables-body tr[data-table="public.w_items"]')
    assert "done" in browser.text('#tables-body tr[data-table="public.w_items"]')
    row = browser.eval("Array.from(document.querySelectorAll("
                       "'#changes-body tr[data-table=\"public.w_items\"] td')).map(td => td.textContent)")
    assert row == ["public.w_items", "20", "5", "0", "0"], row
    # prechecks, history and the lag chart (the server samples every 5 s)
    assert browser.eval("document.querySelector('#checks-list li[data-check=\"source.wal_level\"]')"
                        ".dataset.result") == "passed"
    browser.wait(lambda: browser.eval("document.querySelectorAll('#events li[data-kind=transition]').length") >= 4,
                 what="the job's transitions in the history")
    browser.wait(lambda: int(browser.eval("document.getElementById('lag-chart').dataset.points || '0'")) >= 1,
                 timeout=60, what="a point of the lag chart")
    actions = browser.eval("Array.from(document.querySelectorAll('#actions button')).map(b => b.dataset.action)")
    assert actions == [a for a in ["pause", "stop", "delete"] if a in job["allowed_actions"]] + ["compare"]
    shot(browser, "console-job.png")

    # the pause button calls the API and says what it did
    browser.click('#actions button[data-action="pause"]')
    server.wait_state("orders", "paused")
    browser.wait(lambda: browser.value_of("state") == "paused", what="the page to show paused")
    assert "pause: accepted" in browser.text("#action-log")
    browser.wait(lambda: browser.eval("!!document.querySelector('#actions button[data-action=resume]')"),
                 what="the resume button")
    events = server.call("GET", "/v1/jobs/orders/events")[1]["events"]
    pause = [e for e in events if e["kind"] == "transition" and e["to"] == "draining"]
    assert pause and pause[-1]["actor"] == "console"

    # readable on a phone: nothing wider than the screen
    browser.viewport(390, 844, mobile=True)
    browser.wait(lambda: browser.eval("document.documentElement.scrollWidth <= window.innerWidth"),
                 what="the page to fit a phone's width")
    shot(browser, "console-phone.png")
    assert browser.exceptions() == []


def test_the_page_shows_an_error_and_what_to_do(tmp_path, db, target_db, browser):
    Writer.create_tables(db, rows=50)
    # the first batch applied fails; the next try is an hour away, so the
    # job stays failed while the page is looked at
    s = ts.Server(tmp_path / "state",
                  env_extra={"PENSTOCK_FAULT": "apply.batch.before_commit:error"}).start()
    try:
        spec = ts.spec_for(db, target_db.url,
                           retry={"initial_backoff_ms": 3600000, "max_backoff_ms": 3600000})
        ts.start_streaming(s, spec)
        db.execute("INSERT INTO w_items VALUES (9001, 1, 'boom')")
        job = s.wait_state("orders", "failed")
        err = job["last_error"]
        assert err and err["hint"] and err["class"] == "injected"

        sign_in(browser, s)
        browser.wait(lambda: "failed" in (browser.text('#jobs-body tr[data-job="orders"]') or ""),
                     what="the job listed as failed")
        open_job(browser, "orders")
        browser.wait(lambda: browser.visible("#job-alert"), what="the error panel")
        assert browser.value_of("error-hint") == err["hint"]
        assert browser.value_of("error-message") == err["message"]
        assert "retries by itself" in browser.text("#job-alert-title")
        assert browser.value_of("last-error-hint") == err["hint"]
        assert browser.value_of("attempts") == "1"
        assert "injected 1" in browser.text('#job [data-field="errors"]')
        shot(browser, "console-error.png")
        assert browser.exceptions() == []
    finally:
        s.stop()


def test_a_wrong_token_is_refused_and_forgotten(server, browser):
    browser.goto(server.url + "/")
    browser.type_into("#token", "not-the-token-0123456789")
    browser.click("#login-form button")
    browser.wait(lambda: "refused" in (browser.text("#login-error") or ""), what="the refusal")
    assert browser.eval("sessionStorage.length") == 0
    assert browser.visible("#login") and not browser.visible("#jobs")
    # and a signed-in page forgets the token when asked
    browser.eval("document.getElementById('token').value = ''")
    browser.type_into("#token", ts.TOKEN)
    browser.click("#login-form button")
    browser.wait(lambda: browser.visible("#jobs"), what="the job list")
    browser.click("#signout")
    assert browser.eval("sessionStorage.length") == 0
    assert browser.visible("#login")
    assert json.dumps(browser.exceptions()) == "[]"
