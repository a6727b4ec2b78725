"""Each task's Python environment: the runtime plus exactly the libraries its run declares.

A task that declares no library runs on the runtime's own interpreter. Any other gets a virtualenv
whose site-packages holds its libraries, installed with ``uv pip install``, and a ``.pth`` file that puts
the runtime's site-packages after them, so pyspark, pandas, pyarrow and numpy come from the runtime as on
a cluster. Nothing else is visible: not the project's venv, not the repository.

Environments are cached under ``<state-dir>/envs/<key>``, where the key hashes the runtime's packages
and each library as declared (plus the sha256 of each wheel file's content: a wheel redeployed under the
same name gets a new environment). A new one is built in a temporary folder and renamed into place, so
a crash never leaves half an environment behind a valid key; a file lock per key makes a second task that
needs the same environment wait for the first build instead of repeating it.

uv runs with the runtime's packages as constraints: a library may depend on them but cannot replace one
(on a cluster pip would shadow the runtime's copy, which is a classic way to break Spark); such a
conflict fails the library installation with uv's explanation.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from dev.databricks_runner.config import RunnerConfig
from dev.databricks_runner.spark import read_tail

log = logging.getLogger(__name__)

# Part of every key: bump it when the way environments are built changes, so old ones are not reused.
BUILD_FORMAT = "1"


class LibraryInstallError(Exception):
    """A declared library could not be installed; the message is what the task's state reports."""


def describe(library: dict[str, str]) -> str:
    """``whl: "/Workspace/x.whl"``, ``pypi: "six==1.17.0"``: how Databricks names a library in its messages."""
    ((kind, spec),) = library.items()
    return f'{kind}: "{spec}"'


class Environments:
    def __init__(self, config: RunnerConfig):
        self._config = config
        self._root = config.state_dir / "envs"
        self._root.mkdir(parents=True, exist_ok=True)
        for leftover in self._root.glob(".build-*"):  # builds a crashed runner left half done
            shutil.rmtree(leftover, ignore_errors=True)
        runtime = config.runtime
        # the runtime's packages, pinned: libraries install next to them, never over them
        pins = "".join(f"{name}=={version}\n" for name, version in sorted(runtime.packages.items()))
        self._constraints = self._root / "runtime-constraints.txt"
        self._constraints.write_text(pins)
        self._runtime_id = f"{BUILD_FORMAT}\n{runtime.python}\n{runtime.python_version}\n{pins}"

    def prepare(self, libraries: list[dict[str, str]], execute: Callable[[list[str]], int], output: Path) -> str:
        """The interpreter of an environment with ``libraries`` over the runtime, built once per key.

        ``execute`` runs a uv command as a process of the task (so cancel and timeouts stop it) with its
        output going to ``output``, the task's driver log, and returns its exit code. Raises
        LibraryInstallError when a library cannot be installed.
        """
        if not libraries:
            return self._config.runtime.python
        specs = [self._install_spec(library) for library in libraries]
        key = self._key(libraries, specs)
        target = self._root / key
        if not target.exists():  # environments appear complete, by rename
            with _locked(self._root / f"{key}.lock"):
                if not target.exists():  # not built by another task while this one waited
                    self._build(target, specs, execute, output)
        return str(target / "bin" / "python")

    def _install_spec(self, library: dict[str, str]) -> str:
        """What uv installs for a library: the local file of a workspace wheel, or the requirement string."""
        ((kind, spec),) = library.items()
        if kind == "pypi":
            return spec
        local = self._config.workspace_file(spec)  # submit has checked it maps
        if not local.is_file():
            # what a cluster reports when the library file is not there
            raise LibraryInstallError(
                f"Library installation failed for library due to user error for {describe(library)}\n"
                f" Error messages:\njava.io.FileNotFoundException: {spec} (No such file or directory)"
            )
        return str(local)

    def _key(self, libraries: list[dict[str, str]], specs: list[str]) -> str:
        digest = hashlib.sha256(self._runtime_id.encode())
        for library, spec in zip(libraries, specs, strict=True):
            digest.update(f"\n{describe(library)}".encode())
            if "whl" in library:
                with open(spec, "rb") as f:
                    digest.update(hashlib.file_digest(f, "sha256").digest())
        return digest.hexdigest()[:32]

    def _build(self, target: Path, specs: list[str], execute: Callable[[list[str]], int], output: Path) -> None:
        started = time.monotonic()
        runtime, uv = self._config.runtime, self._config.uv
        tmp = Path(tempfile.mkdtemp(dir=self._root, prefix=".build-"))
        try:
            # --relocatable: the environment is renamed after it is built
            if execute([uv, "venv", "--quiet", "--relocatable", "--python", runtime.python, str(tmp)]):
                raise LibraryInstallError("Could not create the task's Python environment (see the driver log).")
            site_packages = tmp / "lib" / f"python{runtime.python_version}" / "site-packages"
            (site_packages / "_databricks_runtime.pth").write_text("".join(f"{p}\n" for p in runtime.site_packages))
            # --no-config: no uv.toml or pyproject.toml of the checkout may change what gets installed
            install = [uv, "pip", "install", "--no-config", "--python", str(tmp / "bin" / "python"),
                       "--constraint", str(self._constraints), *specs]  # fmt: skip
            if execute(install):
                uv_output, _ = read_tail(output, 8192)  # the driver log holds only uv's output so far
                raise LibraryInstallError(
                    f"Library installation failed for library due to user error.\n Error messages:\n{uv_output.strip()}"
                )
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("environment %s built in %.1f s", target.name, time.monotonic() - started)


@contextmanager
def _locked(path: Path):
    # flock is per open file, so it also serialises threads of this process that build the same key
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield
