"""The guide's task played by hud-python's own agent on a real provider SDK (OpenAI chat
completions at PROVIDER_BASE_URL); prints what the SDK reports, as JSON."""

import asyncio
import json
import os


async def main() -> None:
    import hud
    from hud import Environment
    from hud.agents import OpenAIChatAgent
    from openai import AsyncOpenAI

    env = Environment()
    env.connect_hub("my-assistant")
    task = env("answer_question", query="What is the capital of France?")
    provider = AsyncOpenAI(base_url=os.environ["PROVIDER_BASE_URL"], api_key="sk-provider")
    async with hud.eval(task) as ctx:
        agent = OpenAIChatAgent.create(model="gpt-hud-agent", openai_client=provider)
        await agent.run(ctx, max_steps=5)
    print(json.dumps({"trace_id": ctx.trace_id, "reward": ctx.reward, "error": str(ctx.error)}))


asyncio.run(main())
