"""Redaction: configured secrets in every encoding, and credentials in any URL or DSN, never reach a message."""

import time
from urllib.parse import quote, quote_plus

import pytest

from alembic_sidecar.redaction import is_secret_name, mask_url, mask_urls, redact, secret_values
from alembic_sidecar.settings import from_environ

pytestmark = pytest.mark.unit

ODD = "p@ss:w/rd%#? é"
#: Passwords with each character that breaks naive URL handling, spaces and non-ASCII.
PASSWORDS = [ODD, "a@b@c", "col:on:s", "sl/as/h", "per%25cent%", "ha#sh", "que?ry", "amp&er=sand", "two  spaces",
             "ünï©ødé", "plain-Secret-1"]


def forms(value: str) -> list[str]:
    """How a value can appear in text: as is, percent-encoded, form-encoded, and as SQLAlchemy renders a URL."""
    return [value, quote(value, safe=""), quote_plus(value), quote(value, safe=" +")]


def assert_hidden(text: str, value: str) -> None:
    leaked = [form for form in forms(value) if form in text]
    assert not leaked, f"{leaked} still in {text!r}"


def settings(**env):
    return from_environ(env, [])


# --- secret_values ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("password", PASSWORDS)
def test_db_password_is_known_in_every_encoding(password):
    values = secret_values(settings(DB_PASSWORD=password))
    assert set(forms(password)) <= set(values)


@pytest.mark.parametrize("password", PASSWORDS)
def test_the_password_in_the_url_userinfo_is_known_decoded_and_encoded(password):
    values = secret_values(settings(DATABASE_URL=f"postgresql://u:{quote(password, safe='')}@h:5432/db"))
    assert set(forms(password)) <= set(values)


@pytest.mark.parametrize("name", ["password", "sslpassword", "passwd", "pwd", "pass", "secret", "token", "api_key",
                                  "PASSWORD", "client_secret", "X-Auth-Token", "db_password"])
def test_secret_named_query_parameters_are_known(name):
    url = f"postgresql://u@h/db?sslmode=require&{name}={quote_plus(ODD)}&application_name=my-app"
    values = secret_values(settings(DATABASE_URL=url))
    assert set(forms(ODD)) <= set(values)
    assert not {"require", "my-app", "u", "db"} & set(values)


@pytest.mark.parametrize("name", ["sslmode", "application_name", "user", "sslkey", "host", "passive", "bypass",
                                  "passfile", "DB_PASSWORD_FILE", "token-file"])
def test_ordinary_parameters_are_not_secret(name):
    assert not is_secret_name(name)
    url = f"postgresql://u@h/db?{name}=ordinary-value"
    assert "ordinary-value" not in secret_values(settings(DATABASE_URL=url))


def test_a_password_written_unencoded_is_known_however_it_is_read():
    # SQLAlchemy reads "p" (up to the first "@"), urlsplit "p@ss/w" is cut at "/": know every reading.
    values = secret_values(settings(DATABASE_URL="postgresql://u:p@ss/w@h/db"))
    assert "p@ss/w" in values


def test_short_values_are_skipped_and_the_longest_come_first():
    values = secret_values(settings(DB_PASSWORD="ab", DATABASE_URL="postgresql://u:xy@h/db?token=abcdef"))
    assert values and all(len(value) >= 3 for value in values)
    assert "ab" not in values and "xy" not in values and "abcdef" in values
    assert [len(value) for value in values] == sorted((len(value) for value in values), reverse=True)


def test_no_secrets_configured_means_nothing_to_replace():
    assert secret_values(settings()) == []
    assert secret_values(settings(DATABASE_URL="sqlite:////var/lib/app.sqlite")) == []


# --- redact -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("password", PASSWORDS)
def test_redact_hides_a_known_password_in_every_form(password):
    secrets = secret_values(settings(DB_PASSWORD=password))
    text = " | ".join(f"before {form} after" for form in forms(password))
    redacted = redact(text, secrets)
    assert_hidden(redacted, password)
    assert redacted.count("***") == len(forms(password)) and redacted.startswith("before *** after")


def test_redact_hides_known_secrets_that_mask_urls_could_not_find():
    secret = "correct horse battery"
    text = "server said: login with correct horse battery failed"
    assert redact(text, secret_values(settings(DB_PASSWORD=secret))) == "server said: login with *** failed"


def test_redact_then_masks_urls_with_unknown_credentials():
    text = "retrying postgresql://other:unknown-pw@h2/db"
    assert redact(text, []) == "retrying postgresql://other:***@h2/db"


# --- mask_urls ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("password", PASSWORDS)
def test_userinfo_password_is_masked_without_knowing_it(password):
    url = f"postgresql+asyncpg://{quote('mig@r:t/r', safe='')}:{quote(password, safe='')}@127.0.0.1:5432/app"
    masked = mask_urls(f"cannot connect to {url}: timeout")
    assert masked == f"cannot connect to postgresql+asyncpg://mig%40r%3At%2Fr:***@127.0.0.1:5432/app: timeout"


@pytest.mark.parametrize("url, expected", [
    ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # an "@" written unencoded
    ("postgresql://u:p/w#x?y@h:5/db", "postgresql://u:***@h:5/db"),  # "/", "#" and "?" written unencoded
    ("mysql://u:@h/db", "mysql://u:***@h/db"),
    ("postgresql://u:pw@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
])
def test_userinfo_written_unencoded_is_masked_up_to_the_host(url, expected):
    assert mask_urls(f"url={url} end") == f"url={expected} end"


@pytest.mark.parametrize("name", ["password", "sslpassword", "token", "PWD", "api_key", "client_secret"])
@pytest.mark.parametrize("password", [ODD, "ünï©ødé", "amp&er=sand"])
def test_secret_query_parameters_are_masked_without_knowing_them(name, password):
    for encoded in (quote(password, safe=""), quote_plus(password)):
        text = f"bad url postgresql://u@h/db?sslmode=require&{name}={encoded}&application_name=app#frag here"
        masked = mask_urls(text)
        assert masked == f"bad url postgresql://u@h/db?sslmode=require&{name}=***&application_name=app#frag here"


def test_a_libpq_dsn_in_a_driver_error_is_masked():
    error = ("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed "
             "for user \"migrator\" (dsn: host=127.0.0.1 port=5432 user=migrator password=S3cr3t-pw "
             "sslpassword = 'key pass\\'phrase' dbname=app)")
    masked = mask_urls(error)
    assert "S3cr3t" not in masked and "phrase" not in masked and "key pass" not in masked
    assert "password=*** sslpassword = *** dbname=app)" in masked
    assert masked.startswith("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentic")


def test_connect_arguments_in_a_repr_are_masked():
    text = "connect() got {'host': 'h', 'password': 'S3cr3t pw', \"token\": \"t0k3n\"} and password='x y'"
    assert mask_urls(text) == "connect() got {'host': 'h', 'password': ***, \"token\": ***} and password=***"


@pytest.mark.parametrize("text", [
    "postgresql://postgres@127.0.0.1:5432/app",
    "sqlite+aiosqlite:////var/lib/app/db.sqlite",
    "http://host:8080/path is down, write to admin@example.com",
    "password authentication failed for user \"u\"; (Background on this error at: https://sqlalche.me/e/20/f405)",
    "Access denied for user 'u'@'10.0.0.1' (using password: YES)",
    "cannot read DB_PASSWORD_FILE='/run/secrets/db-password': No such file or directory",
    "revision r0002 failed: relation \"no_such_table\" does not exist",
])
def test_text_without_credentials_is_left_alone(text):
    assert mask_urls(text) == text


# --- mask_url -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("password", PASSWORDS)
def test_mask_url_keeps_everything_but_the_credentials(password):
    url = (f"postgresql://{quote('mig@r t', safe='')}:{quote(password, safe='')}@db.internal:6432/app"
           f"?sslmode=verify-full&sslpassword={quote_plus(password)}&application_name=sidecar")
    masked = mask_url(url)
    assert masked == ("postgresql://mig%40r%20t:***@db.internal:6432/app"
                      "?sslmode=verify-full&sslpassword=***&application_name=sidecar")


def test_mask_url_handles_sqlalchemys_rendering_with_spaces():
    rendered = f"postgresql+asyncpg://mig%40r %C3%A9:{quote(ODD, safe=' +')}@h:5432/db?password={quote_plus(ODD)}"
    masked = mask_url(rendered)
    assert masked == "postgresql+asyncpg://mig%40r %C3%A9:***@h:5432/db?password=***"
    assert_hidden(masked, ODD)


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1:5432/app", "sqlite+aiosqlite:////tmp/x.db",
                                 "mysql://root@h:3306/db?charset=utf8mb4"])
def test_mask_url_leaves_a_url_without_credentials_as_it_is(url):
    assert mask_url(url) == url


def test_mask_url_masks_a_dsn_too():
    assert mask_url("host=h user=u password=S3cr3t dbname=x") == "host=h user=u password=*** dbname=x"


@pytest.mark.parametrize("text", ["postgresql://" * 10000, "postgresql://u:" * 10000, "a." * 50000,
                                  "password='" * 20000, "x" * 100000])
def test_masking_stays_fast_on_pathological_text(text):
    started = time.perf_counter()
    mask_urls(text), mask_url(text), redact(text, ["abc"])
    assert time.perf_counter() - started < 1, "masking went quadratic"
