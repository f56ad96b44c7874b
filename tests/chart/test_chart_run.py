"""The rendered containers run for real: docker runs the Job's container and the example app's initContainer exactly
as Helm rendered them, against the real PostgreSQL and MariaDB, and the schema ends at head."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from tests.chart.chartkit import CHART_DIR, REPO, build_example, only, pod_spec, render
from tests.chart.podrun import Cluster, Pod, finish, indexed
from tests.fixtures.databases import PG_HOST, PG_PORT, random_name
from tests.fixtures.revisions import applied_counts

pytestmark = pytest.mark.chart

EXAMPLE_REVISIONS = REPO / "image" / "examples" / "versions"
EXAMPLE_HEAD = "0003"


@pytest.fixture(params=["pg_database", "mariadb_database"], ids=["postgresql", "mariadb"])
def database(request):
    return request.getfixturevalue(request.param)


def image_values(image: str) -> dict:
    repository, tag = image.rsplit(":", 1)
    return {"image": {"repository": repository, "tag": tag, "pullPolicy": "Never"}}


def files_of(directory: Path) -> dict[str, str]:
    """A ConfigMap's data as `kubectl create configmap --from-file=<dir>` makes it."""
    return {p.name: p.read_text() for p in sorted(directory.glob("*.py"))}


def assert_succeeded(results) -> None:
    for result in results:
        assert result.returncode == 0, (
            f"{result.name} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")


def completion(result) -> dict:
    return next(e for e in result.events() if e.get("event") == "migration_complete")


@pytest.fixture
def pods():
    made: list[Pod] = []

    def make(spec, cluster, name) -> Pod:
        made.append(Pod(spec, cluster, name))
        return made[-1]

    yield make
    for pod in made:
        pod.close()


def test_rendered_job_migrates_the_database_to_head(sidecar_image, database, pods):
    values = image_values(sidecar_image) | {
        "database": {"existingSecret": "app-database", "urlKey": "DATABASE_URL"},
        "revisions": {"source": "configMap", "configMap": "{{ .Release.Name }}-revisions"},
    }
    cluster = Cluster(secrets={"app-database": {"DATABASE_URL": database.url}},
                      config_maps={"shop-revisions": files_of(EXAMPLE_REVISIONS)})
    spec = pod_spec(render(CHART_DIR, values), "Job")

    results = pods(spec, cluster, "job").run_all()

    assert_succeeded(results)
    assert database.revisions() == [EXAMPLE_HEAD]
    assert {"accounts", "orders"} <= set(database.tables())
    summary = completion(results[-1])
    assert (summary["to_revision"], summary["applied"]) == (EXAMPLE_HEAD, 3)
    assert results[-1].termination_message.strip(), "the one-line summary reaches the termination log"


def test_rendered_job_reads_host_user_and_password_file(sidecar_image, pg_password_server, pods):
    with pg_password_server.database() as db:
        values = image_values(sidecar_image) | {"database": {
            "existingSecret": "app-db-password", "passwordKey": "password", "driver": "postgresql",
            "host": pg_password_server.host, "port": pg_password_server.port, "name": db.name,
            "user": pg_password_server.user},
            "revisions": {"source": "configMap", "configMap": "revisions"}}
        cluster = Cluster(secrets={"app-db-password": {"password": pg_password_server.password}},
                          config_maps={"revisions": files_of(EXAMPLE_REVISIONS)})
        spec = pod_spec(render(CHART_DIR, values), "Job")

        results = pods(spec, cluster, "host").run_all()

        assert_succeeded(results)
        assert db.revisions() == [EXAMPLE_HEAD]
        output = "".join(r.stdout + r.stderr + r.termination_message for r in results)
        assert pg_password_server.password not in output


def migrating_pods(image: str) -> dict:
    """The example app's values for migrating in its pods, the initContainer running upgrade, without the Job."""
    return {"migrations": image_values(image) | {"job": {"enabled": False}}}


def test_example_app_init_container_migrates_the_database_to_head(sidecar_image, database, pods, tmp_path):
    example = build_example(tmp_path)
    objects = render(example, migrating_pods(sidecar_image))
    cluster = Cluster(secrets={"shop-database": {"url": database.url}})
    cluster.add_rendered(objects)  # the revisions ConfigMap the example chart ships
    spec = pod_spec(objects, "Deployment")
    spec = spec | {"containers": []}  # the application image itself is not part of this test

    results = pods(spec, cluster, "app").run_all()

    assert [r.name for r in results] == ["migrate"]
    assert_succeeded(results)
    assert database.revisions() == [EXAMPLE_HEAD]


def test_three_replicas_of_the_example_app_apply_each_revision_exactly_once(
        sidecar_image, database, revisions, pods, tmp_path):
    revisions.chain(2)
    revisions.slow(6)  # keeps the first replica inside the lock while the others start, even on a busy host
    revisions.chain(2)
    example = build_example(tmp_path / "chart", revisions_dir=revisions.dir)
    objects = render(example, migrating_pods(sidecar_image))
    cluster = Cluster(secrets={"shop-database": {"url": database.url}})
    cluster.add_rendered(objects)
    spec = pod_spec(objects, "Deployment")
    (init,) = spec["initContainers"]

    replicas = [pods(spec, cluster, f"replica{i}") for i in range(3)]
    started = [(pod, pod.start(init)) for pod in replicas]  # all three at once
    results = [finish(f"replica{i}", process, termination, run_name, 180)
               for i, (pod, (process, termination, run_name)) in enumerate(started)]

    assert_succeeded(results)
    assert applied_counts(database) == {rev: 1 for rev in revisions.ids}
    assert database.revisions() == [revisions.head]
    applied = sorted(completion(r)["applied"] for r in results)
    assert sum(applied) == len(revisions.ids), json.dumps([r.events() for r in results], indent=1)
    assert applied.count(0) >= 1, "the replicas that came second found the database at head"
    waited = [r for r in results if any(e.get("event") == "lock_waiting" for e in r.events())]
    assert len(waited) >= 1, "the replicas overlapped, so at least one waited for the lock"


# --- the documented default: the Job migrates as the migrator, the app's pods wait with `ready` as the app -------

@pytest.fixture
def pg_roles(pg_database):
    """A migrator that owns the schema and an application role with data rights only, as docs/operations.md grants.

    Returns the two URLs (migrator, app)."""
    migrator, app = random_name("mig"), random_name("app")
    for statement in (f'CREATE ROLE "{migrator}" LOGIN', f'CREATE ROLE "{app}" LOGIN',
                      f'ALTER SCHEMA public OWNER TO "{migrator}"',
                      "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
                      f'GRANT CONNECT ON DATABASE "{pg_database.name}" TO "{app}"',
                      f'GRANT USAGE ON SCHEMA public TO "{app}"',
                      f'ALTER DEFAULT PRIVILEGES FOR ROLE "{migrator}" IN SCHEMA public '
                      f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{app}"'):
        pg_database.execute(statement)
    url = f"postgresql://{{}}@{PG_HOST}:{PG_PORT}/{pg_database.name}"
    yield url.format(migrator), url.format(app)
    # One role at a time: DROP OWNED BY both at once trips over the default ACL they share.
    for statement in (f'REASSIGN OWNED BY "{migrator}" TO postgres', f'DROP OWNED BY "{migrator}"',
                      f'DROP OWNED BY "{app}"', f'DROP ROLE "{migrator}"', f'DROP ROLE "{app}"'):
        pg_database.execute(statement)


def job_and_app(example: Path, image: str, urls: tuple[str, str], ready_timeout: float) -> tuple[dict, dict, Cluster]:
    """The example app's Job and Deployment pod specs as rendered by default, and the two Secrets they mount."""
    objects = render(example, {"migrations": image_values(image) | {"ready": {"timeout": ready_timeout}}})
    migrator, app = urls
    cluster = Cluster(secrets={"shop-database": {"url": migrator}, "shop-app-database": {"url": app}})
    cluster.add_rendered(objects)
    return pod_spec(objects, "Job"), pod_spec(objects, "Deployment"), cluster


def start_together(job: dict, app: dict, cluster: Cluster, pods, timeout: float) -> tuple:
    """The Job's container and the app's initContainer, started at once as a release's rollout starts them."""
    (migrate,), (ready,) = job["containers"], app["initContainers"]
    job_pod, app_pod = pods(job, cluster, "job"), pods(app, cluster, "app")
    started = [job_pod.start(migrate), app_pod.start(ready)]
    return tuple(finish(name, *handles, timeout) for name, handles in zip(("migrate", "ready"), started))


def event(result, name: str) -> dict:
    found = [e for e in result.events() if e.get("event") == name]
    assert len(found) == 1, f"{result.name}: {len(found)} {name} events\n{result.stdout}\n{result.stderr}"
    return found[0]


def stamp(entry: dict) -> float:
    return datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp()


def test_the_apps_ready_init_container_lets_it_start_only_after_the_jobs_migration(
        sidecar_image, pg_database, pg_roles, revisions, pods, tmp_path):
    revisions.chain(1)
    revisions.slow(5)  # the Job is still migrating well after the initContainer's first polls
    revisions.chain(1)
    example = build_example(tmp_path / "chart", revisions_dir=revisions.dir)
    job, app, cluster = job_and_app(example, sidecar_image, pg_roles, ready_timeout=120)

    migrated, ready = start_together(job, app, cluster, pods, 180)

    assert_succeeded([migrated, ready])
    assert pg_database.revisions() == [revisions.head]
    complete, answer = event(migrated, "migration_complete"), event(ready, "ready")
    assert complete["applied"] == 3 and answer["revision"] == revisions.head
    assert answer["polls"] > 1, "the initContainer found the database behind and waited"
    assert stamp(complete) <= stamp(answer), "the app may start only after the migration is complete"
    assert stamp(answer) - stamp(complete) < 5, "and within a few polls of it"
    # The app's role logged in as itself and never took the lock; the migrator owns what the Job created.
    assert not any(e.get("event") == "lock_acquired" for e in ready.events())
    owners = pg_database.rows("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert owners == [(pg_roles[0].split("://")[1].split("@")[0],)]


def test_a_failed_migration_keeps_the_app_waiting_until_its_timeout_then_exit_8(
        sidecar_image, pg_database, pg_roles, revisions, pods, tmp_path):
    (first,) = revisions.chain(1)
    failing = revisions.failing()
    example = build_example(tmp_path / "chart", revisions_dir=revisions.dir)
    job, app, cluster = job_and_app(example, sidecar_image, pg_roles, ready_timeout=6)

    started = time.time()
    migrated, ready = start_together(job, app, cluster, pods, 120)

    assert migrated.returncode == 1, f"{migrated.stdout}\n{migrated.stderr}"
    assert pg_database.revisions() == [first], "the failing revision was rolled back"
    assert ready.returncode == 8, f"{ready.stdout}\n{ready.stderr}"
    failed = event(ready, "failed")
    line = failed["error"]
    assert "\n" not in line and "MIGRATE_READY_TIMEOUT" in line and f"reach {failing}" in line, line
    assert stamp(failed) - started >= 6, "the app waited out its whole timeout"
    assert not any(e.get("event") == "ready" for e in ready.events())
    assert line in ready.termination_message, "kubectl describe pod shows the same line"


def test_a_wrong_password_fails_the_job_at_once_through_its_pod_failure_policy(
        sidecar_image, pg_password_server, pods):
    with pg_password_server.database() as db:
        values = image_values(sidecar_image) | {"database": {
            "existingSecret": "app-db-password", "host": pg_password_server.host, "port": pg_password_server.port,
            "name": db.name, "user": pg_password_server.user},
            "revisions": {"source": "configMap", "configMap": "revisions"}}
        cluster = Cluster(secrets={"app-db-password": {"password": "not-the-password"}},
                          config_maps={"revisions": files_of(EXAMPLE_REVISIONS)})
        job = next(o for o in render(CHART_DIR, values) if o["kind"] == "Job")

        (result,) = pods(job["spec"]["template"]["spec"], cluster, "wrong").run_all()

        fail_job = next(r for r in job["spec"]["podFailurePolicy"]["rules"] if r["action"] == "FailJob")
        assert result.returncode == 5
        assert result.returncode in fail_job["onExitCodes"]["values"], "a retry cannot fix a wrong password"
        assert result.termination_message.strip(), "kubectl describe shows why"
        assert "not-the-password" not in result.stdout + result.stderr + result.termination_message
        assert db.revisions() == []


@pytest.fixture
def image_with_files(sidecar_image, tmp_path):
    """``image_with_files(directory, path)``: the sidecar image plus ``directory`` copied to ``path``."""
    made = []

    def build(directory: Path, path: str) -> str:
        context = tmp_path / f"image-{len(made)}"
        shutil.copytree(directory, context / "files")
        (context / "Dockerfile").write_text(f"FROM {sidecar_image}\nCOPY files {path}\n")
        tag = f"alembic-sidecar-chart-test:{uuid.uuid4().hex[:12]}"
        subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], check=True, capture_output=True)
        made.append(tag)
        return tag

    yield build
    for tag in made:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def test_copy_source_migrates_from_revision_files_in_the_application_image(
        sidecar_image, pg_database, revisions, pods, image_with_files):
    revisions.chain(3)
    # The "application image": any image with a cp and the revision files; here the sidecar image plus the files.
    app_image = image_with_files(revisions.dir, "/srv/app/migrations/versions")
    values = image_values(sidecar_image) | {
        "database": {"existingSecret": "app-database"},
        "revisions": {"source": "copy", "copy": {"image": app_image, "path": "/srv/app/migrations/versions"}},
    }
    cluster = Cluster(secrets={"app-database": {"url": pg_database.url}})
    spec = pod_spec(render(CHART_DIR, values), "Job")

    results = pods(spec, cluster, "copy").run_all()

    assert [r.name for r in results] == ["copy-revisions", "migrate"]
    assert_succeeded(results)
    assert pg_database.revisions() == [revisions.head]
    assert applied_counts(pg_database) == {rev: 1 for rev in revisions.ids}


def test_default_image_source_migrates_with_revision_files_baked_into_a_derived_image(
        sidecar_image, mariadb_database, revisions, pods, image_with_files):
    revisions.chain(2)
    derived = image_with_files(revisions.dir, "/migrations/versions")  # as image/derived-example does
    values = image_values(derived) | {"database": {"existingSecret": "app-database"}}
    cluster = Cluster(secrets={"app-database": {"url": mariadb_database.url}})
    spec = pod_spec(render(CHART_DIR, values), "Job")
    assert not [m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == "/migrations/versions"]

    results = pods(spec, cluster, "baked").run_all()

    assert_succeeded(results)
    assert mariadb_database.revisions() == [revisions.head]


@pytest.fixture(params=["pg_tls_server", "mariadb_tls_server"], ids=["postgresql", "mariadb"])
def tls_server(request):
    """A server that takes TLS logins only, and a user it logs in by client certificate alone."""
    return request.getfixturevalue(request.param)


def tls_job(sidecar_image: str, server, database, ca: str) -> tuple[dict, Cluster]:
    """The Job with database.tls as the README shows it, and the Secrets and ConfigMap its pod mounts."""
    values = image_values(sidecar_image) | {
        "database": {"existingSecret": "app-database", "tls": {
            "mode": "verify-full", "ca": {"existingConfigMap": "db-ca"},
            "clientCertificate": {"existingSecret": "db-client"},
            "keyPassword": {"existingSecret": "db-key-password"}}},
        "revisions": {"source": "configMap", "configMap": "revisions"},
    }
    cluster = Cluster(
        secrets={"app-database": {"url": server.url(database.name, server.cert_user)},
                 "db-client": {"tls.crt": Path(server.client_cert).read_text(),
                               "tls.key": Path(server.client_key_encrypted).read_text()},
                 "db-key-password": {"password": server.key_password}},
        config_maps={"db-ca": {"ca.crt": Path(ca).read_text()}, "revisions": files_of(EXAMPLE_REVISIONS)})
    return only(render(CHART_DIR, values), "Job"), cluster


def secret_free(results, server) -> str:
    output = "".join(r.stdout + r.stderr + r.termination_message for r in results)
    assert server.key_password not in output
    assert "PRIVATE KEY" not in output
    return output


def test_rendered_job_verifies_the_server_and_logs_in_with_the_mounted_encrypted_client_certificate(
        sidecar_image, tls_server, pods):
    # The user has no password and the server takes TLS logins only: exit 0 proves the certificate, its key
    # and the key's password reached the container as the chart mounts them, and verify-full passed with the CA.
    with tls_server.database(owner=tls_server.cert_user) as db:
        job, cluster = tls_job(sidecar_image, tls_server, db, tls_server.ca)

        results = pods(job["spec"]["template"]["spec"], cluster, "tls").run_all()

        assert_succeeded(results)
        assert db.revisions() == [EXAMPLE_HEAD]
        assert completion(results[-1])["applied"] == 3
        secret_free(results, tls_server)


def test_a_ca_that_did_not_sign_the_server_fails_the_job_at_once(sidecar_image, tls_server, pods):
    with tls_server.database(owner=tls_server.cert_user) as db:
        job, cluster = tls_job(sidecar_image, tls_server, db, tls_server.wrong_ca)

        started = time.monotonic()
        (result,) = pods(job["spec"]["template"]["spec"], cluster, "wrong-ca").run_all()

        fail_job = next(r for r in job["spec"]["podFailurePolicy"]["rules"] if r["action"] == "FailJob")
        assert result.returncode == 5, result.stdout + result.stderr
        assert result.returncode in fail_job["onExitCodes"]["values"], "no retry makes the server's certificate verify"
        assert time.monotonic() - started < 30, "refused at once, not retried for migration.waitTimeout"
        assert "/etc/alembic-sidecar/tls/ca.crt" in result.termination_message
        assert db.revisions() == []
        secret_free([result], tls_server)


def test_without_the_pods_fs_group_the_tls_files_are_unreadable_and_the_job_says_which(
        sidecar_image, pg_tls_server, pods):
    # What an application pod without securityContext.fsGroup gets: files owned by root, mode 0440.
    with pg_tls_server.database(owner=pg_tls_server.cert_user) as db:
        job, cluster = tls_job(sidecar_image, pg_tls_server, db, pg_tls_server.ca)
        spec = job["spec"]["template"]["spec"]
        spec = spec | {"securityContext": {k: v for k, v in spec["securityContext"].items() if k != "fsGroup"}}

        (result,) = pods(spec, cluster, "no-fsgroup").run_all()

        assert result.returncode == 2, result.stdout + result.stderr
        (failed,) = [e for e in result.events() if e.get("event") == "failed"]
        assert "cannot read" in failed["error"] and "/etc/alembic-sidecar/tls/" in failed["error"], failed
        assert db.revisions() == []
        secret_free([result], pg_tls_server)


# --- a fleet of tenant schemas, sharded over the Indexed Job ------------------------------------------------------

#: Each revision records which shard applied it, in the tenant's own schema: JOB_COMPLETION_INDEX of its pod.
SHARD_MARKER = """\
    op.execute("CREATE TABLE IF NOT EXISTS applied_by (revision VARCHAR(64) NOT NULL, shard VARCHAR(8) NOT NULL)")
    op.execute(sa.text("INSERT INTO applied_by VALUES (:revision, :shard)").bindparams(
        revision="{rev}", shard=os.environ.get("JOB_COMPLETION_INDEX", "none")))
"""


def test_two_rendered_shard_pods_migrate_every_tenant_schema_exactly_once_each_only_its_own(
        sidecar_image, pg_database, revisions, pods):
    for _ in range(3):
        revisions.add(SHARD_MARKER, imports="import os\n")
    tenants = [random_name(f"tenant{i}") for i in range(7)]
    for schema in tenants:
        pg_database.execute(f'CREATE SCHEMA "{schema}"')
    targets = ["# the shop's tenants, one schema each"] + [f"schema={schema}" for schema in tenants]
    values = image_values(sidecar_image) | {
        "database": {"existingSecret": "app-database"},
        "revisions": {"source": "configMap", "configMap": "revisions"},
        "fleet": {"targets": targets, "shards": 2, "parallel": 2},
    }
    objects = render(CHART_DIR, values)
    cluster = Cluster(secrets={"app-database": {"url": pg_database.url}},
                      config_maps={"revisions": files_of(revisions.dir)})
    cluster.add_rendered(objects)  # the targets ConfigMap
    job = only(objects, "Job")
    assert (job["spec"]["completionMode"], job["spec"]["completions"]) == ("Indexed", 2)
    spec = job["spec"]["template"]["spec"]

    shards = [pods(indexed(spec, index), cluster, f"shard{index}") for index in (0, 1)]
    started = [pod.start(pod.spec["containers"][0]) for pod in shards]  # both at once, as the Job starts them
    results = [finish(f"shard{index}", *handles, 180) for index, handles in enumerate(started)]

    assert_succeeded(results)
    for position, schema in enumerate(tenants):
        mine = str(position % 2)
        assert pg_database.rows(f'SELECT version_num FROM "{schema}".alembic_version') == [(revisions.head,)]
        applied = pg_database.rows(f'SELECT revision, shard FROM "{schema}".applied_by ORDER BY revision')
        assert applied == [(rev, mine) for rev in revisions.ids], f"{schema}: applied once each, by shard {mine}"
    assert "alembic_version" not in pg_database.tables(), "nothing was migrated in public"
    for index, result in enumerate(results):
        own = tenants[index::2]
        others = tenants[1 - index::2]
        output = result.stdout + result.stderr + result.termination_message
        assert all(schema in result.stdout for schema in own), f"shard {index} reports each of its targets"
        assert not [schema for schema in others if schema in output], f"shard {index} never touched the other's"
