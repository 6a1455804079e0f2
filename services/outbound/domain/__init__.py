"""Pure core of the outbound service: the safety gate and the values it and the use cases
work with."""
