"""What the viewer answers to what it cannot do: pages that say why, never a 500 or JSON,
and a browser without a valid session sent to sign in."""

from __future__ import annotations

import httpx

from tests.harness import Stack, session_body, wait_for_run


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
