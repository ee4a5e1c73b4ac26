"""Tables of records as columns."""
