"""The platform every package stands on (the bottom layer).

What lives here is used by the FSM engine, the resource layer and the patterns alike, and
imports nothing above it: the connection to Ray (``runtime``), the one event-loop bridge for
sync callers (``event_loop``), storage and file formats (``io``), the job driver (``jobs``),
the actor pool (``actor_pool``), checkpoints, metrics, progress, pickling helpers, the error
root (``errors``) and the extension registry through which higher packages plug in
(``extensions``). See ``docs/architecture.md``.
"""
