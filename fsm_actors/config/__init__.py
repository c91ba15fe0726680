"""config layer of fsm_actors."""
