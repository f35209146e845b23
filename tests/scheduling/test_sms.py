"""The SMS backends: validation, the development backends, and the HTTP backend against a
fake provider on loopback."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import time_machine

from scheduling import sms
from scheduling.sms import (
    ConsoleSmsBackend,
    FileSmsBackend,
    HttpSmsBackend,
    LocmemSmsBackend,
    SmsError,
    SmsMessage,
    get_sms_backend,
    send_sms,
)

TOKEN = "tok-4f8a0c1e-very-secret"
BODY = "Reminder: your session with Dr. Weber is tomorrow at 10:00. Reply C to cancel."
NUMBER = "+4930123456"


@pytest.fixture(autouse=True)
def _empty_outbox() -> Iterator[None]:
    sms.outbox.clear()
    yield
    sms.outbox.clear()


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "to",
    [
        "",
        "4930123456",  # no plus
        "+0930123456",  # country code cannot start with 0
        "+49301",  # too short
        "+4930123456789012",  # 16 digits
        "+49 30 123456",  # spaces
        "+49-30-123456",
        "+4930123456\n",  # `$` would let this through
        "+49३०१२३४५६",  # Devanagari digits are \d in Unicode regexes
        "tel:+4930123456",
    ],
)
def test_it_refuses_numbers_that_are_not_e164(to: str) -> None:
    with pytest.raises(SmsError, match=r"E\.164"):
        LocmemSmsBackend().send(SmsMessage(to=to, body="Hello"))
    assert sms.outbox == []


@pytest.mark.parametrize("to", ["+4930123", "+4930123456", "+123456789012345"])
def test_it_accepts_e164_numbers_of_7_to_15_digits(to: str) -> None:
    LocmemSmsBackend().send(SmsMessage(to=to, body="Hello"))
    assert sms.outbox == [SmsMessage(to=to, body="Hello")]


@pytest.mark.parametrize("body", ["", "   ", "\n"])
def test_it_refuses_an_empty_body(body: str) -> None:
    with pytest.raises(SmsError, match="empty"):
        LocmemSmsBackend().send(SmsMessage(to=NUMBER, body=body))


def test_it_accepts_160_characters_and_refuses_161() -> None:
    LocmemSmsBackend().send(SmsMessage(to=NUMBER, body="x" * 160))
    with pytest.raises(SmsError, match="161 characters") as excinfo:
        LocmemSmsBackend().send(SmsMessage(to=NUMBER, body="y" * 161))
    assert "y" * 10 not in str(excinfo.value)
    assert len(sms.outbox) == 1


def test_validation_errors_do_not_quote_the_number_or_the_body() -> None:
    with pytest.raises(SmsError) as excinfo:
        LocmemSmsBackend().send(SmsMessage(to="+49 30 123456", body=BODY))
    assert "123456" not in str(excinfo.value)
    assert excinfo.value.may_have_sent is False


# --- console, file, locmem ---------------------------------------------------------------


def test_console_backend_writes_to_the_given_stream() -> None:
    stream = io.StringIO()
    message_id = ConsoleSmsBackend(stream=stream).send(SmsMessage(to=NUMBER, body=BODY))
    assert stream.getvalue() == f"SMS to {NUMBER}: {BODY}\n"
    assert len(message_id) == 36


def test_console_backend_writes_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleSmsBackend().send(SmsMessage(to=NUMBER, body="Hello"))
    assert capsys.readouterr().out == f"SMS to {NUMBER}: Hello\n"


def test_file_backend_creates_the_folder_and_writes_one_file_per_message(
    tmp_path: Path, settings: Any
) -> None:
    folder = tmp_path / "not" / "there" / "yet"
    settings.SMS_FILE_PATH = folder
    backend = FileSmsBackend()

    with time_machine.travel(datetime(2025, 3, 4, 9, 30, tzinfo=UTC), tick=False):
        first = backend.send(SmsMessage(to=NUMBER, body=BODY))
    second = backend.send(SmsMessage(to="+441632960961", body="Second"))

    first_file = folder / f"20250304T093000000000Z-{first}.sms"
    [second_file] = folder.glob(f"*-{second}.sms")
    assert sorted(folder.iterdir()) == sorted([first_file, second_file])
    assert first_file.read_text() == f"To: {NUMBER}\n\n{BODY}\n"
    assert second_file.read_text() == "To: +441632960961\n\nSecond\n"


def test_file_backend_leaves_nothing_behind_when_the_write_fails(
    tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SMS_FILE_PATH = tmp_path

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(SmsError, match="No space left"):
        FileSmsBackend().send(SmsMessage(to=NUMBER, body=BODY))
    assert list(tmp_path.iterdir()) == []


def test_file_backend_writes_many_messages_from_threads_without_temp_files(
    tmp_path: Path,
) -> None:
    backend = FileSmsBackend(file_path=tmp_path)
    ids: list[str] = []

    def send(n: int) -> None:
        ids.append(backend.send(SmsMessage(to=NUMBER, body=f"Message {n}")))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    names = [p.name for p in tmp_path.iterdir()]
    assert len(names) == 20
    assert all(name.endswith(".sms") and not name.startswith(".") for name in names)
    bodies = sorted(p.read_text().split("\n\n", 1)[1] for p in tmp_path.iterdir())
    assert bodies == sorted(f"Message {n}\n" for n in range(20))
    assert {name[:-4].split("-", 1)[1] for name in names} == set(ids)


def test_locmem_backend_collects_messages_in_the_outbox() -> None:
    backend = LocmemSmsBackend()
    first = backend.send(SmsMessage(to=NUMBER, body="One"))
    second = backend.send(SmsMessage(to=NUMBER, body="Two"))
    assert sms.outbox == [SmsMessage(to=NUMBER, body="One"), SmsMessage(to=NUMBER, body="Two")]
    assert first != second


# --- get_sms_backend, send_sms ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "backend_class"),
    [
        ("scheduling.sms.ConsoleSmsBackend", ConsoleSmsBackend),
        ("scheduling.sms.FileSmsBackend", FileSmsBackend),
        ("scheduling.sms.LocmemSmsBackend", LocmemSmsBackend),
        ("scheduling.sms.HttpSmsBackend", HttpSmsBackend),
    ],
)
def test_get_sms_backend_honours_the_setting(
    settings: Any, path: str, backend_class: type[sms.BaseSmsBackend]
) -> None:
    settings.SMS_BACKEND = path
    assert type(get_sms_backend()) is backend_class


def test_get_sms_backend_refuses_a_class_that_is_no_backend(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.SMS_BACKEND = "scheduling.sms.SmsMessage"
    with pytest.raises(ImproperlyConfigured, match=r"scheduling\.sms\.SmsMessage"):
        get_sms_backend()


def test_send_sms_goes_through_the_configured_backend(settings: Any) -> None:
    settings.SMS_BACKEND = "scheduling.sms.LocmemSmsBackend"
    message_id = send_sms(NUMBER, "Hello")
    assert sms.outbox == [SmsMessage(to=NUMBER, body="Hello")]
    assert message_id


# --- HTTP backend against a fake provider --------------------------------------------------


@dataclass
class FakeProvider:
    """An SMS provider on loopback that records requests and answers as told."""

    url: str = ""
    status: int = 200
    answer: bytes = b'{"id": "msg-123", "status": "queued"}'
    headers: dict[str, str] = field(default_factory=dict)
    # Set to make the handler wait (for timeouts); the fixture releases it on teardown.
    hold: threading.Event | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)


def _handler_for(fake: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._record()

        def do_GET(self) -> None:
            self._record()

        def _record(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            fake.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers.items()),
                    "json": json.loads(raw) if raw else None,
                }
            )
            if fake.hold is not None:
                fake.hold.wait(timeout=10)
            try:
                self.send_response(fake.status)
                for name, value in fake.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(fake.answer)))
                self.end_headers()
                self.wfile.write(fake.answer)
            except OSError:
                pass  # the client gave up (the timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def provider(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    # A proxy from the environment must not carry loopback requests elsewhere.
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")

    fake = FakeProvider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    port = server.server_address[1]
    fake.url = f"http://127.0.0.1:{port}/v1/messages"
    settings.SMS_BACKEND = "scheduling.sms.HttpSmsBackend"
    settings.SMS_HTTP_URL = fake.url
    settings.SMS_HTTP_TOKEN = TOKEN
    settings.SMS_FROM = "Lindenhof"
    settings.SMS_HTTP_TIMEOUT = 10
    try:
        yield fake
    finally:
        if fake.hold is not None:
            fake.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_http_backend_posts_json_with_the_bearer_token(provider: FakeProvider) -> None:
    message_id = send_sms(NUMBER, BODY)

    assert message_id == "msg-123"
    [request] = provider.requests
    assert request["method"] == "POST"
    assert request["path"] == "/v1/messages"
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert headers["user-agent"] == "alliance-practice-sms/1"
    assert request["json"] == {"from": "Lindenhof", "to": NUMBER, "text": BODY}


def test_http_backend_keeps_the_query_string_of_the_url(
    provider: FakeProvider, settings: Any
) -> None:
    settings.SMS_HTTP_URL = provider.url + "?account=lindenhof"
    send_sms(NUMBER, "Hello")
    assert provider.requests[0]["path"] == "/v1/messages?account=lindenhof"


def test_http_backend_accepts_a_numeric_id(provider: FakeProvider) -> None:
    provider.answer = b'{"id": 98765}'
    assert send_sms(NUMBER, "Hello") == "98765"


def test_http_backend_reports_a_server_error_without_the_token(provider: FakeProvider) -> None:
    provider.status = 500
    provider.answer = b'{"error": "upstream carrier unavailable"}'

    with pytest.raises(SmsError) as excinfo:
        send_sms(NUMBER, BODY)

    text = str(excinfo.value)
    assert "500" in text
    assert "upstream carrier unavailable" in text
    assert TOKEN not in text
    assert excinfo.value.may_have_sent is True


def test_http_backend_redacts_an_echoed_token_and_body_and_quotes_at_most_200_characters(
    provider: FakeProvider,
) -> None:
    provider.status = 400
    provider.answer = json.dumps(
        {
            "error": "bad request",
            "echo": {"auth": f"Bearer {TOKEN}", "text": BODY},
            "pad": "z" * 500,
        }
    ).encode()

    with pytest.raises(SmsError) as excinfo:
        send_sms(NUMBER, BODY)

    text = str(excinfo.value)
    assert "400" in text
    assert "bad request" in text
    assert TOKEN not in text
    assert BODY not in text
    assert "z" * 201 not in text
    assert len(text) < 300
    assert excinfo.value.may_have_sent is False


def test_http_backend_refuses_a_success_without_an_id(provider: FakeProvider) -> None:
    provider.answer = b'{"status": "queued"}'
    with pytest.raises(SmsError, match="200 without a message id") as excinfo:
        send_sms(NUMBER, BODY)
    assert excinfo.value.may_have_sent is True


@pytest.mark.parametrize("answer", [b"", b"OK", b"[]", b'{"id": ""}', b'{"id": true}'])
def test_http_backend_refuses_an_answer_it_cannot_read_an_id_from(
    provider: FakeProvider, answer: bytes
) -> None:
    provider.answer = answer
    with pytest.raises(SmsError, match="without a message id"):
        send_sms(NUMBER, BODY)


def test_http_backend_gives_up_after_the_timeout(provider: FakeProvider, settings: Any) -> None:
    settings.SMS_HTTP_TIMEOUT = 1
    provider.hold = threading.Event()

    with pytest.raises(SmsError, match="No answer") as excinfo:
        send_sms(NUMBER, BODY)

    assert len(provider.requests) == 1
    assert excinfo.value.may_have_sent is True
    assert TOKEN not in str(excinfo.value)


def test_http_backend_reports_a_provider_that_is_not_listening(settings: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Closed now: nothing listens on the port.
    settings.SMS_HTTP_URL = f"http://127.0.0.1:{port}/v1/messages"
    settings.SMS_HTTP_TOKEN = TOKEN
    settings.SMS_FROM = "Lindenhof"

    with pytest.raises(SmsError, match="Could not reach") as excinfo:
        HttpSmsBackend().send(SmsMessage(to=NUMBER, body=BODY))

    assert f"127.0.0.1:{port}" in str(excinfo.value)
    assert excinfo.value.may_have_sent is False


def test_http_backend_does_not_follow_redirects(provider: FakeProvider) -> None:
    # urllib would follow this with the Authorization header attached, as a GET.
    provider.status = 302
    provider.headers = {"Location": provider.url.replace("/v1/messages", "/elsewhere")}
    provider.answer = b""

    with pytest.raises(SmsError, match="302"):
        send_sms(NUMBER, BODY)

    assert [r["path"] for r in provider.requests] == ["/v1/messages"]


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("SMS_HTTP_URL", "", "SMS_HTTP_URL"),
        ("SMS_HTTP_URL", "ftp://127.0.0.1/v1/messages", "SMS_HTTP_URL"),
        ("SMS_HTTP_URL", "file:///etc/passwd", "SMS_HTTP_URL"),
        ("SMS_HTTP_URL", "127.0.0.1:8080/v1/messages", "SMS_HTTP_URL"),
        ("SMS_HTTP_TOKEN", "", "SMS_HTTP_TOKEN"),
        ("SMS_FROM", "", "SMS_FROM"),
        ("SMS_HTTP_TIMEOUT", 0, "SMS_HTTP_TIMEOUT"),
    ],
)
def test_http_backend_refuses_to_send_when_misconfigured(
    provider: FakeProvider, settings: Any, setting: str, value: object, reason: str
) -> None:
    setattr(settings, setting, value)
    with pytest.raises(SmsError, match=reason) as excinfo:
        send_sms(NUMBER, BODY)
    assert provider.requests == []
    assert excinfo.value.may_have_sent is False


def test_http_backend_does_not_quote_credentials_in_the_url(settings: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.SMS_HTTP_URL = f"http://user:hunter2@127.0.0.1:{port}/send?key=abc"
    settings.SMS_HTTP_TOKEN = TOKEN
    settings.SMS_FROM = "Lindenhof"

    with pytest.raises(SmsError) as excinfo:
        HttpSmsBackend().send(SmsMessage(to=NUMBER, body=BODY))

    assert "hunter2" not in str(excinfo.value)
    assert "key=abc" not in str(excinfo.value)


def test_http_backend_validates_before_it_sends(provider: FakeProvider) -> None:
    with pytest.raises(SmsError, match="161"):
        send_sms(NUMBER, "x" * 161)
    assert provider.requests == []
