"""The viewer (/ui) in headless Chromium against the real stack: what a run, a session and
a batch look like, live updates, answering a session from its page, and who may see and
do what. Screenshots are kept in tests/artifacts/ for people to look at."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from loopline.models import Scope
from tests.api.test_batches import CAPITAL_TASKS, wait_for_batch
from tests.harness import (
    Stack,
    answer_step,
    run_body,
    run_to_end,
    session_body,
    tool_step,
    wait_for_run,
)

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).parents[2] / "artifacts"
# The longest a live page may lag behind what was recorded (the promise).
LIVE_LAG_SECONDS = 2.0

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium package, which .ci/run installs"
)

REFUND = run_body(
    "orders",
    "refund_damaged",
    {"customer": "ada", "order_id": "A-1002"},
    tool_step("get_order", order_id="A-1002"),
    tool_step("issue_refund", order_id="A-1002", amount=54.5, reason="arrived damaged"),
    answer_step("Refunded 54.50 for the damaged desk lamp."),
    evaluation={"validation": [{"name": "get_order"}]},
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def keyed_page(browser: Browser, key: str) -> Page:
    """A page whose every request (fetches and the event stream too) sends `key`."""
    context = await browser.new_context(
        extra_http_headers={"Authorization": f"Bearer {key}"},
        viewport={"width": 1400, "height": 1000},
    )
    return await context.new_page()


async def signed_in(browser: Browser, stack: Stack, key: str, path: str) -> Page:
    """A browser that signs in with `key` through the sign-in form, then opens `path`."""
    context: BrowserContext = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{stack.api_url}{path}")
    assert "/ui/login" in page.url
    await page.fill("input[name=api_key]", key)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{stack.api_url}{path}")
    return page


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / f"viewer-{name}.png", full_page=True)


async def test_a_runs_page_shows_its_messages_tool_calls_state_and_reward(
    stack: Stack, api: httpx.AsyncClient, browser: Browser
) -> None:
    run = await run_to_end(api, REFUND)
    run_id = run["run_id"]

    html = (await api.get(f"/ui/runs/{run_id}")).text
    assert "Customer ada writes" in html and "Refunded 54.50" in html
    assert "get_order" in html and "issue_refund" in html

    page = await keyed_page(browser, stack.api_key)
    await page.goto(f"{stack.api_url}/ui/runs/{run_id}")
    refund = page.locator("details.call", has_text="issue_refund")
    await refund.locator("summary").click()
    await refund.get_by_text("refunded 54.50 on order A-1002").wait_for()
    assert "/refunds/0" in await refund.inner_text()
    assert await page.locator(".run-head .reward").inner_text() == str(run["reward"])
    scenario_row = page.locator(".reward-section tr", has_text="scenario")
    assert "refunded_in_full" in await scenario_row.inner_text()
    assert await page.locator("article.step").count() == 3
    await shot(page, "run")

    listing = await keyed_page(browser, stack.api_key)
    await listing.goto(f"{stack.api_url}/ui/runs?scenario=refund_damaged&min_reward=0.5")
    await listing.locator(f"a[href='/ui/runs/{run_id}']").wait_for()
    await shot(listing, "runs")
    await listing.goto(f"{stack.api_url}/ui/runs?q={run_id}")
    assert listing.url.endswith(f"/ui/runs/{run_id}")


async def test_a_live_runs_page_shows_a_new_step_within_two_seconds(
    stack: Stack, api: httpx.AsyncClient, browser: Browser
) -> None:
    response = await api.post("/v1/runs", json=session_body())
    run_id = response.json()["run_id"]
    await wait_for_run(api, run_id, until={"idle"})
    page = await keyed_page(browser, stack.api_key)
    await page.goto(f"{stack.api_url}/ui/runs/{run_id}")
    await page.locator("#step-1").wait_for()
    await page.fill("textarea[name=content]", "a draft being written")

    sent = await api.post(f"/v1/runs/{run_id}/messages", json={"content": "And Peru?"})
    assert sent.status_code == 200, sent.text
    await page.locator("#step-2").wait_for(timeout=30_000)
    seen = time.time()

    recorded = await recorded_at(api, run_id, step=2)
    assert seen - recorded.timestamp() < LIVE_LAG_SECONDS, (seen, recorded)
    assert await page.get_by_text("And Peru?").count() == 1
    # What the user was typing is still there after the page followed the run.
    await wait_for_run(api, run_id, until={"idle"})
    await page.locator(".controls form").first.wait_for()
    assert await page.input_value("textarea[name=content]") == "a draft being written"
    await api.post(f"/v1/runs/{run_id}/close", json={})


async def recorded_at(api: httpx.AsyncClient, run_id: str, step: int) -> datetime:
    """When the run's `step`th model reply was recorded."""
    events = (await api.get(f"/v1/runs/{run_id}/events", params={"limit": 1000})).json()
    replies = [e for e in events if e["type"] == "message" and e["data"]["role"] == "assistant"]
    return datetime.fromisoformat(replies[step - 1]["created_at"])


async def test_a_session_is_answered_from_its_page_and_continues(
    stack: Stack, api: httpx.AsyncClient, browser: Browser
) -> None:
    run_id = (await api.post("/v1/runs", json=session_body())).json()["run_id"]
    await wait_for_run(api, run_id, until={"idle"})
    writer = await stack.create_key("default", Scope.task_write, Scope.task_read)
    page = await signed_in(browser, stack, writer, f"/ui/runs/{run_id}")

    await page.fill("textarea[name=content]", "Which is larger, Kenya or Peru?")
    await page.click("form[action$='/message'] button[type=submit]")
    await page.locator("#step-2").wait_for(timeout=30_000)
    await page.get_by_text("Which is larger, Kenya or Peru?").wait_for()
    await shot(page, "session")

    run = await wait_for_run(api, run_id, until={"idle"})
    assert run["steps"] == 2
    await page.click("form[action$='/close'] button")
    assert (await wait_for_run(api, run_id))["stop_reason"] == "closed"


async def test_client_tool_calls_are_answered_from_the_page(
    stack: Stack, api: httpx.AsyncClient, browser: Browser
) -> None:
    body = run_body(
        "trivia",
        "capital",
        {"country": "Kenya"},
        tool_step("read_file", path="notes/kenya.txt"),
        answer_step("Nairobi"),
        client_tools=[
            {
                "name": "read_file",
                "description": "Read a file of the caller's.",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            }
        ],
    )
    run_id = (await api.post("/v1/runs", json=body)).json()["run_id"]
    await wait_for_run(api, run_id, until={"awaiting_input"})
    page = await keyed_page(browser, stack.api_key)
    await page.goto(f"{stack.api_url}/ui/runs/{run_id}")

    await page.fill("textarea[name^='result:']", "Kenya's capital is Nairobi.")
    await page.click("form[action$='/continue'] button[type=submit]")

    run = await wait_for_run(api, run_id)
    assert run["status"] == "completed" and run["answer"] == "Nairobi"
    await page.goto(f"{stack.api_url}/ui/runs/{run_id}")
    call = page.locator("details.call", has_text="read_file")
    assert "answered by the caller" in await call.inner_text()


async def test_a_batch_page_shows_progress_scores_and_a_histogram(
    stack: Stack, api: httpx.AsyncClient, browser: Browser
) -> None:
    body = {
        "tasks": CAPITAL_TASKS,
        "rollout_count": 3,
        "script": {"steps": [answer_step("Paris")]},
    }
    created = (await api.post("/v1/batches", json=body)).json()
    batch = await wait_for_batch(api, created["batch_id"])
    page = await keyed_page(browser, stack.api_key)
    await page.goto(f"{stack.api_url}/ui/batches/{batch['batch_id']}")

    france = page.locator("table.scores tr", has_text="France")
    assert "100%" in await france.inner_text()
    assert await page.locator("svg.histogram rect").count() == 10
    assert await page.locator(".grid a.cell").count() == 9
    assert "9 of 9 ended" in await page.locator(".progress-text").inner_text()
    await shot(page, "batch")
    await page.goto(f"{stack.api_url}/ui/batches")
    await page.locator(f"a[href='/ui/batches/{batch['batch_id']}']").wait_for()


async def test_two_runs_are_compared_step_by_step(
    stack: Stack, api: httpx.AsyncClient, browser: Browser
) -> None:
    first = await run_to_end(api, REFUND)
    other = {**REFUND, "script": {"steps": [answer_step("I cannot help with refunds.")]}}
    second = await run_to_end(api, other)
    page = await keyed_page(browser, stack.api_key)
    await page.goto(f"{stack.api_url}/ui/compare?a={first['run_id']}&b={second['run_id']}")

    assert await page.locator("tr.differs").count() == 3
    assert await page.get_by_text("I cannot help with refunds.").count() == 1
    await shot(page, "compare")


async def test_another_projects_run_is_a_404_page(
    stack: Stack, api: httpx.AsyncClient, browser: Browser
) -> None:
    run = await run_to_end(api, REFUND)
    outsider = await stack.create_key("elsewhere", Scope.admin)
    page = await keyed_page(browser, outsider)

    response = await page.goto(f"{stack.api_url}/ui/runs/{run['run_id']}")

    assert response is not None and response.status == 404
    assert "no run" in await page.locator("section.error").inner_text()
    await page.goto(f"{stack.api_url}/ui/runs")
    assert await page.locator(f"a[href='/ui/runs/{run['run_id']}']").count() == 0


async def test_a_read_only_key_sees_no_write_controls_and_cannot_post_them(
    stack: Stack, api: httpx.AsyncClient, browser: Browser
) -> None:
    run_id = (await api.post("/v1/runs", json=session_body())).json()["run_id"]
    await wait_for_run(api, run_id, until={"idle"})
    reader = await stack.create_key("default", Scope.task_read)
    page = await signed_in(browser, stack, reader, f"/ui/runs/{run_id}")

    assert await page.locator(".controls form").count() == 0
    assert "read only" in await page.locator(".top .who").inner_text()
    await shot(page, "read-only")
    refused = await page.request.post(
        f"{stack.api_url}/ui/runs/{run_id}/message", form=await csrf_form(page, "hello")
    )
    assert refused.status == 403

    await api.post(f"/v1/runs/{run_id}/close", json={})


async def test_a_form_without_the_sessions_csrf_token_is_refused(
    stack: Stack, api: httpx.AsyncClient, browser: Browser
) -> None:
    run_id = (await api.post("/v1/runs", json=session_body())).json()["run_id"]
    await wait_for_run(api, run_id, until={"idle"})
    writer = await stack.create_key("default", Scope.task_write, Scope.task_read)
    page = await signed_in(browser, stack, writer, f"/ui/runs/{run_id}")
    url = f"{stack.api_url}/ui/runs/{run_id}/message"

    forged = await page.request.post(url, form={"content": "forged"})
    wrong = await page.request.post(url, form={"content": "forged", "csrf_token": "0" * 64})
    genuine = await page.request.post(url, form=await csrf_form(page, "genuine"))

    assert (forged.status, wrong.status) == (403, 403)
    assert genuine.status == 200
    contents = [
        event["data"].get("content")
        for event in (await api.get(f"/v1/runs/{run_id}/events")).json()
    ]
    assert "forged" not in contents
    await api.post(f"/v1/runs/{run_id}/close", json={})


async def csrf_form(page: Page, content: str) -> dict[str, Any]:
    """A message form with the CSRF token of the page's session, as its own form has it."""
    token = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    return {"content": content, "csrf_token": token or ""}


async def test_signing_in_with_a_wrong_key_says_so(stack: Stack, browser: Browser) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{stack.api_url}/ui/login")
    await page.fill("input[name=api_key]", "ll_not_a_real_key")
    await page.click("button[type=submit]")

    assert "not valid" in await page.locator(".problem").inner_text()
    cookies = await context.cookies()
    assert not any(cookie["name"] == "loopline_session" for cookie in cookies)


async def test_the_api_docs_render_with_no_internet(stack: Stack, browser: Browser) -> None:
    context = await browser.new_context()
    outside: list[str] = []

    async def local_only(route: Any) -> None:
        request = route.request
        if request.url.startswith(stack.api_url):
            await route.continue_()
            return
        # ReDoc's bundle links its maker's logo from their site: an image, not a need.
        if request.resource_type != "image":
            outside.append(request.url)
        await route.abort()

    await context.route("**/*", local_only)
    page = await context.new_page()
    await page.goto(f"{stack.api_url}/docs")
    await page.locator(".opblock-summary-path", has_text="/v1/runs").first.wait_for()
    await page.goto(f"{stack.api_url}/redoc")
    await page.get_by_text("Start an agent episode").first.wait_for()
    assert outside == []
