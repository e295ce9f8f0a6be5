"""``make invoke EVENT=events/<file>.json``: the Docker-free twin of ``sam local invoke``.

Runs one event through a function of the template (the API's by default) against local mode's AWS
and prints the Lambda's response, as ``sam local invoke <Function> -e <file>`` would.
"""

import argparse
import contextlib
import json
import sys
from pathlib import Path

from .aws import LocalAws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("event", type=Path, help="an event, e.g. events/execute_hello_world.json")
    parser.add_argument("--function", default="ApiFunction", help="the function's logical id in template.yaml")
    args = parser.parse_args()
    event = json.loads(args.event.read_text())
    # As with sam local invoke: the function's logs on stderr, its response alone on stdout.
    with contextlib.redirect_stdout(sys.stderr), LocalAws() as aws:
        if args.function not in aws.functions:
            raise SystemExit(f"no function {args.function} in template.yaml; there are {', '.join(aws.functions)}")
        response = aws.functions[args.function].invoke(event)
    json.dump(response, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
