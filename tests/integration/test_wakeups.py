"""Wake-up queues on moto's SQS and DynamoDB: a waiting call registers its queue on the run's item,
run_status sends the run's end to it, and the call's long poll returns at once; old queues go."""

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from tests.conftest import load_event
from workflow_api.adapters.run_signals import MAX_WAITERS, RunEnded, RunSignals, WaitersFull
from workflow_api.adapters.wakeups import (
    NEW_QUEUE_SECONDS,
    QUEUE_MAX_AGE_SECONDS,
    SWEEP_AFTER_SECONDS,
    WakeupQueueGone,
    WakeupQueues,
    run_name,
    sweep,
    wake,
)
from workflow_api.config import Settings

MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:execution:wakeups"


def run_arn() -> str:
    return f"{MACHINE_ARN}:{uuid.uuid4().hex}"


def signals() -> RunSignals:
    config = Settings.from_environment()
    return RunSignals(config.idempotency_table_name, config.idempotency_retention_days, boto3.client("dynamodb"))


def queues(prefix: str | None = None, clock: Any = time.time) -> WakeupQueues:
    return WakeupQueues(prefix or f"wakeup-test-{uuid.uuid4().hex[:8]}-", boto3.client("sqs"), clock)


def item(execution_arn: str) -> dict[str, Any]:
    table = Settings.from_environment().idempotency_table_name
    found: dict[str, Any] = boto3.client("dynamodb").get_item(
        TableName=table, Key={"pk": {"S": f"status#{execution_arn}"}}, ConsistentRead=True
    )["Item"]
    return found


def queue_urls(prefix: str) -> list[str]:
    return boto3.client("sqs").list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])


def test_whichever_comes_second_of_registration_and_end_sees_the_other(local_aws: Any) -> None:
    store, url = signals(), "https://sqs.us-east-1.amazonaws.com/123456789012/wakeup-x-1"
    registered_first, ended_first = run_arn(), run_arn()

    assert store.register(registered_first, url) is None
    assert store.record(registered_first, RunEnded("SUCCEEDED", 5)) == [url]  # the end goes to the queue
    assert store.record(registered_first, RunEnded("SUCCEEDED", 5)) == []  # told once: the item forgets it

    assert store.record(ended_first, RunEnded("FAILED", 7)) == []
    assert store.register(ended_first, url) == RunEnded("FAILED", 7)  # the call reads the end at once
    for arn in (registered_first, ended_first):  # no queue is left on an ended run's item
        assert "waiters" not in item(arn), item(arn)


def test_a_runs_item_holds_a_bounded_number_of_waiters(local_aws: Any) -> None:
    store, arn = signals(), run_arn()
    urls = [f"https://sqs.us-east-1.amazonaws.com/123456789012/wakeup-x-{i}" for i in range(MAX_WAITERS + 1)]
    for url in urls[:MAX_WAITERS]:
        assert store.register(arn, url) is None

    with pytest.raises(WaitersFull):  # this call polls the item instead
        store.register(arn, urls[-1])
    assert store.register(arn, urls[0]) is None  # a queue already there: nothing grows
    assert len(item(arn)["waiters"]["SS"]) == MAX_WAITERS

    assert store.record(arn, RunEnded("SUCCEEDED", 9)) == sorted(urls[:MAX_WAITERS])  # every one is told
    assert store.register(arn, urls[-1]) == RunEnded("SUCCEEDED", 9)  # the end, not "full"


def test_the_end_sent_by_run_status_wakes_the_waiting_call_at_once(local_aws: Any) -> None:
    arn, calls = run_arn(), Counter[str]()
    function = local_aws.functions["RunStatusFunction"]
    event = {"detail": {"executionArn": arn, "status": "SUCCEEDED", "stopDate": int(time.time() * 1000)}}
    with queues().lease(calls) as queue:
        assert signals().register(arn, queue.url) is None
        began = time.monotonic()
        answered: list[Any] = []
        sender = threading.Timer(0.3, lambda: answered.append(function.invoke(event)))
        sender.start()

        woken = queue.wait(arn, 10, calls)

        took = time.monotonic() - began
        sender.join()
    assert woken
    assert answered == [{"executionArn": arn, "status": "SUCCEEDED", "kept": True, "woken": 1}]
    assert took < 5, took  # returned on the message, not at the end of its 10 s
    assert calls == {"CreateQueue": 1, "ReceiveMessage": 1}


def test_run_status_sends_the_end_of_a_run_named_for_a_queue_there_and_records_nothing(local_aws: Any) -> None:
    config, calls = Settings.from_environment(), Counter[str]()
    assert config.wakeup_queue_prefix and config.wakeup_queue_url_prefix  # as the template sets them
    pool = WakeupQueues(config.wakeup_queue_prefix, boto3.client("sqs"), url_prefix=config.wakeup_queue_url_prefix)
    with pool.lease(calls) as queue:
        arn = f"{MACHINE_ARN}:{run_name(uuid.uuid4().hex, queue)}"
        event = {"detail": {"executionArn": arn, "status": "SUCCEEDED", "stopDate": int(time.time() * 1000)}}

        told = local_aws.functions["RunStatusFunction"].invoke(event)

        assert told == {"executionArn": arn, "status": "SUCCEEDED", "kept": False, "woken": 1}
        assert queue.wait(arn, 1, calls)
    assert signals().ended(arn) is None  # no item: nobody registers on such a run


def test_a_message_about_another_run_is_passed_over(local_aws: Any) -> None:
    calls = Counter[str]()
    with queues().lease(calls) as queue:
        wake([queue.url], run_arn(), RunEnded("SUCCEEDED", 1), boto3.client("sqs"))  # an earlier call's run

        assert queue.wait(run_arn(), 1, calls) is False
    assert calls["ReceiveMessage"] >= 1


def test_a_queue_that_is_gone_is_passed_over_by_wake_and_replaced_by_lease(local_aws: Any) -> None:
    now = [time.time()]
    pool, calls, sqs = queues(clock=lambda: now[0]), Counter[str](), boto3.client("sqs")
    with pool.lease(calls) as kept, pool.lease(calls) as deleted:
        sqs.delete_queue(QueueUrl=deleted.url)
        now[0] += NEW_QUEUE_SECONDS + 1  # old enough that "does not exist" means gone, not "not yet"
        assert wake([deleted.url, kept.url], run_arn(), RunEnded("SUCCEEDED", 1), sqs) == 1
        with pytest.raises(WakeupQueueGone):
            deleted.wait(run_arn(), 1, calls)
    with pool.lease(calls) as first, pool.lease(calls) as second:
        assert {first.url, second.url} & {deleted.url} == set()
        assert kept.url in {first.url, second.url}


def test_a_queue_serves_one_call_at_a_time_and_is_kept_for_the_next(local_aws: Any) -> None:
    prefix = f"wakeup-test-{uuid.uuid4().hex[:8]}-"
    pool, calls = queues(prefix), Counter[str]()
    start = threading.Barrier(4)

    def lease_while_others_do() -> str:
        with pool.lease(calls) as queue:
            start.wait(timeout=10)
            return queue.url

    with ThreadPoolExecutor(4) as threads:
        urls = list(threads.map(lambda _: lease_while_others_do(), range(4)))
    assert len(set(urls)) == 4  # four calls at once, four queues

    with pool.lease(calls) as queue:
        assert queue.url in urls  # then reused, not made again
    assert calls["CreateQueue"] == 4
    assert sorted(queue_urls(prefix)) == sorted(urls)


def test_an_hour_old_queue_is_replaced_and_deleted(local_aws: Any) -> None:
    prefix, now = f"wakeup-test-{uuid.uuid4().hex[:8]}-", [time.time()]
    pool, calls = queues(prefix, clock=lambda: now[0]), Counter[str]()
    with pool.lease(calls) as queue:
        old = queue.url
    now[0] += QUEUE_MAX_AGE_SECONDS

    with pool.lease(calls) as queue:
        assert queue.url != old
    assert queue_urls(prefix) == [queue.url]
    assert calls == {"CreateQueue": 2, "DeleteQueue": 1}


def test_sweep_deletes_only_this_stacks_queues_that_outlived_their_container(local_aws: Any) -> None:
    prefix, other = f"wakeup-test-{uuid.uuid4().hex[:8]}-", f"wakeup-other-{uuid.uuid4().hex[:8]}-"
    calls, sqs = Counter[str](), boto3.client("sqs")
    for pool in (queues(prefix), queues(prefix), queues(other)):
        with pool.lease(calls):
            pass

    assert sweep(prefix, sqs, now=time.time()) == []  # all young
    assert len(sweep(prefix, sqs, now=time.time() + SWEEP_AFTER_SECONDS + 1)) == 2

    assert queue_urls(prefix) == []
    assert len(queue_urls(other)) == 1


def test_the_sweeper_function_runs_in_local_mode(local_aws: Any) -> None:
    prefix = Settings.from_environment().wakeup_queue_prefix
    assert prefix is not None
    with queues(prefix).lease(Counter()) as queue:
        answer = local_aws.functions["QueueSweeperFunction"].invoke(load_event("sweep_queues.json"))

        assert answer == {"deleted": 0}  # a queue in use is young
        assert queue.url in queue_urls(prefix)


def _held(queue_url: str) -> list[Any]:
    """The messages local mode's SQS (moto) holds for a queue."""
    from moto.sqs.models import sqs_backends

    return list(sqs_backends["123456789012"]["us-east-1"].get_queue(queue_url.rsplit("/", 1)[1])._messages)


def test_a_message_past_its_queues_retention_is_gone_as_in_sqs(local_aws: Any) -> None:
    calls, client = Counter[str](), boto3.client("sqs")
    with queues().lease(calls) as queue:
        client.send_message(QueueUrl=queue.url, MessageBody='{"executionArn": "old"}')
        (old,) = _held(queue.url)
        old.sent_timestamp -= 61_000  # sent 61 s ago: the queue keeps messages 60 s

        client.send_message(QueueUrl=queue.url, MessageBody='{"executionArn": "new"}')
        received = client.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10)["Messages"]

    assert [message["Body"] for message in received] == ['{"executionArn": "new"}']


def test_a_queue_holds_only_messages_it_could_still_hand_out(local_aws: Any) -> None:
    """A wake-up is received once and hidden for 12 h, past its 60 s retention: SQS never hands it
    out again. moto kept every one, and walked them all on each send and receive."""
    calls = Counter[str]()
    with queues().lease(calls) as queue:
        for _ in range(20):
            arn = run_arn()
            wake([queue.url], arn, RunEnded("SUCCEEDED", 1))
            assert queue.wait(arn, 1, calls)

        assert len(_held(queue.url)) == 1  # the last, received since the last send
