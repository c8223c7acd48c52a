"""Imitations of HTTP HLR vendors, served on the simulator's HTTP port: each checks
credentials as its vendor does and answers in its vendor's field names, types and
error statuses (docs/vendors/), from the same scenario as the SMPP side."""
