"""pool layer of fsm_actors."""
