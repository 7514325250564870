"""Token files rotate, static and basic credentials are sent as kubectl sends them, and no
secret shows in a repr, an error or a log line."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import trio.testing

from tests.kube.test_auth_support import single_context_config, write_kubeconfig
from vk_trio.errors import AuthError
from vk_trio.kube.auth import Credentials, resolve_credentials
from vk_trio.kube.auth_tokens import (
    TOKEN_FILE_REREAD_PERIOD,
    BasicAuthSource,
    FileTokenSource,
    StaticTokenSource,
    TokenSource,
)
from vk_trio.logs import scrub


async def resolve_user(tmp_path: Path, user: dict[str, Any]) -> Credentials:
    document = single_context_config(cluster={"server": "https://127.0.0.1:6443"}, user=user)
    path = write_kubeconfig(tmp_path / "kubeconfig", document)
    return await resolve_credentials(kubeconfig=str(path), env={"HOME": str(tmp_path)})


async def header(credentials: Credentials) -> str | None:
    assert credentials.token_source is not None
    return await credentials.token_source.authorization()


async def test_a_token_file_is_reread_once_its_period_has_passed(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    (tmp_path / "token").write_text("one\n")
    credentials = await resolve_user(tmp_path, {"tokenFile": "token"})
    assert await header(credentials) == "Bearer one"
    (tmp_path / "token").write_text("two\n")
    mock_clock.jump(TOKEN_FILE_REREAD_PERIOD - 1)
    assert await header(credentials) == "Bearer one"
    mock_clock.jump(1)
    assert await header(credentials) == "Bearer two"


async def test_a_token_file_is_reread_at_once_after_invalidate(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    (tmp_path / "token").write_text("one")
    credentials = await resolve_user(tmp_path, {"tokenFile": "token"})
    (tmp_path / "token").write_text("two")
    assert credentials.token_source is not None
    credentials.token_source.invalidate()
    assert await header(credentials) == "Bearer two"


async def test_a_token_file_that_disappears_later_keeps_the_last_token(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    (tmp_path / "token").write_text("one")
    credentials = await resolve_user(tmp_path, {"tokenFile": "token"})
    (tmp_path / "token").unlink()
    mock_clock.jump(TOKEN_FILE_REREAD_PERIOD)
    assert await header(credentials) == "Bearer one"


@pytest.mark.parametrize(("content", "message"), [(None, "cannot read"), ("  \n", "empty")])
async def test_a_token_file_that_is_missing_or_empty_at_start_is_an_auth_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / "token").write_text(content)
    with pytest.raises(AuthError, match=message):
        await resolve_user(tmp_path, {"tokenFile": "token"})


async def test_an_unreadable_token_file_falls_back_to_the_inline_token(tmp_path: Path) -> None:
    credentials = await resolve_user(tmp_path, {"tokenFile": "missing", "token": "inline"})
    assert await header(credentials) == "Bearer inline"


async def test_a_readable_token_file_wins_over_the_inline_token_as_in_client_go(
    tmp_path: Path,
) -> None:
    (tmp_path / "token").write_text("from-file")
    credentials = await resolve_user(tmp_path, {"tokenFile": "token", "token": "inline"})
    assert await header(credentials) == "Bearer from-file"


async def test_basic_auth_is_sent_as_utf8_user_colon_password(tmp_path: Path) -> None:
    credentials = await resolve_user(tmp_path, {"username": "zoë", "password": "pa:ss"})
    expected = base64.b64encode("zoë:pa:ss".encode()).decode()
    assert await header(credentials) == f"Basic {expected}"


async def test_a_user_without_credentials_sends_no_authorization(tmp_path: Path) -> None:
    credentials = await resolve_user(tmp_path, {})
    assert credentials.token_source is None


async def test_every_source_satisfies_the_token_source_protocol(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("x")
    sources = [StaticTokenSource("a"), BasicAuthSource("u", "p"), FileTokenSource(tmp_path / "t")]
    for source in sources:
        assert isinstance(source, TokenSource)
        assert (await source.authorization() or "").split()[0] in ("Bearer", "Basic")
        source.invalidate()


async def test_reprs_errors_and_logs_carry_no_secret(tmp_path: Path) -> None:
    user = {
        "token": "static-secret-token",
        "client-certificate-data": base64.b64encode(b"CERT").decode(),
        "client-key-data": base64.b64encode(b"KEY-secret-material").decode(),
    }
    credentials = await resolve_user(tmp_path, user)
    for text in (repr(credentials), str(credentials)):
        assert "static-secret-token" not in text
        assert "KEY-secret-material" not in text
        assert "<redacted>" in text
        assert "https://127.0.0.1:6443" in text
    assert "static-secret-token" not in scrub("sent Bearer static-secret-token")
    (tmp_path / "token").write_text("file-secret-token")
    for source in (
        StaticTokenSource("static-secret-token"),
        BasicAuthSource("user", "basic-secret-pass"),
        FileTokenSource(tmp_path / "token"),
    ):
        await source.authorization()
        for secret in ("static-secret-token", "basic-secret-pass", "file-secret-token"):
            assert secret not in repr(source)
    assert "basic-secret-pass" not in scrub("password basic-secret-pass")
    assert "file-secret-token" not in scrub("token file-secret-token")
