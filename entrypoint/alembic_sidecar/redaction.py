"""Keep secrets out of every message: known values in all their encodings, and credentials in any URL or DSN."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

if TYPE_CHECKING:
    from .settings import Settings

MASK = "***"
#: Shorter values would mask ordinary text ("pw" in "upward") and protect next to nothing.
MIN_SECRET_LENGTH = 3

_SECRET_NAMES = {"pwd", "pass", "api_key", "apikey"}
_SECRET_PARTS = ("password", "passwd", "secret", "token")

# scheme://user: - the password after it runs to the last "@" (see _password_span).
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]{0,31}://"
_USERINFO_HEAD = re.compile(r"\b" + _SCHEME + r"[^\s:/]*:")
# The same at the start of a string known to be one URL, which may hold spaces (SQLAlchemy renders them as is).
_URL_HEAD = re.compile(r"\s*" + _SCHEME + r"[^:/]*:")
_TOKEN = re.compile(r"\S+")
# name=VALUE in a query string, a libpq key=value DSN or a Python repr; the name decides whether it is masked.
_KEY = r"(?P<key>(?<![\w.%\-])[\w.%\-]+)"
_QUOTED = r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\""""
_KEY_VALUE = re.compile(_KEY + r"(?P<sep>[ \t]*=[ \t]*)(?P<value>" + _QUOTED + r"|[^\s&]*)")
_KEY_VALUE_ONE_URL = re.compile(_KEY + r"(?P<sep>=)(?P<value>[^&]*)")
# 'password': 'VALUE' in the repr of a dict (connect arguments).
_QUOTED_KEY = re.compile(r"""(?P<key>(?P<quote>['"])[\w.\-]+(?P=quote))(?P<sep>[ \t]*:[ \t]*)(?P<value>"""
                         + _QUOTED + ")")


def is_secret_name(name: str) -> bool:
    """Whether a parameter called ``name`` holds a secret (password, sslpassword, token, api_key, ...)."""
    name = unquote_plus(name).strip("'\"").lower().replace("-", "_")
    if name.endswith("file"):  # DB_PASSWORD_FILE, passfile: the path of a secret, worth showing in an error
        return False
    return name in _SECRET_NAMES or any(part in name for part in _SECRET_PARTS)


def secret_values(settings: Settings) -> list[str]:
    """Every form a configured secret could take in a message, longest first.

    DB_PASSWORD, DB_SSLPASSWORD (the client key's), the password in DATABASE_URL's userinfo and the value of each of
    its secret-named query parameters (sslpassword among them); each as written, percent-decoded, and encoded as
    ``quote``, ``quote_plus`` and SQLAlchemy's URL rendering do.
    """
    values: list[str] = []
    for secret in (settings.db_password, settings.db_sslpassword):
        if secret is not None:
            values.append(secret.reveal())
    if settings.database_url is not None:
        values += _url_secrets(settings.database_url.reveal().strip())
    return secret_forms(values)


def secret_forms(values: list[str]) -> list[str]:
    """Each value as written, percent-decoded and percent-encoded, longest first; too short ones left out."""
    forms: set[str] = set()
    for value in values:
        for plain in {value, unquote(value), unquote_plus(value)}:
            forms.update({plain, quote(plain, safe=""), quote_plus(plain), quote(plain, safe=" +")})
    return sorted((form for form in forms if len(form) >= MIN_SECRET_LENGTH), key=lambda form: (-len(form), form))


def _url_secrets(url: str) -> list[str]:
    """The password and secret query values of ``url`` as written, read the ways a driver or a parser might."""
    span = _password_span(url, _URL_HEAD.match(url))
    found = [url[span[0]:span[1]]] if span else []
    # SQLAlchemy's reading: the password ends at the first "@".
    sqlalchemy = re.match(r"[\w+]+://[^:/]*:(?P<password>[^@]*)@", url)
    if sqlalchemy:
        found.append(sqlalchemy.group("password"))
    try:
        parts = urlsplit(url)
        if parts.password is not None:
            found.append(parts.password)
        queries = [parts.query]
    except ValueError:  # e.g. an unbalanced "[" in the host
        queries = []
    queries += [url.partition("?")[2], url.rpartition("@")[2].partition("?")[2]]
    for query in queries:
        for pair in query.split("&"):
            key, equals, value = pair.partition("=")
            if equals and is_secret_name(key):
                found.append(value)
    return [value for value in found if value]


def mask_urls(text: str) -> str:
    """``text`` with the credentials of any URL or DSN in it masked, whether or not their values are known."""
    text = _TOKEN.sub(lambda token: _mask_userinfo(token.group(), _USERINFO_HEAD.search(token.group())), text)
    text = _KEY_VALUE.sub(_mask_pair, text)
    return _QUOTED_KEY.sub(_mask_pair, text)


def mask_url(url: str) -> str:
    """One URL, fit for a log line: the userinfo password and secret-named query parameters become ``***``."""
    url = _mask_userinfo(url, _URL_HEAD.match(url))
    before, question, query = url.partition("?")
    # Then as free text too: it may be a key=value DSN rather than a URL.
    return mask_urls(before + question + _KEY_VALUE_ONE_URL.sub(_mask_pair, query))


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every known secret replaced by ``***``, then :func:`mask_urls` for the unknown ones."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    return mask_urls(text)


def _mask_pair(match: re.Match[str]) -> str:
    if not is_secret_name(match.group("key")):
        return match.group(0)
    return match.group("key") + match.group("sep") + MASK


def _password_span(text: str, head: re.Match[str] | None) -> tuple[int, int] | None:
    """Where the password after ``head`` (``scheme://user:``) lies in ``text``, if there is one.

    It runs to the last "@": a password written unencoded may hold "@", "/", "?" or "#" (SQLAlchemy reads it up to
    the first "@", urlsplit up to the last one before the path). Searching for that "@" rather than letting a regex
    backtrack to it keeps this linear in the length of the text.
    """
    at = text.rfind("@", head.end()) if head else -1
    return (head.end(), at) if head and at >= 0 else None


def _mask_userinfo(text: str, head: re.Match[str] | None) -> str:
    span = _password_span(text, head)
    return text if span is None else text[:span[0]] + MASK + text[span[1]:]
