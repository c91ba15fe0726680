"""engine layer of fsm_actors."""
