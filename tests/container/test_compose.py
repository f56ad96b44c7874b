"""compose.test.yml: the app starts only after both migration services completed successfully, and sees the schema."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import yaml

from tests.fixtures.docker import Compose, compose_command, docker

pytestmark = pytest.mark.container

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "compose.test.yml"
CI_OVERRIDE = REPO / "compose.ci.yml"


@pytest.fixture
def compose(base_images, sidecar_image, tmp_path):
    """The stack on the host network with the images tests/setup/docker.sh chose; torn down afterwards."""
    stack = Compose([*compose_command(), "-p", f"sidecar{secrets.token_hex(3)}"], base_images.env_file,
                    [STACK, CI_OVERRIDE])
    yield stack
    stack("down", "-v", "--remove-orphans", timeout=300)


def exit_code(stack: Compose, service: str) -> int:
    container = stack("ps", "-q", service, check=True).stdout.strip()
    assert container, f"no container for {service}"
    return int(docker("inspect", "-f", "{{.State.ExitCode}}", container).stdout)


def test_migration_services_rely_on_the_sidecars_own_wait_not_on_health_checks():
    services = yaml.safe_load(STACK.read_text())["services"]
    for name in ("migrate-postgres", "migrate-mariadb"):
        depends = services[name].get("depends_on", [])
        conditions = depends.values() if isinstance(depends, dict) else []
        assert all(c.get("condition") != "service_healthy" for c in conditions), name
    assert not any("healthcheck" in s for s in services.values())
    app = services["app"]["depends_on"]
    assert app == {name: {"condition": "service_completed_successfully"}
                   for name in ("migrate-postgres", "migrate-mariadb")}


def _stack_logs(compose: Compose) -> str:
    return compose("logs", "--no-color", "--timestamps").stdout[-8000:]


def test_whole_stack_comes_up_green(compose):
    compose("build", check=True, timeout=900)
    result = compose("run", "--rm", "app", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr + "\n--- the stack's logs\n" + _stack_logs(compose)
    assert result.stdout.count(": ok") == 2, result.stdout
    assert exit_code(compose, "migrate-postgres") == 0
    assert exit_code(compose, "migrate-mariadb") == 0
    logs = compose("logs", "--no-color", "migrate-postgres", "migrate-mariadb", check=True).stdout
    assert logs.count('"event": "migration_complete"') == 2, logs


def test_a_failed_migration_keeps_the_app_from_starting(compose, tmp_path):
    broken = tmp_path / "compose.broken.yml"
    broken.write_text("services:\n  migrate-mariadb:\n    environment:\n      MIGRATE_TARGET: no-such-revision\n")
    compose.files.append(broken)
    compose("build", check=True, timeout=900)
    result = compose("run", "--rm", "app", timeout=600)
    assert result.returncode != 0
    assert ": ok" not in result.stdout, "the app ran although a migration failed"
    assert exit_code(compose, "migrate-mariadb") == 7
