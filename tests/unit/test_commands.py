"""The command table: every command is declared once, and the parser, the fast path and the runner read it."""

import inspect

import pytest

from alembic_sidecar import commands
from alembic_sidecar.errors import ConfigurationError
from alembic_sidecar.settings import build_parser, from_environ

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("command", commands.COMMANDS, ids=lambda command: command.name)
def test_each_declared_function_is_importable_and_takes_the_context(command):
    run = command.function()
    assert inspect.iscoroutinefunction(run)
    assert list(inspect.signature(run).parameters) == ["context"]
    for hook in ("refuse", "prepare"):
        if getattr(command, hook) is not None:
            assert callable(command.function(hook))


def test_the_parser_offers_exactly_the_declared_commands_with_their_help():
    help_text = build_parser().format_help()
    for command in commands.COMMANDS:
        assert command.name in help_text
        assert command.help[:40] in " ".join(help_text.split())


@pytest.mark.parametrize("command", commands.COMMANDS, ids=lambda command: command.name)
def test_a_command_alone_needs_its_argument_only_where_the_table_says_so(command):
    required = command.argument is not None and not command.argument.optional
    if required:
        with pytest.raises(ConfigurationError, match="required"):
            from_environ({}, [command.name])
    else:
        assert from_environ({}, [command.name]).command == command.name


def test_an_argument_fills_the_settings_field_the_table_names():
    for command in commands.COMMANDS:
        if command.argument is not None:
            settings = from_environ({"MIGRATE_ALLOW_DOWNGRADE": "true"}, [command.name, "abc123"])
            assert getattr(settings, command.argument.field) == "abc123"


def test_only_commands_that_migrate_take_the_lock_and_only_offline_ones_answer_without_connecting():
    assert {c.name for c in commands.COMMANDS if c.takes_lock} == {"upgrade", "downgrade", "test"}
    assert {c.name for c in commands.COMMANDS if not c.connects} == {"heads", "history", "sql", "lint"}
    assert {c.name: c.fast_path for c in commands.COMMANDS if c.fast_path} == {
        "upgrade": commands.MIGRATED, "check": commands.AT_HEADS, "ready": commands.READY}
    assert all(c.answers_on_stdout for c in commands.COMMANDS if not c.connects)
