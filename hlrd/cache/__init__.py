"""The result cache: answers by kind, each with its time to live, memory then store."""
