"""`python -m assistant`: the same as the `assistant` command."""

from assistant.interfaces.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
