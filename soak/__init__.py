"""`make soak`: load, racing bookings and worker faults against real servers on loopback."""
