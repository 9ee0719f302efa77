"""Interactive figures for the book. Compute lives in :mod:`gsbook`; these modules only draw."""
