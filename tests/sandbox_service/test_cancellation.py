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


async def cancel_as_the_answer_lands(steps: int) -> str:
    """Deliver the answer by hand, let `steps` loop steps pass, cancel; say which side won: "cancelled"
    (the call was still pending, so the race was reached and the cancellation must win) or "answered"."""
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
            outcome = "cancelled"
        else:
            assert call.result()["stdout"] == ANSWER["stdout"]
            outcome = "answered"
        session.close()
        return outcome
    finally:
        await pool.stop()


def test_a_cancelled_cell_call_is_never_answered():
    outcomes = [asyncio.run(cancel_as_the_answer_lands(steps)) for steps in range(5)]
    # With no step between the answer and the cancellation, the call has not resumed yet: the race
    # itself is reached (else the test above would check nothing), and cancelled it stays.
    assert outcomes[0] == "cancelled", outcomes
    # Once the call has had its steps it has its answer: the other branch is reached too.
    assert "answered" in outcomes, outcomes
