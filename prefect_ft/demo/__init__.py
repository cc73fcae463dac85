"""What `make demo` runs: `loopback` (a breaker in front of a loopback server), then `flows`."""
