"""Keep pytest's doctest collection away from files that are not documentation."""

collect_ignore = ["docs/conf.py", "docs/_build"]
