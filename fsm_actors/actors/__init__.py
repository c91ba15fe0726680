"""actors layer of fsm_actors."""
