"""The Python SDK's side of tests/bench: a worker that registers the bench's three tasks
(no-op, 10 ms sleep, 20 s sleep) under workflow names starting with --prefix, and serves
them until SIGTERM or SIGINT. Async tasks, so the SDK runs them on its event loop."""

import argparse
import asyncio
from datetime import timedelta

from hatchet_sdk import Context, EmptyModel, Hatchet


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prefix", default="bench-py")
    parser.add_argument("--name", default="bench-py")
    parser.add_argument("--slots", type=int, default=100)
    args = parser.parse_args()

    hatchet = Hatchet()
    timeout = timedelta(minutes=1)
    noop = hatchet.workflow(name=f"{args.prefix}-noop")
    sleep10ms = hatchet.workflow(name=f"{args.prefix}-sleep10ms")
    sleep20s = hatchet.workflow(name=f"{args.prefix}-sleep20s")

    @noop.task(name="run", execution_timeout=timeout)
    async def run_noop(_input: EmptyModel, _ctx: Context) -> dict[str, str]:
        return {}

    @sleep10ms.task(name="run", execution_timeout=timeout)
    async def run_sleep10ms(_input: EmptyModel, _ctx: Context) -> dict[str, str]:
        await asyncio.sleep(0.01)
        return {}

    @sleep20s.task(name="run", execution_timeout=timeout)
    async def run_sleep20s(_input: EmptyModel, _ctx: Context) -> dict[str, str]:
        await asyncio.sleep(20)
        return {}

    worker = hatchet.worker(
        args.name, slots=args.slots, workflows=[noop, sleep10ms, sleep20s]
    )
    worker.start()


if __name__ == "__main__":
    main()
