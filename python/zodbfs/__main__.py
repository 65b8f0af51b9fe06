"""``python -m zodbfs ARGS`` runs ``zodbfs ARGS``."""

from zodbfs import main

if __name__ == "__main__":
    main()
