"""The console in headless Chromium (Debian's chromium and chromium-driver, driven by Selenium) on the live stack:
log in, filter to a failed execution, open its timeline, replay it with a reason, see it succeed, find the audit
row; a viewer cannot replay; a wrong password and an expired session are refused. Each step leaves a screenshot in
test-artifacts/console/ (git-ignored), the run's artifacts."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy import text

from local.testing.live import LiveStack
from tests.e2e.console.support import new_operator, parked_payment

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "console"


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """A fresh headless Chromium (its own profile: no cookie carried over). Missing binaries are an error, not a
    skip: scripts/install-system-deps.sh installs them."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(binary):
            raise RuntimeError(f"{binary} is missing: run scripts/install-system-deps.sh (chromium, chromium-driver)")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a browser or driver
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1100", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    # A loaded machine (make test's sessions side by side) serves pages later: lookups wait for their element.
    driver.implicitly_wait(10)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def log_in(driver: WebDriver, live: LiveStack, username: str, password: str) -> None:
    driver.get(f"{live.api_url}/console/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()


def text_of(driver: WebDriver, element_id: str, timeout_s: float = 60.0) -> str:
    """The element's text once the page showing it has loaded: a click that posts a form (a replay runs the saga before
    the answer comes back) returns before the next page is there, later on a loaded machine."""
    return WebDriverWait(driver, timeout_s).until(
        expected_conditions.presence_of_element_located((By.ID, element_id))).text


def test_an_operator_finds_a_failed_execution_replays_it_and_finds_the_audit_row(
        live: LiveStack, browser: WebDriver) -> None:
    payment_id, name = parked_payment(live)
    username, password = new_operator(live, "operator")

    log_in(browser, live, username, "not-the-password")
    assert browser.current_url.endswith("/console/login")
    assert "wrong username or password" in text_of(browser, "login-error")
    shot(browser, "01-wrong-password")

    log_in(browser, live, username, password)
    assert browser.current_url.rstrip("/").endswith("/console")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart")  # the overview's charts
    assert username in browser.find_element(By.CSS_SELECTOR, "nav .who").text
    shot(browser, "02-overview")

    browser.find_element(By.LINK_TEXT, "Executions").click()
    Select(browser.find_element(By.ID, "f-status")).select_by_value("FAILED")
    browser.find_element(By.ID, "f-look").click()
    browser.find_element(By.ID, "f-payment").send_keys(payment_id)
    browser.find_element(By.ID, "f-apply").click()
    assert "status=FAILED" in browser.current_url and "needs_attention=yes" in browser.current_url
    rows = browser.find_elements(By.CSS_SELECTOR, "table.executions tbody tr")
    assert len(rows) == 1 and name in rows[0].text and "yes" in rows[0].text
    shot(browser, "03-executions-filtered")

    rows[0].find_element(By.LINK_TEXT, name).click()
    steps = browser.find_elements(By.CSS_SELECTOR, "#timeline li.step")
    assert len(steps) >= 3
    timeline = text_of(browser, "timeline")
    assert "Authorize" in timeline or "authorize" in timeline.lower()
    assert "tok_approve" not in browser.page_source  # the card token never shows
    assert payment_id in text_of(browser, "payment")
    shot(browser, "04-execution-timeline")

    browser.find_element(By.ID, "replay").click()
    assert f"payment {payment_id}" in text_of(browser, "what").replace("\n", " ")
    shot(browser, "05-replay-confirm")
    browser.find_element(By.ID, "reason").send_keys("CommitLedger failed: the database restarted")
    browser.find_element(By.ID, "confirm-replay").click()
    result = text_of(browser, "result")
    assert "SUCCEEDED" in result and "succeeded" in result
    shot(browser, "06-replay-succeeded")

    browser.find_element(By.LINK_TEXT, "Audit trail").click()
    audit = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "table.audit tbody tr")]
    mine = [row for row in audit if "CommitLedger failed: the database restarted" in row]
    assert len(mine) == 2 and any("finished" in row and "SUCCEEDED" in row for row in mine), audit
    assert all(username in row for row in mine)
    shot(browser, "07-audit")

    browser.find_element(By.ID, "logout").click()
    assert browser.current_url.endswith("/console/login")
    browser.get(f"{live.api_url}/console/executions")
    assert "/console/login" in browser.current_url  # logged out: the pages are closed


def test_a_viewer_sees_the_execution_but_cannot_replay(live: LiveStack, browser: WebDriver) -> None:
    _, name = parked_payment(live)
    username, password = new_operator(live, "viewer")
    log_in(browser, live, username, password)
    browser.get(f"{live.api_url}/console/executions/{name}")
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline li.step")
    assert not browser.find_elements(By.ID, "replay")
    shot(browser, "08-viewer-execution")
    browser.get(f"{live.api_url}/console/executions/{name}/replay")
    assert "a viewer cannot replay" in text_of(browser, "error")
    shot(browser, "09-viewer-replay-forbidden")
    with live.engine.connect() as conn:
        audited = conn.execute(text("SELECT count(*) FROM replay_audit WHERE operator = :u"),
                               {"u": username}).scalar_one()
    assert audited == 0


def test_an_expired_session_is_refused(live: LiveStack, browser: WebDriver) -> None:
    username, password = new_operator(live, "viewer")
    log_in(browser, live, username, password)
    browser.get(f"{live.api_url}/console/parked")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Parked payments"
    with live.engine.begin() as conn:
        expired = conn.execute(text(
            # As if the browser had been left idle since 9 hours ago: its idle end (30 min later) has passed.
            "UPDATE operator_sessions SET created_at = now() - interval '9 hours', last_seen_at = now() - "
            "interval '9 hours', expires_at = now() - interval '8 hours 30 minutes' WHERE operator_id = "
            "(SELECT id FROM operators WHERE username = :u) AND revoked_at IS NULL"), {"u": username}).rowcount
    assert expired == 1
    browser.get(f"{live.api_url}/console/parked")
    assert "/console/login" in browser.current_url
    assert "your session has ended" in text_of(browser, "login-error")
    shot(browser, "10-session-expired")
