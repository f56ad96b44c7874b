"""The messages between the child and its supervisor: each kind decodes to what was encoded, tuples included."""

import pytest

from alembic_sidecar.report import (Done, EndpointMessage, Failed, Plan, Reporter, Step, Steps, decode, encode,
                                    read_reports)

pytestmark = pytest.mark.unit

MESSAGES = [
    EndpointMessage({"backend": "postgresql", "host": "db", "port": 5432, "password": "pw", "query": {"a": "b"}}),
    Plan(heads=("b2", "c3"), targets=None, before=()),
    Plan(heads=None, targets=("a1",), before=("base1",)),
    Steps(steps=(("a1", "/m/versions/a1_x.py"), ("b2", "/m/versions/b2_y.py")), table="alembic_version", schema=None),
    Step(revision="a1", heads=("a1",)),
    Done("migrated", (), before=("a0",), expected=("a1",), applied=1),
    Done("heads listed", ("a1", "b2")),
    Failed(1, "migration failed", "revision file x failed: boom", state="the database is at a0", connection_lost=True),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda message: message.kind)
def test_a_message_decodes_to_what_was_encoded(message):
    assert decode(encode(message).rstrip(b"\n")) == message


def test_messages_cross_a_pipe_in_pieces_and_a_broken_line_is_skipped(tmp_path):
    import os

    read, write = os.pipe()
    reporter = Reporter(write)
    for message in MESSAGES:
        reporter.send(message)
    os.close(write)
    data = os.read(read, 1 << 20)
    os.close(read)
    buffer = bytearray()
    received = []
    for start in range(0, len(data), 7):
        received.extend(read_reports(buffer, data[start:start + 7]))
    assert received == MESSAGES
    assert read_reports(bytearray(), b'{"kind": "step", "revision": \n{"kind": "nonsense"}\n') == []
