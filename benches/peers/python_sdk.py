"""One round of the Python peer (the official `claude-agent-sdk`) for the I/O-path benchmark.

`python_sdk.py <fake-claude> <small-turn> <big-turn>` prints one JSON line:
`{"ready_s": ..., "turn_s": ..., "frames": ..., "sdk_version": ...}`.

- ready: `ClaudeSDKClient.connect()` (spawn, `initialize` answered) against a fake whose replay
  file is the small turn, so the fake's reading of the big file is not timed;
- turn: a second client on the big turn, from `query()` to the `ResultMessage`, counting every
  message `receive_response()` yields.

Run by scripts/bench.sh in its venv (target/bench-venv), never with a real CLI: `cli_path` is the
fake's path.
"""

import asyncio
import json
import sys
import time

import claude_agent_sdk
from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, ResultMessage


def options(fake: str, turn: str) -> ClaudeAgentOptions:
    return ClaudeAgentOptions(cli_path=fake, env={"FAKE_CLAUDE_REPLAY": turn})


async def round_(fake: str, small: str, big: str) -> dict:
    client = ClaudeSDKClient(options=options(fake, small))
    t = time.perf_counter()
    await client.connect()
    ready = time.perf_counter() - t
    await client.disconnect()

    client = ClaudeSDKClient(options=options(fake, big))
    await client.connect()
    t = time.perf_counter()
    await client.query("bench")
    frames = 0
    saw_result = False
    async for msg in client.receive_response():
        frames += 1
        if isinstance(msg, ResultMessage):
            saw_result = True
    turn = time.perf_counter() - t
    await client.disconnect()
    if not saw_result:
        raise SystemExit("python_sdk.py: the response ended before the ResultMessage")
    return {
        "ready_s": ready,
        "turn_s": turn,
        "frames": frames,
        "sdk_version": claude_agent_sdk.__version__,
    }


def main() -> None:
    if len(sys.argv) != 4:
        raise SystemExit("usage: python_sdk.py <fake-claude> <small-turn> <big-turn>")
    print(json.dumps(asyncio.run(round_(*sys.argv[1:]))))


if __name__ == "__main__":
    main()
