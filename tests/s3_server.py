"""A local S3 (moto's server on 127.0.0.1) for the storage tests.

``start_s3()`` starts ``moto_server`` on a free port and sets the standard AWS variables
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``) in
this process: the only way the code under test learns about the store. Ray workers inherit
their environment when Ray starts, so ``restart_ray_with_env`` restarts a Ray this session
started before the variables were set (and only such a Ray). The test session shares one
server (the ``s3_store`` fixture of tests/conftest.py): each module makes buckets of its own
names.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

from tests.servers import free_port

ENV = {
    "AWS_ACCESS_KEY_ID": "testing-key-id",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3Server:
    proc: subprocess.Popen[bytes]
    endpoint: str

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` (through the store's own API) and return ``s3://name``."""
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        urllib.request.urlopen(request, timeout=10).close()
        return f"s3://{name}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_s3() -> S3Server:
    """Start moto's S3 server on 127.0.0.1 and point the AWS_* variables at it."""
    beside = os.path.join(os.path.dirname(sys.executable), "moto_server")  # the venv's
    binary = beside if os.path.exists(beside) else shutil.which("moto_server")
    if binary is None:
        raise RuntimeError("moto_server is not installed: pip install 'moto[server]'")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("moto_server did not start: pip install 'moto[server]'") from None
            time.sleep(0.2)
    os.environ.update(ENV, AWS_ENDPOINT_URL=endpoint)
    return S3Server(proc, endpoint)


#: (GCS address, AWS_ENDPOINT_URL) of the last Ray ``restart_ray_with_env`` started
_RAY_WITH_ENV: tuple[str, str | None] | None = None


def restart_ray_with_env() -> None:
    """Restart the session's local Ray unless ``restart_ray_with_env`` started it with the
    AWS_ENDPOINT_URL this process has now (its workers would not see the store)."""
    global _RAY_WITH_ENV
    import ray

    from fsm_actors.platform import runtime

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if ray.is_initialized():
        if _RAY_WITH_ENV == (ray.get_runtime_context().gcs_address, endpoint):
            return
        runtime.shutdown()
    runtime.ensure_ray(address="local", num_cpus=2, include_dashboard=False)
    _RAY_WITH_ENV = (ray.get_runtime_context().gcs_address, endpoint)


def serve_s3_to_ray(server: S3Server) -> S3Server:
    """The session's S3 ``server``, its variables seen by the session Ray's workers (Ray
    restarted if need be)."""
    restart_ray_with_env()
    return server
