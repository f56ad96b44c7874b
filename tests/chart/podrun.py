"""Run a rendered pod's containers with ``docker run``, the way a kubelet would, as far as one host allows.

Each container runs exactly as rendered: image, command, args, env (literal values, and values from Secrets and
ConfigMaps), volume mounts (Secret, ConfigMap and projected volumes materialised as files with their items, paths
and modes, owned by root and, as the kubelet does, by the pod's fsGroup with group read added; emptyDir as a host
directory shared by the pod's containers; subPath honoured), the security context (UID/GID, fsGroup as a
supplementary group, read-only root filesystem, dropped capabilities, no privilege escalation) and the termination
message file.
Init containers run one after another and stop the pod at the first failure; a Job pod's main container runs last.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.docker import TEST_LABEL

@dataclass
class Cluster:
    """The Secrets and ConfigMaps a pod may mount or read (Secret values as plain text, as kubectl shows them)."""

    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)

    def add_rendered(self, objects: list[dict[str, Any]]) -> None:
        """Take the ConfigMaps (and stringData/data Secrets) a chart rendered, as `helm install` would create them."""
        import base64

        for obj in objects:
            if obj["kind"] == "ConfigMap":
                self.config_maps[obj["metadata"]["name"]] = dict(obj.get("data", {}))
            elif obj["kind"] == "Secret":
                data = {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}
                self.secrets[obj["metadata"]["name"]] = data | dict(obj.get("stringData", {}))


@dataclass
class Result:
    name: str
    returncode: int
    stdout: str
    stderr: str
    termination_message: str

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines on stdout."""
        out = []
        for line in self.stdout.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


class Pod:
    """A pod spec made runnable: its volumes live in a world-traversable temp dir (the container's UID reads them)."""

    def __init__(self, spec: dict[str, Any], cluster: Cluster, name: str) -> None:
        self.spec, self.cluster, self.name = spec, cluster, name
        self.root = Path(tempfile.mkdtemp(prefix=f"sidecar-pod-{name}-"))
        self.root.chmod(0o755)
        self.volumes = {v["name"]: v for v in spec.get("volumes", [])}
        self._materialised: dict[str, Path] = {}

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # -- volumes ---------------------------------------------------------------------------------------------------

    @property
    def fs_group(self) -> int | None:
        return self.spec.get("securityContext", {}).get("fsGroup")

    def _project(self, directory: Path, data: Mapping[str, str], items: list[dict[str, Any]] | None,
                 default_mode: int) -> None:
        for item in items or [{"key": key, "path": key} for key in data]:
            target = directory / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[item["key"]])  # a missing key fails here, as the kubelet would refuse
            mode = item.get("mode", default_mode)
            if self.fs_group is not None:
                # The kubelet's SetVolumeOwnership on a read-only volume: group fsGroup, group read added.
                os.chown(target, 0, self.fs_group)
                mode |= 0o440
            else:
                os.chown(target, 0, 0)
            target.chmod(mode)

    def _projection(self, name: str, sources: list[tuple[Mapping[str, str], dict[str, Any]]],
                    default_mode: int) -> Path:
        directory = self.root / "volumes" / name
        directory.mkdir(parents=True)
        directory.chmod(0o755)
        for data, source in sources:
            self._project(directory, data, source.get("items"), default_mode)
        return directory

    def _source_data(self, kind: str, source: dict[str, Any]) -> Mapping[str, str]:
        if kind == "secret":
            return self.cluster.secrets[source.get("secretName") or source["name"]]
        return self.cluster.config_maps[source["name"]]

    def volume_dir(self, name: str) -> Path:
        if name in self._materialised:
            return self._materialised[name]
        volume = self.volumes[name]
        if "secret" in volume or "configMap" in volume:
            kind = "secret" if "secret" in volume else "configMap"
            source = volume[kind]
            path = self._projection(name, [(self._source_data(kind, source), source)],
                                    source.get("defaultMode", 0o644))
        elif "projected" in volume:
            sources = []
            for entry in volume["projected"]["sources"]:
                (kind, source), = entry.items()
                if kind not in ("secret", "configMap"):
                    raise NotImplementedError(f"volume {name}: projected {kind} cannot run here")
                sources.append((self._source_data(kind, source), source))
            path = self._projection(name, sources, volume["projected"].get("defaultMode", 0o644))
        elif "emptyDir" in volume:
            path = self.root / "volumes" / name
            path.mkdir(parents=True)
            path.chmod(0o777)  # an emptyDir is world-writable, so any UID in the pod can use it
        else:
            raise NotImplementedError(f"volume {name}: only secret, configMap, projected and emptyDir can run here")
        self._materialised[name] = path
        return path

    # -- containers ------------------------------------------------------------------------------------------------

    def _env(self, container: dict[str, Any]) -> list[str]:
        argv = []
        for env in container.get("env", []):
            if "value" in env:
                value = env["value"]
            else:
                ref = env["valueFrom"]
                if "secretKeyRef" in ref:
                    value = self.cluster.secrets[ref["secretKeyRef"]["name"]][ref["secretKeyRef"]["key"]]
                else:
                    value = self.cluster.config_maps[ref["configMapKeyRef"]["name"]][ref["configMapKeyRef"]["key"]]
            argv += ["--env", f"{env['name']}={value}"]
        return argv

    def _security(self, container: dict[str, Any]) -> list[str]:
        context = dict(self.spec.get("securityContext", {})) | dict(container.get("securityContext", {}))
        argv = []
        if "runAsUser" in context:
            argv += ["--user", f"{context['runAsUser']}:{context.get('runAsGroup', 0)}"]
        if self.fs_group is not None:
            argv += ["--group-add", str(self.fs_group)]  # the kubelet adds fsGroup to every container's groups
        if context.get("readOnlyRootFilesystem"):
            argv.append("--read-only")
        for capability in context.get("capabilities", {}).get("drop", []):
            argv += ["--cap-drop", capability]
        if context.get("allowPrivilegeEscalation") is False:
            argv += ["--security-opt", "no-new-privileges"]
        if context.get("privileged"):
            argv.append("--privileged")
        return argv

    def docker_argv(self, container: dict[str, Any], run_name: str, termination_file: Path) -> list[str]:
        argv = ["docker", "run", "--rm", "--name", run_name, "--network", "host", "--label", TEST_LABEL]
        argv += self._security(container)
        argv += self._env(container)
        for mount in container.get("volumeMounts", []):
            source = self.volume_dir(mount["name"])
            if mount.get("subPath"):
                source = source / mount["subPath"]
            spec = f"type=bind,src={source},dst={mount['mountPath']}"
            argv += ["--mount", spec + (",readonly" if mount.get("readOnly") else "")]
        path = container.get("terminationMessagePath", "/dev/termination-log")
        argv += ["--mount", f"type=bind,src={termination_file},dst={path}"]
        command = container.get("command")
        if command:
            argv += ["--entrypoint", command[0]]
        argv.append(container["image"])
        argv += (command or [])[1:] + container.get("args", [])
        return argv

    def start(self, container: dict[str, Any]) -> tuple[subprocess.Popen, Path, str]:
        run_name = f"{self.root.name}-{container['name']}"
        termination = self.root / f"{container['name']}.termination-log"
        termination.write_text("")
        termination.chmod(0o666)  # the kubelet's file is writable by the container's user
        process = subprocess.Popen(self.docker_argv(container, run_name, termination),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return process, termination, run_name

    def run(self, container: dict[str, Any], timeout: float = 180) -> Result:
        process, termination, run_name = self.start(container)
        return finish(container["name"], process, termination, run_name, timeout)

    def run_all(self, timeout: float = 180) -> list[Result]:
        """Init containers in order, then the main containers (a Job's pod); stop at the first failure."""
        results = []
        for container in self.spec.get("initContainers", []) + self.spec["containers"]:
            results.append(self.run(container, timeout))
            if results[-1].returncode != 0:
                break
        return results


def indexed(spec: dict[str, Any], index: int) -> dict[str, Any]:
    """An Indexed Job's pod ``index`` as the Job controller makes it: JOB_COMPLETION_INDEX in every container."""
    def with_index(container: dict[str, Any]) -> dict[str, Any]:
        return container | {"env": container.get("env", []) + [{"name": "JOB_COMPLETION_INDEX", "value": str(index)}]}
    return spec | {key: [with_index(c) for c in spec[key]] for key in ("initContainers", "containers") if key in spec}


def finish(name: str, process: subprocess.Popen, termination: Path, run_name: str, timeout: float) -> Result:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        subprocess.run(["docker", "rm", "-f", run_name], capture_output=True)
        stdout, stderr = process.communicate()
        raise AssertionError(f"{name} did not finish within {timeout} s:\n{stdout}\n{stderr}") from None
    return Result(name, process.returncode, stdout, stderr, termination.read_text())

