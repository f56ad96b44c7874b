"""One translation of a classified fault into the error to exit with; the fault is given at construction."""

import pytest

from alembic_sidecar.errors import AccessDenied, DatabaseUnreachable, TransientFault, unexpected
from alembic_sidecar.failures import Fault
from alembic_sidecar.fault_errors import FAULT_TEXT, Phase, fault_error

pytestmark = pytest.mark.unit

LOGIN = Phase("logging in", rerun="rerun", refused="db refused the login", refused_hint="check the password",
              unreachable="db did not accept a login within 3 s", unreachable_hint="check the host")
READING = Phase("reading t", rerun="nothing was changed")


def test_a_refusal_is_exit_5_where_the_phase_words_one_and_untranslated_where_it_does_not():
    error = fault_error(Fault.ACCESS, LOGIN, "bad password")
    assert isinstance(error, AccessDenied) and error.fault is Fault.ACCESS
    assert str(error) == "db refused the login: bad password: check the password"
    assert fault_error(Fault.ACCESS, READING, "denied") is None


def test_a_lost_connection_is_unreachable_at_login_and_transient_elsewhere():
    at_login = fault_error(Fault.UNAVAILABLE, LOGIN, "refused")
    assert isinstance(at_login, DatabaseUnreachable) and at_login.exit_code == 3
    assert at_login.message == "db did not accept a login within 3 s (refused)"
    later = fault_error(Fault.UNAVAILABLE, READING, "reset")
    assert isinstance(later, TransientFault) and later.fault is Fault.UNAVAILABLE
    assert str(later) == f"{FAULT_TEXT[Fault.UNAVAILABLE]} while reading t: reset: nothing was changed"


@pytest.mark.parametrize("fault", [Fault.READ_ONLY, Fault.LOCK_TIMEOUT, Fault.DEADLOCK])
def test_every_transient_fault_is_exit_9_with_its_own_words_or_the_callers(fault):
    error = fault_error(fault, READING, "why")
    assert error.exit_code == 9 and error.fault is fault and error.message.startswith(FAULT_TEXT[fault])
    assert fault_error(fault, READING, "why", what="no answer").message == "no answer while reading t: why"


@pytest.mark.parametrize("fault", [None, Fault.STATEMENT_TIMEOUT])
def test_a_fault_no_rerun_gets_past_is_left_to_the_caller(fault):
    assert fault_error(fault, READING, "why") is None


def test_the_fallback_asks_for_a_report_with_exit_70():
    error = unexpected("the comparison failed: x")
    assert error.exit_code == 70 and str(error) == "the comparison failed: x: please report this with the log"
