"""Real libraries against real servers, on each loop (make real-servers)."""
