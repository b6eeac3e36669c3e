"""A cell's caller that is cancelled stays cancelled, even when the cell's answer lands at that moment.

Python 3.11's `asyncio.wait_for` returns the result instead in that case, and a sample the solver had
stopped early ran on to its end. The race is forced here: the answer is delivered by hand and the
cancellation follows after each possible number of loop steps.
"""

from __future__ import annotations

import asyncio

import pytest

from sandbox_service.pool import Pool, PoolSettings

ANSWER = {"status": "OK", "stdout": "delivered by the test\n"}


async def cancel_as_the_answer_lands(steps: int) -> asyncio.Task:
    pool = Pool(PoolSettings(pool_size=1, isolation="rlimit"))
    await pool.start()
    try:
        session = pool.open_session(pool.settings.default_limits)
        call = asyncio.create_task(session.run("import time; time.sleep(30)"))
        zygote = session.zygote
        while not zygote._waiters:
            await asyncio.sleep(0.001)
        (waiter,) = zygote._waiters.values()
        waiter.set_result(dict(ANSWER))
        for _ in range(steps):
            await asyncio.sleep(0)
        if call.cancel():  # still running: the cancellation must win over the answer
            with pytest.raises(asyncio.CancelledError):
                await call
        else:
            assert call.result()["stdout"] == ANSWER["stdout"]
        session.close()
        return call
    finally:
        await pool.stop()


@pytest.mark.parametrize("steps", range(5))
def test_a_cancelled_cell_call_is_never_answered(steps):
    asyncio.run(cancel_as_the_answer_lands(steps))
