"""Cloud GPU marketplaces behind one small interface (see providers/base.py)."""
