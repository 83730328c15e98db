"""The support desk at /desk: its files and headers, and the page in a real headless Chromium.

The browser cases run Debian's ``chromium`` through ``chromium-driver`` (selenium) against the
real stack (ingest -> Kafka -> projector -> Redis -> read API; for the push delivery log also a
real notifier delivering to a local receiver). One browser session serves the
whole module. Selenium blocks, and the stack's servers run on this test's event loop, so every
browser step runs in a worker thread (``asyncio.to_thread``). Each case leaves a screenshot in
``test-artefacts/desk/``.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.wait import WebDriverWait

from notifier.runner import Notifier
from notifier.settings import NotifierSettings
from query_api import desk_codes
from query_api.app import create_app as create_api
from query_api.desk import SECURITY_HEADERS
from query_api.settings import ApiSettings
from tests.factories import acceptance, new_secret, receipt
from tests.support.ports import free_port
from tests.support.receiver import Receiver
from tests.support.stack import Stack

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTEFACTS = ROOT / "test-artefacts" / "desk"
PROVIDERS_DOC = ROOT / "docs" / "providers.md"
CODES = ROOT / "query_api" / "desk_static" / "provider-codes.json"
WAIT_S = 20

T = TypeVar("T")


# --- without a browser ------------------------------------------------------------------


async def test_desk_files_are_served_with_the_security_headers(stack: Stack) -> None:
    """/desk and its files answer 200 with their types, CSP, nosniff, no-referrer, no-store."""
    expected = {
        "/desk": "text/html",
        "/desk/": "text/html",
        "/desk/desk.js": "text/javascript",
        "/desk/desk.css": "text/css",
        "/desk/provider-codes.json": "application/json",
        "/desk/favicon.svg": "image/svg+xml",
    }
    for path, content_type in expected.items():
        reply = await stack.get(path, api_key=None)
        assert reply.status == 200, path
        assert reply.headers["Content-Type"].startswith(content_type), path
        for name, value in SECURITY_HEADERS.items():
            assert reply.headers[name] == value, (path, name)
        assert reply.headers["Content-Security-Policy"].startswith("default-src 'self'")
    missing = await stack.get("/desk/nothing.js", api_key=None)
    assert missing.status == 404
    page = (await stack.get("/desk", api_key=None)).raw.decode()
    assert "<script>" not in page
    assert "style=" not in page
    assert re.findall(r'(?:src|href)="([^"]+)"', page) == [
        "/desk/favicon.svg",
        "/desk/desk.css",
        "/desk/desk.js",
    ]


def test_provider_code_table_is_generated_from_the_mapping_tables_of_the_docs() -> None:
    """The desk's provider table is exactly what ``python -m query_api.desk_codes`` makes of
    docs/providers.md's mapping tables, and every failure row carries retry advice."""
    assert CODES.read_text() == desk_codes.render(PROVIDERS_DOC.read_text()), (
        "regenerate: python -m query_api.desk_codes"
    )
    desk = json.loads(CODES.read_text())["rows"]
    assert {row["provider"] for row in desk} == {
        "twilio",
        "vonage",
        "vonage-messages",
        "infobip",
        "sinch",
        "smpp",
    }
    for row in desk:
        failure = "REJECTED" in row["status"] or "UNDELIVERED" in row["status"]
        if failure:
            assert row["retry"] in {"may help", "will not help"}, row
            assert row["retryNote"], row
        else:
            assert row["retry"] == "", row
            assert row["retryNote"] == "", row


# --- the browser ------------------------------------------------------------------------


def chromium_or_skip() -> None:
    """Skip (or fail in CI, whose set-up installs them) without Debian's chromium packages."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    reason = (
        "Debian's chromium and chromium-driver are not installed "
        "(apt-get install chromium chromium-driver; .ci/run installs them)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def downloads() -> Iterator[Path]:
    """A folder the browser saves CSV exports into."""
    folder = Path(tempfile.mkdtemp(prefix="msgstatus-desk-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[Chrome]:
    """One headless Chromium for the module, with every host but loopback unreachable."""
    chromium_or_skip()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root (CI)
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--lang=en-US",
        "--no-first-run",
        "--no-default-browser-check",
        "--no-pings",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-domain-reliability",
        "--disable-extensions",
        "--disable-sync",
        "--disable-client-side-phishing-detection",
        "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
        # Nothing leaves the machine: every name but 127.0.0.1 fails to resolve, and any
        # request not to loopback would go to a proxy port where nothing listens.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    driver = Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


async def in_browser(step: Callable[..., T], *args: Any) -> T:
    """Run a blocking browser step in a worker thread, so the stack keeps serving."""
    return await asyncio.to_thread(step, *args)


def wait(driver: Chrome) -> WebDriverWait[Chrome]:
    """An explicit wait with the module's deadline."""
    return WebDriverWait(driver, WAIT_S)


def open_desk(driver: Chrome, base: str, query: str | None = None) -> None:
    """Load the desk afresh (optionally at a ``#q=`` deep link) and wait for its script."""
    driver.get("about:blank")
    url = f"{base}/desk"
    if query is not None:
        url += "#q=" + query
    driver.get(url)
    wait(driver).until(
        lambda d: d.execute_script("return document.documentElement.dataset.ready") == "true"
    )


def use_key(driver: Chrome, key: str) -> None:
    """Type the API key into the password field and submit it."""
    field = driver.find_element(By.ID, "api-key")
    assert field.get_attribute("type") == "password"
    field.clear()
    field.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    wait(driver).until(ec.text_to_be_present_in_element((By.ID, "key-state"), "Key set"))


def search(driver: Chrome, text: str) -> None:
    """Type a search and press Enter (the keyboard path)."""
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys(text + "\n")


def notice(driver: Chrome, contains: str) -> str:
    """Wait for the alert box to show ``contains``; return its text."""
    wait(driver).until(ec.text_to_be_present_in_element((By.ID, "notice"), contains))
    return str(driver.find_element(By.ID, "notice").text)


def result_rows(driver: Chrome, count: int) -> list[WebElement]:
    """Wait until the results table shows ``count`` rows; return them."""
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#rows tbody tr")) == count)
    return list(driver.find_elements(By.CSS_SELECTOR, "#rows tbody tr"))


def cells(row: WebElement) -> list[str]:
    """The visible texts of a table row's cells."""
    return [str(c.text) for c in row.find_elements(By.TAG_NAME, "td")]


def screenshot(driver: Chrome, case: str) -> None:
    """Keep the whole page as ``test-artefacts/desk/<case>.png`` (beyond the window too)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 3000)}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": {**clip, "scale": 1}},
    )
    (ARTEFACTS / f"{case}.png").write_bytes(base64.b64decode(shot["data"]))


def logs(driver: Chrome, kind: str) -> list[dict[str, Any]]:
    """The browser's log entries of one kind since the last read (``driver.get_log``)."""
    return list(driver.execute("getLog", {"type": kind})["value"])


def check_clean(driver: Chrome, origin: str, expected: tuple[str, ...] = ()) -> None:
    """No request left the origin; the console holds no error but the ``expected`` network ones."""
    requests = 0
    for entry in logs(driver, "performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests += 1
            url = message["params"]["request"]["url"]
            assert url.startswith((origin + "/", "blob:" + origin + "/", "about:")), url
    assert requests > 0, "the performance log recorded no request: the check would be blind"
    for entry in logs(driver, "browser"):
        if entry["level"] != "SEVERE":
            continue
        text = entry["message"]
        foreseen = entry.get("source") == "network" and any(e in text for e in expected)
        assert foreseen, f"console error: {text}"


def iso(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` of a UTC time."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def base_time() -> datetime:
    """A recent whole second in UTC, so every event is inside the accepted time range."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


async def test_phone_search_lists_masked_rows_newest_first_and_loads_older(
    stack: Stack, browser: Chrome, downloads: Path
) -> None:
    """A phone search typed with spaces lists 20 masked rows newest first; Load older adds 3; CSV."""
    digits = "393" + str(uuid.uuid4().int)[:9]
    phone = "+" + digits
    t0 = base_time()
    events = [
        acceptance(
            str(uuid.uuid4()),
            at=iso(t0 + timedelta(minutes=i)),
            phone=phone,
            provider="twilio",
            reference={"service": "otp", "action": "login", "key": f"user-{i}"},
        )
        for i in range(23)
    ]
    assert (await stack.post(events)).status == 202
    await stack.wait_for_list(f"/api/messagestatus/phonenumber/%2B{digits}?count=100", 23)
    typed = f"+{digits[:2]} {digits[2:5]} {digits[5:8]} {digits[8:]}"
    masked = f"+39 ••• ••• {digits[-4:]}"

    def steps() -> tuple[list[list[str]], list[list[str]], str, str]:
        open_desk(browser, stack.api_url)
        use_key(browser, stack.api_key)
        search(browser, typed)
        first = [cells(r) for r in result_rows(browser, 20)]
        count = str(browser.find_element(By.ID, "count").text)
        screenshot(browser, "phone-list")
        older = browser.find_element(By.ID, "older")
        assert older.is_displayed()
        older.click()
        both = [cells(r) for r in result_rows(browser, 23)]
        assert not browser.find_element(By.ID, "older").is_displayed()
        browser.find_element(By.ID, "export").click()
        path = downloads / "msgstatus-phone.csv"
        wait(browser).until(lambda _d: path.exists() and path.stat().st_size > 0)
        csv_text = path.read_text(encoding="utf-8-sig")
        screenshot(browser, "phone-list-older")
        check_clean(browser, stack.api_url)
        assert "#q=" in browser.current_url
        assert stack.api_key not in browser.current_url
        return first, both, count, csv_text

    first, both, count, csv_text = await in_browser(steps)
    sent = [row[0] for row in both]
    assert sent == sorted(sent, reverse=True)
    assert sent[0] == iso(t0 + timedelta(minutes=22)).replace("T", " ").replace("Z", " UTC")
    assert [row[0] for row in first] == sent[:20]
    assert all(row[3] == masked for row in both)
    assert "20 messages" in count
    assert "newest first" in count
    assert both[0][1].startswith("PROVIDER_ACCEPTANCE")
    assert "in flight" in both[0][1]
    assert both[0][4] == "otp / login / user-22"
    table = list(csv.DictReader(io.StringIO(csv_text)))
    assert len(table) == 23
    assert [r["reference_key"] for r in table] == [f"user-{i}" for i in range(22, -1, -1)]
    assert {r["number"] for r in table} == {masked}
    assert digits not in csv_text
    assert table[0]["status"] == "PROVIDER_ACCEPTANCE"
    assert table[0]["final"] == "no"


async def test_uuid_search_shows_the_timeline_with_a_late_event_marked(
    stack: Stack, browser: Chrome
) -> None:
    """A UUID opens the detail: timeline in order, a late lower-rank SENT marked, DELIVERED kept."""
    message_id = str(uuid.uuid4())
    provider_id = "SM" + uuid.uuid4().hex
    t0 = base_time()
    events = [
        acceptance(message_id, at=iso(t0), provider="twilio", provider_id=provider_id),
        receipt(
            "DELIVERED",
            iso(t0 + timedelta(seconds=4)),
            message_id=message_id,
            provider_status="delivered",
        ),
        # Reported after the delivery receipt, with a later time: lower rank, no change.
        receipt(
            "SENT", iso(t0 + timedelta(seconds=9)), message_id=message_id, provider_status="sent"
        ),
    ]
    assert (await stack.post(events)).status == 202
    await stack.wait_for_history(message_id, 3)
    assert (await stack.wait_for_status(message_id, "DELIVERED")).status == 200

    def steps() -> tuple[list[list[str]], list[str | None], str, str, list[str]]:
        open_desk(browser, stack.api_url)
        use_key(browser, stack.api_key)
        search(browser, message_id.upper())
        wait(browser).until(ec.visibility_of_element_located((By.ID, "detail")))
        wait(browser).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")) == 3
        )
        rows = browser.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")
        timeline = [cells(r) for r in rows]
        classes = [r.get_attribute("class") for r in rows]
        facts = str(browser.find_element(By.ID, "facts").text)
        current = [
            str(r.text) for r in browser.find_elements(By.CSS_SELECTOR, "#codes tbody tr.current")
        ]
        copy_buttons = browser.find_elements(By.CSS_SELECTOR, "#facts button.copy")
        assert len(copy_buttons) == 2
        copy_buttons[0].click()  # copied, or selected for Ctrl+C without clipboard permission
        wait(browser).until(lambda _d: copy_buttons[0].text != "Copy")
        screenshot(browser, "message-detail")
        check_clean(browser, stack.api_url)
        return timeline, classes, facts, str(browser.find_element(By.ID, "count").text), current

    timeline, classes, facts, count, current = await in_browser(steps)
    assert [row[0].split(" ·")[0] for row in timeline] == [
        "PROVIDER_ACCEPTANCE",
        "DELIVERED",
        "SENT",
    ]
    assert [row[2] for row in timeline] == ["+0s", "+4s", "+9s"]
    assert classes[2] == "late"
    assert "did not change the status" in timeline[2][6]
    assert classes[0] != "late"
    assert classes[1] != "late"
    assert "DELIVERED · final" in facts
    assert provider_id in facts
    assert count == f"Message {message_id}: DELIVERED."
    assert len(current) == 1
    assert current[0].startswith("delivered (this message)")


async def test_reference_key_with_a_slash_and_a_deep_link(stack: Stack, browser: Chrome) -> None:
    """A reference key holding "/" is one key; the #q= deep link opens it without the key in it."""
    key = f"order/{uuid.uuid4().hex[:8]}/a b"
    message_id = str(uuid.uuid4())
    reference = {"service": "shop", "action": "confirm", "key": key}
    assert (await stack.post(acceptance(message_id, reference=reference))).status == 202
    encoded = key.replace("/", "%2F").replace(" ", "%20")
    await stack.wait_for_list(f"/api/messagestatus/reference/{encoded}", 1)

    def steps() -> tuple[list[str], list[str], str]:
        open_desk(browser, stack.api_url)
        use_key(browser, stack.api_key)
        search(browser, key)
        typed = cells(result_rows(browser, 1)[0])
        url = str(browser.current_url)
        open_desk(browser, stack.api_url, url.split("#q=", 1)[1])
        linked = cells(result_rows(browser, 1)[0])
        screenshot(browser, "reference-key")
        check_clean(browser, stack.api_url)
        return typed, linked, url

    typed, linked, url = await in_browser(steps)
    assert typed == linked
    assert typed[4] == f"shop / confirm / {key}"
    assert typed[3] == ""  # the document holds no phone number
    assert stack.api_key not in url


async def test_errors_and_empty_results_are_shown_as_messages(
    stack: Stack, browser: Chrome
) -> None:
    """No key, a refused key (403), an unknown id (404), a bad number (400), an empty list."""
    unknown = str(uuid.uuid4())

    def steps() -> dict[str, str]:
        seen = {}
        open_desk(browser, stack.api_url)
        browser.find_element(By.ID, "forget-key").click()
        search(browser, unknown)
        seen["no key"] = notice(browser, "Enter the API key")
        use_key(browser, "not-the-key")
        seen["403"] = notice(browser, "403")
        screenshot(browser, "refused-key")
        use_key(browser, stack.api_key)
        seen["404"] = notice(browser, "404")
        screenshot(browser, "not-found")
        search(browser, "+0123")
        seen["400"] = notice(browser, "400")
        search(browser, "+44 20 " + str(uuid.uuid4().int)[:8])
        wait(browser).until(ec.text_to_be_present_in_element((By.ID, "count"), "No messages"))
        seen["empty"] = str(browser.find_element(By.ID, "count").text)
        assert browser.find_element(By.ID, "count").get_attribute("aria-live") == "polite"
        screenshot(browser, "empty-list")
        check_clean(
            browser, stack.api_url, expected=("status of 400", "status of 403", "status of 404")
        )
        return seen

    seen = await in_browser(steps)
    assert "refused" in seen["403"]
    assert unknown in seen["404"]
    assert "phonenumber" in seen["400"]
    assert seen["empty"].startswith("No messages for +44 ••• ••• ")


async def test_an_unreachable_api_is_reported(stack: Stack, browser: Chrome) -> None:
    """When the API goes away after the page loaded, a search says it cannot be reached."""
    settings = ApiSettings(**stack.common(), api_keys=[stack.api_key], generation=stack.generation)
    runner = web.AppRunner(create_api(settings), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    try:

        def load() -> None:
            open_desk(browser, base)
            use_key(browser, stack.api_key)  # another port: another origin, its own storage

        await in_browser(load)
    finally:
        await runner.cleanup()

    def steps() -> str:
        search(browser, str(uuid.uuid4()))
        text = notice(browser, "cannot be reached")
        screenshot(browser, "api-unreachable")
        check_clean(browser, base, expected=("ERR_CONNECTION_REFUSED",))
        return text

    assert "network error" in await in_browser(steps)


async def test_message_detail_shows_the_push_delivery_log(stack: Stack, browser: Chrome) -> None:
    """A real notifier's attempts (503 then 200), a pending retry's next attempt, an empty log."""
    namespace = f"desk{uuid.uuid4().hex[:8]}"  # this notifier's schedule is its own
    receiver = await Receiver().start()
    notifier = Notifier(
        NotifierSettings(
            **stack.common(),
            group_id=f"desk-notifier-{namespace}",
            namespace=namespace,
            signing_secrets=[new_secret()],
            allow_hosts=["127.0.0.1"],
            retry_schedule_s=[0.2, 3600],
            retry_jitter=0.0,
            metrics_port=0,
            poll_timeout_ms=50,
            idle_poll_s=0.02,
        )
    )
    task = asyncio.create_task(notifier.run())
    settings = ApiSettings(
        **stack.common(), api_keys=[stack.api_key], generation=stack.generation, namespace=namespace
    )
    runner = web.AppRunner(create_api(settings), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    t0 = base_time()
    # flaky/1: 503 once, then 200; flaky/9: 503 twice, then waits an hour; none: no webhook.
    ids = {path: str(uuid.uuid4()) for path in ("flaky/1", "flaky/9", "none")}
    events: list[dict[str, Any]] = []
    for path, message_id in ids.items():
        event = acceptance(message_id, at=iso(t0))
        if path != "none":
            event["webhook"] = {"url": receiver.url(f"/{path}/desk")}
        events += [
            event,
            receipt("DELIVERED", iso(t0 + timedelta(seconds=2)), message_id=message_id),
        ]
    try:
        assert (await stack.post(events)).status == 202

        async def logged(message_id: str, attempts: int) -> bool:
            assert not task.done(), task
            reply = await stack.http.get(
                f"{base}/api/messagestatus/{message_id}/deliveries",
                headers={"X-Api-Key": stack.api_key},
            )
            return len((await reply.json())["attempts"]) >= attempts

        await stack.wait_for(lambda: logged(ids["flaky/1"], 2), what="two attempts")
        await stack.wait_for(lambda: logged(ids["flaky/9"], 2), what="two failed attempts")
        await stack.wait_for_status(ids["none"], "DELIVERED")

        def steps() -> dict[str, tuple[str, list[list[str]], list[list[str]]]]:
            seen = {}
            open_desk(browser, base)
            use_key(browser, stack.api_key)
            for path, message_id in ids.items():
                search(browser, message_id)
                wait(browser).until(ec.text_to_be_present_in_element((By.ID, "count"), message_id))
                wait(browser).until(lambda d: d.find_element(By.ID, "push-state").text != "")
                state = str(browser.find_element(By.ID, "push-state").text)
                endpoints = [
                    cells(r)
                    for r in browser.find_elements(By.CSS_SELECTOR, "#push-endpoints tbody tr")
                ]
                log = [
                    cells(r) for r in browser.find_elements(By.CSS_SELECTOR, "#push-log tbody tr")
                ]
                seen[path] = (state, endpoints, log)
                if path == "flaky/9":
                    screenshot(browser, "push-deliveries")
            check_clean(browser, base)
            return seen

        seen = await in_browser(steps)
    finally:
        notifier.stop()
        await asyncio.wait_for(task, 30)
        await runner.cleanup()
        await receiver.close()
    state, endpoints, log = seen["flaky/1"]
    assert state == "1 endpoint, 2 attempts recorded."
    assert [row[3] for row in log] == ["delivered", "retry"]  # newest first
    assert [row[4] for row in log] == ["200", "503"]
    assert {row[1] for row in log} == {"127.0.0.1"}
    assert all(re.fullmatch(r"\d+ ms|\d+\.\d\d s", row[5]) for row in log), log
    assert endpoints[0][1:4] == ["127.0.0.1", "delivered · the endpoint answered 2xx", "2"]
    assert endpoints[0][4] == "—"
    state, endpoints, log = seen["flaky/9"]
    assert [row[3] for row in log] == ["retry", "retry"]
    assert endpoints[0][2].startswith("pending")
    next_at = datetime.strptime(endpoints[0][4], "%Y-%m-%d %H:%M:%S.%f UTC").replace(tzinfo=UTC)
    assert timedelta(minutes=55) < next_at - datetime.now(UTC) < timedelta(minutes=61)
    state, endpoints, log = seen["none"]
    assert state.startswith("No push deliveries for this message")
    assert endpoints == []
    assert log == []
