"""The runner's secret store and the secret references of a cluster's ``spark_env_vars``.

On Databricks a job cluster receives secrets as environment variables through references in its spec,
``"spark_env_vars": {"LAKEHOUSE_PII_HMAC_KEY": "{{secrets/lakehouse/pii_hmac_key}}"}``: the value is
fetched from the secret scope when the cluster starts, and a reference to a secret that does not exist
fails the cluster start. As Databricks documents it, a value is a reference only when it is one as a
whole (it starts with ``{{secrets/`` and ends with ``}}``); a reference inside a longer string is not
resolved and reaches the job as written, here as there.

Locally the scopes live in one JSON file, ``{"<scope>": {"<key>": "<value>"}}``, at ``RUNNER_SECRETS_FILE``
(default ``<state-dir>/secrets.json``), mode 0600: ``python -m dev.databricks_runner secrets put-secret
<scope> <key>`` writes it (the value from stdin, never from argv, which any local user sees in ``ps``), and
the executor reads it each time a task's cluster "starts", so a changed secret applies to the next run.
A resolved value lives only in the environment of the task's process: it is never part of a run
record, an API response, a log line, the properties file or the command line of spark-submit.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

SECRETS_FILE_ENV = "RUNNER_SECRETS_FILE"
DEFAULT_SECRETS_FILE = "secrets.json"  # in the state dir

# A whole value of the form {{secrets/<scope>/<key>}}, the form Databricks resolves (the Databricks
# Terraform provider recognises references with the same pattern, anchored at both ends). These patterns
# are used with fullmatch(): a "$" anchor would let a final newline through.
REFERENCE = re.compile(r"\{\{secrets/([^/]+)/([^}]+)\}\}")
# Databricks' own naming rules for scopes and keys (Secrets API: put-secret, create-scope).
SCOPE_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,128}")
KEY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
MAX_VALUE_BYTES = 128 * 1024  # "The maximum allowed secret value size is 128 KB."


class SecretError(Exception):
    """A secret could not be had. The message names scopes, keys, variables and files, never a value."""


class SecretNotFound(SecretError):
    def __init__(self, scope: str, key: str, variable: str | None = None):
        # the words of the Databricks Secrets API, then the variable whose reference named the secret
        where = f" (referenced by spark_env_vars.{variable})" if variable else ""
        super().__init__(f"Secret does not exist with scope: {scope} and key: {key}{where}")
        self.scope, self.key, self.variable = scope, key, variable


def store_path(state_dir: Path, env: Mapping[str, str] = os.environ) -> Path:
    """Where the store is: ``RUNNER_SECRETS_FILE``, else ``secrets.json`` in the state dir."""
    configured = env.get(SECRETS_FILE_ENV, "").strip()
    return Path(configured).absolute() if configured else state_dir.absolute() / DEFAULT_SECRETS_FILE


def reference(value: str) -> tuple[str, str] | None:
    """(scope, key) if ``value`` is exactly a secret reference, else None (a plain value)."""
    match = REFERENCE.fullmatch(value)
    return (match[1], match[2]) if match else None


def looks_like_reference(value: str) -> bool:
    """True for a value shaped as a reference (it starts with ``{{secrets/`` and ends with ``}}``): one that
    does not parse as ``{{secrets/<scope>/<key>}}`` is a mistake, refused at submit (submit.py)."""
    return value.startswith("{{secrets/") and value.endswith("}}")


class SecretStore:
    """The JSON file of scopes. Read afresh on every call: it is small, and put-secret may change it."""

    def __init__(self, path: Path):
        self.path = path

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return {}  # no secret was ever put: every reference is to a secret that does not exist
        except OSError as e:
            raise SecretError(f"cannot read the runner's secret store {self.path}: {e.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if mode & 0o077:
                raise SecretError(
                    f"the runner's secret store {self.path} is accessible to other users "
                    f"(mode {stat.S_IMODE(mode):04o}); `chmod 600` it"
                )
            try:
                data = json.loads(f.read().decode("utf-8"))
            except UnicodeDecodeError:  # its message would quote a byte of the file
                raise SecretError(f"the runner's secret store {self.path} is not UTF-8") from None
            except ValueError as e:  # the JSON decoder's message gives a position, never the text there
                raise SecretError(f"the runner's secret store {self.path} is not valid JSON ({e})") from None
        if not isinstance(data, dict) or not all(
            isinstance(keys, dict) and all(isinstance(v, str) for v in keys.values()) for keys in data.values()
        ):
            raise SecretError(f'the runner\'s secret store {self.path} is not {{"<scope>": {{"<key>": "<value>"}}}}')
        return data

    def get(self, scope: str, key: str) -> str:
        return _lookup(self._read(), scope, key)

    def keys(self, scope: str) -> list[str]:
        return sorted(self._read().get(scope, {}))

    def scopes(self) -> list[str]:
        return sorted(self._read())

    def put(self, scope: str, key: str, value: str) -> None:
        """Create or replace one secret; the file is written whole (mode 0600) and renamed into place."""
        if not SCOPE_NAME.fullmatch(scope):
            raise SecretError(f"scope {scope!r}: up to 128 letters, digits, '-', '_', '.' and '@'")
        if not KEY_NAME.fullmatch(key):
            raise SecretError(f"key {key!r}: up to 128 letters, digits, '-', '_' and '.'")
        if not value:
            raise SecretError("the value is empty (nothing came on stdin)")
        if "\0" in value:
            raise SecretError("the value contains a NUL character, which no environment variable can hold")
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise SecretError(f"the value is larger than {MAX_VALUE_BYTES // 1024} KB")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one writer at a time, so two put-secret calls cannot lose each other's key
        lock_fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            data = self._read()
            keys = data.setdefault(scope, {})
            for existing in [k for k in keys if k.casefold() == key.casefold()]:
                del keys[existing]  # secret names are case insensitive: this replaces it
            keys[key] = value
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    os.fchmod(f.fileno(), 0o600)  # O_CREAT's mode does not apply to a file left by a crash
                    json.dump(data, f, indent=1, sort_keys=True)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            finally:
                tmp.unlink(missing_ok=True)
        finally:
            os.close(lock_fd)

    def resolve(self, env_vars: Mapping[str, str]) -> dict[str, str]:
        """``env_vars`` with every secret reference replaced by its value, as a cluster start does.

        The store is read once, so all references of a task see one version of it. Raises SecretNotFound
        for the first reference to a missing scope or key (the task must not start without it), and
        SecretError if the store cannot be read."""
        if not any(reference(v) for v in env_vars.values()):
            return dict(env_vars)  # no reference: the store need not even exist
        data = self._read()
        resolved = {}
        for name, value in env_vars.items():
            if (ref := reference(value)) is None:
                resolved[name] = value
                continue
            try:
                resolved[name] = _lookup(data, *ref)
            except SecretNotFound as e:
                raise SecretNotFound(e.scope, e.key, name) from None
        return resolved


def _lookup(data: dict[str, dict[str, str]], scope: str, key: str) -> str:
    keys = data.get(scope)
    if keys is None:
        raise SecretNotFound(scope, key)
    if key in keys:
        return keys[key]
    # "Secret names are case insensitive."
    folded = [value for name, value in keys.items() if name.casefold() == key.casefold()]
    if not folded:
        raise SecretNotFound(scope, key)
    return folded[0]
