"""Runs as an operator finds them in the Temporal UI, driven in headless Chromium: filtered by
a Loopline search attribute, with environment, scenario, model, status and reward shown, the
activities' summaries on the timeline and what a waiting run waits for.

Screenshots are kept in tests/artifacts/ for people to look at.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Page, async_playwright

from tests.harness import (
    Stack,
    answer_step,
    dev_server,
    free_port,
    run_body,
    run_to_end,
    tool_step,
    wait_for_run,
)
from workers.cli.up import DEV_SERVER_TUNING

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).parent.parent / "artifacts"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium package, which .ci/run installs"
)


@pytest.fixture
async def ui_stack(tmp_path: Path) -> AsyncIterator[tuple[Stack, str]]:
    """A dev server of its own, serving the UI, with an API and a worker on it."""
    ui_port = free_port()
    server = await dev_server(ui=True, ui_port=ui_port, dev_server_extra_args=DEV_SERVER_TUNING)
    stack = Stack(
        temporal_address=server.client.service_client.config.target_host, workdir=tmp_path
    )
    stack.start_worker()
    await stack.start_api()
    try:
        yield stack, f"http://127.0.0.1:{ui_port}/namespaces/default/workflows"
    finally:
        stack.stop()
        await server.shutdown()


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield await browser.new_page(viewport={"width": 1600, "height": 1000})
        await browser.close()


async def shown_in_a_frame(page: Page, text: str, within: float = 30) -> None:
    """Wait for `text` in one of the page's frames: the UI renders summaries and details as
    Markdown, each in a sandboxed iframe of its own."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for frame in page.frames:
            if await frame.get_by_text(text, exact=True).count():
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{text!r} not shown within {within} s")


ORDER = {"customer": "ada", "order_id": "A-1002"}


async def test_the_temporal_ui_shows_and_filters_runs(
    ui_stack: tuple[Stack, str], page: Page
) -> None:
    stack, workflows = ui_stack
    refund = tool_step("issue_refund", order_id="A-1002", amount=54.5, reason="damaged")
    ticket = tool_step("open_ticket", order_id="A-1002", subject="refunded")
    async with stack.client() as api:
        refunded = await run_to_end(
            api, run_body("orders", "refund_damaged", ORDER, refund, ticket, answer_step("Done."))
        )
        trivia = await run_to_end(
            api, run_body("trivia", "capital", {"country": "Peru"}, answer_step("Lima"))
        )
        session = run_body("orders", "refund_damaged", ORDER, answer_step("Hello."), session=True)
        waiting = (await api.post("/v1/runs", json=session)).json()
        await wait_for_run(api, waiting["run_id"], until={"idle"})
    assert refunded["reward"] == 1.0, refunded["reward_details"]
    ARTIFACTS.mkdir(exist_ok=True)

    orders_only = quote('LooplineEnvironment="orders"')
    await page.goto(f"{workflows}?query={orders_only}")
    await page.get_by_role("link", name=refunded["workflow_id"]).wait_for()
    await page.get_by_role("link", name=waiting["workflow_id"]).wait_for()
    assert await page.get_by_role("link", name=trivia["workflow_id"]).count() == 0
    await page.screenshot(path=ARTIFACTS / "temporal-ui-runs-filtered.png")

    await page.goto(f"{workflows}/{refunded['workflow_id']}")
    # An in-process environment's lifecycle runs as local activities: the timeline names
    # them (UI 2.54 shows no summary for a local activity).
    for lifecycle in ("setup", "evaluate", "teardown"):
        await page.get_by_text(lifecycle, exact=True).first.wait_for()
    await page.screenshot(path=ARTIFACTS / "temporal-ui-run-timeline.png")
    await page.get_by_text("Search Attributes", exact=True).first.click()
    await page.get_by_text('"LooplineReward"').wait_for()
    shown = await page.locator("main").inner_text()
    for pair in (
        '"LooplineEnvironment": "orders"',
        '"LooplineScenario": "refund_damaged"',
        '"LooplineModel": "scripted"',
        '"LooplineStatus": "completed"',
        '"LooplineReward": 1',
    ):
        assert pair in shown, shown
    await page.screenshot(path=ARTIFACTS / "temporal-ui-search-attributes.png")

    await page.goto(f"{workflows}/{waiting['workflow_id']}")
    await page.get_by_text("User Metadata", exact=True).first.click()
    await shown_in_a_frame(page, "orders/refund_damaged · scripted")
    await shown_in_a_frame(page, "idle · waiting for the next user message")
    await page.screenshot(path=ARTIFACTS / "temporal-ui-waiting-run.png")
