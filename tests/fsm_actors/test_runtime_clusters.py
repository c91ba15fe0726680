"""Attaching to real clusters on this machine: a token-auth head (Ray's default), a head
without token auth, and both through Ray Client (``ray://``) with Ray's default settings."""

from __future__ import annotations

import pytest

from tests.ops.ray_heads import run_driver, start_head

ATTACH = """
from fsm_actors import SimpleFSM
from fsm_actors.platform import runtime
from tests.fsm_actors.fsm_configs import ROUTER, double

info = runtime.ensure_ray({address!r})
with SimpleFSM(ROUTER, custom_functions={{"double": double}}, actors=2) as fsm:
    out = fsm.process_batch([{{"x": i}} for i in range(500)], batch_size=50)
print("ATTACHED", info.started_local, sum(r["success"] for r in out))
"""


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    """One head with token auth and one with RAY_AUTH_MODE=disabled, both with Ray Client."""
    started = []
    try:
        for auth in ("token", "disabled"):
            started.append(start_head(auth=auth, client=True,
                                      log_dir=tmp_path_factory.mktemp(auth)))
        yield dict(zip(("token", "disabled"), started, strict=True))
    finally:
        for node in started:
            node.stop()


def _attach(address: str) -> str:
    proc = run_driver(ATTACH.format(address=address))
    return proc.stdout + proc.stderr[-3000:]


@pytest.mark.parametrize("auth", ["token", "disabled"])
def test_attaches_by_address_with_the_clusters_auth_mode(heads, auth):
    """Token auth is used where the cluster has it and never forced on one without it
    (a driver requiring tokens made every actor die before it ran)."""
    out = _attach(heads[auth].address)
    assert "ATTACHED False 500" in out, out + heads[auth].log.read_text()[-2000:]


@pytest.mark.parametrize("auth", ["token", "disabled"])
def test_attaches_through_ray_client_with_rays_defaults(heads, auth):
    """``ray://`` ships the project as package directories: module objects in py_modules
    broke Ray Client's default UV hook ("cannot pickle 'module' object")."""
    out = _attach(heads[auth].client_address)
    assert "ATTACHED False 500" in out, out


def test_the_auth_mode_is_read_from_the_cluster(heads):
    from fsm_actors.platform import runtime

    assert runtime.cluster_auth_mode(heads["token"].address) == "token"
    assert runtime.cluster_auth_mode(heads["disabled"].address) == "disabled"
    assert runtime.cluster_auth_mode(heads["token"].client_address) == "token"
