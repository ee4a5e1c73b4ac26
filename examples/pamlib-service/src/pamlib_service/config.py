"""Configuration from environment variables, read once at start-up.

Every setting has one variable, so a container, a systemd unit and a test all configure the
service the same way. Nothing here is checked against the plugins yet: that is start-up's job
(:mod:`pamlib_service.service`), which refuses to start with the CLI's messages.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path

import attrs

from pamlib_service.models import MAX_SITE

__all__ = ["ROLES", "Settings", "StartupError", "Token", "Tokens", "load_tokens"]

PREFIX = "PAMLIB_SERVICE_"
DEFAULT_DATABASE_URL = "sqlite:///pamlib-service.db"
ROLES = frozenset({"submit", "read", "report"})
DEFAULT_MAX_BODY_BYTES = 1_048_576


class StartupError(Exception):
    """The service cannot start as configured; the message is what an operator reads."""


def _paths(value: str) -> tuple[Path, ...]:
    return tuple(Path(part) for part in value.split(os.pathsep) if part.strip())


@attrs.frozen
class Settings:
    """What the service is configured with (see the README for each variable)."""

    database_url: str = DEFAULT_DATABASE_URL
    tokens_file: Path | None = None
    provider: str | None = None
    calibration: Path | None = None
    rules: tuple[Path, ...] = ()
    #: The instruments the service scores; a provider is chosen for each at start-up.
    instruments: tuple[str, ...] = ("PAM-13",)
    #: Request bodies larger than this are refused (413) before they are parsed.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``PAMLIB_SERVICE_*`` variables; unset ones take the defaults."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(PREFIX + name, "").strip()
            return value or None

        instruments = get("INSTRUMENTS")
        max_body = get("MAX_BODY_BYTES")
        try:
            max_body_bytes = int(max_body) if max_body else DEFAULT_MAX_BODY_BYTES
        except ValueError:
            raise StartupError(f"{PREFIX}MAX_BODY_BYTES must be a whole number") from None
        tokens, calibration, rules = get("TOKENS"), get("CALIBRATION"), get("RULES")
        return cls(
            database_url=get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            tokens_file=Path(tokens) if tokens else None,
            provider=get("PROVIDER"),
            calibration=Path(calibration) if calibration else None,
            rules=_paths(rules) if rules else (),
            instruments=tuple(i.strip() for i in instruments.split(",") if i.strip())
            if instruments
            else ("PAM-13",),
            max_body_bytes=max_body_bytes,
        )


@attrs.frozen(repr=False)
class Token:
    """What one bearer token may do: its site and roles. The token itself is never shown."""

    secret: str
    site: str
    roles: frozenset[str]

    def __repr__(self) -> str:
        return f"Token(site={self.site!r}, roles={sorted(self.roles)!r})"


@attrs.frozen(repr=False)
class Tokens:
    """The tokens file, looked up in constant time per token so timing tells nothing."""

    tokens: tuple[Token, ...]

    def __repr__(self) -> str:
        return f"Tokens(n={len(self.tokens)})"

    def find(self, secret: str) -> Token | None:
        found = None
        given = secret.encode("utf-8", "surrogatepass")
        for token in self.tokens:
            if hmac.compare_digest(token.secret.encode("utf-8", "surrogatepass"), given):
                found = token
        return found


def load_tokens(path: Path | None) -> Tokens:
    """Read ``{"tokens": {"<token>": {"site": ..., "roles": [...]}}}``; every fault is a
    :class:`StartupError` naming the file's base name and the entry's position, never a token."""
    if path is None:
        raise StartupError(f"pamlib: error: {PREFIX}TOKENS is not set (the tokens file's path)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StartupError(f"pamlib: error: {exc.strerror or 'cannot read'}: {path.name}") from None
    except ValueError:
        raise StartupError(f"pamlib: error: {path.name} is not JSON") from None
    entries = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise StartupError(f"pamlib: error: {path.name} needs a non-empty object 'tokens'")
    tokens: list[Token] = []
    problems: list[str] = []
    for n, (secret, entry) in enumerate(entries.items(), start=1):
        site = entry.get("site") if isinstance(entry, dict) else None
        roles = entry.get("roles") if isinstance(entry, dict) else None
        if len(secret) < 16:
            problems.append(f"token {n}: a token needs at least 16 characters")
        if not isinstance(site, str) or not site.strip():
            problems.append(f"token {n}: 'site' must be a non-empty string")
        elif len(site) > MAX_SITE or not site.isprintable():
            # Found now, not as a database error on every submission of the site (PostgreSQL
            # refuses a longer value or a NUL; SQLite would store it).
            problems.append(
                f"token {n}: 'site' must be printable text of at most {MAX_SITE} characters"
            )
        if not isinstance(roles, list) or not all(r in ROLES for r in roles):
            problems.append(f"token {n}: 'roles' must list some of {', '.join(sorted(ROLES))}")
        if not problems and isinstance(site, str) and isinstance(roles, list):
            tokens.append(Token(secret, site, frozenset(roles)))
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise StartupError(f"pamlib: error: invalid tokens file {path.name}\n{lines}")
    return Tokens(tuple(tokens))
