"""What the viewer answers to what it cannot do: pages that say why, never a 500 or JSON,
and a browser without a valid session sent to sign in."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone

import httpx

from loopline.secrets import SecretBox
from tests.harness import Stack, answer_step, run_body, run_to_end, session_body, wait_for_run


async def test_a_form_that_lacks_a_field_is_a_page_that_names_it(api: httpx.AsyncClient) -> None:
    run_id = (await api.post("/v1/runs", json=session_body())).json()["run_id"]
    await wait_for_run(api, run_id, until={"idle"})

    empty = await api.post(f"/ui/runs/{run_id}/message", data={"content": ""})
    no_results = await api.post(f"/ui/runs/{run_id}/continue", data={})

    assert empty.status_code == 422 and "content" in empty.text
    assert no_results.status_code == 422 and "tool_results" in no_results.text
    assert all(r.headers["content-type"].startswith("text/html") for r in (empty, no_results))
    await api.post(f"/v1/runs/{run_id}/close", json={})


async def test_bad_query_values_and_unknown_pages_are_pages_too(api: httpx.AsyncClient) -> None:
    answers = {
        "/ui/runs?offset=99999999999999999999": 422,
        "/ui/runs?min_reward=lots": 422,
        "/ui/runs?status=sleeping": 422,
        "/ui/runs?created_after=yesterday": 422,
        f"/ui/runs?q={'x' * 5000}": 422,
        "/ui/batches?offset=-1": 422,
        "/ui/compare?a=only-one": 422,
        "/ui/runs/no-such-run": 404,
        "/ui/batches/no-such-batch": 404,
        "/ui/no-such-page": 404,
    }
    for path, status in answers.items():
        response = await api.get(path)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"].startswith("text/html"), path
        assert "<h1>" in response.text


async def test_pages_are_not_framed_by_other_sites(api: httpx.AsyncClient) -> None:
    response = await api.get("/ui/runs")

    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_a_browser_without_a_valid_session_is_sent_to_sign_in(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    anonymous = httpx.AsyncClient(base_url=str(api.base_url))
    async with anonymous:
        fresh = await anonymous.get("/ui/runs/abc")
        anonymous.cookies.set("loopline_session", "forged")
        forged = await anonymous.get("/ui/runs")
        anonymous.cookies.clear()
        login = await anonymous.post("/ui/login", data={"api_key": "not a key"})
        elsewhere = {"api_key": stack.api_key, "next": "//evil.example/ui/"}
        signed_in = await anonymous.post("/ui/login", data=elsewhere)

    assert (
        fresh.status_code == 303
        and fresh.headers["location"] == "/ui/login?next=%2Fui%2Fruns%2Fabc"
    )
    assert forged.status_code == 303 and forged.headers["location"].startswith("/ui/login")
    assert login.status_code == 401 and "API key" in login.text
    # A sign-in only ever leads to a page of the viewer.
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/ui/runs"
    assert "loopline_session" in signed_in.cookies


async def test_another_site_cannot_sign_a_browser_in(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as browser:
        cross_site = await browser.post(
            "/ui/login",
            data={"api_key": stack.api_key},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        other_origin = await browser.post(
            "/ui/login", data={"api_key": stack.api_key}, headers={"Origin": "https://evil.example"}
        )

    assert (cross_site.status_code, other_origin.status_code) == (403, 403)
    assert "set-cookie" not in cross_site.headers and "set-cookie" not in other_origin.headers


async def test_signing_out_forgets_even_an_ended_session(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as browser:
        browser.cookies.set("loopline_session", "ended-long-ago", path="/ui")
        refused = await browser.post("/ui/logout", data={"csrf_token": "wrong"})
        signed_out = await browser.post(
            "/ui/logout", data={"csrf_token": csrf_of("ended-long-ago", stack)}
        )

    assert refused.status_code == 403
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/ui/login"
    assert 'loopline_session=""' in signed_out.headers["set-cookie"]


def csrf_of(cookie: str, stack: Stack) -> str:
    """The CSRF token the viewer gives a session, from the stack's own secret key."""
    box = SecretBox((stack.workdir / "secret.key").read_bytes().strip())
    return hmac.new(box.derive("viewer-csrf"), cookie.encode(), hashlib.sha256).hexdigest()


async def test_run_listings_refuse_bounds_no_run_can_meet(api: httpx.AsyncClient) -> None:
    for query in (
        {"min_reward": "nan"},
        {"max_reward": "inf"},
        {"taskset_id": "ts\x00"},
        {"run_id_prefix": "x" * 65},
        {"created_after": "0001-01-01T00:00:00+14:00"},
    ):
        api_answer = await api.get("/v1/runs", params=query)
        page = await api.get("/ui/runs", params=query)
        assert (api_answer.status_code, page.status_code) == (422, 422), query
        name = next(iter(query))
        assert api_answer.json()["detail"][0]["loc"] == ["query", name]


async def test_listing_times_mean_the_same_instant_in_any_zone(api: httpx.AsyncClient) -> None:
    run = await run_to_end(
        api, run_body("trivia", "capital", {"country": "Kenya"}, answer_step("Nairobi"))
    )
    started = datetime.fromisoformat(run["created_at"])
    just_before = (started - timedelta(seconds=1)).astimezone(timezone(timedelta(hours=-5)))

    def listed(after: datetime) -> dict[str, str]:
        return {"created_after": after.isoformat(), "run_id_prefix": run["run_id"]}

    found = (await api.get("/v1/runs", params=listed(just_before))).json()
    missed = (await api.get("/v1/runs", params=listed(just_before + timedelta(hours=1)))).json()

    assert (found["total"], missed["total"]) == (1, 0)


async def test_a_method_a_page_does_not_take_says_which_it_does(api: httpx.AsyncClient) -> None:
    response = await api.delete("/ui/runs")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.headers["content-type"].startswith("text/html")
