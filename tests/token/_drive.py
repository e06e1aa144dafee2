"""Drive a flow by hand: answer each effect from a script and record the effects asked for."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

from k8sauthn import Fetch, Fetched, Shared, Sleep


def drive(
    flow: Generator[Any, Any, Any], answers: Sequence[Fetched | BaseException]
) -> tuple[Any, list[Any]]:
    """Run ``flow``; each Fetch gets the next answer (an exception is thrown in); Sleep gets None.

    Shared effects run their sub-flow inline against the same script. Returns the flow's value
    and the list of effects it yielded; the flow's exception propagates.
    """
    script = list(answers)
    effects: list[Any] = []

    def run(gen: Generator[Any, Any, Any]) -> Any:
        send: Any = None
        throw: BaseException | None = None
        while True:
            try:
                effect = gen.send(send) if throw is None else gen.throw(throw)
            except StopIteration as stop:
                return stop.value
            effects.append(effect)
            send, throw = None, None
            if isinstance(effect, Fetch):
                answer = script.pop(0)
                if isinstance(answer, BaseException):
                    throw = answer
                else:
                    send = answer
            elif isinstance(effect, Shared):
                try:
                    send = run(effect.start())
                except Exception as exc:
                    throw = exc
            else:
                assert isinstance(effect, Sleep)

    value = run(flow)
    assert not script, f"unused answers: {script}"
    return value, effects
