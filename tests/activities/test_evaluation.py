"""The validation check and the judge's verdict, as the evaluate activity applies them."""

from __future__ import annotations

from activities.evaluation import check_tool_calls, combine, read_verdict
from loopline.models import Evaluator, EvaluatorResult, ExpectedToolCall, Message, ToolCall


def test_expected_calls_match_on_name_and_the_arguments_they_give() -> None:
    trajectory = [
        Message(role="user", content="refund A-1"),
        Message(
            role="assistant",
            tool_calls=[
                ToolCall(id="1", name="refund", arguments={"order": {"id": "A-1"}, "amount": 5})
            ],
        ),
    ]
    expected = [
        ExpectedToolCall(name="refund", arguments={"order": {"id": "A-1"}}),
        ExpectedToolCall(name="refund", arguments={"amount": 6}),
        ExpectedToolCall(name="ticket"),
    ]

    result = check_tool_calls(expected, trajectory, 1.0)

    assert result.score == 1 / 3 and not result.success
    assert [call["arguments"] for call in result.details["matched"]] == [{"order": {"id": "A-1"}}]


def test_a_verdict_is_read_from_json_and_anything_else_scores_zero() -> None:
    verdict = read_verdict('Here: {"score": 1.4, "passed": true, "reasoning": "fine"}', 1.0)
    assert (verdict.score, verdict.success, verdict.reasoning) == (1.0, True, "fine")
    for reply in ("8/10", '{"score": "high"}', '{"passed": true}', "{not json}"):
        verdict = read_verdict(reply, 1.0)
        assert verdict.score == 0.0 and not verdict.success
        assert verdict.details["reply"] == reply


def test_the_reward_is_the_weighted_mean_and_success_needs_every_evaluator() -> None:
    results = [
        EvaluatorResult(evaluator=Evaluator.scenario, score=1.0, success=True, weight=3),
        EvaluatorResult(evaluator=Evaluator.rubric, score=0.2, success=False, weight=1),
    ]
    assert combine(results) == (0.8, False)
