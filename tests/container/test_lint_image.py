"""`lint` in the real images: the CI image runs squawk as any UID on a read-only root; the deploy image has none."""

from __future__ import annotations

import pytest

from .support import ContainerSidecar, assert_exit, assert_failed

pytestmark = pytest.mark.container

URL = {"DATABASE_URL": "postgresql://app:secret@lint.sidecar-test.invalid/app"}  # offline: never contacted
CALL = 'op.create_index("ix_orders_note", "orders", ["note"])'


@pytest.fixture
def risky(revisions) -> tuple[str, int]:
    """A revision that indexes a table an earlier one created: its file name and the line of the index."""
    revisions.add('    op.create_table("orders", sa.Column("id", sa.BigInteger, primary_key=True), '
                  'sa.Column("note", sa.Text))\n')
    rev = revisions.add(f"    {CALL}\n")
    path = next(revisions.dir.glob(f"{rev}_*.py"))
    return path.name, path.read_text().splitlines().index(f"    {CALL}") + 1


def test_the_ci_image_lints_with_squawk_as_any_uid_on_a_read_only_root(docker_run, ci_image, revisions, risky):
    name, line = risky
    result = ContainerSidecar(docker_run, ci_image, revisions.dir).run("lint", env=URL)
    assert_exit(result, 11)
    # The working directory is /migrations: the path is shown relative to it.
    assert result.stdout.startswith(f"versions/{name}:{line}: error [require-concurrent-index-creation] "), result


def test_the_deploy_image_has_no_squawk_and_names_the_ci_image(container_sidecar, revisions, risky):
    assert_failed(container_sidecar.run("lint", env=URL), 2, "squawk", "0.1.0-ci")
    # The rules every database shares need no squawk.
    assert_exit(container_sidecar.run("lint", env={"DATABASE_URL": "sqlite:////tmp/never.db"}), 0)
