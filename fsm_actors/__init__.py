"""fsm-actors: finite-state-machine pipelines on Ray actors."""
