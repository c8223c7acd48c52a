"""hlrd: an SMPP-speaking HLR/roaming lookup daemon for call centers."""

__version__ = "0.1.0"
