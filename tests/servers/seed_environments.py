"""The environments the seed documents' examples name, so the examples run unchanged."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from loopline import Environment, Reward, Setup

my_assistant = Environment("my-assistant", description="The scenario-as-an-endpoint guide's.")
support_agent = Environment("support-agent", description="The webhook handler example's.")
ops = Environment("ops", description="The scheduled task example's.")
chat_assistant = Environment("chat-assistant", description="The chat interface example's.")


@my_assistant.tool
def search(query: str) -> str:
    """Search the assistant's notes."""
    return f"notes on {query}: Paris is the capital of France."


@my_assistant.tool(name="respond", stop=True)
def respond_to_user(answer: str) -> str:
    """Respond to the user with a final answer."""
    # The guide's Python example calls it; its answer is the run's.
    return answer


@my_assistant.scenario(description="Answer a user question using available tools.")
async def answer_question(query: str) -> AsyncGenerator[Setup | Reward | None, str]:
    yield my_assistant.setup(f"Answer this question: {query}")
    result = yield None
    # The guide's own check.
    yield my_assistant.reward(1.0 if "helpful" in result.lower() else 0.0)


@support_agent.scenario(description="Handle a support ticket.")
async def handle_ticket(ticket_id: str) -> AsyncGenerator[Setup | Reward | None, str]:
    yield support_agent.setup(f"Handle ticket {ticket_id}.")
    result = yield None
    yield support_agent.reward(1.0 if ticket_id in result else 0.0)


@ops.scenario(description="Clean up for the day.")
async def daily_cleanup() -> AsyncGenerator[Setup | Reward | None, str]:
    yield ops.setup("Do the daily cleanup.")
    result = yield None
    yield ops.reward(1.0 if result else 0.0)


@chat_assistant.scenario(description="Answer a chat message.")
async def respond(message: str) -> AsyncGenerator[Setup | Reward | None, str]:
    yield chat_assistant.setup(message)
    result = yield None
    yield chat_assistant.reward(1.0 if result else 0.0)
