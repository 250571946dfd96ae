"""Pure decisions: routing, delivery planning, payloads, connection-test judgement; no I/O, no clock of their own."""
