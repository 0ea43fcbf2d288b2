"""An in-process moto server for the local stack (no Docker, no AWS account).

``MotoServer`` runs ``moto.server.ThreadedMotoServer`` on 127.0.0.1 with a
free port, switches on moto's real ASL interpreter for Step Functions, and
installs the gap-fillers of :mod:`posting_cli.local.moto_patches` (see there
for why each one is needed)::

    with MotoServer(dispatch=my_lambda_dispatch) as moto:
        sfn = boto3.client("stepfunctions", endpoint_url=moto.endpoint_url,
                           region_name="us-east-1",
                           config=Config(inject_host_prefix=False))

Only one server per process: the ASL interpreter and moto's config are
process-global, so the last started server receives the interpreter's calls.

The interpreter's own calls (its Tasks: Lambda Invoke...) do not go through
the socket: they are AWS-internal, and are served by moto's application in
the calling thread (:meth:`MotoServer.in_process`, see
:mod:`posting_cli.local.in_process`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any

from moto.core.config import default_user_config
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import ThreadedMotoServer

from posting_cli.local import moto_patches
from posting_cli.local.in_process import serve_in_process


class MotoServer:
    """moto in server mode, in this process, with the local-stack patches.

    ``dispatch(function_name, event) -> result`` runs the Lambda handlers
    in-process (see :func:`moto_patches.install_lambda_dispatch`); without it
    a Lambda task needs Docker, as in plain moto. ``retry_sleep`` replaces
    the wait between ASL retries (see :func:`moto_patches.install_retry_sleep`).
    """

    def __init__(
        self,
        dispatch: Callable[[str, dict[str, Any]], Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        quiet: bool = True,
        retry_sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._dispatch = dispatch
        self._host = host
        self._port = port
        self._quiet = quiet
        self._retry_sleep = retry_sleep
        self._server: ThreadedMotoServer | None = None
        self._saved_sfn_config: Any = {}
        self._app: DomainDispatcherApplication | None = None
        self.endpoint_url = ""

    def start(self) -> MotoServer:
        if self._server is not None:
            return self
        if self._quiet:  # werkzeug logs every request to stderr otherwise
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
            # The ASL interpreter logs every failed Task at ERROR with its whole parse tree, even when
            # the workflow's Catch handles it; the execution's own result says what happened.
            logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        moto_api_backend.reset()  # every server starts empty (state is process-global)
        server = ThreadedMotoServer(ip_address=self._host, port=self._port, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        # The same application the server runs (backends are process-global), for in-process calls.
        self._app = DomainDispatcherApplication(create_backend_app)
        self.endpoint_url = f"http://{host}:{port}"
        # Same dict that POST /moto-api/config writes; must be set before the
        # first state machine is created (moto keeps interpreter-backed state
        # machines in a separate backend).
        self._saved_sfn_config = default_user_config.get("stepfunctions", {})
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        moto_patches.install_all(self.endpoint_url, self._dispatch, self._retry_sleep, self.in_process)
        return self

    def in_process(self, client: Any) -> Any:
        """Serve ``client``'s requests (a boto3 client for this server) in the calling thread; returns it.

        For the local stack's AWS-internal callers only (the pipe, the ASL interpreter): clients that
        stand for user code go through the server, as they would reach AWS over HTTPS.
        """
        if self._app is None:
            raise RuntimeError("start the server first")
        return serve_in_process(client, self._app)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        self._server = None
        self._app = None
        moto_patches.uninstall()
        default_user_config["stepfunctions"] = self._saved_sfn_config

    def client_kwargs(self, region_name: str = "us-east-1") -> dict[str, str]:
        """What a boto3 client needs to reach this server (any dummy credentials will do)."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": region_name,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
