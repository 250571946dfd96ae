"""The performance harness: the real operator process against the API stand-in and the simulator on loopback."""
