"""The scenario-as-an-endpoint guide's Python example, its lines unchanged inside an async
main (the guide writes them at top level, as in a notebook). Runs with hud-python 0.5.x."""

import asyncio


async def main() -> None:
    import hud
    from hud import Environment

    env = Environment()
    env.connect_hub("my-assistant")

    # Create a task with scenario and args
    task = env("answer_question", query="What is the capital of France?")

    # Run evaluation
    async with hud.eval(task) as ctx:
        result = await ctx.call_tool("respond", answer="Paris is the capital of France.")

    print(result.content[0].text)


asyncio.run(main())
