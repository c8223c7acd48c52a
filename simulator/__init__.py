"""Offline stand-in for HLR lookup providers: an SMSC/HLR over SMPP plus HTTP imitations."""
