"""Pure core of the outbound service: the safety gate, pacing, and the values they use."""
