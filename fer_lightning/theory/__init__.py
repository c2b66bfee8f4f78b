"""The report's math, checked against autograd; nothing at run time imports it."""
