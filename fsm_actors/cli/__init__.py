"""cli layer of fsm_actors."""
