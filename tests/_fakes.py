"""Small authenticators with scripted answers, for testing decorators."""

from __future__ import annotations

from collections.abc import Callable

from k8sauthn import Context, Flow, RequestView, Response, Sleep, UserInfo, pure

Answer = Response | None | BaseException


def user(name: str = "alice", *groups: str, uid: str = "") -> Response:
    return Response(UserInfo(name, uid=uid, groups=groups))


class FakeToken:
    """A token authenticator answering from a table (or a function); counts its calls."""

    def __init__(
        self, answers: dict[str, Answer] | Callable[[str, Context], Answer], *, sleep: float = 0
    ) -> None:
        self.answers = answers
        self.calls: list[str] = []
        self.contexts: list[Context] = []
        self.sleep = sleep

    def token_flow(self, token: str, ctx: Context, /) -> Flow[Response | None]:
        self.calls.append(token)
        self.contexts.append(ctx)
        if self.sleep:
            return self._slow(token, ctx)
        return self._answer(token, ctx)

    def _value(self, token: str, ctx: Context) -> Response | None:
        answers = self.answers
        answer = answers(token, ctx) if callable(answers) else answers.get(token)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _answer(self, token: str, ctx: Context) -> Flow[Response | None]:
        return pure(self._value(token, ctx))

    def _slow(self, token: str, ctx: Context) -> Flow[Response | None]:
        yield Sleep(self.sleep)
        return self._value(token, ctx)


class FakeRequest:
    """A request authenticator with one fixed answer; counts its calls."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.calls = 0

    def request_flow(self, request: RequestView, ctx: Context, /) -> Flow[Response | None]:
        self.calls += 1
        return self._flow()

    def _flow(self) -> Flow[Response | None]:
        if False:  # pragma: no cover - makes this a generator
            yield
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer
