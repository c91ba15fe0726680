"""Seed 003 (resource-management guide), section "Simple Resource Provider".

    .venv/bin/python examples/resources/simple_provider.py

The block as the seed writes it (no imports to change). Defined first, as the seed assumes
it: ``manager``. ``main()`` then leases both resources and returns what they serve.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: examples/ and the packages
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def main() -> dict[str, Any]:
    """``{"config": ..., "settings": ...}``: the data each provider served."""
    from resource_actors.manager import ResourceManager

    with ResourceManager() as manager:
        # -- seed block: "Simple Resource Provider" ----------------------------------------
        # Create simple provider from dict
        manager.register_from_dict("config", {
            "data": {
                "api_key": "secret",
                "endpoint": "https://api.example.com"
            }
        })
        # Or create simple provider with static data
        simple_provider = manager.create_simple_provider("settings", {"timeout": 30})
        manager.register_provider("settings", simple_provider)
        # -- end of seed block -------------------------------------------------------------
        with manager.resource_context("config", "o") as config, \
                manager.resource_context("settings", "o") as settings:
            served = {"config": config, "settings": settings}
    print(f"config endpoint: {served['config']['endpoint']}, settings: {served['settings']}")
    return served


if __name__ == "__main__":
    main()
