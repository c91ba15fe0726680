"""The actor pool: batches onto N actors, bounded in-flight work, dead actors replaced."""

from fsm_actors.errors import PoolError
from fsm_actors.pool.actor_pool import ActorPool, PoolStats, pool_actor_name

__all__ = ["ActorPool", "PoolError", "PoolStats", "pool_actor_name"]
