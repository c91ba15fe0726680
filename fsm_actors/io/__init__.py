"""io layer of fsm_actors."""
