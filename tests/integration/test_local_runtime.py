"""Local mode's Lambda runtime: concurrent requests in one process stay apart."""

import threading

from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, BaseRouter

from local_mode.lambda_runtime import isolate_powertools_requests


def test_each_thread_sees_its_own_powertools_request() -> None:
    isolate_powertools_requests()
    isolate_powertools_requests()  # idempotent: a second container must not wrap it again
    app = APIGatewayRestResolver()
    seen: dict[str, object] = {}
    ready, done = threading.Barrier(2), threading.Barrier(2)

    def request(name: str) -> None:
        BaseRouter.current_event = name  # what resolve() does with each event
        ready.wait()  # both threads have set their event before either reads it
        seen[name] = app.current_event
        done.wait()

    threads = [threading.Thread(target=request, args=(n,)) for n in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"first": "first", "second": "second"}
