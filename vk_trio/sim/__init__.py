"""Simulated clouds: loopback HTTP servers standing in for the real marketplaces in tests, demos."""
