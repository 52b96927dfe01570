"""`python -m emotion_sensing.service [--host H] [--port P]`: run the emotion service."""
from __future__ import annotations

import argparse
import logging
from dataclasses import replace

from emotion_sensing.config import Settings
from emotion_sensing.service.app import serve


def main() -> None:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m emotion_sensing.service")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.service_port)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(replace(settings, host=args.host, service_port=args.port))


if __name__ == "__main__":
    main()
