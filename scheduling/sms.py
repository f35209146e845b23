"""Pluggable SMS backends, modelled on Django's email backends.

`settings.SMS_BACKEND` names the backend; code sends through `send_sms()` and never names a
provider. Every backend validates the same way first, so a message that the console backend
accepts in development is one the HTTP provider would accept in production.

Error messages never carry the message body (it can name a session, a clinician or a
change of plans) nor the auth token, since they end up in logs and task results. They do
not carry the recipient's number either: a client's phone number is personal data too.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time
from email.message import Message
from pathlib import Path
from typing import IO, Any, TextIO
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

# E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
# ASCII only: `\d` alone would also accept Arabic-Indic and other Unicode digits.
E164_RE = re.compile(r"\+[1-9]\d{6,14}", re.ASCII)
# One GSM-7 segment. Longer texts are split and billed per part, and some phones show the
# parts out of order; our reminders are written to fit one.
MAX_BODY_LENGTH = 160
# How much of a provider's answer to read, and how much of it to quote in an error.
MAX_RESPONSE_BYTES = 64 * 1024
MAX_QUOTED_CHARS = 200
USER_AGENT = "alliance-practice-sms/1"


@dataclass(frozen=True)
class SmsMessage:
    to: str
    """The recipient in E.164, such as +4930123456."""
    body: str


class SmsError(Exception):
    """The message was not accepted for delivery.

    `may_have_sent` is true when the provider may have accepted the message although we did
    not get a definite answer (a timeout after the request went out, a 5xx, a 2xx without an
    id). A caller that retries on such an error risks a duplicate text; one that does not
    risks none at all. Validation and configuration errors never have it set.
    """

    def __init__(self, message: str, *, may_have_sent: bool = False) -> None:
        super().__init__(message)
        self.may_have_sent = may_have_sent


class BaseSmsBackend:
    """Validates the message, then hands it to `deliver()`, which subclasses implement."""

    def send(self, message: SmsMessage) -> str:
        """Send one message and return the provider's id for it; raise `SmsError` if it
        cannot be sent."""
        validate_message(message)
        return self.deliver(message)

    def deliver(self, message: SmsMessage) -> str:
        raise NotImplementedError("SMS backends must implement deliver()")


def validate_message(message: SmsMessage) -> None:
    # fullmatch, not match with `$`: `$` also matches before a trailing newline.
    if not E164_RE.fullmatch(message.to):
        raise SmsError("The recipient is not a phone number in E.164 form (+ and 7-15 digits).")
    if not message.body.strip():
        raise SmsError("The message body is empty.")
    if len(message.body) > MAX_BODY_LENGTH:
        raise SmsError(
            f"The message body has {len(message.body)} characters; "
            f"one SMS holds at most {MAX_BODY_LENGTH}."
        )


class ConsoleSmsBackend(BaseSmsBackend):
    """Prints messages instead of sending them: for development."""

    def __init__(self, stream: TextIO | None = None) -> None:
        # Looked up at send time when not given, so a replaced sys.stdout (pytest's capsys)
        # is honoured.
        self.stream = stream
        self._lock = threading.Lock()

    def deliver(self, message: SmsMessage) -> str:
        stream = self.stream if self.stream is not None else sys.stdout
        # One write per message under a lock, so threads do not interleave their lines.
        with self._lock:
            stream.write(f"SMS to {message.to}: {message.body}\n")
            stream.flush()
        return str(uuid.uuid4())


class FileSmsBackend(BaseSmsBackend):
    """Writes each message to its own file in `settings.SMS_FILE_PATH`: for development
    and for tests that run a real worker and count what it sent.

    The file is written under a temporary name and then renamed. A worker that is killed
    mid-write leaves at most a stray `.tmp` file, never a half-written `.sms` file that
    would be counted as sent. The files are readable by their owner only (mkstemp's 0600),
    like the texts they stand for.
    """

    def __init__(self, file_path: str | os.PathLike[str] | None = None) -> None:
        path = file_path if file_path is not None else settings.SMS_FILE_PATH
        if not path:
            raise ImproperlyConfigured("FileSmsBackend needs settings.SMS_FILE_PATH.")
        self.file_path = Path(path)

    def deliver(self, message: SmsMessage) -> str:
        message_id = str(uuid.uuid4())
        # UTC with microseconds: names sort in the order the messages were written.
        timestamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.file_path / f"{timestamp}-{message_id}.sms"
        content = f"To: {message.to}\n\n{message.body}\n".encode()
        try:
            self.file_path.mkdir(parents=True, exist_ok=True)
            # Same folder as the target, so os.replace is a rename within one file system.
            fd, temp_name = tempfile.mkstemp(dir=self.file_path, prefix=".", suffix=".tmp")
        except OSError as exc:
            raise SmsError(f"Could not write an SMS file in {self.file_path}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as temp_file:
                temp_file.write(content)
                temp_file.flush()
                # Without fsync a power cut after the rename can leave an empty file.
                os.fsync(temp_file.fileno())
            os.replace(temp_name, target)
        except OSError as exc:
            _unlink_quietly(temp_name)
            raise SmsError(f"Could not write an SMS file in {self.file_path}: {exc}") from exc
        except BaseException:
            _unlink_quietly(temp_name)
            raise
        return message_id


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# What LocmemSmsBackend sent, like django.core.mail.outbox. Unlike that one, nothing empties
# it between tests: tests that use it clear it themselves.
outbox: list[SmsMessage] = []


class LocmemSmsBackend(BaseSmsBackend):
    """Keeps messages in `scheduling.sms.outbox`: for tests."""

    def deliver(self, message: SmsMessage) -> str:
        outbox.append(message)
        return str(uuid.uuid4())


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect with the Authorization header still attached, to any
    host and even from https to http, and would turn the POST into a GET that sends
    nothing. A provider that redirects is misconfigured: fail with its 3xx instead."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


class HttpSmsBackend(BaseSmsBackend):
    """Sends through an HTTP provider: POST JSON {"from", "to", "text"} with a bearer token,
    expect a 2xx JSON answer with an "id".

    Configuration comes from SMS_HTTP_URL, SMS_HTTP_TOKEN, SMS_FROM and SMS_HTTP_TIMEOUT.
    It is checked on every send, so a missing token fails the first reminder loudly
    instead of being mistaken for a provider outage.
    """

    def __init__(
        self,
        *,
        url: str | None = None,
        token: str | None = None,
        sender: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.url = url if url is not None else settings.SMS_HTTP_URL
        self.token = token if token is not None else settings.SMS_HTTP_TOKEN
        self.sender = sender if sender is not None else settings.SMS_FROM
        self.timeout = timeout if timeout is not None else settings.SMS_HTTP_TIMEOUT

    def deliver(self, message: SmsMessage) -> str:
        provider = self._check_configuration()
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
            self.url,
            data=json.dumps({"from": self.sender, "to": message.to, "text": message.body}).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )
        # Built per send: ProxyHandler reads the *_proxy variables when it is created.
        opener = urllib.request.build_opener(_RefuseRedirects)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                status: int = response.status
                raw = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            # Raised for every status outside 2xx (3xx too, since we refuse redirects).
            with exc:
                raw = _read_quietly(exc)
            raise SmsError(
                f"SMS provider {provider} answered HTTP {exc.code}: {self._quote(raw, message)}",
                may_have_sent=exc.code >= 500,
            ) from None
        except urllib.error.URLError as exc:
            # Raised while connecting or sending the request: the provider cannot have
            # acted on a request it did not receive whole.
            raise SmsError(f"Could not reach SMS provider {provider}: {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            # Raised after the request went out: a timeout waiting for the answer, or a
            # dropped connection. The provider may well have sent the text.
            raise SmsError(
                f"No answer from SMS provider {provider}: {_describe(exc)}", may_have_sent=True
            ) from None

        message_id = _message_id(raw)
        if message_id is None:
            raise SmsError(
                f"SMS provider {provider} answered HTTP {status} without a message id: "
                f"{self._quote(raw, message)}",
                may_have_sent=True,
            )
        return message_id

    def _check_configuration(self) -> str:
        """Raise SmsError unless the backend can send; return the provider's host:port
        for error messages (never the full URL, which may carry credentials)."""
        parts = urlsplit(self.url or "")
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise SmsError("SMS_HTTP_URL must be an http:// or https:// URL with a host.")
        if not self.token:
            raise SmsError("SMS_HTTP_TOKEN is not set.")
        if not self.sender:
            raise SmsError("SMS_FROM is not set.")
        # A timeout of 0 makes the socket non-blocking, and None waits forever.
        if not self.timeout or self.timeout <= 0:
            raise SmsError("SMS_HTTP_TIMEOUT must be a positive number of seconds.")
        try:
            port = parts.port
        except ValueError:
            raise SmsError("SMS_HTTP_URL has an invalid port.") from None
        return parts.hostname if port is None else f"{parts.hostname}:{port}"

    def _quote(self, raw: bytes, message: SmsMessage) -> str:
        """The start of a provider's answer, safe for a log line: a provider that echoes the
        request back must not put the token or the text into our logs."""
        text = raw.decode("utf-8", errors="replace")
        for secret in (self.token, message.body):
            if secret:
                text = text.replace(secret, "[redacted]")
        text = " ".join(text.split())  # no newlines or control whitespace in a log line
        if not text:
            return "(empty body)"
        if len(text) > MAX_QUOTED_CHARS:
            return text[:MAX_QUOTED_CHARS] + "…"
        return text


def _read_quietly(response: urllib.error.HTTPError) -> bytes:
    try:
        return response.read(MAX_RESPONSE_BYTES)
    except (OSError, http.client.HTTPException):
        return b""


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _message_id(raw: bytes) -> str | None:
    try:
        answer: Any = json.loads(raw)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    if not isinstance(answer, dict):
        return None
    message_id = answer.get("id")
    # Some providers number their messages; bool is an int subclass and no id.
    if isinstance(message_id, int) and not isinstance(message_id, bool):
        return str(message_id)
    if isinstance(message_id, str) and message_id.strip():
        return message_id
    return None


def get_sms_backend(backend: str | None = None, **kwargs: Any) -> BaseSmsBackend:
    """An instance of `backend`, or of `settings.SMS_BACKEND`, given as a dotted path."""
    path = backend or settings.SMS_BACKEND
    backend_class = import_string(path)
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseSmsBackend)):
        raise ImproperlyConfigured(f"SMS_BACKEND {path!r} is not an SMS backend class.")
    instance: BaseSmsBackend = backend_class(**kwargs)
    return instance


def send_sms(to: str, body: str) -> str:
    """Send one text through the configured backend and return the provider's id."""
    return get_sms_backend().send(SmsMessage(to=to, body=body))


def is_quiet_time(*, local: time, starts: time, ends: time) -> bool:
    """Whether `local` falls in the quiet hours from `starts` to `ends` (which may wrap
    midnight, e.g. 21:00 to 08:00). The reminder SQL applies the same rule."""
    if starts > ends:
        return local >= starts or local < ends
    return starts <= local < ends
